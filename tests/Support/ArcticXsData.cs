// Data for the arctic-embed-xs encoder (ArcticXs.cs): sentences of three licence texts Debian ships (GPL-2,
// LGPL-2.1, Artistic) for calibration and of three others (Apache-2.0, MPL-2.0, GFDL-1.3) held out, tokenized by our
// WordPieceTokenizer. (Not compiled into GraphIR.Tests, which does not reference the Data library.)
using OnnxOpt.Data;

namespace OnnxOpt.Tests;

public static partial class ArcticXs
{
    public static readonly string[] CalibrationTexts = ["GPL-2", "LGPL-2.1", "Artistic"];
    public static readonly string[] HeldOutTexts = ["Apache-2.0", "MPL-2.0", "GFDL-1.3"];

    /// <summary>A data folder of up to <paramref name="count"/> tokenized sentences at <paramref name="sequence"/>
    /// tokens (made once).</summary>
    public static string Data(int sequence, int count, bool heldOut = false)
    {
        var dir = Path.Combine(CacheDir, $"{(heldOut ? "eval" : "calib")}-{sequence}-{count}");
        lock (Gate)
        {
            if (File.Exists(Path.Combine(dir, "token_type_ids.npy"))) return dir;
            var tok = WordPieceTokenizer.FromFile(Vocab);
            var sentences = (heldOut ? HeldOutTexts : CalibrationTexts)
                .SelectMany(t => WordPieceTokenizer.Sentences(File.ReadAllText(Path.Combine("/usr/share/common-licenses", t))))
                .Take(count).ToList();
            var tmp = dir + ".tmp" + Environment.ProcessId;
            tok.WriteDataFolder(sentences, sequence, tmp);
            if (Directory.Exists(dir)) Directory.Delete(tmp, true);
            else Directory.Move(tmp, dir);
            return dir;
        }
    }
}
