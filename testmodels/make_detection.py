#!/usr/bin/python3
"""Trains a small text-detection-style net (DBNet-like: a conv backbone with HardSwish gates written as
x * clip(x + 3, 0, 6) / 6, an upsampling neck with a Concat, and a sigmoid probability-map head) on a
synthetic task: find the bright horizontal strokes ("text lines") in a noisy 64x64 image. onnxopt's int8
tests and figures use it: the element-wise gates, the shared-scale Concat and the sigmoid head are where
int8 error enters such models.

Run with Debian's packages (python3-torch python3-onnx python3-numpy):
    /usr/bin/python3 testmodels/make_detection.py
Outputs (committed): testmodels/detection/textdet.onnx, data/{calib,test}/input.npy (no labels: the
budget is measured as agreement with fp32), manifest.json. Deterministic: fixed seeds, one thread.
"""
import json, os, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from digits_data import HERE, sha256

torch.manual_seed(0)
torch.set_num_threads(2)
OUT = os.path.join(HERE, "detection")
S = 64

def sample(rng, n):
    """Images with 1-4 bright strokes of random length/thickness on textured noise; masks of the strokes."""
    x = rng.normal(0.0, 0.25, (n, 3, S, S)).astype(np.float32)
    x += 0.3 * np.sin(np.linspace(0, rng.uniform(2, 9), S))[None, None, None, :].astype(np.float32)
    m = np.zeros((n, 1, S, S), np.float32)
    for i in range(n):
        for _ in range(rng.integers(1, 5)):
            h, w = rng.integers(3, 8), rng.integers(10, 40)
            r, c = rng.integers(0, S - h), rng.integers(0, S - w)
            x[i, :, r:r + h, c:c + w] += rng.uniform(0.8, 1.6) * rng.uniform(0.6, 1.0, (3, 1, 1))
            m[i, 0, r + 1:r + h - 1, c + 2:c + w - 2] = 1
    return x, m

class HSwish(nn.Module):
    def forward(self, x):
        return x * torch.clamp(x + 3, 0, 6) / 6

def cbh(cin, cout, s=1):
    return nn.Sequential(nn.Conv2d(cin, cout, 3, s, 1, bias=False), nn.BatchNorm2d(cout), HSwish())

class TextDet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = cbh(3, 16, 2)                            # 32
        self.b1 = nn.Sequential(cbh(16, 48, 2), cbh(48, 48))  # 16
        self.b2 = nn.Sequential(cbh(48, 96, 2), cbh(96, 96))  # 8
        self.neck = cbh(144, 48)
        self.head = nn.Sequential(cbh(48, 24), nn.Conv2d(24, 1, 1))
    def forward(self, x):
        f1 = self.b1(self.stem(x))
        f2 = self.b2(f1)
        up = F.interpolate(f2, scale_factor=2.0, mode="nearest")
        h = self.neck(torch.cat([up, f1], 1))
        logits = F.interpolate(self.head(h), scale_factor=4.0, mode="bilinear", align_corners=False)
        return torch.sigmoid(logits)

rng = np.random.default_rng(0)
xt, mt = sample(rng, 2000)
xc, _ = sample(rng, 48)
xe, me = sample(rng, 48)
model = TextDet()
opt = torch.optim.Adam(model.parameters(), lr=3e-3)
epochs = 12
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
g = torch.Generator().manual_seed(1)
X, M = torch.from_numpy(xt), torch.from_numpy(mt)
for ep in range(epochs):
    model.train()
    idx = torch.randperm(len(X), generator=g)
    for i in range(0, len(X), 32):
        b = idx[i:i + 32]
        opt.zero_grad()
        F.binary_cross_entropy(model(X[b]), M[b]).backward()
        opt.step()
    sched.step()
model.eval()
with torch.no_grad():
    p = model(torch.from_numpy(xe)).numpy()
pred, truth = p > 0.3, me > 0.5
iou = float((pred & truth).sum() / max(1, (pred | truth).sum()))
print(f"held-out mask IoU at 0.3: {iou:.3f}")
os.makedirs(OUT, exist_ok=True)
path = os.path.join(OUT, "textdet.onnx")
torch.onnx.export(model, torch.from_numpy(xe[:1]), path, input_names=["input"], output_names=["prob"],
                  opset_version=13, dynamic_axes={"input": {0: "N"}, "prob": {0: "N"}}, do_constant_folding=True)
for split, arr in (("calib", xc), ("test", xe)):
    os.makedirs(os.path.join(OUT, "data", split), exist_ok=True)
    np.save(os.path.join(OUT, "data", split, "input.npy"), arr)
np.save(os.path.join(OUT, "data", "test_masks.npy"), me.astype(np.uint8))
manifest = {"source": "testmodels/make_detection.py", "torch": torch.__version__, "input": [1, 3, S, S],
            "test_mask_iou_at_0.3": round(iou, 4), "bytes": os.path.getsize(path), "sha256": sha256(path)}
with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=2)
    f.write("\n")
