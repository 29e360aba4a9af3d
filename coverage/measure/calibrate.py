"""Calibration: the path-loss corrections that bring a run's prediction to its measurements.

Per technology × band × environment (the band and environment of each bin's nearest
site, the ones the prediction's sectors carry) the fit finds the two corrections of a
Standard Propagation Model tuning (research note §2), added to the model's path loss::

    L'(d) = L(d) + loss_offset_db + loss_slope_db_per_decade · log10(d / 1 km)

so that ``measured ≈ predicted − loss_offset_db − loss_slope_db_per_decade · log10(d_km)``.
The fit is robust least squares (:func:`scipy.optimize.least_squares`, Huber loss with
its scale 1.345 robust σ of the group's residuals: GPS glitches and indoor samples
weigh linearly, not squared), bounded to the limits of
:class:`coverage.config.CalibrationConfig`. The slope is fitted only for the
log-distance models (Hata, COST-231 Hata: NB-IoT's bands and RedCap n28), where the
kernel applies it, and only when the group's distances span enough (σ of
log10 d ≥ 0.15 decade); otherwise the slope stays 0 and only the offset is fitted.

Held-out blocks
---------------
Bins are assigned to square blocks of ``[evaluation] holdout_block_m`` (2 km); one
block in ``holdout_every`` (5) is held out (a fixed hash of the block's indices, so
the split repeats). Errors are correlated over hundreds of metres, so a random split
of points would let the fit see the test bins' neighbours (research note §2.4). The
fit uses the training bins only; groups with fewer than ``[evaluation]
min_bins_per_group`` training bins keep their defaults. The before/after figures
are computed on the held-out bins of every group (uncalibrated groups unchanged).

The shadow-fading σ of each technology × environment is the standard deviation of
the calibrated training residuals (it sets the cell-edge margin of the thresholds,
``[<tech>.shadow_sigma_db]``), written only for the environments fitted.

Terrain and land cover
----------------------
When the run used a DEM or a land cover, :func:`coverage.measure.terrain_terms.bin_terrain_terms`
recomputes, for each bin's pixel with the run's own sectors, inputs and kernels, the
Bullington diffraction excess of its best server (dB at weight 1: what
``[terrain] diffraction_weight`` multiplies) and the land-cover class the kernel
read there. :func:`calibrate_terrain_bins` then fits in one design matrix (one
Huber fit, bounded) the offset and slope of each group as above, one diffraction
weight for the run (``[terrain] diffraction_weight``, bounded to 0…2 as the
configuration is: the kernel reads one weight, and Bullington's loss already
scales with the wavelength, so the two technologies share it; fitted when at least
``min_bins_per_group`` training bins have ≥ 1 dB of diffraction) and, per
technology, an offset for each land-cover class with at least ``min_bins_per_group``
training bins (``[terrain.class_offsets_db.<tech>]``, added to the class's foliage
and extra loss in the kernel). Class offsets and environment offsets are collinear
(every bin has both): the commonest class of each technology is the reference
(offset 0), so the environment offsets are the model's error on it and the class
offsets the differences from it; a ridge of one pseudo-bin per class offset
resolves a class held by a single group in favour of the group. The fit is
linear in the weight for each pixel's current best server (a lower weight can hand
a pixel to a sector behind a ridge, whose signal is then higher still).
On a synthetic mountain range (tests/test_calibrate_terrain.py: truth weight 0.6,
trees +6 dB, 1 dB noise) it finds 0.60 and +6.02 dB, and the held-out RMSE falls
from 6.24 to 0.77 dB. A flat run fits as before and writes no terrain key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from coverage.config import (
    CALIBRATION_OFFSET_LIMIT_DB,
    CALIBRATION_SLOPE_LIMIT_DB_PER_DECADE,
    CalibrationConfig,
)
from coverage.errors import SchemaError
from coverage.files import atomic_output, check_writable, write_csv_bom

log = logging.getLogger(__name__)

#: Smallest spread of log10(distance) for a slope to be fitted, decades.
MIN_LOG_DISTANCE_SPREAD = 0.15
#: Huber's tuning constant: 95 % efficiency for normal residuals (Huber 1964).
HUBER_K = 1.345
#: Shortest distance in the fit, m: the Hata models are flat inside 100 m (coverage.radio.pathloss).
MIN_FIT_DISTANCE_M = 100.0

REPORT_COLUMNS = ("tech", "band", "environment", "status", "n_train", "n_test", "loss_offset_db",
                  "loss_slope_db_per_decade", "sigma_db", "test_mean_error_before_db", "test_mean_error_after_db",
                  "test_rmse_before_db", "test_rmse_after_db")


@dataclass
class Calibration:
    """What :func:`calibrate_run` returns.

    Attributes
    ----------
    config : Config
        The run's configuration with the fitted corrections (and σ) applied.
    groups : DataFrame
        One row per technology × band × environment, then per technology ``all``
        (:data:`REPORT_COLUMNS`), rounded to 0.01 dB.
    improved : bool
        The held-out RMSE of every technology with held-out bins went down (and at
        least one group was fitted).
    bins : DataFrame
        The bins used, with ``held_out`` and ``corrected_error_db``.
    paths : list of Path
        Files written.
    terrain : TerrainTerms or None
        The per-bin terrain terms of a run with terrain or land cover
        (:func:`coverage.measure.terrain_terms.bin_terrain_terms`), None for a flat run.
    """

    config: object
    groups: pd.DataFrame
    improved: bool
    bins: pd.DataFrame
    paths: list[Path] = field(default_factory=list)
    terrain: object = None


def held_out_blocks(x_m: np.ndarray, y_m: np.ndarray, block_m: float, every: int) -> np.ndarray:
    """True for the bins whose ``block_m`` square block is one of each ``every`` (a fixed hash).

    Examples
    --------
    >>> mask = held_out_blocks(np.arange(0, 100_000, 100.0), np.zeros(1000), 2000.0, 5)
    >>> bool(mask[:20].all() or not mask[:20].any())  # one 2 km block: all in or all out
    True
    """
    bx = np.floor(np.asarray(x_m) / block_m).astype(np.int64)
    by = np.floor(np.asarray(y_m) / block_m).astype(np.int64)
    mixed = (bx * 73856093) ^ (by * 19349663)  # the spatial hash of Teschner et al. 2003
    return (mixed % every) == 0


def _log_distance_model(tech: str, band: str, environment: str, profile) -> bool:
    from coverage.radio.pathloss import COST231_HATA_RURAL, OKUMURA_HATA_URBAN, select_model

    model = select_model(tech, float(profile.bands[band]), environment)
    return OKUMURA_HATA_URBAN <= model <= COST231_HATA_RURAL


def fit_group(residual_db: np.ndarray, log_distance: np.ndarray, fit_slope: bool) -> tuple[float, float]:
    """Huber fit of ``residual = −(offset + slope · log_distance)``; returns (offset, slope), dB.

    ``residual_db`` is measured − predicted, ``log_distance`` is log10(d / 1 km).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> u = rng.uniform(-0.5, 1.0, 500)
    >>> offset, slope = fit_group(-(4.0 + 2.0 * u) + rng.normal(0, 1, 500), u, True)
    >>> round(offset, 1), round(slope, 1)
    (4.0, 2.0)
    """
    from scipy.optimize import least_squares

    residual_db = np.asarray(residual_db, dtype=np.float64)
    log_distance = np.asarray(log_distance, dtype=np.float64)
    median = float(np.median(residual_db))
    robust_sigma = 1.4826 * float(np.median(np.abs(residual_db - median)))
    scale = max(HUBER_K * robust_sigma, 0.1)
    if fit_slope:
        def residuals(p):
            return residual_db + p[0] + p[1] * log_distance
        start = np.array([-median, 0.0])
        lower = [-CALIBRATION_OFFSET_LIMIT_DB, -CALIBRATION_SLOPE_LIMIT_DB_PER_DECADE]
        upper = [CALIBRATION_OFFSET_LIMIT_DB, CALIBRATION_SLOPE_LIMIT_DB_PER_DECADE]
    else:
        def residuals(p):
            return residual_db + p[0]
        start = np.array([-median])
        lower, upper = [-CALIBRATION_OFFSET_LIMIT_DB], [CALIBRATION_OFFSET_LIMIT_DB]
    start = np.clip(start, lower, upper)
    result = least_squares(residuals, start, loss="huber", f_scale=scale, bounds=(lower, upper))
    offset = float(result.x[0])
    slope = float(result.x[1]) if fit_slope else 0.0
    return offset, slope


def _stats(error: np.ndarray) -> tuple[float, float]:
    error = error[np.isfinite(error)]
    if not error.size:
        return np.nan, np.nan
    return float(error.mean()), float(np.sqrt(np.mean(error ** 2)))


def _usable_bins(bins: pd.DataFrame, config) -> pd.DataFrame:
    """The bins a fit can use, with ``log_distance``, ``residual_db`` (measured − predicted) and ``held_out``."""
    settings = config.evaluation
    usable = (bins["enough_samples"] & np.isfinite(bins["error_db"]) & np.isfinite(bins["distance_m"])
              & (bins["environment"].astype(str) != "") & (bins["site_band"].astype(str) != ""))
    used = bins[usable].copy()
    if used.empty:
        raise SchemaError("no bin with a prediction, a measurement and a site: nothing to calibrate")
    used["log_distance"] = np.log10(np.maximum(used["distance_m"].to_numpy(), MIN_FIT_DISTANCE_M) / 1000.0)
    used["residual_db"] = -used["error_db"]  # measured − predicted
    used["held_out"] = held_out_blocks(used["x_m"].to_numpy(), used["y_m"].to_numpy(),
                                       float(settings.holdout_block_m), int(settings.holdout_every))
    return used


def calibrate_bins(bins: pd.DataFrame, config, terrain=None) -> Calibration:
    """Fit the corrections on compared bins (:func:`coverage.measure.evaluate.compare_bins`).

    ``terrain`` (:class:`coverage.measure.terrain_terms.TerrainTerms`, whose ``bins``
    these are) adds the diffraction weight and the land-cover class offsets to the
    fit (:func:`calibrate_terrain_bins`); None fits offset and slope per group alone.
    Returns a :class:`Calibration` (nothing written).
    """
    if terrain is not None:
        return calibrate_terrain_bins(bins, config, terrain)
    settings = config.evaluation
    used = _usable_bins(bins, config)
    correction = np.zeros(len(used))
    corrections = dict(config.calibration.corrections)
    sigma_by_env: dict[tuple[str, str], list[np.ndarray]] = {}
    rows = []
    for (tech, band, env), index in used.groupby(["tech", "site_band", "environment"]).indices.items():
        group = used.iloc[index]
        train = ~group["held_out"].to_numpy()
        n_train, n_test = int(train.sum()), int((~train).sum())
        profile = config.profiles[tech]
        row = {"tech": tech, "band": band, "environment": env, "n_train": n_train, "n_test": n_test}
        if n_train < int(settings.min_bins_per_group) or band not in profile.bands:
            row.update(status="default (too few bins)", loss_offset_db=0.0, loss_slope_db_per_decade=0.0)
            offset = slope = 0.0
        else:
            u = group["log_distance"].to_numpy()
            fit_slope = (_log_distance_model(tech, band, env, profile)
                         and float(np.std(u[train])) >= MIN_LOG_DISTANCE_SPREAD)
            offset, slope = fit_group(group["residual_db"].to_numpy()[train], u[train], fit_slope)
            previous = corrections.get((tech, band, env), (0.0, 0.0))
            corrections[(tech, band, env)] = (round(previous[0] + offset, 3), round(previous[1] + slope, 3))
            row.update(status="fitted" if fit_slope else "fitted (offset only)", loss_offset_db=offset,
                       loss_slope_db_per_decade=slope)
            fitted_residual = group["residual_db"].to_numpy()[train] + offset + slope * u[train]
            sigma_by_env.setdefault((tech, env), []).append(fitted_residual)
            row["sigma_db"] = float(np.std(fitted_residual, ddof=1)) if n_train > 1 else np.nan
        correction[index] = offset + slope * group["log_distance"].to_numpy()
        error = group["error_db"].to_numpy()
        test = ~train
        before = _stats(error[test])
        after = _stats(error[test] - correction[index][test])
        row.update(test_mean_error_before_db=before[0], test_rmse_before_db=before[1],
                   test_mean_error_after_db=after[0], test_rmse_after_db=after[1])
        rows.append(row)
    used["corrected_error_db"] = used["error_db"].to_numpy() - correction
    improved = any(r["status"].startswith("fitted") for r in rows)
    improved = _add_totals(used, rows) and improved
    groups = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    float_columns = [c for c in REPORT_COLUMNS if c.endswith("_db") or c.endswith("_per_decade")]
    groups[float_columns] = groups[float_columns].astype(float).round(2)
    profiles = _with_sigma(config, sigma_by_env)
    calibrated = replace(config, profiles=profiles, calibration=CalibrationConfig(corrections=corrections))
    return Calibration(config=calibrated, groups=groups, improved=improved, bins=used)


def _add_totals(used: pd.DataFrame, rows: list) -> bool:
    """Append one held-out total row per technology; True when every technology's held-out RMSE fell."""
    improved = True
    for tech, group in used.groupby("tech"):
        test = group["held_out"].to_numpy()
        before = _stats(group["error_db"].to_numpy()[test])
        after = _stats(group["corrected_error_db"].to_numpy()[test])
        if not test.any() or not after[1] < before[1]:
            improved = False
        rows.append({"tech": tech, "band": "all", "environment": "all", "status": "held-out total",
                     "n_train": int((~test).sum()), "n_test": int(test.sum()),
                     "test_mean_error_before_db": before[0], "test_rmse_before_db": before[1],
                     "test_mean_error_after_db": after[0], "test_rmse_after_db": after[1]})
    return improved


def _with_sigma(config, sigma_by_env: dict) -> dict:
    """The profiles with the shadow-fading σ of each fitted technology × environment."""
    profiles = dict(config.profiles)
    for (tech, env), residuals in sigma_by_env.items():
        values = np.concatenate(residuals)
        if values.size > 1:
            sigma = float(np.clip(np.std(values, ddof=1), 0.0, 20.0))
            profile = profiles[tech]
            profiles[tech] = replace(profile, shadow_sigma_db={**profile.shadow_sigma_db, env: round(sigma, 2)})
    return profiles


# ---------------------------------------------------------------- with terrain and land cover

#: Training bins with at least this diffraction loss (dB at weight 1) for the weight to be fitted.
MIN_DIFFRACTION_DB = 1.0
#: Pseudo-bins pulling each class offset toward 0 (ridge): resolves a class that only one
#: group holds (its offset and the group's are then one and the same) in favour of the group.
CLASS_PRIOR_BINS = 1.0
#: Bounds of the diffraction weight ([terrain] diffraction_weight's range in coverage.config).
DIFFRACTION_WEIGHT_RANGE = (0.0, 2.0)
#: Land-cover codes without an offset: the rasters' nodata (its extra loss is always 0).
_UNFITTED_CLASSES = (255,)


def fit_joint(residual_db: np.ndarray, columns: np.ndarray, lower, upper, start, ridge: np.ndarray | None = None,
              scale_db=None) -> np.ndarray:
    """Huber fit of ``residual = −columns · p`` within bounds; returns ``p``.

    ``columns`` (bins × parameters) is the design matrix; ``ridge`` (per parameter,
    pseudo-bins, 0 = none) adds ``√ridge · p`` residuals pulling a parameter toward 0;
    ``scale_db`` is Huber's scale, one value or one per bin (default 1.345 robust σ
    of the residuals). Each bin's residual is divided by its scale, so with a scale
    per group and no shared column the fit is :func:`fit_group` for every group.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> d = rng.exponential(5.0, 2000)
    >>> a = np.column_stack([np.ones(2000), d])
    >>> p = fit_joint(-(3.0 + 0.4 * d) + rng.normal(0, 1, 2000), a, [-40, -1], [40, 1], [0, 0])
    >>> [round(float(v), 1) for v in p]
    [3.0, 0.4]
    """
    from scipy.optimize import least_squares

    residual_db = np.asarray(residual_db, dtype=np.float64)
    columns = np.asarray(columns, dtype=np.float64)
    n_params = columns.shape[1]
    if scale_db is None:
        centred = residual_db - np.median(residual_db)
        scale_db = HUBER_K * 1.4826 * float(np.median(np.abs(centred)))
    scale = np.maximum(np.broadcast_to(np.asarray(scale_db, dtype=np.float64), residual_db.shape), 0.1)
    ridge = np.zeros(n_params) if ridge is None else np.asarray(ridge, dtype=np.float64)
    penalised = np.flatnonzero(ridge > 0)
    prior = np.zeros((penalised.size, n_params))
    # a pseudo-bin of the typical scale
    prior[np.arange(penalised.size), penalised] = np.sqrt(ridge[penalised]) / float(np.median(scale))
    scaled_residual = residual_db / scale
    scaled_columns = columns / scale[:, None]
    jacobian = np.vstack([scaled_columns, prior])

    def residuals(p):
        return np.concatenate([scaled_residual + scaled_columns @ p, prior @ p])

    lower = np.asarray(lower, dtype=np.float64)
    upper = np.asarray(upper, dtype=np.float64)
    start = np.clip(np.asarray(start, dtype=np.float64), lower, upper)
    result = least_squares(residuals, start, jac=lambda p: jacobian, loss="huber", f_scale=1.0,
                           bounds=(lower, upper), x_scale="jac")
    return result.x


def calibrate_terrain_bins(bins: pd.DataFrame, config, terrain) -> Calibration:
    """The fit of a run with terrain or land cover: one design matrix for every parameter.

    Per technology × band × environment with enough training bins, the loss offset
    and (log-distance models, enough spread) the slope, as :func:`calibrate_bins`;
    with a DEM, one diffraction weight for the run (the kernel reads one ``[terrain]
    diffraction_weight``; Bullington's loss already scales with the wavelength);
    with land cover, per technology an offset for each land-cover class with
    enough training bins. They are fitted together (one Huber fit; each bin's
    residual divided by its group's Huber scale, as :func:`fit_group` scales it, so
    that without terrain columns the fit is the groups' own), so that the class
    offsets and the environment offsets do not take each other's share. Identifiability:
    the commonest class of each technology is the reference (offset 0: the
    environment offsets are the model's error there, the class offsets differences
    from it), and each class offset carries a ridge of :data:`CLASS_PRIOR_BINS`
    pseudo-bins, so a class that only one group holds leaves its level to the group.
    Groups below ``min_bins_per_group`` keep no offset of their own, and their bins
    do not enter the fit; the fitted weight and class offsets apply to them too.
    """
    settings = config.evaluation
    used = _usable_bins(bins, config)
    min_bins = int(settings.min_bins_per_group)
    n = len(used)
    train = ~used["held_out"].to_numpy()
    residual = used["residual_db"].to_numpy(dtype=np.float64)
    u = used["log_distance"].to_numpy(dtype=np.float64)
    diffraction = np.nan_to_num(used["diffraction_db"].to_numpy(dtype=np.float64), nan=0.0)
    land_class = used["land_class"].to_numpy(dtype=np.int64)
    tech_of = used["tech"].astype(str).to_numpy()

    columns: list[np.ndarray] = []
    lower: list[float] = []
    upper: list[float] = []
    start: list[float] = []
    ridge: list[float] = []
    names: list[tuple] = []

    def add(kind, key, column, lo, hi, first=0.0, prior=0.0):
        columns.append(column)
        lower.append(lo)
        upper.append(hi)
        start.append(first)
        ridge.append(prior)
        names.append((kind, key))

    group_rows = {}
    in_fit = np.zeros(n, dtype=bool)
    row_scale = np.ones(n)
    for (tech, band, env), index in used.groupby(["tech", "site_band", "environment"]).indices.items():
        mine = np.zeros(n, dtype=bool)
        mine[index] = True
        n_train = int((mine & train).sum())
        profile = config.profiles[tech]
        key = (tech, band, env)
        group_rows[key] = {"tech": tech, "band": band, "environment": env, "n_train": n_train,
                           "n_test": int((mine & ~train).sum()), "index": index}
        if n_train < min_bins or band not in profile.bands:
            group_rows[key]["status"] = "default (too few bins)"
            continue
        in_fit |= mine
        median = float(np.median(residual[mine & train]))
        # fit_group's Huber scale, per group (1.345 robust σ of its training residuals)
        row_scale[mine] = HUBER_K * 1.4826 * float(np.median(np.abs(residual[mine & train] - median)))
        add("offset", key, mine.astype(np.float64), -CALIBRATION_OFFSET_LIMIT_DB, CALIBRATION_OFFSET_LIMIT_DB,
            first=-median)
        fit_slope = (_log_distance_model(tech, band, env, profile)
                     and float(np.std(u[mine & train])) >= MIN_LOG_DISTANCE_SPREAD)
        if fit_slope:
            add("slope", key, np.where(mine, u, 0.0), -CALIBRATION_SLOPE_LIMIT_DB_PER_DECADE,
                CALIBRATION_SLOPE_LIMIT_DB_PER_DECADE)
        group_rows[key]["status"] = "fitted" if fit_slope else "fitted (offset only)"

    fit_rows = in_fit & train
    weight0 = float(terrain.diffraction_weight)
    shadowed = int((fit_rows & (diffraction >= MIN_DIFFRACTION_DB)).sum())
    weight_status = "no DEM"
    if terrain.has_dem:
        if shadowed >= min_bins and fit_rows.any():
            add("weight", "all", diffraction, DIFFRACTION_WEIGHT_RANGE[0] - weight0,
                DIFFRACTION_WEIGHT_RANGE[1] - weight0)
            weight_status = "fitted"
        else:
            weight_status = "default (too few bins)"

    class_rows = []
    if terrain.has_landcover:
        for tech in sorted(set(tech_of)):
            of_tech = tech_of == tech
            counts = pd.Series(land_class[of_tech & fit_rows]).value_counts()
            counts = counts[~counts.index.isin([*_UNFITTED_CLASSES, -1])]
            reference = int(counts.index[0]) if len(counts) else None
            previous = config.terrain.class_offsets(tech)
            for code in sorted(set(land_class[of_tech]) - {-1}):
                code = int(code)
                mine = of_tech & (land_class == code)
                row = {"tech": tech, "band": "all", "environment": f"class {code}",
                       "class_name": terrain.class_names.get(code, ""), "code": code,
                       "n_train": int((mine & train).sum()), "n_test": int((mine & ~train).sum()), "mask": mine}
                n_fit = int(counts.get(code, 0))
                if code == reference:
                    row["status"] = "reference (offset 0)"
                elif code in _UNFITTED_CLASSES or n_fit < min_bins:
                    row["status"] = "default (too few bins)"
                else:
                    before = previous.get(code, 0.0)
                    add("class", (tech, code), mine.astype(np.float64), -CALIBRATION_OFFSET_LIMIT_DB - before,
                        CALIBRATION_OFFSET_LIMIT_DB - before, prior=CLASS_PRIOR_BINS)
                    row["status"] = "fitted"
                class_rows.append(row)

    params = np.zeros(len(names))
    if names and fit_rows.any():
        design = np.column_stack(columns)
        params = fit_joint(residual[fit_rows], design[fit_rows], lower, upper, start, np.asarray(ridge),
                           row_scale[fit_rows])
    fitted = dict(zip(names, params.tolist(), strict=True))
    design_all = np.column_stack(columns) if columns else np.zeros((n, 0))
    correction = design_all @ params if columns else np.zeros(n)
    error = used["error_db"].to_numpy(dtype=np.float64)
    used["corrected_error_db"] = error - correction

    rows = []
    corrections = dict(config.calibration.corrections)
    sigma_by_env: dict[tuple[str, str], list[np.ndarray]] = {}
    for key, row in group_rows.items():
        index = row.pop("index")
        offset = fitted.get(("offset", key), 0.0)
        slope = fitted.get(("slope", key), 0.0)
        row.update(loss_offset_db=offset, loss_slope_db_per_decade=slope)
        if ("offset", key) in fitted:
            previous = corrections.get(key, (0.0, 0.0))
            corrections[key] = (round(previous[0] + offset, 3), round(previous[1] + slope, 3))
            mine_train = index[train[index]]
            fitted_residual = residual[mine_train] + correction[mine_train]
            sigma_by_env.setdefault((key[0], key[2]), []).append(fitted_residual)
            row["sigma_db"] = float(np.std(fitted_residual, ddof=1)) if mine_train.size > 1 else np.nan
        _held_out_figures(row, error[index], correction[index], ~train[index])
        rows.append(row)
    terrain_config = config.terrain
    if weight_status != "no DEM":
        delta = fitted.get(("weight", "all"), 0.0)
        weight = round(float(np.clip(weight0 + delta, *DIFFRACTION_WEIGHT_RANGE)), 3)
        row = {"tech": "all", "band": "all", "environment": "terrain", "n_train": shadowed,
               "n_test": int((in_fit & ~train & (diffraction >= MIN_DIFFRACTION_DB)).sum()),
               "status": "fitted" if weight_status == "fitted" else weight_status, "diffraction_weight": weight}
        shadow = diffraction >= MIN_DIFFRACTION_DB
        _held_out_figures(row, error[shadow], correction[shadow], ~train[shadow])
        rows.append(row)
        if weight_status == "fitted":
            terrain_config = replace(terrain_config, diffraction_weight=weight)
    offsets = {tech: dict(by_code) for tech, by_code in terrain_config.class_offsets_db.items()}
    for row in class_rows:
        mask = row.pop("mask")
        tech, code = row["tech"], row.pop("code")
        delta = fitted.get(("class", (tech, code)), 0.0)
        row["loss_offset_db"] = delta
        if ("class", (tech, code)) in fitted:
            total = round(offsets.get(tech, {}).get(code, 0.0) + delta, 2)
            offsets.setdefault(tech, {})[code] = total
        name = row.pop("class_name")
        row["environment"] = f"class {code}" + (f" {name}" if name else "")
        _held_out_figures(row, error[mask], correction[mask], ~train[mask])
        rows.append(row)
    terrain_config = replace(terrain_config, class_offsets_db={
        tech: dict(sorted(by_code.items())) for tech, by_code in sorted(offsets.items()) if by_code})
    improved = _add_totals(used, rows) and bool(fitted)
    report_columns = [*REPORT_COLUMNS, "diffraction_weight"]
    groups = pd.DataFrame(rows, columns=report_columns)
    float_columns = [c for c in REPORT_COLUMNS if c.endswith("_db") or c.endswith("_per_decade")]
    groups[float_columns] = groups[float_columns].astype(float).round(2)
    groups["diffraction_weight"] = groups["diffraction_weight"].astype(float).round(3)
    calibrated = replace(config, profiles=_with_sigma(config, sigma_by_env), terrain=terrain_config,
                         calibration=CalibrationConfig(corrections=corrections))
    return Calibration(config=calibrated, groups=groups, improved=improved, bins=used)


def _held_out_figures(row: dict, error: np.ndarray, correction: np.ndarray, test: np.ndarray) -> None:
    before = _stats(error[test])
    after = _stats(error[test] - correction[test])
    row.update(test_mean_error_before_db=before[0], test_rmse_before_db=before[1],
               test_mean_error_after_db=after[0], test_rmse_after_db=after[1])


def calibrate_run(run_dir, measurements, out_path=None, config=None, *, crs=None,
                  overwrite: bool = False) -> Calibration:
    """Fit the path-loss corrections of a run from measurements; write the TOML when they help.

    Parameters
    ----------
    run_dir : path
        A run directory (``covmap build``).
    measurements : GeoDataFrame, path or sequence of paths
        Accepted measurements, or files (as :func:`coverage.measure.evaluate.evaluate_run`).
    out_path : path, optional
        The TOML to write (the run's configuration with ``[calibration]``, the
        fitted σ and, over terrain or land cover, ``[terrain] diffraction_weight``
        and ``[terrain.class_offsets_db.<tech>]``; ``covmap build --config`` reads
        it). Written only when the held-out error improves; None writes no TOML.
    config : Config or path, optional
        The run's configuration, default the one its manifest records (its
        corrections, if any, are the starting point).
    crs : None, str or mapping
        Datum of raw measurement files.
    overwrite : bool, default False
        Replace an existing ``out_path``.

    Returns
    -------
    Calibration
        ``improved`` False: nothing was written but ``evaluation/calibration.csv``.

    Raises
    ------
    FileOverwriteError
        ``out_path`` exists and ``overwrite`` is False (checked before any work).
    SchemaError
        No bin to fit.
    TerrainSourceError
        The run used a DEM or land cover that is missing or changed since (sha256).
    """
    from coverage.measure.evaluate import (
        accepted_measurements,
        bin_measurements,
        compare_bins,
        evaluation_dir,
        read_run_report,
        run_config,
    )
    if out_path is not None:
        check_writable(out_path, overwrite)
    config = run_config(run_dir, config)
    report = read_run_report(run_dir)
    measurements = accepted_measurements(run_dir, measurements, crs).measurements
    bins = bin_measurements(measurements, float(report["grid"]["resolution_m"]),
                            config.evaluation.min_samples_per_bin)
    bins = compare_bins(bins, run_dir, config, report=report)
    from coverage.measure.terrain_terms import bin_terrain_terms

    compared = bins["enough_samples"].to_numpy() & np.isfinite(bins["predicted_dbm"].to_numpy())
    terrain = bin_terrain_terms(bins[compared], run_dir, config, report)
    calibration = calibrate_bins(bins if terrain is None else terrain.bins, config, terrain)
    calibration.terrain = terrain
    out = evaluation_dir(run_dir)
    out.mkdir(parents=True, exist_ok=True)
    calibration.paths.append(write_csv_bom(calibration.groups, out / "calibration.csv"))
    if calibration.improved and out_path is not None:
        text = ("# covmap calibrate: the run's configuration with path-loss corrections fitted to measurements\n"
                f"# (held-out blocks; see {out / 'calibration.csv'})\n" + calibration.config.to_toml())
        with atomic_output(out_path, overwrite) as tmp:
            tmp.write_text(text, encoding="utf-8")
        calibration.paths.append(Path(out_path))
    log.info("calibration: %d groups, held-out error %s", len(calibration.groups),
             "improved" if calibration.improved else "not improved")
    return calibration


__all__ = ["Calibration", "calibrate_bins", "calibrate_run", "calibrate_terrain_bins", "fit_group", "fit_joint",
           "held_out_blocks"]
