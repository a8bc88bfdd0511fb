// What a path names on disk: a regular file, a folder, a device, a FIFO, a socket, a link, or nothing. .NET's
// FileInfo reports a FIFO and /dev/null as ordinary empty files, so outputs and inputs that must be regular
// files ask the kernel: statx(2), whose struct layout is the same on every Linux architecture (stx_mode, a
// u16 at byte 28). Elsewhere (or if statx is missing) existing paths read as Regular or Directory, as before.
using System.Runtime.InteropServices;

namespace OnnxOpt.GraphIR;

public enum FileKind { Missing, Regular, Directory, CharDevice, BlockDevice, Fifo, Socket, Link }

public static partial class FileKinds
{
    private const int AtFdCwd = -100, AtSymlinkNoFollow = 0x100;
    private const uint StatxType = 1;
    private static bool _statx = OperatingSystem.IsLinux();

    /// <summary>The kind of file <paramref name="path"/> names; a link is followed unless
    /// <paramref name="followLinks"/> is false (then Link is returned for it).</summary>
    public static FileKind Of(string path, bool followLinks = true)
    {
        if (_statx)
        {
            var buf = new byte[256];
            try
            {
                if (Statx(AtFdCwd, path, followLinks ? 0 : AtSymlinkNoFollow, StatxType, buf) != 0)
                    return FileKind.Missing;
                return (BitConverter.ToUInt16(buf, 28) & 0xF000) switch
                {
                    0x8000 => FileKind.Regular,
                    0x4000 => FileKind.Directory,
                    0x2000 => FileKind.CharDevice,
                    0x6000 => FileKind.BlockDevice,
                    0x1000 => FileKind.Fifo,
                    0xC000 => FileKind.Socket,
                    _ => FileKind.Link,
                };
            }
            catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException) { _statx = false; }
        }
        var info = new FileInfo(path);
        if (!followLinks && info.LinkTarget is not null) return FileKind.Link;
        if (Directory.Exists(path)) return FileKind.Directory;
        return File.Exists(path) ? FileKind.Regular : FileKind.Missing;
    }

    /// <summary>"a FIFO", "a character device", ... for messages.</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Missing => "missing",
        FileKind.Regular => "a regular file",
        FileKind.Directory => "a folder",
        FileKind.CharDevice => "a character device",
        FileKind.BlockDevice => "a block device",
        FileKind.Fifo => "a FIFO",
        FileKind.Socket => "a socket",
        _ => "a link",
    };

    /// <summary>Throws unless <paramref name="path"/> is a regular file (through links): reading a FIFO or a
    /// device would block or never end.</summary>
    public static void RequireRegular(string path, string what)
    {
        var kind = Of(path);
        if (kind == FileKind.Missing) throw new OnnxModelException($"{path}: {what} not found");
        if (kind != FileKind.Regular)
            throw new OnnxModelException($"{path}: {what} is {Describe(kind)}; onnxopt reads only regular files");
    }

    /// <summary>The bytes of a regular file, refusing FIFOs and devices (which may never end) and files larger
    /// than <paramref name="maxBytes"/>.</summary>
    public static byte[] ReadAllBytes(string path, string what, long maxBytes = long.MaxValue)
    {
        RequireRegular(path, what);
        var length = new FileInfo(path).Length;
        if (length > maxBytes)
            throw new OnnxModelException(
                $"{path}: {what} of {length:N0} bytes is larger than the {maxBytes:N0} this reads");
        if (length > Array.MaxLength)
            throw new OnnxModelException($"{path}: {what} of {length:N0} bytes is larger than one array can hold");
        try { return File.ReadAllBytes(path); }
        catch (IOException e) { throw new OnnxModelException($"{path}: cannot read: {e.Message}"); }
    }

    /// <summary>A regular file's text (UTF-8), at most <paramref name="maxBytes"/> long.</summary>
    public static string ReadAllText(string path, string what, long maxBytes = long.MaxValue) =>
        new System.Text.UTF8Encoding(false).GetString(ReadAllBytes(path, what, maxBytes));

    /// <summary>The path with every link resolved, component by component (realpath(3)): a folder that is a link
    /// to elsewhere is seen for where it leads, not only a final component that is.</summary>
    public static string RealPath(string path) => RealPath(Path.GetFullPath(path), 0);

    private static string RealPath(string full, int depth)
    {
        if (depth > 40) throw new OnnxModelException($"{full}: too many levels of links");
        var root = Path.GetPathRoot(full)!;
        var parts = full[root.Length..].Split(Path.DirectorySeparatorChar, StringSplitOptions.RemoveEmptyEntries);
        var current = root;
        for (int i = 0; i < parts.Length; i++)
        {
            current = Path.Combine(current, parts[i]);
            if (Of(current, followLinks: false) != FileKind.Link) continue;
            var target = new FileInfo(current).LinkTarget;
            if (target is null) continue;
            var resolved = Path.GetFullPath(target, Path.GetDirectoryName(current)!);
            current = RealPath(resolved, depth + 1);
        }
        return current;
    }

    [LibraryImport("libc", EntryPoint = "statx", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Statx(int dirfd, string path, int flags, uint mask, byte[] buffer);
}
