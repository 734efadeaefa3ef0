"""Tolerances for comparing float results computed in different batchings, orders or dtypes (stated once, here).

float32 has a unit roundoff of 2**-24 (6e-8). A sum of K terms reordered (another batch composition, a BLAS kernel
that blocks differently, a padded row) moves by about sqrt(K) * 6e-8 relative to the sum of magnitudes; with K up to
a few thousand (hidden sizes, sequence lengths, feature counts) that is ~3e-6. One forward pass chains a few such
reductions, so values that went through a model (embeddings, log-probabilities, scores) are compared at 1e-5
relative and 1e-4 absolute (log-probs of about -10 carry 1e-5 relative = 1e-4 absolute). bf16 keeps 8 bits of
mantissa (unit roundoff 2**-8 = 4e-3): results of a bf16 model are compared at 2e-2 relative.
Exact arithmetic (selection orders, counts, integer ids) is always compared with equality.
"""

from __future__ import annotations

import numpy as np

F32_RTOL = 1e-5  # float32 math, another batching or summation order
F32_ATOL = 1e-6  # same, for values near zero (plain arithmetic: means, dot products of unit-scale vectors)
MODEL_F32_ATOL = 1e-4  # float32 values that went through a model's layers (log-probs, hidden-state means)
BF16_RTOL = 2e-2  # results computed by a bf16 model


def assert_f32_close(actual, expected, *, atol: float = F32_ATOL, rtol: float = F32_RTOL) -> None:
    """`actual` equals `expected` up to float32 reordering error (see the module docstring)."""
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64),
                               rtol=rtol, atol=atol)
