"""The small CNN families onnxopt's tests and benchmarks train (VGG-, ResNet-, MobileNetV2-style and an MLP),
shared by train_digits.py (16x16 digits), train_fashion.py (28x28 Fashion-MNIST) and bench/train_speed.py, which
builds them with bn=False: convs with bias and no BatchNorm, what onnxopt trains after fold-bn."""
import torch
import torch.nn as nn
import torch.nn.functional as F

def conv_bn(cin, cout, k=3, s=1, groups=1, act="relu", bn=True):
    layers = [nn.Conv2d(cin, cout, k, s, k // 2, groups=groups, bias=not bn)] + ([nn.BatchNorm2d(cout)] if bn else [])
    if act == "relu": layers.append(nn.ReLU())
    elif act == "relu6": layers.append(nn.ReLU6())
    return nn.Sequential(*layers)

class Vgg(nn.Module):
    def __init__(self, bn=True):
        super().__init__()
        self.features = nn.Sequential(
            conv_bn(1, 16, bn=bn), conv_bn(16, 16, bn=bn), nn.MaxPool2d(2),
            conv_bn(16, 32, bn=bn), conv_bn(32, 32, bn=bn), nn.MaxPool2d(2),
            conv_bn(32, 64, bn=bn), conv_bn(64, 64, bn=bn))
        self.fc = nn.Linear(64, 10)
    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1))

class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, bn=True):
        super().__init__()
        self.c1 = conv_bn(cin, cout, 3, stride, bn=bn)
        self.c2 = conv_bn(cout, cout, 3, 1, act=None, bn=bn)
        self.short = None if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, act=None, bn=bn)
    def forward(self, x):
        s = x if self.short is None else self.short(x)
        return F.relu(self.c2(self.c1(x)) + s)

class ResNet(nn.Module):
    def __init__(self, bn=True):
        super().__init__()
        self.stem = conv_bn(1, 16, bn=bn)
        self.blocks = nn.Sequential(*(BasicBlock(i, o, s, bn) for i, o, s in ((16, 16, 1), (16, 32, 2), (32, 32, 1), (32, 64, 2))))
        self.fc = nn.Linear(64, 10)
    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1), 1))

class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand, bn=True):
        super().__init__()
        hid = cin * expand
        self.use_res = stride == 1 and cin == cout
        self.body = nn.Sequential(conv_bn(cin, hid, 1, act="relu6", bn=bn),
                                  conv_bn(hid, hid, 3, stride, groups=hid, act="relu6", bn=bn),
                                  conv_bn(hid, cout, 1, act=None, bn=bn))
    def forward(self, x):
        return x + self.body(x) if self.use_res else self.body(x)

class MobileNetV2(nn.Module):
    def __init__(self, bn=True):
        super().__init__()
        self.stem = conv_bn(1, 16, act="relu6", bn=bn)
        self.blocks = nn.Sequential(*(InvertedResidual(i, o, s, e, bn) for i, o, s, e in (
            (16, 16, 1, 1), (16, 24, 2, 6), (24, 24, 1, 6), (24, 32, 2, 6), (32, 32, 1, 6))))
        self.head = conv_bn(32, 64, 1, act="relu6", bn=bn)
        self.fc = nn.Linear(64, 10)
    def forward(self, x):
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(self.head(self.blocks(self.stem(x))), 1), 1))

class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))
    def forward(self, x):
        return self.net(x)
