"""The transformer test models, written the way real exports look (issue 30), trained so their weights are not random.

vit_op13.onnx / vit_op17.onnx: a ViT trained on the digits data (16x16 inputs, see digits_data.py): patch embedding
  Conv (4x4 patches, 16 tokens), cls token by Expand + Concat, learned positions, pre-norm blocks, one qkv Linear split
  by Reshape/Transpose, scaled Softmax attention, Erf GELU MLP, a LayerNorm + Linear head on the cls token. Opset 13
  decomposes LayerNorm (ReduceMean/Sub/Pow/ReduceMean/Add/Sqrt/Div/Mul/Add); opset 17 exports LayerNormalization.
  Data: the digits CNN data (testmodels/digits/data).
bert_op11.onnx / bert_op13.onnx: a BERT-style encoder written the way Hugging Face's BertModel exports: int64
  input_ids, attention_mask, token_type_ids [batch, sequence]; word/position/type embeddings by Gather; position ids
  sliced from a buffer through Shape/Gather/Unsqueeze; the additive mask (1 - mask) * -10000; post-norm blocks with
  Tanh GELU ("gelu_new"); outputs last_hidden_state [batch, sequence, 64] and pooler_output (Gemm + Tanh). Trained
  on a synthetic sentence-pair task (which of 8 topics segment A's tokens come from, segment B being from another),
  with the pooler feeding an 8-way classifier that is not exported. Data: bert_data/ (calibration, 256 pairs) and bert_eval/ (held out, 256),
  padded to 32 tokens.

Run with Debian's python3-torch (install libopenblas0-pthread first): /usr/bin/python3 make_transformers.py
"""
import json, math, os, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import digits_data as D  # noqa: E402

torch.manual_seed(0)
torch.set_num_threads(2)


# ---------------------------------------------------------------- ViT
class Block(nn.Module):
    def __init__(self, dim, heads, mlp):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1 = nn.Linear(dim, mlp)
        self.fc2 = nn.Linear(mlp, dim)

    def forward(self, x):
        b, n, c = x.shape
        h = self.norm1(x)
        qkv = self.qkv(h).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        att = att.softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(b, n, c)
        x = x + self.proj(y)
        x = x + self.fc2(F.gelu(self.fc1(self.norm2(x))))
        return x


class ViT(nn.Module):
    def __init__(self, dim=64, depth=3, heads=4, mlp=128, patch=4, image=16, classes=10):
        super().__init__()
        self.patch = nn.Conv2d(1, dim, patch, patch)
        self.cls = nn.Parameter(torch.zeros(1, 1, dim))
        self.pos = nn.Parameter(torch.randn(1, (image // patch) ** 2 + 1, dim) * 0.02)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        cls = self.cls.expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + self.pos
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x)[:, 0])


# ---------------------------------------------------------------- BERT-style encoder
VOCAB, HIDDEN, HEADS, LAYERS, INTER, MAXPOS, SEQ = 1000, 64, 4, 2, 256, 64, 32
CLS, SEP, PAD = 1, 2, 0
SMALL = dict(hidden=HIDDEN, heads=HEADS, layers=LAYERS, inter=INTER, maxpos=MAXPOS, seq=SEQ, segment=(4, 14))
# bert_medium: wide and long enough that compute, not dispatch, is most of a run at sequence 128 (issue 32's speed
# figure), segments of 8-59 tokens so a padded batch is about half real tokens
MEDIUM = dict(hidden=192, heads=6, layers=4, inter=768, maxpos=128, seq=128, segment=(8, 60))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


class BertSelfAttention(nn.Module):
    def __init__(self, c=SMALL):
        super().__init__()
        H = self.hidden = c["hidden"]
        self.h, self.d = c["heads"], H // c["heads"]
        self.query, self.key, self.value = nn.Linear(H, H), nn.Linear(H, H), nn.Linear(H, H)

    def split(self, x):
        return x.view(x.size()[:-1] + (self.h, self.d)).permute(0, 2, 1, 3)

    def forward(self, x, mask):
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.d) + mask
        probs = nn.functional.softmax(scores, dim=-1)
        ctx = torch.matmul(probs, v).permute(0, 2, 1, 3).contiguous()
        return ctx.view(ctx.size()[:-2] + (self.hidden,))


class BertLayer(nn.Module):
    def __init__(self, c=SMALL):
        super().__init__()
        H = c["hidden"]
        self.attn = BertSelfAttention(c)
        self.attn_out = nn.Linear(H, H)
        self.ln1 = nn.LayerNorm(H, eps=1e-12)
        self.inter = nn.Linear(H, c["inter"])
        self.out = nn.Linear(c["inter"], H)
        self.ln2 = nn.LayerNorm(H, eps=1e-12)

    def forward(self, x, mask):
        x = self.ln1(self.attn_out(self.attn(x, mask)) + x)
        return self.ln2(self.out(gelu_new(self.inter(x))) + x)


class Bert(nn.Module):
    def __init__(self, c=SMALL):
        super().__init__()
        H = c["hidden"]
        self.word = nn.Embedding(VOCAB, H)
        self.position = nn.Embedding(c["maxpos"], H)
        self.token_type = nn.Embedding(2, H)
        self.ln = nn.LayerNorm(H, eps=1e-12)
        self.register_buffer("position_ids", torch.arange(c["maxpos"]).expand((1, -1)))
        self.layers = nn.ModuleList([BertLayer(c) for _ in range(c["layers"])])
        self.pooler = nn.Linear(H, H)

    def forward(self, input_ids, attention_mask, token_type_ids):
        seq = input_ids.size(1)
        pos = self.position_ids[:, :seq]
        x = self.ln(self.word(input_ids) + self.position(pos) + self.token_type(token_type_ids))
        ext = attention_mask[:, None, None, :].to(dtype=x.dtype)
        ext = (1.0 - ext) * -10000.0
        for layer in self.layers:
            x = layer(x, ext)
        return x, torch.tanh(self.pooler(x[:, 0]))


def pairs(n, rng, c=SMALL):
    """Sentence pairs: segment A from topic t1, B from another topic t2; label = t1."""
    seq, (lo, hi) = c["seq"], c["segment"]
    ids = np.zeros((n, seq), np.int64); mask = np.zeros((n, seq), np.int64); types = np.zeros((n, seq), np.int64)
    labels = np.zeros(n, np.int64)
    for i in range(n):
        t1 = rng.randint(8)
        t2 = (t1 + 1 + rng.randint(7)) % 8
        la, lb = rng.randint(lo, hi), rng.randint(lo, hi)
        def seg(t, l):
            return [10 + t * 100 + rng.randint(100) if rng.rand() < 0.7 else 10 + rng.randint(800) for _ in range(l)]
        toks = [CLS] + seg(t1, la) + [SEP] + seg(t2, lb) + [SEP]
        ids[i, :len(toks)] = toks; mask[i, :len(toks)] = 1; types[i, la + 2:len(toks)] = 1
        labels[i] = t1
    return ids, mask, types, labels


def export(model, args, path, opset, names, outputs, axes):
    torch.onnx.export(model, args, path, opset_version=opset, input_names=names, output_names=outputs,
                      dynamic_axes=axes, do_constant_folding=True)


def main():
    manifest = {"source": "testmodels/transformers/make_transformers.py", "torch": torch.__version__, "models": []}
    only = sys.argv[1:]
    old = json.load(open(os.path.join(HERE, "manifest.json"))) if only else None
    if old:
        manifest["models"] = [m for m in old["models"] if not any(m["name"].startswith(o) for o in only)]
    if not only or "vit" in only:
        vit_models(manifest)
    if not only or "bert" in only:
        bert_models(manifest)
    if not only or "bert_medium" in only:
        bert_medium(manifest)
    with open(os.path.join(HERE, "manifest.json"), "w") as fh:
        json.dump(manifest, fh, indent=2)


def vit_models(manifest):
    # ViT on digits
    xt, yt = D.to_cnn(D.x_train), torch.from_numpy(D.y_train)
    xs, ys = D.to_cnn(D.x_test), torch.from_numpy(D.y_test)
    vit = ViT()
    D.train(vit, xt, yt, 40)
    with torch.no_grad():
        acc = float((vit(xs).argmax(1) == ys).float().mean())
    print("vit test accuracy", acc)
    for opset in (13, 17):
        f = os.path.join(HERE, f"vit_op{opset}.onnx")
        export(vit, (xs[:1],), f, opset, ["input"], ["logits"], {"input": {0: "N"}, "logits": {0: "N"}})
        manifest["models"].append({"name": f"vit_op{opset}", "file": f"transformers/vit_op{opset}.onnx",
                                   "data": "digits/data", "test_accuracy": round(acc, 4), "opset": opset,
                                   "sha256": D.sha256(f)})


def train_topics(bert, clf, data, epochs, batch, tag):
    """AdamW on the topic of segment A (cross-entropy of the pooler's classifier), seeded batch order per epoch."""
    opt = torch.optim.AdamW(list(bert.parameters()) + list(clf.parameters()), lr=3e-4, weight_decay=0.01)
    T = [torch.from_numpy(a) for a in data]
    for epoch in range(epochs):
        perm = torch.randperm(len(T[0]), generator=torch.Generator().manual_seed(epoch))
        for i in range(0, len(T[0]), batch):
            b = perm[i:i + batch]
            _, pooled = bert(T[0][b], T[1][b], T[2][b])
            loss = F.cross_entropy(clf(pooled), T[3][b])
            opt.zero_grad(); loss.backward(); opt.step()
        print(tag, "epoch", epoch, "loss", float(loss), flush=True)
    bert.eval()


def topic_accuracy(bert, clf, ev):
    with torch.no_grad():
        _, pooled = bert(*[torch.from_numpy(a) for a in ev[:3]])
        return float((clf(pooled).argmax(1).numpy() == ev[3]).mean())


def save_pairs(folders, c=SMALL):
    """256 token pairs per (folder, seed): input_ids.npy, attention_mask.npy, token_type_ids.npy."""
    for name, seed in folders:
        d = os.path.join(HERE, name); os.makedirs(d, exist_ok=True)
        a = pairs(256, np.random.RandomState(seed), c)
        for k, arr in zip(("input_ids", "attention_mask", "token_type_ids"), a[:3]):
            np.save(os.path.join(d, k + ".npy"), arr)


def export_bert(bert, ev, f, opset):
    axes = {k: {0: "batch", 1: "sequence"} for k in ("input_ids", "attention_mask", "token_type_ids",
                                                     "last_hidden_state")}
    axes["pooler_output"] = {0: "batch"}
    export(bert, tuple(torch.from_numpy(a[:2]) for a in ev[:3]), f, opset,
           ["input_ids", "attention_mask", "token_type_ids"], ["last_hidden_state", "pooler_output"], axes)


def bert_models(manifest):
    bert, clf = Bert(), nn.Linear(HIDDEN, 8)
    train_topics(bert, clf, pairs(20000, np.random.RandomState(0)), 4, 64, "bert")
    ev = pairs(1000, np.random.RandomState(1))
    bacc = topic_accuracy(bert, clf, ev)
    print("bert topic accuracy", bacc)
    save_pairs((("bert_data", 2), ("bert_eval", 3)))
    for opset in (11, 13):
        f = os.path.join(HERE, f"bert_op{opset}.onnx")
        export_bert(bert, ev, f, opset)
        manifest["models"].append({"name": f"bert_op{opset}", "file": f"transformers/bert_op{opset}.onnx",
                                   "data": "transformers/bert_data", "eval": "transformers/bert_eval",
                                   "topic_accuracy": round(bacc, 4), "opset": opset, "sha256": D.sha256(f)})


def bert_medium(manifest):
    """bert_medium.onnx (opset 13): the same task at 4 layers of 192 (6 heads of 32, MLP 768), 128 positions; data
    bert_medium_data/ (calibration) and bert_medium_eval/ (held out), 256 pairs each padded to 128 tokens."""
    torch.manual_seed(0)
    c = MEDIUM
    data = pairs(6000, np.random.RandomState(10), c)
    bert, clf = Bert(c), nn.Linear(c["hidden"], 8)
    train_topics(bert, clf, data, 2, 32, "bert_medium")
    ev = pairs(500, np.random.RandomState(11), c)
    acc = topic_accuracy(bert, clf, ev)
    print("bert_medium topic accuracy", acc)
    save_pairs((("bert_medium_data", 12), ("bert_medium_eval", 13)), c)
    f = os.path.join(HERE, "bert_medium.onnx")
    export_bert(bert, ev, f, 13)
    manifest["models"].append({"name": "bert_medium", "file": "transformers/bert_medium.onnx",
                               "data": "transformers/bert_medium_data", "eval": "transformers/bert_medium_eval",
                               "topic_accuracy": round(acc, 4), "opset": 13, "sha256": D.sha256(f)})


if __name__ == "__main__":
    main()
