"""Fashion-MNIST as the training scripts use it: Debian's dataset-fashion-mnist (the real 60,000/10,000 split, 28x28
grey images of 10 clothing classes), pixels in [0, 1] normalized as (x - 0.29) / 0.35. Calibration and held-out
samples are both taken from the training split (one fixed permutation: the first 200 as calibration, the next
500 as held-out data for budgets), never trained on; figures are on the test split."""
import gzip, hashlib, os
import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "fashion")
SRC = "/usr/share/datasets/fashion-mnist"

def _read(name, offset):
    with gzip.open(os.path.join(SRC, name)) as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)

def _images(name):
    return _read(name, 16).reshape(-1, 28, 28).astype(np.float32) / 255.0

_x = _images("train-images-idx3-ubyte.gz")
_y = _read("train-labels-idx1-ubyte.gz", 8).astype(np.int64)
x_test_all = _images("t10k-images-idx3-ubyte.gz")
y_test_all = _read("t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)
_perm = np.random.RandomState(0).permutation(len(_x))
n_calib, n_heldout = 200, 500
x_calib, y_calib = _x[_perm[:n_calib]], _y[_perm[:n_calib]]
x_heldout, y_heldout = _x[_perm[n_calib:n_calib + n_heldout]], _y[_perm[n_calib:n_calib + n_heldout]]
x_train, y_train = _x[_perm[n_calib + n_heldout:]], _y[_perm[n_calib + n_heldout:]]

def to_cnn(a):
    return torch.from_numpy(((a - 0.29) / 0.35)[:, None]).contiguous()

def sha256(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()

def train(model, xt, yt, epochs, lr=3e-3, batch=128):
    """Adam (lr, weight decay 1e-4), cosine schedule, batches in a seeded order, cross-entropy."""
    opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs)
    g = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        model.train()
        idx = torch.randperm(len(xt), generator=g)
        for i in range(0, len(xt), batch):
            b = idx[i:i + batch]
            opt.zero_grad()
            F.cross_entropy(model(xt[b]), yt[b]).backward()
            opt.step()
        sched.step()
    model.eval()

def accuracy(model, xt, yt):
    with torch.no_grad():
        return float(torch.cat([model(xt[i:i + 1000]).argmax(1) for i in range(0, len(xt), 1000)]).eq(yt).float().mean())
