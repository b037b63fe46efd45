"""tinyface.testing works with every kernel backend: the in-batch losses pass check_gradients on each one that
loads here (the CUDA ones in Numba's simulator when there is no GPU: slow, so one small example each)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings

from tinyface import kernels, losses
from tinyface.testing import check_gradients, triplet_batches

LOSSES = {
    "batch_all": lambda x, b, backend: losses.batch_all_triplet_loss(x, b.labels, b.margin, backend=backend)[0],
    "batch_hard": lambda x, b, backend: losses.batch_hard_triplet_loss(x, b.labels, b.margin, backend=backend),
    "semihard": lambda x, b, backend: losses.semihard_triplet_loss(x, b.labels, b.margin, backend=backend),
}


def backend(name, marks=()):
    missing = pytest.mark.skipif(name not in kernels.available_backends(), reason=f"{name!r} not available")
    return pytest.param(name, marks=[missing, *marks], id=name)


@pytest.mark.parametrize("kind", sorted(LOSSES))
@pytest.mark.parametrize("name", [backend("numpy"), backend("numba"), backend("numba_cuda", [pytest.mark.slow]),
                                  backend("cupy", [pytest.mark.gpu])])
def test_every_backend_passes_check_gradients(name, kind):
    small = {"people": 2, "images": 2, "dim": 2} if name == "numba_cuda" else {}

    @settings(max_examples=1 if name == "numba_cuda" else 20, deadline=None, database=None)
    @given(triplet_batches(loss=kind, **small))
    def gradients_match(batch):
        check_gradients(lambda x: LOSSES[kind](x, batch, name), batch.embeddings, batch=batch)

    gradients_match()
