"""The digits data the training scripts use (train_digits.py, train_layerfolding.py, make_old_opset.py)
and their training loop: scikit-learn's bundled 8x8 digits in [0, 1], one fixed permutation, 500 held out
for test, the first 200 training images as calibration data; CNN inputs upsampled to 16x16, all normalized as (x - 0.3) / 0.4."""
import hashlib, os
import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "digits")

_digits = load_digits()
_x = _digits.images.astype(np.float32) / 16.0          # [1797, 8, 8] in [0, 1]
_y = _digits.target.astype(np.int64)
_perm = np.random.RandomState(0).permutation(len(_x))
_x, _y = _x[_perm], _y[_perm]
n_test, n_calib = 500, 200
x_train, y_train = _x[n_test:], _y[n_test:]
x_test, y_test = _x[:n_test], _y[:n_test]
x_calib, y_calib = x_train[:n_calib], y_train[:n_calib]

def to_cnn(a):
    t = torch.from_numpy(a).unsqueeze(1)
    t = F.interpolate(t, size=(16, 16), mode="bilinear", align_corners=False)
    return ((t - 0.3) / 0.4).contiguous()

def to_mlp(a):
    return torch.from_numpy(((a - 0.3) / 0.4).reshape(len(a), 64)).contiguous()

def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()

def train(model, xt, yt, epochs):
    """Adam (3e-3, weight decay 1e-4), cosine schedule, batches of 64 in a seeded order, cross-entropy."""
    opt = torch.optim.Adam(model.parameters(), lr=3e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    g = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        model.train()
        idx = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), 64):
            b = idx[i:i + 64]
            opt.zero_grad()
            F.cross_entropy(model(xt[b]), yt[b]).backward()
            opt.step()
        sched.step()
    model.eval()
