"""The face CNNs: an image (N, C, H, W) in, a D-dimensional unit vector f(x) out (FaceNet's embedding).

The reference network (257,120 parameters, 96.8 MFLOP per 64x64 grey image):

    [conv3x3 (no bias) - BatchNorm - ReLU - maxpool2] x 3,  conv3x3 - BatchNorm - ReLU - global average pool,
    linear 128 -> D,  L2 normalisation
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from tinyface.nn import layers as nn
from tinyface.nn.module import Module
from tinyface.tensor import Tensor


class FaceCNN(Module):
    """A VGG-like stack of conv-BN-ReLU blocks, each but the last halving the image, then an embedding layer.

    `normalize=False` leaves the embedding unnormalised (for the lesson on the trivial collapse)."""

    def __init__(
        self,
        in_channels: int = 1,
        widths: Sequence[int] = (32, 64, 128, 128),
        embedding_dim: int = 128,
        normalize: bool = True,
        rng: np.random.Generator | None = None,
    ) -> None:
        super().__init__()
        self.config = {"name": "FaceCNN", "in_channels": in_channels, "widths": list(widths),
                       "embedding_dim": embedding_dim, "normalize": normalize}
        blocks: list[Module] = []
        channels = in_channels
        for i, width in enumerate(widths):
            blocks += [nn.Conv2d(channels, width, 3, padding=1, bias=False, rng=rng), nn.BatchNorm2d(width),
                       nn.ReLU()]
            if i < len(widths) - 1:
                blocks.append(nn.MaxPool2d(2))
            channels = width
        self.features = nn.Sequential(*blocks, nn.GlobalAvgPool2d())
        self.embedding = nn.Linear(channels, embedding_dim, rng=rng)
        self.normalize = nn.L2Normalize() if normalize else None

    def forward(self, images: Tensor) -> Tensor:
        x = self.embed_unnormalized(images)
        return self.normalize(x) if self.normalize is not None else x

    def embed_unnormalized(self, images: Tensor) -> Tensor:
        """The embedding before L2 normalisation (its norm is what collapses without a margin)."""
        if images.ndim != 4 or images.shape[1] != self.config["in_channels"]:
            raise ValueError(
                f"FaceCNN expects images of shape (N, {self.config['in_channels']}, H, W), got {images.shape}"
            )
        return self.embedding(self.features(images))


def reference_cnn(in_channels: int = 1, embedding_dim: int = 128, rng: np.random.Generator | None = None) -> FaceCNN:
    """The reference face CNN (Olivetti, 64x64 grey)."""
    return FaceCNN(in_channels, (32, 64, 128, 128), embedding_dim, rng=rng)


def lfw_cnn(in_channels: int = 3, embedding_dim: int = 128, rng: np.random.Generator | None = None) -> FaceCNN:
    """A somewhat larger variant for LFW: one more block and wider last layers."""
    return FaceCNN(in_channels, (32, 64, 128, 256, 256), embedding_dim, rng=rng)


def build_model(config: dict[str, Any], rng: np.random.Generator | None = None) -> FaceCNN:
    """Rebuild a model from the `config` saved in a checkpoint."""
    if config.get("name") != "FaceCNN":
        raise ValueError(f"unknown architecture {config.get('name')!r} in checkpoint (expected 'FaceCNN')")
    return FaceCNN(config["in_channels"], config["widths"], config["embedding_dim"],
                   config.get("normalize", True), rng=rng)
