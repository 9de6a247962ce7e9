#!/usr/bin/python3
"""Trains the Fashion-MNIST CNN that models/ ships, exports it for cnnc and
records PyTorch's test accuracy.

    /usr/bin/python3 tools/train_fashion_mnist.py [--data DIR] [--out DIR]

Writes (in --out, default models/ next to this script's parent):
  fashion_mnist.yaml         the cnnc spec (generated: do not edit)
  fashion_mnist.safetensors  the weights, under the YAML's layer names
  fashion_mnist.pytorch.txt  "accuracy 91.23% (9123/10000)": PyTorch's
                             figure, which examples/ compares against

Inputs are pixel / 255.0 as float32 with no other normalisation, so that a C
program reading the same idx files computes exactly the same inputs.
Training is seeded and single-process (2 threads); the accuracy is measured
in eval mode one image at a time (batch-1 semantics, argmax per image).
"""

import argparse
import gzip
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cnnc_export  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist"
SEED = 20240501
EPOCHS = 10
BATCH = 64


def read_idx(path):
    """Reads an idx file (gzip'ed): big-endian magic, dims, then u8 data."""
    with gzip.open(path, "rb") as f:
        buf = f.read()
    magic = int.from_bytes(buf[0:4], "big")
    if magic >> 8 != 0x08:  # 0x00000803 images, 0x00000801 labels: u8 data
        raise ValueError("%s: not an unsigned-byte idx file (magic %#x)" % (path, magic))
    ndim = magic & 0xFF
    dims = [int.from_bytes(buf[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(buf, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError("%s: %d bytes of data for dims %s" % (path, data.size, dims))
    return data.reshape(dims)


def load(data_dir, split):
    images = read_idx(os.path.join(data_dir, "%s-images-idx3-ubyte.gz" % split))
    labels = read_idx(os.path.join(data_dir, "%s-labels-idx1-ubyte.gz" % split))
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).unsqueeze(1)
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


class FashionCNN(nn.Module):
    """conv 1->16 3x3 relu, pool, conv 16->32 3x3 relu, pool, fc 1568->64 relu,
    fc 64->10, softmax.  Attribute names become the spec's layer names."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(32 * 7 * 7, 64)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(64, 10)
        self.probs = nn.Softmax(dim=1)

    def logits(self, image):
        x = self.pool1(self.relu1(self.conv1(image)))
        x = self.pool2(self.relu2(self.conv2(x)))
        return self.fc2(self.relu3(self.fc1(self.flatten(x))))

    def forward(self, image):
        return self.probs(self.logits(image))


def train(model, x, y, epochs, log):
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(SEED)
    n = x.shape[0]
    for epoch in range(epochs):
        model.train()
        t0 = time.time()
        perm = torch.randperm(n, generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for i in range(0, n, BATCH):
            idx = perm[i:i + BATCH]
            xb, yb = x[idx], y[idx]
            logits = model.logits(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
            total += len(idx)
        sched.step()
        log("epoch %d: loss %.4f train acc %.2f%% (%.0fs)"
            % (epoch + 1, loss_sum / total, 100.0 * correct / total, time.time() - t0))


@torch.no_grad()
def evaluate(model, x, y):
    """Batch-1 semantics: every image is run on its own, argmax of the output.
    (Run in chunks for speed; eval mode has no cross-sample interaction, and
    the argmax is taken per image.)"""
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], 500):
        out = model(x[i:i + 500])
        correct += (out.argmax(1) == y[i:i + 500]).sum().item()
    return correct


@torch.no_grad()
def evaluate_batch1(model, x, y):
    model.eval()
    correct = 0
    for i in range(x.shape[0]):
        correct += int(model(x[i:i + 1]).argmax(1).item() == y[i].item())
    return correct


@torch.no_grad()
def top2_margin(model, x):
    """Smallest gap between the two largest logits.  Another implementation
    of the same model differs from PyTorch by float rounding (around 1e-6 on
    these logits); a gap well above that means no image's class can flip."""
    model.eval()
    top = model.logits(x).topk(2, dim=1).values
    return (top[:, 0] - top[:, 1]).min().item()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default=DATA, help="directory of the *-ubyte.gz files")
    p.add_argument("--out", default=os.path.join(ROOT, "models"))
    p.add_argument("--epochs", type=int, default=EPOCHS)
    args = p.parse_args()

    torch.manual_seed(SEED)
    torch.set_num_threads(2)
    log = lambda s: print(s, flush=True)  # noqa: E731

    xtr, ytr = load(args.data, "train")
    xte, yte = load(args.data, "t10k")
    log("train %s, test %s" % (tuple(xtr.shape), tuple(xte.shape)))

    model = FashionCNN()
    train(model, xtr, ytr, args.epochs, log)

    model.eval()
    correct = evaluate_batch1(model, xte, yte)
    if correct != evaluate(model, xte, yte):
        log("note: batched and batch-1 evaluation disagree; batch-1 is recorded")
    margin = top2_margin(model, xte)
    log("smallest top-2 logit margin over the test set: %.3g%s" % (
        margin, "" if margin > 1e-4 else
        " (tiny: float rounding elsewhere may classify that image differently)"))
    n = xte.shape[0]
    line = "accuracy %.2f%% (%d/%d)" % (100.0 * correct / n, correct, n)
    log(line)

    os.makedirs(args.out, exist_ok=True)
    header = ["Generated by tools/train_fashion_mnist.py (via tools/cnnc_export.py);",
              "do not edit: rerun the script to regenerate this file and its weights.",
              "Fashion-MNIST classifier: input = pixels / 255.0, output = class probabilities",
              "(0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt,",
              "7 Sneaker, 8 Bag, 9 Ankle boot).  PyTorch test " + line + "."]
    cnnc_export.write_model(model, {"image": [1, 1, 28, 28]}, "fashion_mnist",
                            os.path.join(args.out, "fashion_mnist.yaml"),
                            outputs=["probs"], header=header)
    with open(os.path.join(args.out, "fashion_mnist.pytorch.txt"), "w") as f:
        f.write(line + "\n")
    log("wrote %s/fashion_mnist.{yaml,safetensors,pytorch.txt}" % args.out)


if __name__ == "__main__":
    main()
