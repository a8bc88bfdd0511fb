// Whether ORT's u8s8 int8 kernels on this CPU can saturate, and so whether int8 weights should use a
// reduced (7-bit) range.
//   On x86 without VNNI, MLAS multiplies uint8 activations by int8 weights with vpmaddubsw, which adds
//   two products into a signed 16-bit lane: 255 * 127 * 2 = 64,770 overflows int16 (max 32,767) and the
//   sum saturates, so the int8 kernels answer differently from the QDQ model's math (tens of
//   quantization steps on ordinary convs, measured). With weights in [-63, 63] the pair sum stays
//   within 255 * 63 * 2 = 32,130. VNNI (vpdpbusd) accumulates in 32 bits and ARM has no such pair
//   step, so there full-range weights are exact. This is ONNX Runtime's own `reduce_range` advice.
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace OnnxOpt.Passes;

public static class Int8Hardware
{
    private static readonly Lazy<(bool Saturates, string Why)> Probe = new(Detect);

    /// <summary>True on x86 CPUs without VNNI, where uint8 x int8 pair sums saturate 16 bits.</summary>
    public static bool U8S8Saturates => Probe.Value.Saturates;

    /// <summary>What was found, for reports ("x64 with AVX2, no VNNI", ...).</summary>
    public static string Description => Probe.Value.Why;

    private static (bool, string) Detect()
    {
        var arch = RuntimeInformation.ProcessArchitecture;
        if (arch is not (Architecture.X64 or Architecture.X86)) return (false,
            $"{arch}: no 16-bit pair sums in int8 kernels");
        if (AvxVnni.IsSupported) return (false, "x64 with AVX-VNNI");
        if (CpuFlags().Contains("avx512_vnni")) return (false, "x64 with AVX-512 VNNI");
        return (true, Avx2.IsSupported ? "x64 with AVX2, no VNNI" : "x64 without VNNI");
    }

    private static HashSet<string> CpuFlags()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/cpuinfo"))
                if (line.StartsWith("flags", StringComparison.Ordinal) && line.IndexOf(':') is var i and > 0)
                    return line[(i + 1)..].Split(' ', StringSplitOptions.RemoveEmptyEntries).ToHashSet(StringComparer.Ordinal);
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return [];
    }
}
