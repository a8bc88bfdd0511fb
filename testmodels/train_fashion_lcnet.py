#!/usr/bin/python3
"""A PP-LCNet/MobileNetV3-style net trained on Fashion-MNIST, with the problem real pretrained mobile nets bring to
int8: depthwise channels whose ranges differ by orders of magnitude after BatchNorm folding (issue 35).

Run with Debian's packages (python3-torch python3-onnx python3-numpy, dataset-fashion-mnist):
    /usr/bin/python3 testmodels/train_fashion_lcnet.py
Net: stem conv 3x3/2 + BN + hard-swish, four depthwise-separable blocks (depthwise 3x3 + BN + act, pointwise 1x1 +
BN + hard-swish; act is ReLU in blocks 1 and 3, hard-swish in 2 and 4, as MobileNetV3 mixes them), global average
pool, linear classifier. Trained 4 epochs on the training split (less the calibration and held-out samples).
The problem, made explicitly: training on 28x28 images does not leave the spread pretrained ImageNet nets have, so
after training each ReLU block's depthwise BatchNorm gets gamma_c / s_c, beta_c / s_c and the pointwise conv's input
channel c gets s_c, s_c log-uniform in [1/30, 30] (seeded). ReLU(z / s) = ReLU(z) / s, so the function is unchanged
(checked below), but the depthwise outputs now span ranges 900x apart, and per-tensor uint8 activations lose the
small ones: what cross-layer equalization undoes.
Outputs (committed): testmodels/fashion/lcnet.onnx, fashion/data/{calib,heldout,test}/{input,labels}.npy (200, 500
and the first 1,000 test images), fashion/manifest.json. Deterministic: fixed seeds, one thread.
"""
import json, os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from fashion_data import OUT, x_train, y_train, x_calib, y_calib, x_heldout, y_heldout, x_test_all, y_test_all
from fashion_data import to_cnn, sha256, train, accuracy

torch.manual_seed(0)
np.random.seed(0)
torch.set_num_threads(1)

def conv_bn(cin, cout, k, s, groups, act):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=False), nn.BatchNorm2d(cout)]
    layers.append(nn.ReLU() if act == "relu" else nn.Hardswish())
    return nn.Sequential(*layers)

class LcNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv_bn(1, 16, 3, 2, 1, "hswish")                      # 14x14
        cfg = [(16, 32, 1, "relu"), (32, 64, 2, "hswish"), (64, 64, 1, "relu"), (64, 128, 2, "hswish")]
        self.blocks = nn.ModuleList()
        for cin, cout, s, act in cfg:
            self.blocks.append(nn.Sequential(conv_bn(cin, cin, 3, s, cin, act), conv_bn(cin, cout, 1, 1, 1, "hswish")))
        self.fc = nn.Linear(128, 10)
    def forward(self, x):
        x = self.stem(x)
        for b in self.blocks: x = b(x)
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))

def save(folder, xs, ys):
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, "input.npy"), to_cnn(xs).numpy().astype(np.float32))
    np.save(os.path.join(folder, "labels.npy"), ys.astype(np.int64))

def spread(model, rng):
    """The function-preserving rescale of the header, on every ReLU block."""
    with torch.no_grad():
        for block in model.blocks:
            dw, pw = block[0], block[1]
            if not isinstance(dw[2], nn.ReLU): continue
            c = dw[1].weight.shape[0]
            s = torch.from_numpy(np.exp(rng.uniform(np.log(1 / 30), np.log(30), c)).astype(np.float32))
            dw[1].weight /= s
            dw[1].bias /= s
            pw[0].weight *= s.view(1, c, 1, 1)

manifest = {"source": "testmodels/train_fashion_lcnet.py", "torch": torch.__version__,
            "dataset": "Fashion-MNIST (Debian dataset-fashion-mnist); calibration 200 and held-out 500 from the "
                       "training split, never trained on; test: the first 1,000 of the test split", "models": []}
data = os.path.join(OUT, "data")
save(os.path.join(data, "calib"), x_calib, y_calib)
save(os.path.join(data, "heldout"), x_heldout, y_heldout)
save(os.path.join(data, "test"), x_test_all[:1000], y_test_all[:1000])

model = LcNet()
xt, yt = to_cnn(x_train), torch.from_numpy(y_train)
train(model, xt, yt, 4)
xs, ys = to_cnn(x_test_all), torch.from_numpy(y_test_all)
with torch.no_grad():
    before = model(xs[:1000])
spread(model, np.random.RandomState(7))
with torch.no_grad():
    after = model(xs[:1000])
assert torch.allclose(before, after, rtol=1e-4, atol=1e-4), float((before - after).abs().max())
acc = accuracy(model, xs, ys)
path = os.path.join(OUT, "lcnet.onnx")
torch.onnx.export(model, xs[:1], path, input_names=["input"], output_names=["logits"], opset_version=13,
                  dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, training=torch.onnx.TrainingMode.PRESERVE,
                  do_constant_folding=False)
params = sum(p.numel() for p in model.parameters())
manifest["models"].append({"name": "lcnet", "file": "fashion/lcnet.onnx", "data": "fashion/data", "parameters": params,
                           "bytes": os.path.getsize(path), "test_accuracy": round(acc, 4), "epochs": 4,
                           "sha256": sha256(path)})
print(f"lcnet: params {params}, test accuracy {acc:.4f} (10,000 test images), {os.path.getsize(path)} bytes")
with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=2)
    f.write("\n")
