// Writes files so that a reader never sees a half-written one and a failure never destroys the
// previous file: write a temporary file in the same folder, flush it to disk (DurableFileStream), then rename
// over the target.
using System.Text;

namespace OnnxOpt.GraphIR;

public static class AtomicFile
{
    public static void Write(string path, Action<Stream> write)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new OnnxModelException($"{path}: folder '{dir}' does not exist");
        var temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.tmp");
        try
        {
            using (var fs = new DurableFileStream(temp))
            {
                write(fs);
                fs.Commit();
            }
            File.Move(temp, full, overwrite: true);
        }
        catch
        {
            if (File.Exists(temp)) File.Delete(temp);
            throw;
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, s => s.Write(new UTF8Encoding(false).GetBytes(text)));
}
