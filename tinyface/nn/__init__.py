"""Layers and networks, built on the engine (tinyface.tensor, tinyface.ops).

Open module.py first (Module, Parameter: the bookkeeping of weights), then functional.py (the layer ops, each a
Function with its forward beside its backward: conv2d by im2col, pooling, batch norm, normalisation, dropout),
layers.py (the Modules that hold their weights), models.py (the face CNNs) and optim.py (SGD, Adam, AdamW,
Adagrad, schedules). _compiled.py holds the few loops compiled with Numba for speed; functional.py keeps the NumPy
reference of each.
"""

from tinyface.nn import functional
from tinyface.nn.layers import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dropout,
    Flatten,
    GlobalAvgPool2d,
    L2Normalize,
    Linear,
    MaxPool2d,
    ReLU,
    Sequential,
    he_normal,
)
from tinyface.nn.module import Module, Parameter

__all__ = [
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Dropout",
    "Flatten",
    "GlobalAvgPool2d",
    "L2Normalize",
    "Linear",
    "MaxPool2d",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "functional",
    "he_normal",
]
