#!/usr/bin/python3
"""Large-model I/O, onnxopt next to Python's onnx package (C++ protobuf), on the same machine:
  vgg16     torchvision's VGG-16 (553 MB, weights inline), exported by torch
  big2.5g   a synthetic 2.5 GB model (ten 256 MB MatMul weights, external data: past protobuf's 2 GB limit)
For each: load + save time and peak resident memory (/usr/bin/time -v) of
  python onnx   onnx.load(...) then onnx.save(...) (external data for the 2.5 GB one)
  onnxopt       onnxopt convert IN -o OUT, onnxopt inspect IN, and the exact
                onnxopt optimize IN -o OUT --passes canonicalize,fuse-bias, without and with --validate
Run: /usr/bin/python3 bench/large_models.py [WORKDIR]   (default /tmp/onnxopt-large; needs ~9 GB of disk)
"""
import os, re, subprocess, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORK = sys.argv[1] if len(sys.argv) > 1 else "/tmp/onnxopt-large"
os.makedirs(WORK, exist_ok=True)
ONNXOPT = ["dotnet", os.path.join(ROOT, "src/OnnxOpt/bin/Release/net10.0/onnxopt.dll")]

def build_vgg16(path):
    import torch, torchvision
    m = torchvision.models.vgg16().eval()
    torch.onnx.export(m, torch.randn(1, 3, 224, 224), path, opset_version=13, input_names=["input"],
                      output_names=["logits"], dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})

def build_big(path, layers=10, n=8192):
    """x[N, n] -> MatMul(W_k[n, n]) ten times; each W is 256 MB, stored as external data."""
    rng = np.random.default_rng(0)
    nodes, inits, prev = [], [], "x"
    for k in range(layers):
        w = rng.standard_normal((n, n), dtype=np.float32) * (1.0 / np.sqrt(n))
        inits.append(numpy_helper.from_array(w, f"w{k}"))
        nodes.append(helper.make_node("MatMul", [prev, f"w{k}"], [f"h{k}"]))
        prev = f"h{k}"
    g = helper.make_graph(nodes, "big", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", n])],
                          [helper.make_tensor_value_info(prev, TensorProto.FLOAT, ["N", n])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, path, save_as_external_data=True, all_tensors_to_one_file=True, location=os.path.basename(path) + ".data")

def timed(cmd):
    r = subprocess.run(["/usr/bin/time", "-v"] + cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{r.stderr[-2000:]}")
    wall = re.search(r"Elapsed \(wall clock\) time.*: (?:(\d+):)?(\d+):([\d.]+)", r.stderr)
    secs = (int(wall.group(1) or 0) * 3600 + int(wall.group(2)) * 60 + float(wall.group(3)))
    peak = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1)) * 1024
    return secs, peak

PY_SAVE = ("import onnx,sys; m=onnx.load(sys.argv[1]); "
           "onnx.save(m, sys.argv[2], save_as_external_data=sys.argv[3]=='1', all_tensors_to_one_file=True, "
           "location=__import__('os').path.basename(sys.argv[2])+'.data')")

for name, build, external in (("vgg16", build_vgg16, False), ("big2.5g", build_big, True)):
    src = os.path.join(WORK, name + ".onnx")
    if not os.path.exists(src):
        build(src)
    size = os.path.getsize(src) + (os.path.getsize(src + ".data") if external else 0)
    print(f"{name}: {size / 2**20:,.0f} MB")
    rows = [("python onnx load+save", ["/usr/bin/python3", "-c", PY_SAVE, src, os.path.join(WORK, name + ".py.onnx"),
                                      "1" if external else "0"]),
            ("onnxopt convert", ONNXOPT + ["convert", src, "-o", os.path.join(WORK, name + ".cs.onnx")]),
            ("onnxopt inspect", ONNXOPT + ["inspect", src])]
    opt = ONNXOPT + ["optimize", src, "-o", os.path.join(WORK, name + ".opt.onnx"), "--passes", "canonicalize,fuse-bias"]
    rows += [("onnxopt optimize", opt), ("onnxopt optimize --validate", opt + ["--validate"])]
    for label, cmd in rows:
        best = min((timed(cmd) for _ in range(5)), key=lambda t: t[0])
        print(f"  {label:24s} {best[0]:6.2f} s   peak {best[1] / 2**20:7,.0f} MB ({best[1] / size:.2f}x the model)")
