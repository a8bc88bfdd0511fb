// A file written to be durable without paying for it at the end: every file onnxopt writes is fsynced
// before its atomic rename, and for a large model that fsync alone (all of its dirty pages written at once)
// took as long as serializing the model. So, on Linux, every 16 MB written the finished range is handed to
// the kernel to write back (sync_file_range with SYNC_FILE_RANGE_WRITE, which starts the writeback and does
// not wait): the disk works while the next weights are serialized, and the closing fsync waits only for
// what is still in flight. Elsewhere (or if the call fails) it is a plain file with the same closing fsync.
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace OnnxOpt.GraphIR;

public sealed partial class DurableFileStream : Stream
{
    private const long Chunk = 16 << 20;
    private const uint SyncFileRangeWrite = 2;
    private readonly FileStream _fs;
    private long _written, _started;
    private bool _writeback = OperatingSystem.IsLinux();

    /// <summary>Creates (or truncates) the file for writing.</summary>
    public DurableFileStream(string path) => _fs = new FileStream(path, FileMode.Create, FileAccess.Write);

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        _fs.Write(buffer);
        _written += buffer.Length;
        if (_writeback && _written - _started >= Chunk) StartWriteback();
    }

    public override void WriteByte(byte value) => Write([value]);

    /// <summary>Writes everything out and waits until it is on disk (fsync).</summary>
    public void Commit() => _fs.Flush(flushToDisk: true);

    private void StartWriteback()
    {
        _fs.Flush(flushToDisk: false);
        try
        {
            if (SyncFileRange(_fs.SafeFileHandle, _started, _written - _started, SyncFileRangeWrite) != 0)
                _writeback = false;
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { _writeback = false; }
        _started = _written;
    }

    [LibraryImport("libc", EntryPoint = "sync_file_range", SetLastError = true)]
    private static partial int SyncFileRange(SafeFileHandle fd, long offset, long nbytes, uint flags);

    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => _written;
    public override long Position { get => _written; set => throw new NotSupportedException(); }
    public override void Flush() => _fs.Flush();
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _fs.Dispose();
        base.Dispose(disposing);
    }
}
