// A small builder for tests and passes: declare inputs, initializers and nodes by name, get a
// verified Model. Names of node outputs default to fresh "<op>_<k>" names.
//   var b = new GraphBuilder("net");
//   var x = b.Input("x", DataType.Float, "N", 3, 8, 8);
//   var y = b.Node("Relu", [x]);
//   b.Output(y);
//   Model m = b.Build();
namespace OnnxOpt.GraphIR;

public sealed class GraphBuilder
{
    private readonly Model _model;
    private readonly Dictionary<string, int> _counters = new(StringComparer.Ordinal);

    public GraphBuilder(string name = "main", long opset = 13, long irVersion = 8)
    {
        _model = new Model();
        _model.IrVersion = irVersion;
        _model.ProducerName = "onnxopt";
        _model.OpsetImports.Add(new OpsetImport("", opset));
        _model.Graph = new Graph(name);
    }

    private GraphBuilder(Model model) { _model = model; }

    /// <summary>A builder that adds to an existing model's main graph (fresh names avoid its own).</summary>
    public static GraphBuilder Over(Model model) => new(model);

    public Graph Graph => _model.Graph;

    /// <summary>A graph input; dims are longs (static) or strings (symbolic).</summary>
    public Value Input(string name, DataType type, params object[] dims) =>
        Graph.AddInput(name, OnnxType.Tensor(type, ToShape(dims)));

    public static Shape ToShape(object[] dims) => new(dims.Select(d => d switch
    {
        string s => Dim.Symbol(s),
        int i => Dim.Of(i),
        long l => Dim.Of(l),
        _ => throw new ArgumentException($"dimension {d} must be an int, long or string"),
    }));

    public Value Initializer(Tensor t) => Graph.AddInitializer(t);

    public Value Initializer(string name, float[] data, params long[] dims) =>
        Graph.AddInitializer(Tensor.FromFloats(name, dims, data));

    public Value Initializer(string name, long[] data, params long[] dims) =>
        Graph.AddInitializer(Tensor.FromInt64s(name, dims, data));

    /// <summary>Adds a node with one output and returns that output.</summary>
    public Value Node(string opType, IEnumerable<Value?> inputs, params OnnxAttribute[] attrs) =>
        NodeMulti(opType, inputs, 1, attrs)[0];

    public Value[] NodeMulti(string opType, IEnumerable<Value?> inputs, int outputs, params OnnxAttribute[] attrs)
    {
        var k = _counters.GetValueOrDefault(opType);
        _counters[opType] = k + 1;
        var baseName = $"{opType.ToLowerInvariant()}{k}";
        var names = Enumerable.Range(0,
            outputs).Select(i => Graph.FreshName(outputs == 1 ? baseName : $"{baseName}_{i}")).ToArray();
        var n = Graph.AddNode(opType, inputs, names, name: Graph.FreshName($"{opType}_{k}"));
        n.Attributes.AddRange(attrs);
        return n.Outputs.Select(o => o!).ToArray();
    }

    /// <summary>Adds a node with explicit output names.</summary>
    public Node NamedNode(string opType, IEnumerable<Value?> inputs, string[] outputs, params OnnxAttribute[] attrs)
    {
        var n = Graph.AddNode(opType, inputs, outputs);
        n.Attributes.AddRange(attrs);
        return n;
    }

    public void Output(Value v, OnnxType? type = null)
    {
        if (type is not null) v.Type = type;
        Graph.AddOutput(v);
    }

    public Model Build(bool inferShapes = true)
    {
        if (inferShapes) ShapeInference.Run(_model);
        Verifier.Verify(_model);
        return _model;
    }
}
