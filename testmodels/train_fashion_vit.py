#!/usr/bin/python3
"""A ViT of ViT-Tiny's width trained on Fashion-MNIST (issue 31's "int8 faster than fp32 on a ViT"): the digits test
ViT (testmodels/transformers, 64 wide, 17 tokens) is too small for int8 kernels to pay in ONNX Runtime, as small CNNs
are; this one has the width of DeiT-Tiny (192, 3 heads of 64, MLP 768) on 7x7 patches of 4x4 pixels plus a cls
token (50 tokens), 4 pre-norm blocks, the same module as make_transformers.py's ViT (Erf GELU, one qkv Linear).

Run with Debian's packages (python3-torch with libopenblas0-pthread, python3-onnx, python3-numpy,
dataset-fashion-mnist):
    /usr/bin/python3 testmodels/train_fashion_vit.py [EPOCHS]
Trained on the training split less the 200 calibration and 500 held-out samples (testmodels/fashion_data.py), AdamW
with a linear warm-up then cosine decay, shifts of up to 2 pixels and horizontal flips, seeded, two threads.
Output (committed): testmodels/fashion/vit.onnx (opset 17: LayerNormalization) and its entry in
fashion/manifest.json, with the accuracy on the 10,000 test images. Its data are the CNNs' (fashion/data).
"""
import json, math, os, sys, time
import numpy as np
import torch
import torch.nn.functional as F
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "transformers"))
from fashion_data import OUT, x_train, y_train, x_test_all, y_test_all, to_cnn, sha256, accuracy
from make_transformers import ViT

torch.set_num_threads(2)
EPOCHS = int(sys.argv[1]) if len(sys.argv) > 1 else 12
DIM, DEPTH, HEADS, MLP, PATCH = 192, 4, 3, 768, 4


def augment(x, g):
    """Shifts of up to 2 pixels (zero fill) and horizontal flips, per image, from generator g."""
    n = x.shape[0]
    flip = torch.rand(n, generator=g) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    pad = F.pad(x, (2, 2, 2, 2), value=float((0 - 0.29) / 0.35))
    dx = torch.randint(0, 5, (n,), generator=g)
    dy = torch.randint(0, 5, (n,), generator=g)
    return torch.stack([pad[i, :, dy[i]:dy[i] + 28, dx[i]:dx[i] + 28] for i in range(n)])


def main():
    torch.manual_seed(0)
    model = ViT(dim=DIM, depth=DEPTH, heads=HEADS, mlp=MLP, patch=PATCH, image=28)
    xt, yt = to_cnn(x_train), torch.from_numpy(y_train)
    batch = 128
    steps = EPOCHS * math.ceil(len(xt) / batch)
    warm = steps // 20
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: (s + 1) / warm if s < warm
                                              else 0.5 * (1 + math.cos(math.pi * (s - warm) / (steps - warm))))
    g = torch.Generator().manual_seed(1)
    t0 = time.time()
    for epoch in range(EPOCHS):
        model.train()
        idx = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), batch):
            b = idx[i:i + batch]
            opt.zero_grad()
            F.cross_entropy(model(augment(xt[b], g)), yt[b], label_smoothing=0.1).backward()
            opt.step()
            sched.step()
        model.eval()
        acc = accuracy(model, to_cnn(x_test_all[:2000]), torch.from_numpy(y_test_all[:2000]))
        print(f"epoch {epoch + 1}: {time.time() - t0:.0f} s, test accuracy (first 2,000) {acc:.4f}", flush=True)
    xs, ys = to_cnn(x_test_all), torch.from_numpy(y_test_all)
    acc = accuracy(model, xs, ys)
    path = os.path.join(OUT, "vit.onnx")
    torch.onnx.export(model, (xs[:1],), path, input_names=["input"], output_names=["logits"], opset_version=17,
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, do_constant_folding=True)
    params = sum(p.numel() for p in model.parameters())
    entry = {"name": "vit", "file": "fashion/vit.onnx", "data": "fashion/data", "parameters": params,
             "bytes": os.path.getsize(path), "test_accuracy": round(acc, 4), "epochs": EPOCHS,
             "source": "testmodels/train_fashion_vit.py", "sha256": sha256(path)}
    path_manifest = os.path.join(OUT, "manifest.json")
    with open(path_manifest) as f:
        manifest = json.load(f)
    manifest["models"] = [m for m in manifest["models"] if m["name"] != "vit"] + [entry]
    with open(path_manifest, "w") as f:
        json.dump(manifest, f, indent=2)
        f.write("\n")
    print(f"vit: params {params}, test accuracy {acc:.4f} (10,000 test images), {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
