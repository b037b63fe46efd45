"""Explicit randomness: one seeded `numpy.random.Generator` that layers use when none is given."""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the default generator (weight initialisation, dropout) so that a run can be reproduced."""
    global _generator
    _generator = np.random.default_rng(seed)
    return _generator


def default_generator() -> np.random.Generator:
    return _generator
