#!/usr/bin/python3
"""Trains the small real CNNs onnxopt's tests and benchmarks use, on scikit-learn's bundled digits
data set (8x8 grey images of 0-9, upsampled to 16x16), and exports them to ONNX.

Run with Debian's packages (python3-torch python3-onnx python3-numpy python3-sklearn):
    /usr/bin/python3 testmodels/train_digits.py
Outputs (committed, so tests and CI never need Python):
    testmodels/digits/{vgg,resnet,mobilenetv2,mlp}.onnx
    testmodels/digits/data/{calib,test}/{input.npy,labels.npy}     (CNN input [N,1,16,16])
    testmodels/digits/data_mlp/{calib,test}/{input.npy,labels.npy} (MLP input [N,64])
    testmodels/digits/manifest.json
Deterministic: fixed seeds, one thread.
"""
import json, os
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from digits_data import OUT, x_train, y_train, x_test, y_test, x_calib, y_calib, to_cnn, to_mlp, sha256, train
from cnn_nets import Vgg, ResNet, MobileNetV2, Mlp

torch.manual_seed(0)
np.random.seed(0)
torch.set_num_threads(1)

def accuracy(model, xt, yt):
    with torch.no_grad():
        return float((model(xt).argmax(1) == yt).float().mean())

def save_npy(folder, name, arr):
    os.makedirs(folder, exist_ok=True)
    np.save(os.path.join(folder, name), arr)

manifest = {"source": "testmodels/train_digits.py", "dataset": "sklearn digits (1797 8x8 images), 500 held out, 200 train samples as calibration",
            "torch": torch.__version__, "models": []}
for data_dir, conv in (("data", to_cnn), ("data_mlp", to_mlp)):
    for split, (xs, ys) in (("calib", (x_calib, y_calib)), ("test", (x_test, y_test))):
        save_npy(os.path.join(OUT, data_dir, split), "input.npy", conv(xs).numpy().astype(np.float32))
        save_npy(os.path.join(OUT, data_dir, split), "labels.npy", ys.astype(np.int64))

for name, ctor, conv, epochs, data_dir in (("vgg", Vgg, to_cnn, 30, "data"), ("resnet", ResNet, to_cnn, 30, "data"),
                                           ("mobilenetv2", MobileNetV2, to_cnn, 40, "data"), ("mlp", Mlp, to_mlp, 60, "data_mlp")):
    torch.manual_seed(0)
    model = ctor()
    xt, yt = conv(x_train), torch.from_numpy(y_train)
    train(model, xt, yt, epochs)
    acc = accuracy(model, conv(x_test), torch.from_numpy(y_test))
    path = os.path.join(OUT, name + ".onnx")
    dummy = conv(x_test[:1])
    # PRESERVE keeps BatchNormalization nodes (in inference form), so fold-bn has real work to do.
    torch.onnx.export(model, dummy, path, input_names=["input"], output_names=["logits"], opset_version=13,
                      dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}}, training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=True)
    params = sum(p.numel() for p in model.parameters())
    manifest["models"].append({"name": name, "file": f"digits/{name}.onnx", "data": f"digits/{data_dir}", "parameters": params,
                               "bytes": os.path.getsize(path), "test_accuracy": round(acc, 4), "epochs": epochs,
                               "sha256": sha256(path)})
    print(f"{name}: params {params}, test accuracy {acc:.4f}, {os.path.getsize(path)} bytes")

with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=2)
    f.write("\n")
