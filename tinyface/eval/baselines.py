"""Baselines a learned embedding has to beat, on the same squared-L2 scale [0, 4] (unit-length embeddings)."""

from __future__ import annotations

import numpy as np

from tinyface.eval.distances import l2_normalize


def pixel_embeddings(images: np.ndarray) -> np.ndarray:
    """Raw pixels as embeddings: each image (C, H, W) flattened and L2-normalised, float32 (N, C*H*W)."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {images.shape}")
    return l2_normalize(images.reshape(len(images), -1).astype(np.float32))


class Eigenfaces:
    """PCA of face pixels (Turk & Pentland, 1991): project on the top principal components, then L2-normalise.

    fit: mean face m and the first n_components right singular vectors V of the centred training pixels
    X - m = U S V^T (fit on training identities only). transform: l2_normalize((x - m) V^T).
    """

    def __init__(self, n_components: int):
        if n_components < 1:
            raise ValueError(f"n_components must be positive, got {n_components}")
        self.n_components = n_components
        self.mean: np.ndarray | None = None
        self.components: np.ndarray | None = None  # (n_components, C*H*W), orthonormal rows
        self.explained_variance_ratio: np.ndarray | None = None

    def fit(self, images: np.ndarray) -> Eigenfaces:
        x = _pixels(images)
        if self.n_components > min(x.shape):
            raise ValueError(
                f"n_components={self.n_components} exceeds min(images, pixels) = {min(x.shape)} "
                f"for {x.shape[0]} "
                f"training images of {x.shape[1]} pixels"
            )
        self.mean = x.mean(axis=0)
        centred = (x - self.mean).astype(np.float64)
        if len(centred) < centred.shape[1]:
            # fewer images than pixels (the usual case): the eigenvectors u of the small N x N Gram matrix X X^T
            # give the principal axes X^T u / ||X^T u||, with the same eigenvalues (Turk and Pentland's trick)
            variance, u = np.linalg.eigh(centred @ centred.T)
            order = np.argsort(variance)[::-1]
            variance, u = np.maximum(variance[order], 0), u[:, order]
            axes = (centred.T @ u[:, : self.n_components]).T
            self.components = l2_normalize(axes)
        else:
            _, singular_values, vt = np.linalg.svd(centred, full_matrices=False)
            self.components = vt[: self.n_components]
            variance = singular_values**2
        self.components = self.components.astype(x.dtype)
        self.explained_variance_ratio = variance[: self.n_components] / variance.sum()
        return self

    def transform(self, images: np.ndarray) -> np.ndarray:
        """Unit-length embeddings (N, n_components), float32."""
        if self.components is None:
            raise RuntimeError("call fit(train_images) before transform")
        x = _pixels(images)
        if x.shape[1] != self.mean.shape[0]:
            raise ValueError(f"images have {x.shape[1]} pixels, the model was fit on {self.mean.shape[0]}")
        return l2_normalize((x - self.mean) @ self.components.T)

    def fit_transform(self, images: np.ndarray) -> np.ndarray:
        return self.fit(images).transform(images)


def _pixels(images: np.ndarray) -> np.ndarray:
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"expected images (N, C, H, W), got shape {images.shape}")
    x = images.reshape(len(images), -1).astype(np.float32)
    return x / 255 if images.dtype == np.uint8 else x
