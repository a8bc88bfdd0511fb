#!/usr/bin/python3
"""Trains a small digits CNN written the way older exporters see networks (Upsample, Pad, Slice, Clip,
Concat, ReduceMean) and exports it at opset 9 and at opset 11 with every weight in a Constant node, as
Paddle2ONNX and older exporters write them; onnxopt's opset-conversion tests and figures use them.

Run with Debian's packages (python3-torch python3-onnx python3-numpy python3-sklearn):
    /usr/bin/python3 testmodels/make_old_opset.py
Outputs (committed): testmodels/old_opset/digits_opset{9,11}.onnx and manifest.json. The data is the
digits nets' (testmodels/digits/data). Deterministic: fixed seeds, one thread.
"""
import json, os, sys
import numpy as np
import onnx
from onnx import helper, numpy_helper
import torch
import torch.nn as nn
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from digits_data import HERE, x_train, y_train, x_test, y_test, to_cnn, sha256, train

torch.manual_seed(0)
np.random.seed(0)
torch.set_num_threads(1)
OUT = os.path.join(HERE, "old_opset")

def conv_bn(cin, cout, k=3):
    return nn.Sequential(nn.Conv2d(cin, cout, k, 1, k // 2, bias=False), nn.BatchNorm2d(cout))

class OldStyle(nn.Module):
    def __init__(self):
        super().__init__()
        self.c1, self.c2, self.c3 = conv_bn(1, 16), conv_bn(16, 32), conv_bn(32, 32)
        self.c4 = conv_bn(64, 48)
        self.fc = nn.Linear(48, 10)
    def forward(self, x):
        a = torch.clamp(self.c1(x), 0, 6)                       # Clip (attributes at 9, inputs at 11)
        a = F.max_pool2d(a, 2)                                  # 8x8
        b = F.relu(self.c2(a))
        c = F.relu(self.c3(F.max_pool2d(b, 2)))                 # 4x4
        u = F.interpolate(c, scale_factor=2.0, mode="nearest")  # Upsample at 9, Resize at 11
        h = torch.cat([u, b], 1)                                # 64 x 8x8
        h = F.pad(h, (1, 1, 1, 1))[:, :, 1:-1, 1:-1]            # Pad and Slice, a no-op pair
        h = F.relu(self.c4(h))
        return self.fc(h.mean((2, 3)))                          # ReduceMean

def weights_to_constants(path):
    """Every initializer becomes a Constant node at the top of the graph, as older exporters write them."""
    m = onnx.load(path)
    g = m.graph
    consts = [helper.make_node("Constant", [], [t.name], name=t.name + "_const", value=t) for t in g.initializer]
    inputs = {t.name for t in g.initializer}
    kept = [i for i in g.input if i.name not in inputs]
    del g.input[:]
    g.input.extend(kept)
    del g.initializer[:]
    nodes = consts + list(g.node)
    del g.node[:]
    g.node.extend(nodes)
    onnx.checker.check_model(m)
    onnx.save(m, path)

os.makedirs(OUT, exist_ok=True)
model = OldStyle()
xt, yt = to_cnn(x_train), torch.from_numpy(y_train)
train(model, xt, yt, 30)
with torch.no_grad():
    acc = float((model(to_cnn(x_test)).argmax(1) == torch.from_numpy(y_test)).float().mean())
manifest = {"source": "testmodels/make_old_opset.py", "torch": torch.__version__, "onnx": onnx.__version__,
            "data": "digits/data", "test_accuracy": round(acc, 4), "models": []}
for opset in (9, 11):
    path = os.path.join(OUT, f"digits_opset{opset}.onnx")
    torch.onnx.export(model, to_cnn(x_test[:1]), path, input_names=["input"], output_names=["logits"],
                      opset_version=opset, dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}},
                      do_constant_folding=True)
    weights_to_constants(path)
    ops = sorted({n.op_type for n in onnx.load(path).graph.node})
    manifest["models"].append({"file": f"old_opset/digits_opset{opset}.onnx", "opset": opset, "ops": ops,
                               "bytes": os.path.getsize(path), "sha256": sha256(path)})
    print(f"opset {opset}: {ops}, {os.path.getsize(path)} bytes")
print(f"test accuracy {acc:.4f}")
with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=2)
    f.write("\n")
