"""Per-bin terrain terms of a run: the diffraction loss of each bin's best server and its land-cover class.

The calibration (:mod:`coverage.measure.calibrate`) fits the diffraction weight and
per-class offsets against two things a run's rasters do not keep: per pixel, the
Bullington diffraction excess that :func:`coverage.terrain.sweep.sweep_site`
multiplies by ``[terrain] diffraction_weight``, and the land-cover class the kernel
chose the pixel's environment and extra loss by. This module recomputes both for
the pixels that hold bins, with the run's own machinery and inputs: the sectors of
``sectors.parquet`` prepared as :func:`coverage.predict.predict` prepares them
(:func:`~coverage.predict.sectors.prepare_sectors`, terrain-aware reach), the DEM
and land cover that ``raster/report.json`` names (:func:`~coverage.predict.terrain_sites.run_terrain_setup`: checked by
sha256, the embedded ones opened as ``predict`` opened them) and the run's configuration.

How (exact, not an approximation)
---------------------------------
The bins are grouped by squares of :data:`WINDOW_PX` pixels of the run's global
lattice. Each square is predicted as a tile (:func:`~coverage.predict.terrain_tile.tile_terrain`,
:func:`~coverage.predict.terrain_tile.predict_tile_terrain`) with every sector
whose reach meets it (as :func:`coverage.grid.sectors_by_tile` bins them); since a
pixel does not depend on the tile it is computed in, the signal equals the run's
raster (``repredicted_dbm`` keeps it so that :func:`bin_terrain_terms` can say how
many bins agree). The kernel hands back the best server of each pixel and the
sites' terrain tables; the same tables swept with weight 0 give, per cell, the
terrain term without diffraction. The weight enters the table linearly
(``Δ_heff + w · diffraction``), and the kernel reads the table bilinearly at the
pixel, so per bin::

    diffraction_db = (T_w(pixel) − T_0(pixel)) / w

is the diffraction excess of the bin's best server at weight 1, exactly as the
kernel added it (up to the tables' float32). A run with weight 0 sweeps weight 1
instead of using its own tables. The class is the one the kernel read
(``TileTerrain.pixel_class``: the lattice point nearest the pixel, nearest
neighbour in the land cover), 255 where the land cover has none and −1 without
land cover.

A fitted weight can change the best server of a pixel (less diffraction favours a
sector behind a ridge); the fit's linear model holds for the current best server,
which is what a Gauss-Newton step of the calibration assumes.

Speed (bench/terrain_terms.py, runs/sample: 30″ DEM, k = 8 lattice, 2 shared cores):
the sample's 2,610 drive-test bins in 4.3 s (30 squares); 8,740 bins along random walks
in 8.2 s (1,064 bins/s); 20,000 bins spread over the whole sample in 47 s (624 squares,
425 bins/s), where each square's DEM lattice read (it spans every candidate sector's
reach) and the extra sweep dominate.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from coverage.errors import InputReadError
from coverage.grid import sectors_meeting_square
from coverage.layout import RunLayout

log = logging.getLogger(__name__)

#: Edge of the squares the bins are predicted in, pixels (the sweep's cost grows with the
#: cells a square holds, the kernel's set-up with the squares).
WINDOW_PX = 64
#: Class of a bin without land cover.
NO_CLASS = -1


@dataclass
class TerrainTerms:
    """What :func:`bin_terrain_terms` returns.

    Attributes
    ----------
    bins : DataFrame
        The bins with ``diffraction_db`` (dB at weight 1; NaN where no sector serves
        the pixel), ``land_class`` (int16; −1 without land cover) and
        ``repredicted_dbm`` (the signal predicted again, float32 as the raster).
    diffraction_weight : float
        The run's ``[terrain] diffraction_weight``.
    has_dem, has_landcover : bool
    class_names : dict of int to str
        Names of the classes of the run's class table.
    agree_share : float
        Share of the bins with a prediction whose signal predicted again equals the
        raster's (1.0 for the run's own configuration and inputs).
    seconds : float
    windows : int
    """

    bins: pd.DataFrame
    diffraction_weight: float
    has_dem: bool
    has_landcover: bool
    class_names: dict = field(default_factory=dict)
    agree_share: float = float("nan")
    seconds: float = 0.0
    windows: int = 0


def _run_sectors(run_dir, techs):
    """The run's sectors as :func:`coverage.predict.predict` reads them (normalised, environments from all rows)."""
    from coverage.predict.sectors import _environments, _read_sectors
    from coverage.schema import normalise_operator, normalise_tech

    path = RunLayout(run_dir).sectors
    try:
        frame = _read_sectors(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure names the file
        raise InputReadError(f"{path}: cannot read the run's sectors: {exc}") from exc
    frame = frame.assign(tech=frame["tech"].map(normalise_tech), operator=frame["operator"].map(normalise_operator))
    frame = frame.reset_index(drop=True)
    frame = frame.assign(environment=_environments(frame) if len(frame) else frame["environment"])
    frame = frame[frame["tech"].isin(list(techs)) & frame["operator"].notna()].reset_index(drop=True)
    return frame


def table_values(tables, table_index: np.ndarray, col: np.ndarray, row: np.ndarray, k: int) -> np.ndarray:
    """Bilinear values of sites' terrain tables at global pixels, as the terrain kernel reads them, dB.

    ``tables`` is a :class:`coverage.predict.terrain_tile.SiteTables`; ``table_index``
    the table of each pixel's sector; ``k`` the lattice step in pixels.
    """
    col = np.asarray(col, dtype=np.int64)
    row = np.asarray(row, dtype=np.int64)
    li = np.floor_divide(col, k)
    lj = np.floor_divide(row, k)
    fu = (col - li * k) / k
    fv = (row - lj * k) / k
    li = li - tables.i0[table_index]
    lj = lj - tables.j0[table_index]
    ni = tables.ni[table_index]
    base = tables.offset[table_index] + lj * ni + li
    values = tables.values_db.astype(np.float64)
    last = values.size - 1
    v00 = values[base]
    v10 = np.where(fu > 0.0, values[np.minimum(base + 1, last)], v00)
    v01 = np.where(fv > 0.0, values[np.minimum(base + ni, last)], v00)
    v11 = np.where(fu > 0.0, values[np.minimum(base + ni + 1, last)], v01)
    # cells beyond a direction's reach hold +inf: the branch not taken may multiply them by 0
    with np.errstate(invalid="ignore"):
        top = v00 * (1.0 - fu) + v10 * fu
        bottom = v01 * (1.0 - fu) + v11 * fu
        return np.where(fv > 0.0, top * (1.0 - fv) + bottom * fv, top)


def bin_terrain_terms(bins: pd.DataFrame, run_dir, config, report: dict | None = None,
                      window_px: int = WINDOW_PX, progress=None) -> TerrainTerms | None:
    """The diffraction term and land-cover class of each bin's pixel (module docstring); None for a flat run.

    Parameters
    ----------
    bins : DataFrame
        Bins with ``tech, operator, col, row`` (:func:`coverage.measure.evaluate.bin_measurements`).
    run_dir : path
        The run (``raster/report.json``, ``sectors.parquet``).
    config : Config
        The run's configuration (the one its rasters were predicted with).
    report : dict, optional
        The run's ``raster/report.json``.
    window_px : int, default :data:`WINDOW_PX`
    progress : callable, optional
        ``progress(done, total)`` over the squares.

    Returns
    -------
    TerrainTerms or None
        None when the run used neither a DEM nor a land cover.

    Raises
    ------
    TerrainSourceError
        A DEM or land cover the run used is missing or has changed (sha256).
    InputReadError
        The run's sectors or report cannot be read.
    """
    from coverage.measure.evaluate import read_run_report
    from coverage.predict.sectors import prepare_sectors
    from coverage.predict.terrain_sites import tech_terrain
    from coverage.predict.terrain_tile import predict_tile_terrain, site_tables, tile_terrain

    started = time.perf_counter()
    report = read_run_report(run_dir) if report is None else report
    res = float(report["grid"]["resolution_m"])
    from coverage.predict.terrain_sites import run_terrain_setup

    setup = run_terrain_setup(report, config, res)
    if setup is None:
        return None
    weight = float(setup.diffraction_weight)
    unit_setup = setup if weight > 0.0 else replace(setup, diffraction_weight=1.0)
    flat_setup = replace(setup, diffraction_weight=0.0)
    out = bins.copy()
    diffraction = np.full(len(out), np.nan)
    land_class = np.full(len(out), NO_CLASS, dtype=np.int16)
    repredicted = np.full(len(out), np.nan, dtype=np.float32)
    techs = [t for t in report.get("techs", {}) if t in set(out["tech"].astype(str))]
    frame = _run_sectors(run_dir, techs)
    k = setup.lattice_k
    jobs = []
    for tech in techs:
        rows = np.flatnonzero((frame["tech"] == tech).to_numpy())
        if rows.size == 0:
            continue
        prep = prepare_sectors(frame.iloc[rows], tech, config, frame["environment"].to_numpy(dtype=object)[rows],
                               terrain=setup)
        mine = np.flatnonzero((out["tech"].astype(str) == tech).to_numpy()
                              & out["operator"].astype(str).isin(prep.operators).to_numpy())
        if mine.size == 0:
            continue
        cols = out["col"].to_numpy()[mine]
        rows_px = out["row"].to_numpy()[mine]
        window = pd.Series(mine).groupby([np.floor_divide(cols, window_px), np.floor_divide(rows_px, window_px)])
        for (wc, wr), index in window.indices.items():
            jobs.append((tech, prep, int(wc), int(wr), mine[index]))
    bin_col = out["col"].to_numpy()
    bin_row = out["row"].to_numpy()
    bin_operator = out["operator"].astype(str).to_numpy()
    inputs_of = {}
    for done, (tech, prep, wc, wr, index) in enumerate(jobs, start=1):
        arrays = prep.arrays
        col0, row0 = wc * window_px, wr * window_px
        near = sectors_meeting_square(arrays["x_m"], arrays["y_m"], arrays["reach_m"], col0, row0, window_px, res)
        if near.size:
            if tech not in inputs_of:
                inputs_of[tech] = tech_terrain(setup, config.profiles[tech])
            tech_inputs = inputs_of[tech]
            subset = {name: values[near] for name, values in arrays.items()}
            tile = tile_terrain(setup, tech_inputs, col0, row0, window_px, subset)
            if tile.pixel_class is not None:
                land_class[index] = tile.pixel_class[bin_row[index] - row0, bin_col[index] - col0]
            for operator in sorted(set(bin_operator[index])):
                of_op = np.flatnonzero(prep.operator_index[near] == prep.operators.index(operator))
                if of_op.size == 0:
                    continue
                at = index[bin_operator[index] == operator]
                sub = {name: values[of_op] for name, values in subset.items()}
                keep: dict = {}
                rsrp, _, _, _ = predict_tile_terrain(sub, setup, tech_inputs, tile, col0, row0, window_px,
                                                     prep.ue_height_m, keep=keep)
                best = keep["best_sector"][bin_row[at] - row0, bin_col[at] - col0]
                served = best >= 0
                at = at[served]
                best = best[served]
                repredicted[at] = rsrp[bin_row[at] - row0, bin_col[at] - col0]
                if setup.dem is None or at.size == 0:
                    diffraction[at] = 0.0
                    continue
                with_weight = keep["tables"] if weight > 0.0 else site_tables(unit_setup, tile, sub, col0, row0,
                                                                             window_px, prep.ue_height_m)
                without = site_tables(flat_setup, tile, sub, col0, row0, window_px, prep.ue_height_m)
                table = with_weight.table_of[best]
                term = (table_values(with_weight, table, bin_col[at], bin_row[at], k)
                        - table_values(without, table, bin_col[at], bin_row[at], k))
                diffraction[at] = term / (weight if weight > 0.0 else 1.0)
        if progress is not None:
            progress(done, len(jobs))
    out["diffraction_db"] = diffraction
    out["land_class"] = land_class
    out["repredicted_dbm"] = repredicted
    agree = np.nan
    if "predicted_dbm" in out:
        predicted = out["predicted_dbm"].to_numpy(dtype=np.float64)
        both = np.isfinite(predicted) | np.isfinite(repredicted)
        if both.any():
            agree = float(np.mean(predicted[both].astype(np.float32) == repredicted[both]))
            if agree < 1.0:
                log.warning("terrain terms: %.1f %% of the bins' signals predicted again differ from the run's "
                            "rasters (another configuration or sectors?)", 100.0 * (1.0 - agree))
    names = {} if setup.class_table is None else {code: item.name for code, item in setup.class_table.classes.items()}
    seconds = time.perf_counter() - started
    log.info("terrain terms of %d bins in %d squares of %d px: %.1f s", len(out), len(jobs), window_px, seconds)
    return TerrainTerms(bins=out, diffraction_weight=weight, has_dem=setup.dem is not None,
                        has_landcover=setup.landcover is not None, class_names=names, agree_share=agree,
                        seconds=seconds, windows=len(jobs))


__all__ = ["NO_CLASS", "WINDOW_PX", "TerrainTerms", "bin_terrain_terms", "table_values"]
