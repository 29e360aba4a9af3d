"""Each candidate site through the prediction engine: the pixels it would cover.

A candidate's three sectors are prepared exactly as :func:`coverage.predict.predict`
prepares submitted ones (:func:`~coverage.predict.sectors.prepare_sectors`, with the
run's configuration, terrain and land cover) and evaluated on the run's global
lattice, each on the square holding its reach, with the same kernels
(:func:`~coverage.predict.kernel.predict_tile`, or
:func:`~coverage.predict.terrain_tile.predict_tile_terrain` over terrain). The
best server among a site's own sectors decides its class per pixel, as it would in
a run where the site is the only one of its operator there; a pixel the site covers
stays covered whatever the other sites do, since a run's class is that of the
strongest server. So the union of the chosen sites' pixels and the run's own
coverage is what a run with the sites added predicts (no interference is modelled).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from coverage.layout import CLASS_DEEP, CLASS_OUTDOOR
from coverage.pixel_weights import GridWindow


def coverage_sets(sectors, tech: str, config, terrain, window: GridWindow,
                  progress: Callable[[int, int], None] | None = None) -> list[np.ndarray]:
    """Per candidate site (``sectors["source_row"]`` 1..n), the flat indices of ``window``'s pixels it covers.

    Parameters
    ----------
    sectors : geopandas.GeoDataFrame
        Candidate sectors (:func:`coverage.plan.candidates.site_sectors`), one operator.
    tech : str
    config : Config
    terrain : TerrainSetup or None
        The run's terrain and land cover (:func:`coverage.predict.terrain_sites.resolve_terrain`).
    window : GridWindow
        The pixels that count; a candidate's coverage elsewhere is not kept.
    progress : callable, optional
        ``progress(done, total)`` after each tile.

    Returns
    -------
    list of numpy.ndarray
        ``n`` sorted int64 arrays (class outdoor or deep).
    """
    from coverage.predict.kernel import predict_tile
    from coverage.predict.sectors import prepare_sectors

    n_sites = int(sectors["source_row"].max()) if len(sectors) else 0
    if n_sites == 0:
        return []
    prep = prepare_sectors(sectors, tech, config, sectors["environment"].to_numpy(dtype=object), terrain=terrain)
    arrays = prep.arrays
    site_of = _site_of_sector(sectors, arrays)
    reach = np.maximum(arrays["reach_m"], arrays.get("site_reach_m", arrays["reach_m"]))
    res = window.resolution_m
    tech_inputs = None
    if terrain is not None:
        from coverage.predict.terrain_sites import tech_terrain
        from coverage.predict.terrain_tile import predict_tile_terrain, tile_terrain

        tech_inputs = tech_terrain(terrain, config.profiles[tech])
    order = np.argsort(site_of, kind="stable")
    starts = np.searchsorted(site_of[order], np.arange(n_sites + 1))
    covered = []
    for site in range(n_sites):
        rows = order[starts[site]:starts[site + 1]]
        subset = {name: values[rows] for name, values in arrays.items()}
        box = _reach_box_px(subset["x_m"], subset["y_m"], reach[rows], res, window)
        if box is None:
            covered.append(np.zeros(0, dtype=np.int64))
            continue
        col0, row0, size = box
        if terrain is None:
            _, cls, _ = predict_tile(subset, col0, row0, size, size, res, prep.ue_height_m)
        else:
            inputs = tile_terrain(terrain, tech_inputs, col0, row0, size, subset)
            _, cls, _, _ = predict_tile_terrain(subset, terrain, tech_inputs, inputs, col0, row0, size,
                                                prep.ue_height_m)
        covered.append(np.sort(_window_indices(cls, col0, row0, window)))
        if progress is not None:
            progress(site + 1, n_sites)
    return covered


def _reach_box_px(x_m, y_m, reach_m, resolution_m: float, window: GridWindow) -> tuple[int, int, int] | None:
    """``(col0, row0, size)`` of the square of pixels holding a site's reach discs inside ``window``, or None.

    Each candidate is evaluated on its own square of the global lattice: outputs do not
    depend on the block a pixel is computed in (coverage.grid), only the work does.
    """
    res = resolution_m
    c0 = max(int(np.floor(float((x_m - reach_m).min()) / res)), window.col0)
    c1 = min(int(np.ceil(float((x_m + reach_m).max()) / res)), window.col0 + window.width)
    r0 = max(int(np.floor(-float((y_m + reach_m).max()) / res)), window.row0)
    r1 = min(int(np.ceil(-float((y_m - reach_m).min()) / res)), window.row0 + window.height)
    if c1 <= c0 or r1 <= r0:
        return None
    size = max(c1 - c0, r1 - r0, 16)
    return c0, r0, size


def _site_of_sector(sectors, arrays) -> np.ndarray:
    """0-based candidate site of each prepared sector (prepare_sectors reorders them).

    Sites are told apart by their projected position, which prepare_sectors computes from
    the same longitudes and latitudes for every sector of a site.
    """
    from coverage.grid import project_lonlat

    x, y = project_lonlat(sectors.geometry.x.to_numpy(), sectors.geometry.y.to_numpy())
    key = pd.Series(sectors["source_row"].to_numpy() - 1,
                    index=pd.MultiIndex.from_arrays([np.asarray(x), np.asarray(y)]))
    key = key[~key.index.duplicated()]
    return key.reindex(pd.MultiIndex.from_arrays([arrays["x_m"], arrays["y_m"]])).to_numpy(dtype=np.int64)


def _window_indices(cls: np.ndarray, col0: int, row0: int, window: GridWindow) -> np.ndarray:
    """Flat window indices of a tile's covered pixels (class outdoor or deep) inside ``window``."""
    rows, cols = np.nonzero((cls == CLASS_OUTDOOR) | (cls == CLASS_DEEP))
    wr = rows + row0 - window.row0
    wc = cols + col0 - window.col0
    keep = (wr >= 0) & (wr < window.height) & (wc >= 0) & (wc < window.width)
    return (wr[keep].astype(np.int64) * window.width + wc[keep]).astype(np.int64)
