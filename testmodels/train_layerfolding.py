#!/usr/bin/python3
"""Trains the MobileNetV2-style digits net the way Layer Folding (Ben Dror et al. 2021, arXiv 2106.09309)
prepares a network for depth reduction, and exports it, so that onnxopt's linearize + fold-conv can be
measured on what that method hands over: a net whose training pushed some activations to linear.

- Every activation is parametric, act_a(x) = a*x + (1-a)*relu(x) = PReLU with slope a (a = 0: ReLU,
  a = 1: identity), one a per activation, starting at 0.
- Loss = cross entropy + lambda * sum_i |1 - a_i^2| (lambda 0.25, as the paper), a clipped to [0, 1].
- After training, activations with a >= 0.9 are set to exactly 1 and frozen, the others to 0 (ReLU),
  and the net is fine-tuned (as the paper does before folding).
The export keeps every activation as a PRelu node with its slope (1 or 0): folding them is onnxopt's job.

Run with Debian's packages (python3-torch python3-onnx python3-numpy python3-sklearn):
    /usr/bin/python3 testmodels/train_layerfolding.py
Output (committed, so tests and CI never need Python): testmodels/digits/mobilenetv2_lf.onnx and its
entry in testmodels/digits/manifest_lf.json. Same data split as train_digits.py (data/calib, data/test).
Deterministic: fixed seeds, one thread.
"""
import json, os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from digits_data import OUT, x_train, y_train, x_test, y_test, to_cnn, sha256

torch.manual_seed(0)
np.random.seed(0)
torch.set_num_threads(1)

class Act(nn.Module):
    """act_a(x) = a*x + (1-a)*relu(x), exported as PRelu(x, a)."""
    def __init__(self):
        super().__init__()
        self.a = nn.Parameter(torch.zeros(1))
    def forward(self, x):
        return F.prelu(x, self.a)

def conv_bn(cin, cout, k=1, s=1, groups=1, act=True):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    if act: layers.append(Act())
    return nn.Sequential(*layers)

class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.body = nn.Sequential(conv_bn(cin, hid, 1), conv_bn(hid, hid, 3, stride, groups=hid), conv_bn(hid, cout, 1, act=False))
    def forward(self, x):
        return x + self.body(x) if self.use_res else self.body(x)

class MobileNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(1, 16, 3)
        self.blocks = nn.Sequential(InvertedResidual(16, 16, 1, 1), InvertedResidual(16, 24, 2, 6), InvertedResidual(24, 24, 1, 6),
                                    InvertedResidual(24, 32, 2, 6), InvertedResidual(32, 32, 1, 6))
        self.head = conv_bn(32, 64, 1)
        self.fc = nn.Linear(64, 10)
    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.head(self.blocks(self.stem(x))), 1), 1))

def acts(model):
    return [m for m in model.modules() if isinstance(m, Act)]

def train(model, xt, yt, epochs, lam, lr=3e-3):
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    g = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        model.train()
        idx = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 64):
            b = idx[i:i + 64]
            opt.zero_grad()
            loss = F.cross_entropy(model(xt[b]), yt[b])
            if lam > 0: loss = loss + lam * sum((1 - a.a ** 2).abs().sum() for a in acts(model))
            loss.backward()
            opt.step()
            with torch.no_grad():
                for a in acts(model): a.a.clamp_(0, 1)
        sched.step()
    model.eval()

def accuracy(model, xt, yt):
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())

torch.manual_seed(0)
model = MobileNetV2()
xt, yt = to_cnn(x_train), torch.from_numpy(y_train)
train(model, xt, yt, 60, lam=0.25)
learned = [float(a.a) for a in acts(model)]
acc_trained = accuracy(model, to_cnn(x_test), torch.from_numpy(y_test))
with torch.no_grad():
    for a in acts(model):
        a.a.fill_(1.0 if float(a.a) >= 0.9 else 0.0)
        a.a.requires_grad_(False)
train(model, xt, yt, 20, lam=0, lr=1e-3)
acc = accuracy(model, to_cnn(x_test), torch.from_numpy(y_test))
linear = sum(1 for a in acts(model) if float(a.a) == 1.0)

path = os.path.join(OUT, "mobilenetv2_lf.onnx")
torch.onnx.export(model, to_cnn(x_test[:1]), path, input_names=["input"], output_names=["logits"], opset_version=13,
                  dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, training=torch.onnx.TrainingMode.PRESERVE,
                  do_constant_folding=True)
digest = sha256(path)
manifest = {"source": "testmodels/train_layerfolding.py", "dataset": "as manifest.json (data/calib, data/test)", "torch": torch.__version__,
            "models": [{"name": "mobilenetv2_lf", "file": "digits/mobilenetv2_lf.onnx", "data": "digits/data",
                        "parameters": sum(p.numel() for p in model.parameters()), "bytes": os.path.getsize(path),
                        "learned_slopes": [round(v, 4) for v in learned], "linear_activations": linear, "activations": len(learned),
                        "test_accuracy_after_training": round(acc_trained, 4), "test_accuracy": round(acc, 4), "sha256": digest}]}
with open(os.path.join(OUT, "manifest_lf.json"), "w") as f:
    json.dump(manifest, f, indent=2)
    f.write("\n")
print(f"mobilenetv2_lf: {linear}/{len(learned)} activations linear, slopes {[round(v, 2) for v in learned]}, "
      f"test accuracy {acc_trained:.4f} after training, {acc:.4f} after snapping + fine-tuning, {os.path.getsize(path)} bytes")
