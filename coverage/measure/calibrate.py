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

The diffraction weight and per-clutter offsets are not fitted: a run's rasters do not
keep the per-pixel diffraction loss or land-cover class they would be fitted against.
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
    """

    config: object
    groups: pd.DataFrame
    improved: bool
    bins: pd.DataFrame
    paths: list[Path] = field(default_factory=list)


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


def calibrate_bins(bins: pd.DataFrame, config) -> Calibration:
    """Fit the corrections on compared bins (:func:`coverage.measure.evaluate.compare_bins`).

    Returns a :class:`Calibration` (nothing written).
    """
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
    groups = pd.DataFrame(rows, columns=list(REPORT_COLUMNS))
    float_columns = [c for c in REPORT_COLUMNS if c.endswith("_db") or c.endswith("_per_decade")]
    groups[float_columns] = groups[float_columns].astype(float).round(2)
    profiles = dict(config.profiles)
    for (tech, env), residuals in sigma_by_env.items():
        values = np.concatenate(residuals)
        if values.size > 1:
            sigma = float(np.clip(np.std(values, ddof=1), 0.0, 20.0))
            profile = profiles[tech]
            profiles[tech] = replace(profile, shadow_sigma_db={**profile.shadow_sigma_db, env: round(sigma, 2)})
    calibrated = replace(config, profiles=profiles, calibration=CalibrationConfig(corrections=corrections))
    return Calibration(config=calibrated, groups=groups, improved=improved, bins=used)


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
        The TOML to write (the run's configuration with ``[calibration]`` and the
        fitted σ; ``covmap build --config`` reads it). Written only when the
        held-out error improves; None writes no TOML.
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
    calibration = calibrate_bins(bins, config)
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


__all__ = ["Calibration", "calibrate_bins", "calibrate_run", "fit_group", "held_out_blocks"]
