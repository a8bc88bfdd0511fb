#!/usr/bin/python3
# The nets are testmodels/cnn_nets.py's with bn=False (convs with bias), which is what onnxopt trains after fold-bn.
"""PyTorch float32 reference for `onnxopt-bench train-speed`: distillation steps per second (KL on logits
against cached teacher logits, Adam, all weights) on the same nets with BatchNorm folded (convs with bias),
the same batches, 2 threads; `vit` is the test ViT of testmodels/transformers/make_transformers.py. Run with
Debian's python3-torch (and python3-torchvision for ResNet-18):
    /usr/bin/python3 bench/train_speed.py [--steps 50] [--batch 64] [--big-batch 8] [--big-steps 5] [--warmup 100]
"""
import argparse, os, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testmodels"))
from cnn_nets import Vgg, ResNet, MobileNetV2

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
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "testmodels")
    sys.path[:0] = [os.path.join(here, "transformers")]
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
    nets = {"vgg": (lambda: Vgg(bn=False), (1, 16, 16)), "resnet": (lambda: ResNet(bn=False), (1, 16, 16)),
            "mobilenetv2": (lambda: MobileNetV2(bn=False), (1, 16, 16)),
            "mlp": (mlp, (64,)), "resnet18": (resnet18, (3, 224, 224)), "vit": (vit, (1, 16, 16))}
    for n in a.models.split(","):
        ctor, shape = nets[n]
        big = n == "resnet18"
        bench(n, ctor(), shape, a.big_batch if big else a.batch, a.big_steps if big else a.steps, 1 if big else a.warmup)
