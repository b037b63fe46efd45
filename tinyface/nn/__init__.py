"""Layers and networks (Modules). `tinyface.nn.functional` has the layer ops as plain functions."""

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
