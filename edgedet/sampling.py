"""The one sampling rule: which images a seeded sample of `n` holds.

`edgedet.data.sample` (datasets) and `edgedet.sources.sample_indices`
(image sources, calibration) both draw with `draw_indices`, so the same
seed picks the same images everywhere. A module of its own because
`edgedet.data` must not import `edgedet.sources` (that was an import cycle).
"""

import numpy as np


def draw_indices(total, n, seed=0):
    """`n` distinct indices of `range(total)`, sorted, fixed by `seed`.

    Drawn without replacement with numpy's PCG64 generator
    (`np.random.default_rng(seed)`), so the result does not depend on the
    platform or on how many samples are read afterwards.

    Args:
        total: int. Size of the population.
        n: int. Indices to draw, `0 <= n <= total` (the callers check).
        seed: int. Defaults to 0.

    Returns:
        A sorted list of Python ints.
    """
    if not n:
        return []
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(total, size=n, replace=False))
