#!/usr/bin/python3
# The nets mirror testmodels/train_digits.py with BatchNorm folded away (convs with bias), which is what
# onnxopt trains after fold-bn; that script trains on import, so they are restated here.
"""PyTorch float32 reference for `onnxopt-bench train-speed`: distillation steps per second (KL on logits
against cached teacher logits, Adam, all weights) on the same nets with BatchNorm folded (convs with bias),
the same batches, 2 threads; `vit` is the test ViT of testmodels/transformers/make_transformers.py. Run with
Debian's python3-torch (and python3-torchvision for ResNet-18):
    /usr/bin/python3 bench/train_speed.py [--steps 50] [--batch 64] [--big-batch 8] [--big-steps 5] [--warmup 100]
"""
import argparse, time
import torch
import torch.nn as nn
import torch.nn.functional as F

def conv(cin, cout, k=3, s=1, groups=1, act="relu"):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=True)]
    if act == "relu": layers.append(nn.ReLU())
    elif act == "relu6": layers.append(nn.ReLU6())
    return nn.Sequential(*layers)

class Vgg(nn.Module):
    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(conv(1, 16), conv(16, 16), nn.MaxPool2d(2), conv(16, 32), conv(32, 32),
                                      nn.MaxPool2d(2), conv(32, 64), conv(64, 64))
        self.fc = nn.Linear(64, 10)
    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))

class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = conv(cin, cout, 3, stride); self.c2 = conv(cout, cout, 3, 1, act=None)
        self.short = None if stride == 1 and cin == cout else conv(cin, cout, 1, stride, act=None)
    def forward(self, x):
        return F.relu(self.c2(self.c1(x)) + (x if self.short is None else self.short(x)))

class ResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv(1, 16)
        self.blocks = nn.Sequential(Block(16, 16, 1), Block(16, 32, 2), Block(32, 32, 1), Block(32, 64, 2))
        self.fc = nn.Linear(64, 10)
    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))

class Inverted(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hid = cin * expand
        self.res = stride == 1 and cin == cout
        self.body = nn.Sequential(conv(cin, hid, 1, act="relu6"), conv(hid, hid, 3, stride, groups=hid, act="relu6"),
                                  conv(hid, cout, 1, act=None))
    def forward(self, x):
        return x + self.body(x) if self.res else self.body(x)

class MobileNetV2(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = conv(1, 16, act="relu6")
        self.blocks = nn.Sequential(Inverted(16, 16, 1, 1), Inverted(16, 24, 2, 6), Inverted(24, 24, 1, 6),
                                    Inverted(24, 32, 2, 6), Inverted(32, 32, 1, 6))
        self.head = conv(32, 64, 1, act="relu6")
        self.fc = nn.Linear(64, 10)
    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.head(self.blocks(self.stem(x))), 1), 1))

def mlp():
    return nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))

def resnet18():
    import torchvision
    m = torchvision.models.resnet18(num_classes=1000)
    def strip(mod):  # BatchNorm folded: convs with bias, no BN
        for name, child in mod.named_children():
            if isinstance(child, nn.BatchNorm2d): setattr(mod, name, nn.Identity())
            elif isinstance(child, nn.Conv2d) and child.bias is None:
                setattr(mod, name, nn.Conv2d(child.in_channels, child.out_channels, child.kernel_size, child.stride,
                                             child.padding, bias=True))
            else: strip(child)
    strip(m)
    return m

def vit():
    # The test ViT (testmodels/transformers/make_transformers.py: 3 pre-norm blocks, 64 wide, 4 heads, Erf GELU).
    import os, sys
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testmodels")
    sys.path[:0] = [here, os.path.join(here, "transformers")]
    from make_transformers import ViT
    torch.set_num_threads(2)
    return ViT()

def bench(name, model, shape, batch, steps, warmup, T=4.0):
    torch.manual_seed(0)
    x = torch.randn(batch * 2, *shape)
    with torch.no_grad(): teacher = model(x).detach()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    def step(i):
        lo = (i * batch) % (2 * batch)
        xb, tb = x[lo:lo + batch], teacher[lo:lo + batch]
        opt.zero_grad()
        s = model(xb)
        loss = F.kl_div(F.log_softmax(s / T, 1), F.softmax(tb / T, 1), reduction="batchmean") * T * T
        loss.backward(); opt.step()
    for i in range(warmup): step(i)
    t0 = time.perf_counter()
    for i in range(steps): step(i)
    dt = time.perf_counter() - t0
    print(f"{name:<12} batch {batch:3d}: {steps / dt:8.2f} steps/s  ({1000 * dt / steps:8.1f} ms/step)")

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=50); ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--big-batch", type=int, default=8); ap.add_argument("--big-steps", type=int, default=5)
    ap.add_argument("--models", default="vgg,resnet,mobilenetv2,mlp,resnet18")
    ap.add_argument("--warmup", type=int, default=100)
    a = ap.parse_args()
    torch.set_num_threads(2)
    print(f"PyTorch {torch.__version__} float32, {torch.get_num_threads()} threads")
    nets = {"vgg": (Vgg, (1, 16, 16)), "resnet": (ResNet, (1, 16, 16)), "mobilenetv2": (MobileNetV2, (1, 16, 16)),
            "mlp": (mlp, (64,)), "resnet18": (resnet18, (3, 224, 224)), "vit": (vit, (1, 16, 16))}
    for n in a.models.split(","):
        ctor, shape = nets[n]
        big = n == "resnet18"
        bench(n, ctor(), shape, a.big_batch if big else a.batch, a.big_steps if big else a.steps, 1 if big else a.warmup)
