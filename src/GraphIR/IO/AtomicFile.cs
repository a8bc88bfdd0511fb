// Writes files so that a reader never sees a half-written one and a failure never destroys the
// previous file: write a temporary file in the same folder (TempFiles), flush it to disk (DurableFileStream),
// then rename over the target. The rename only ever replaces a regular file (or nothing): an output path that
// is a link is written through to the file the link names (the link stays), a character device or FIFO the
// user names (/dev/null, /dev/stdout, a pipe) is written to directly, and a folder, block device or socket is
// refused.
using System.Text;

namespace OnnxOpt.GraphIR;

public static class AtomicFile
{
    /// <summary>Where a write to <paramref name="path"/> goes: the regular file to replace atomically (a
    /// link's final target), or a device or FIFO written directly (<see cref="OutputTarget.Direct"/>).</summary>
    public static OutputTarget Resolve(string path)
    {
        var kind = FileKinds.Of(path);
        switch (kind)
        {
            case FileKind.CharDevice or FileKind.Fifo: return new OutputTarget(path, true);
            case FileKind.Directory: throw new OnnxModelException($"{path}: is a folder; name a file to write");
            case FileKind.BlockDevice or FileKind.Socket:
                throw new OnnxModelException(
                    $"{path}: is {FileKinds.Describe(kind)}; onnxopt writes regular files, character devices and "
                    + "FIFOs");
        }
        var full = Path.GetFullPath(path);
        if (FileKinds.Of(full, followLinks: false) == FileKind.Link)
            full = new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName ?? full;
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new OnnxModelException($"{path}: folder '{dir}' does not exist");
        return new OutputTarget(full, false);
    }

    public static void Write(string path, Action<Stream> write)
    {
        var target = Resolve(path);
        if (target.Direct)
        {
            using var direct = new FileStream(target.Path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
            write(direct);
            return;
        }
        var temp = TempFiles.Create(Path.GetDirectoryName(target.Path)!, Path.GetFileName(target.Path));
        try
        {
            using (var fs = new DurableFileStream(temp))
            {
                write(fs);
                fs.Commit();
            }
            File.Move(temp, target.Path, overwrite: true);
            TempFiles.Release(temp);
        }
        catch
        {
            TempFiles.Discard(temp);
            throw;
        }
    }

    /// <summary>Writes UTF-8 text (no byte order mark) as <paramref name="write"/> produces it, atomically.
    /// </summary>
    public static void WriteText(string path, Action<TextWriter> write) => Write(path, s =>
    {
        using var w = new StreamWriter(s, new UTF8Encoding(false), 1 << 16, leaveOpen: true);
        write(w);
    });

    public static void WriteAllText(string path, string text) =>
        Write(path, s => s.Write(new UTF8Encoding(false).GetBytes(text)));
}

/// <summary>An output's resolved path; <paramref name="Direct"/> when it is a device or FIFO written in place.
/// </summary>
public sealed record OutputTarget(string Path, bool Direct);
