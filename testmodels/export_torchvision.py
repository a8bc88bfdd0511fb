"""Exports small-width variants of torchvision's architectures to ONNX (random weights, seeded) so the
pruning analysis and surgery are tested on real export patterns: residual streams (resnet BasicBlock),
depthwise inverted residuals (mobilenet_v2), Concat fire modules (squeezenet), channel shuffle and
chunk (shufflenet_v2) and squeeze-excite gates with SiLU (efficientnet_b0).
Run with Debian's python3-torchvision and python3-onnx: /usr/bin/python3 testmodels/export_torchvision.py
Writes testmodels/torchvision/*.onnx (a few hundred KB in all); tests never need Python."""
import os
import torch
import torch.nn as nn
from torchvision.models import mobilenet_v2, shufflenetv2, squeezenet
from torchvision.models.resnet import BasicBlock
from torchvision.models import efficientnet

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "torchvision")


class SmallResNet(nn.Module):
    """resnet18's layout with torchvision's own BasicBlock, at 1/8 width and one block per stage."""

    def __init__(self, width=8, classes=10):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        layers, inplanes = [], width
        for i, planes in enumerate([width, width * 2, width * 4, width * 8]):
            stride = 1 if i == 0 else 2
            down = None
            if stride != 1 or inplanes != planes:
                down = nn.Sequential(nn.Conv2d(inplanes, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))
            layers += [BasicBlock(inplanes, planes, stride, down), BasicBlock(planes, planes)]
            inplanes = planes
        self.layers = nn.Sequential(*layers)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.layers(self.stem(x))), 1))


def models():
    yield "resnet18_small", SmallResNet()
    yield "mobilenet_v2_small", mobilenet_v2(width_mult=0.25, num_classes=10)
    sq = squeezenet.SqueezeNet("1_1", num_classes=10)
    yield "squeezenet1_1", sq
    yield "shufflenet_v2_small", shufflenetv2.ShuffleNetV2([2, 2, 2], [8, 16, 32, 64, 128], num_classes=10)
    conf, last = efficientnet._efficientnet_conf("efficientnet_b0", width_mult=0.25, depth_mult=0.25)
    yield "efficientnet_b0_small", efficientnet.EfficientNet(conf, 0.2, num_classes=10, last_channel=last)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, model in models():
        torch.manual_seed(0)
        for p in model.parameters():
            nn.init.normal_(p, 0, 0.1) if p.dim() > 1 else nn.init.uniform_(p, 0.5, 1.5)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
        model.eval()
        size = 64 if name.startswith("squeeze") else 32
        x = torch.randn(1, 3, size, size)
        path = os.path.join(OUT, name + ".onnx")
        torch.onnx.export(model, x, path, input_names=["input"], output_names=["logits"], opset_version=13,
                          dynamic_axes={"input": {0: "N"}, "logits": {0: "N"}})
        print(path, os.path.getsize(path))


if __name__ == "__main__":
    main()
