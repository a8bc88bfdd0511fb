// A decision a pass records for the report (PassStats.Decide): one typed record per kind, declared by the pass
// that makes it (onnxopt's own in OnnxOpt.Passes' Reports/Decisions.cs); reports serialize them.
namespace OnnxOpt.Passes;

/// <summary>A decision of a pass, for the report.</summary>
public abstract record Decision;
