// .npy (v1/v2/v3 headers, every supported dtype) and TensorProto .pb files.
using System.Text;
using OnnxOpt.GraphIR;
using OnnxOpt.Data;

namespace OnnxOpt.Tests;

public class TensorFileTests
{
    public static TheoryData<DataType> Types() => new(DataType.Float, DataType.Double, DataType.Float16, DataType.Int8,
        DataType.UInt8, DataType.Int16, DataType.UInt16, DataType.Int32, DataType.UInt32, DataType.Int64, DataType.UInt64, DataType.Bool);

    [Theory]
    [MemberData(nameof(Types))]
    public void NpyRoundTripsEveryDtype(DataType t)
    {
        var bytes = Enumerable.Range(0, (int)t.ByteCount(12)).Select(i => (byte)(t == DataType.Bool ? i % 2 : i * 13)).ToArray();
        var x = new Tensor("x", t, [3, 4], bytes);
        var file = Npy.Serialize(x);
        Assert.Equal(0, (file.Length - bytes.Length) % 64); // header padded to 64 bytes
        var back = Npy.Parse(file, "x");
        Assert.Equal(t, back.ElementType);
        Assert.Equal(new long[] { 3, 4 }, back.Dims);
        Assert.Equal(bytes, back.RawData.ToArray());
    }

    private static byte[] Handmade(int major, string dict, byte[] data)
    {
        var header = Encoding.UTF8.GetBytes(dict + "\n");
        var pre = major == 1 ? 10 : 12;
        var o = new List<byte> { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', (byte)major, 0 };
        if (major == 1) o.AddRange(BitConverter.GetBytes((ushort)header.Length));
        else o.AddRange(BitConverter.GetBytes((uint)header.Length));
        o.AddRange(header);
        o.AddRange(data);
        Assert.Equal(pre + header.Length + data.Length, o.Count);
        return o.ToArray();
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void ReadsEveryHeaderVersion(int major)
    {
        var data = BitConverter.GetBytes(1.5f).Concat(BitConverter.GetBytes(-2f)).ToArray();
        var t = Npy.Parse(Handmade(major, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", data), "v");
        Assert.Equal(new[] { 1.5f, -2f }, t.ToFloatArray());
    }

    [Fact]
    public void ReadsNumpyWrittenFiles()
    {
        var t = Npy.Read(Path.Combine(Paths.TestModels, "digits/data/test/input.npy"));
        Assert.Equal(new long[] { 500, 1, 16, 16 }, t.Dims);
        var labels = Npy.Read(Path.Combine(Paths.TestModels, "digits/data/test/labels.npy"));
        Assert.Equal(DataType.Int64, labels.ElementType);
        Assert.All(labels.ToInt64Array(), l => Assert.InRange(l, 0, 9));
    }

    [Theory]
    [InlineData("{'descr': '>f4', 'fortran_order': False, 'shape': (1,), }", "big-endian")]
    [InlineData("{'descr': '<f4', 'fortran_order': True, 'shape': (1,), }", "Fortran")]
    [InlineData("{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", "not supported")]
    [InlineData("{'descr': '<f4', 'fortran_order': False, 'shape': (9,), }", "needs 36")]
    public void RefusesWhatItCannotRead(string dict, string why)
    {
        var e = Assert.Throws<OnnxModelException>(() => Npy.Parse(Handmade(1, dict, new byte[4]), "bad", "bad.npy"));
        Assert.Contains(why, e.Message);
        Assert.Contains("bad.npy", e.Message);
    }

    [OnnxTestDataFact]
    public void ReadsBackendTestPbFiles()
    {
        var dir = Path.Combine(Paths.OnnxTestData, "node/test_conv_with_strides_padding/test_data_set_0");
        var x = OnnxImporter.ParseTensor(File.ReadAllBytes(Path.Combine(dir, "input_0.pb")));
        Assert.Equal(new long[] { 1, 1, 7, 5 }, x.Dims);
        var again = OnnxImporter.ParseTensor(OnnxExporter.TensorToBytes(x));
        Assert.True(x.ContentEquals(again));
    }
}
