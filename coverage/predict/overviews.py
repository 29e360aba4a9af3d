"""A tile's share of every overview level of the rasters (see "Execution" in :mod:`coverage.predict`)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from coverage.layout import RSRP_NODATA_DBM
from coverage.predict.kernel import _RSRP_STEPS_PER_DB


def overview_factors(width_px: int, height_px: int, tile_size_px: int, block_px: int = 512) -> list[int]:
    """Decimation factors of the rasters' overviews: 2, 4, … (GDAL's COG rule).

    Halving goes on while the previous level is at least one ``block_px`` block
    wide; a factor must divide the tile, since each tile computes its own share of
    every level (:func:`tile_overviews`).

    >>> overview_factors(48_640, 51_712, 512)
    [2, 4, 8, 16, 32, 64, 128]
    >>> overview_factors(4096, 4096, 512), overview_factors(600, 300, 16), overview_factors(400, 400, 512)
    ([2, 4, 8, 16], [2], [])
    """
    factors = []
    factor = 2
    while tile_size_px % factor == 0 and max(width_px, height_px) / (factor // 2) >= block_px:
        factors.append(factor)
        factor *= 2
    return factors


def tile_overviews(rsrp: np.ndarray, cls: np.ndarray, factors: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """One tile's share of each overview level: ``[(rsrp, class)]`` per factor.

    rsrp: the mean of the pixels that are not nodata (nodata where all are; sums in
    float64, so every level is exact whatever the order, in :data:`RSRP_STEP_DB`
    steps), as GDAL's ``average``; class: the pixel nearest the centre of each
    ``factor × factor`` square, as GDAL's ``nearest`` (classes are not averaged).
    """
    valid = rsrp != RSRP_NODATA_DBM
    total, count = np.where(valid, rsrp, 0.0), valid.astype(np.int64)
    levels = []
    done = 1
    for factor in factors:
        while done < factor:
            total, count = _halve_sums(total, count)
            done *= 2
        levels.append((_level_mean(total, count, RSRP_NODATA_DBM),
                       np.ascontiguousarray(cls[factor // 2::factor, factor // 2::factor])))
    return levels


# The overview sums are in numba: numpy's strided ``reshape(...).sum(axis=(1, 3))`` cost a
# fifth of a national tile task. Every rsrp is a whole number of 1/128 dB steps, so
# the float64 sums are exact in any order.
@njit(cache=True, nogil=True)
def _halve_sums(total, count):
    """Sums of ``total`` and ``count`` over each 2 × 2 square."""
    h, w = total.shape[0] // 2, total.shape[1] // 2
    out_total = np.zeros((h, w), dtype=np.float64)
    out_count = np.zeros((h, w), dtype=np.int64)
    for r in range(2 * h):
        for c in range(2 * w):
            out_total[r // 2, c // 2] += total[r, c]
            out_count[r // 2, c // 2] += count[r, c]
    return out_total, out_count


@njit(cache=True, nogil=True)
def _level_mean(total, count, nodata):
    """Mean in whole :data:`RSRP_STEP_DB` steps (float32), ``nodata`` where nothing is valid."""
    out = np.empty(total.shape, dtype=np.float32)
    for r in range(total.shape[0]):
        for c in range(total.shape[1]):
            if count[r, c] > 0:
                out[r, c] = np.float32(np.rint(total[r, c] / count[r, c] * _RSRP_STEPS_PER_DB) / _RSRP_STEPS_PER_DB)
            else:
                out[r, c] = np.float32(nodata)
    return out
