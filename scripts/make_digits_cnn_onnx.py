"""Train a small CNN in PyTorch on scikit-learn's bundled 8x8 digits and export it as a float
ONNX model to ``tests/models/digits_cnn.onnx`` — the float CNN that ``mxugen quantize`` turns
into the int8 operator graph (tests/test_onnx_cnn.py).

Run it with a PyTorch virtualenv (PyTorch never goes into the project's Python)::

    python -m venv /opt/torchenv
    /opt/torchenv/bin/pip install torch==2.13.0 onnx numpy scikit-learn
    /opt/torchenv/bin/python scripts/make_digits_cnn_onnx.py

Images are scaled to [0, 1] floats, one channel (NCHW ``(N, 1, 8, 8)`` for PyTorch; the
imported graph takes NHWC); the split is
``train_test_split(test_size=0.25, random_state=0, stratify=labels)``. The network::

    conv 3x3 8 (pad 1) + BatchNorm + ReLU -> depthwise 3x3 (groups 8, pad 1) + ReLU6
    -> conv 1x1 16 + ReLU -> maxpool 2x2 -> conv 3x3 16 (pad 1) + ReLU, added to its input
    (residual) -> flatten (16x4x4, NCHW order) -> linear 10 (logits, no softmax)

The BatchNormalization stays in the exported graph (``TrainingMode.PRESERVE`` on an eval-mode
model) so the importer's folding is exercised on a real export. Training is seeded, single
threaded and uses deterministic algorithms; prints the float test accuracy.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "tests" / "models" / "digits_cnn.onnx"
SEED = 0
EPOCHS = 60
BATCH = 32


class DigitsCNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.pw = nn.Conv2d(8, 16, 1)
        self.pool = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(16, 16, 3, padding=1)
        self.fc = nn.Linear(16 * 4 * 4, 10)

    def forward(self, x):
        x = torch.relu(self.bn1(self.conv1(x)))
        x = torch.clamp(self.dw(x), 0.0, 6.0)          # ReLU6, exported as Clip(0, 6)
        x = self.pool(torch.relu(self.pw(x)))
        x = x + torch.relu(self.conv2(x))               # residual Add
        return self.fc(torch.flatten(x, 1))


def data():
    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float32)[:, None]   # (N, 1, 8, 8)
    return train_test_split(images, digits.target, test_size=0.25, random_state=0,
                            stratify=digits.target)


def train(x_train, y_train) -> DigitsCNN:
    torch.manual_seed(SEED)
    model = DigitsCNN()
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS)
    x, y = torch.from_numpy(x_train), torch.from_numpy(y_train).long()
    generator = torch.Generator().manual_seed(SEED)
    for _ in range(EPOCHS):
        model.train()
        for batch in torch.randperm(len(x), generator=generator).split(BATCH):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimizer.step()
        schedule.step()
    return model.eval()


def accuracy(model: DigitsCNN, x, y) -> float:
    with torch.no_grad():
        return 100.0 * float((model(torch.from_numpy(x)).argmax(1).numpy() == y).mean())


def export(model: DigitsCNN) -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    # The legacy exporter keeps node names and BatchNormalization; the model is in eval mode,
    # so constant folding under PRESERVE changes no parameter.
    warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export")
    warnings.filterwarnings("ignore", message=".*constant folding be turned off")
    torch.onnx.export(model, (torch.zeros(1, 1, 8, 8),), str(OUTPUT), input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "N"},
                                                             "logits": {0: "N"}},
                      opset_version=17, dynamo=False, do_constant_folding=True,
                      training=torch.onnx.TrainingMode.PRESERVE)


def main() -> int:
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    np.random.seed(SEED)
    x_train, x_test, y_train, y_test = data()
    model = train(x_train, y_train)
    export(model)
    print(f"float test accuracy {accuracy(model, x_test, y_test):.2f}% "
          f"(train {accuracy(model, x_train, y_train):.2f}%)")
    print(f"wrote {OUTPUT.relative_to(ROOT)} ({OUTPUT.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
