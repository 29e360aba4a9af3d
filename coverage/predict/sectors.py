"""Sector preparation: the sectors of a technology as kernel arrays, and ``predict``'s arguments checked.

Projection, profile defaults, model choice, reach (capped at the radio horizon)
and the canonical order of the sectors; the report's thresholds entry; the
configuration and the technologies / operators asked for.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from coverage.errors import ConfigError, CRSMismatchError, SchemaError
from coverage.grid import grid_north_bearing_deg, project_lonlat
from coverage.predict.kernel import CALIBRATED_SLOPE_FIELD, SECTOR_FIELDS
from coverage.radio import ENVIRONMENTS
from coverage.schema import OPERATORS, TECH_IDS, normalise_operator, normalise_tech

log = logging.getLogger(__package__)  # "coverage.predict", as before the split: the same log lines

REQUIRED_COLUMNS = (
    "operator", "tech", "freq_mhz", "eirp_dbm", "height_m", "azimuth_deg",
    "beamwidth_deg", "downtilt_deg", "environment", "geometry",
)
# Sector columns filled from the technology profile where blank.
_DEFAULTED_COLUMNS = ("freq_mhz", "eirp_dbm", "height_m", "beamwidth_deg", "downtilt_deg")
# The thresholds reported at the top of ``thresholds_dbm`` in report.json are this
# environment's; every environment's are under ``by_environment``.
REPORT_REFERENCE_ENVIRONMENT = "urban"

# Radio horizon over a 4/3 Earth: √(2 · 4/3 · 6 371 000 m · h) = 4 121.8 m · √(h / 1 m),
# the textbook 4.12 km per √m (ITU-R P.834 effective Earth radius factor k = 4/3).
RADIO_HORIZON_M_PER_SQRT_M = 4120.0


@dataclass
class PreparedTech:
    """The sectors of one technology as kernel arrays, with their operators."""

    tech: str
    arrays: dict[str, np.ndarray]
    operator_index: np.ndarray
    operators: list[str]
    sectors_per_operator: dict[str, int]
    ue_height_m: float
    warnings: list[str] = field(default_factory=list)
    capped_at_horizon: int = 0

    @property
    def n(self) -> int:
        return int(self.arrays["x_m"].size)


def _load_config(config):
    if config is not None and not isinstance(config, (str, os.PathLike)):
        return config
    from coverage.config import load_config

    return load_config() if config is None else load_config(config)


def _config_grid_value(config, name: str, default):
    grid = getattr(config, "grid", None)
    for holder in (grid, config):
        if holder is None:
            continue
        if isinstance(holder, Mapping) and name in holder:
            return holder[name]
        if hasattr(holder, name):
            return getattr(holder, name)
    return default


def _read_sectors(sectors):
    import geopandas as gpd

    if isinstance(sectors, (str, os.PathLike)):
        path = Path(sectors)
        try:
            sectors = gpd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 - any reader failure names the file
            from coverage.errors import InputReadError

            raise InputReadError(f"cannot read sectors from {path}: {exc}") from exc
    if not isinstance(sectors, gpd.GeoDataFrame):
        raise TypeError(f"sectors must be a GeoDataFrame or a path, got {type(sectors).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in sectors.columns]
    if missing:
        raise SchemaError(f"sectors lack the column(s) {', '.join(missing)} (see docs/CONTRACTS.md)")
    if sectors.crs is None:
        log.warning("sectors have no CRS; taking them as EPSG:4326")
    elif not sectors.crs.equals("EPSG:4326"):
        try:
            sectors = sectors.to_crs("EPSG:4326")
        except Exception as exc:  # noqa: BLE001
            raise CRSMismatchError(f"sectors in {sectors.crs} cannot be brought to EPSG:4326: {exc}") from exc
    geometry = sectors.geometry
    missing_position = geometry.isna() | geometry.is_empty
    if missing_position.any():
        raise SchemaError(f"{int(missing_position.sum())} sector(s) have no position (empty geometry)")
    if len(sectors) and not (geometry.geom_type == "Point").all():
        raise SchemaError("sectors geometry must be Points")
    return sectors


def _environments(sectors) -> np.ndarray:
    """Each sector's environment: the given one, else inferred from site density.

    Raises
    ------
    SchemaError
        An environment is neither blank nor one of :data:`coverage.radio.ENVIRONMENTS`,
        or a blank one cannot be inferred (no position).
    """
    from coverage.radio.environment import infer_environment, is_blank

    given = sectors["environment"].astype(object)
    blank = is_blank(given)
    unknown = sorted({str(v) for v in given[~blank] if v not in ENVIRONMENTS})
    if unknown:
        raise SchemaError(
            f"unknown environment value(s) {', '.join(map(repr, unknown))}; use {', '.join(ENVIRONMENTS)} or blank"
        )
    if not blank.any():
        return given.to_numpy(dtype=object)
    env = infer_environment(sectors)
    bad = ~env.isin(ENVIRONMENTS)
    if bad.any():
        raise SchemaError(f"environment could not be inferred for {int(bad.sum())} sector(s)")
    return env.to_numpy(dtype=object)


def _reach_m(model_id, max_loss_db, freq_mhz, height_m, ue_height_m) -> np.ndarray:
    """max_range_m per sector (each distinct parameter set computed once)."""
    from coverage.radio.pathloss import max_range_m_array

    reach = np.asarray(max_range_m_array(model_id, max_loss_db, freq_mhz, height_m, ue_height_m), dtype=np.float64)
    if not np.all(np.isfinite(reach)):
        raise SchemaError(f"{int((~np.isfinite(reach)).sum())} sector(s) have no finite reach (check eirp_dbm, freq_mhz)")
    return reach


def _validity_warnings(tech, model_id, freq_mhz, height_m, reach_m, ue_height_m) -> list[str]:
    from coverage.radio.pathloss import validity_summary

    return [f"{tech}: {line}" for line in validity_summary(model_id, freq_mhz, height_m, ue_height_m, reach_m)]


# Farthest distance a slope correction is bounded over, km: beyond the reach of any
# sector (the radio horizon of a 500 m mast over a 4/3 Earth is ~95 km).
_SLOPE_BOUND_KM = 100.0


def _calibration_arrays(config, tech, profile, freq_codes, freq_uniques, environment, model_id):
    """Per-sector ``[calibration]`` corrections: (loss_offset_db, loss_slope_db_per_decade, extra_budget_db).

    None without corrections for ``tech`` (the arrays and rasters are then exactly
    those of an uncalibrated run). The slope is kept only for the log-distance models
    (the kernel applies it there alone); ``extra_budget_db`` is the most the slope
    can lower the loss between 100 m (the Hata models' flat near field) and
    :data:`_SLOPE_BOUND_KM`, added to the reach's budget so that no pixel the
    corrected loss reaches is left out.
    """
    from coverage.radio.pathloss import COST231_HATA_RURAL, OKUMURA_HATA_URBAN

    calibration = getattr(config, "calibration", None)
    corrections = getattr(calibration, "corrections", None) or {}
    if not any(key[0] == tech for key in corrections):
        return None
    band = np.array([profile.band_of(f) for f in freq_uniques], dtype=object)[freq_codes]
    pairs = pd.MultiIndex.from_arrays([band, environment])
    codes, uniques = pd.factorize(pairs)
    table = np.array([corrections.get((tech, b, e), (0.0, 0.0)) for b, e in uniques], dtype=np.float64)
    table = table.reshape(-1, 2)[codes]
    log_distance = (OKUMURA_HATA_URBAN <= model_id) & (model_id <= COST231_HATA_RURAL)
    slope = np.where(log_distance, table[:, 1], 0.0)
    dropped = int(np.count_nonzero((table[:, 1] != 0.0) & ~log_distance))
    if dropped:
        log.warning("%s: the calibrated slope of %d sector(s) is ignored: their model is not log-distance",
                    tech, dropped)
    extra_budget_db = np.maximum(np.maximum(-slope * math.log10(_SLOPE_BOUND_KM), slope), 0.0)
    return table[:, 0], slope, extra_budget_db


def prepare_sectors(sectors, tech: str, config, environment=None, terrain=None) -> PreparedTech:
    """Kernel arrays of one technology's sectors (projected, defaulted, with reach).

    Parameters
    ----------
    sectors : GeoDataFrame
        Sectors (docs/CONTRACTS.md), already filtered to ``tech``.
    tech : str
        ``nbiot`` or ``redcap``.
    config : Config
        From :func:`coverage.config.load_config`.
    environment : array of str, optional
        Environments; inferred where blank when omitted.
    terrain : TerrainSetup, optional
        With terrain or land cover, the arrays also hold
        :data:`~coverage.predict.terrain_sites.TERRAIN_FIELDS` and the reach is the
        terrain-aware one (:func:`~coverage.predict.terrain_sites.sector_terrain`).

    Returns
    -------
    PreparedTech
    """
    from coverage.radio.pathloss import select_model

    profile = config.profiles[tech]
    n = len(sectors)
    warnings: list[str] = []
    lon_deg, lat_deg = sectors.geometry.x.to_numpy(), sectors.geometry.y.to_numpy()
    x_m, y_m = project_lonlat(lon_deg, lat_deg)
    if environment is None:
        environment = _environments(sectors)
    defaults = profile.sector_defaults()
    values = {}
    for name in _DEFAULTED_COLUMNS:
        column = sectors[name].to_numpy(dtype=np.float64, na_value=np.nan)
        blank = ~np.isfinite(column)
        if blank.any():
            column = np.where(blank, float(defaults[name]), column)
            warnings.append(f"{tech}: {int(blank.sum())} sector(s) without {name}; profile default used")
        values[name] = column
    # azimuths are from true north; the kernel measures bearings from grid north
    azimuth_true = sectors["azimuth_deg"].to_numpy(dtype=np.float64, na_value=np.nan)
    azimuth = np.where(
        np.isfinite(azimuth_true), (azimuth_true + grid_north_bearing_deg(lon_deg, lat_deg)) % 360.0, np.nan
    )
    freq = values["freq_mhz"]
    # one model choice / RS offset / threshold per distinct value, then broadcast
    pairs = pd.MultiIndex.from_arrays([freq, environment])
    codes, uniques = pd.factorize(pairs)
    model_id = np.array([select_model(tech, f, e) for f, e in uniques], dtype=np.int64)[codes]
    freq_codes, freq_uniques = pd.factorize(freq)
    rs_offset_db = np.array([profile.rs_offset_db(f) for f in freq_uniques], dtype=np.float64)[freq_codes]
    rs_eirp = values["eirp_dbm"] - rs_offset_db
    calibrated = _calibration_arrays(config, tech, profile, freq_codes, freq_uniques, environment, model_id)
    if calibrated is not None:
        loss_offset_db, loss_slope, extra_budget_db = calibrated
        rs_eirp = rs_eirp - loss_offset_db
    env_codes = pd.Categorical(environment, categories=ENVIRONMENTS).codes
    thresholds = [profile.thresholds_dbm(env) for env in ENVIRONMENTS]
    outdoor = np.array([t["outdoor"] for t in thresholds], dtype=np.float64)[env_codes]
    deep = np.array([t["deep"] for t in thresholds], dtype=np.float64)[env_codes]
    ue_height_m = float(profile.ue_height_m)
    terrain_arrays = {}
    # the reach's budget: with a slope correction, the most the loss can fall anywhere in reach
    reach_eirp = rs_eirp if calibrated is None else rs_eirp + extra_budget_db
    if terrain is None:
        model_reach = _reach_m(model_id, reach_eirp - outdoor, freq, values["height_m"], ue_height_m)
        horizon = radio_horizon_m(values["height_m"], ue_height_m)
        reach = np.minimum(model_reach, horizon)
        capped = int(np.count_nonzero(model_reach > horizon))
    else:
        from coverage.predict.terrain_sites import sector_terrain

        terrain_arrays, reach, capped = sector_terrain(
            terrain, tech, profile, lon_deg, lat_deg, np.asarray(x_m, dtype=np.float64),
            np.asarray(y_m, dtype=np.float64), values, environment, reach_eirp, ue_height_m)
    warnings += _validity_warnings(tech, model_id, freq, values["height_m"], reach, ue_height_m)
    arrays = {
        "x_m": np.asarray(x_m, dtype=np.float64),
        "y_m": np.asarray(y_m, dtype=np.float64),
        "rs_eirp_dbm": rs_eirp,
        "height_m": values["height_m"],
        "freq_mhz": freq,
        "model_id": model_id,
        "azimuth_deg": azimuth,
        "beamwidth_deg": values["beamwidth_deg"],
        "downtilt_deg": values["downtilt_deg"],
        "vertical_beamwidth_deg": np.full(n, float(profile.vertical_beamwidth_deg)),
        "front_to_back_db": np.full(n, float(profile.front_to_back_db)),
        "sla_v_db": np.full(n, float(profile.sla_v_db)),
        "reach_m": reach,
        "outdoor_dbm": outdoor,
        "deep_dbm": deep,
        **terrain_arrays,
    }
    if calibrated is not None:
        arrays[CALIBRATED_SLOPE_FIELD] = loss_slope
    codes = sectors["operator"].to_numpy(dtype=object)
    operators = [op.code for op in OPERATORS if (codes == op.code).any()]
    operator_index = np.full(n, -1, dtype=np.int64)
    for k, code in enumerate(operators):
        operator_index[codes == code] = k
    # a canonical order (operator, then every kernel field), so that neither the
    # outputs (exact ties) nor the layer fingerprints depend on the order of the rows
    order = np.lexsort([arrays[name] for name in reversed(SECTOR_FIELDS)] + [operator_index])
    arrays = {name: values[order] for name, values in arrays.items()}
    operator_index = operator_index[order]
    return PreparedTech(
        tech=tech,
        arrays=arrays,
        operator_index=operator_index,
        operators=operators,
        sectors_per_operator={code: int((codes == code).sum()) for code in operators},
        ue_height_m=ue_height_m,
        warnings=warnings,
        capped_at_horizon=capped,
    )


def typical_cell_radius_m(tech: str, config) -> dict[str, float]:
    """Outdoor reach of a default sector of ``tech`` per environment, metres.

    The profile's default EIRP, frequency and height, the model
    :func:`~coverage.radio.pathloss.select_model` picks, boresight gain.
    """
    from coverage.radio.pathloss import max_range_m, select_model

    profile = config.profiles[tech]
    defaults = profile.sector_defaults()
    radius = {}
    for env in ENVIRONMENTS:
        model = select_model(tech, defaults["freq_mhz"], env)
        max_loss_db = profile.rs_eirp_dbm(defaults["eirp_dbm"], defaults["freq_mhz"]) - profile.thresholds_dbm(env)["outdoor"]
        reach_m = max_range_m(model, max_loss_db, defaults["freq_mhz"], defaults["height_m"], profile.ue_height_m)
        radius[env] = float(min(reach_m, radio_horizon_m(defaults["height_m"], profile.ue_height_m)))
    return radius


def radio_horizon_m(height_m, ue_height_m):
    """Radio horizon between an antenna and a device over a smooth 4/3 Earth, metres.

    ``d_km = 4.12 (√h_bs_m + √h_ue_m)``: the line-of-sight distance ``√(2 k R h)`` of
    each end, with the effective Earth radius k·R (k = 4/3, R = 6371 km, ITU-R
    P.834/P.453 standard atmosphere). None of the empirical models
    (:mod:`coverage.radio.pathloss`) includes the Earth's curvature, and beyond the
    horizon diffraction losses grow far faster than they predict, so a sector's
    reach is capped here (see the docstring of :mod:`coverage.predict`).

    Parameters
    ----------
    height_m : float or array
        Antenna height above ground, metres (negative counts as 0).
    ue_height_m : float or array
        Device height above ground, metres.

    Returns
    -------
    float or ndarray
        Metres (float64).

    Examples
    --------
    >>> round(float(radio_horizon_m(30.0, 1.5)))
    27612
    """
    h_bs = np.maximum(np.asarray(height_m, dtype=np.float64), 0.0)
    h_ue = np.maximum(np.asarray(ue_height_m, dtype=np.float64), 0.0)
    return RADIO_HORIZON_M_PER_SQRT_M * (np.sqrt(h_bs) + np.sqrt(h_ue))


def _thresholds_entry(tech: str, config) -> dict:
    profile = config.profiles[tech]
    by_env = {env: {k: float(v) for k, v in profile.thresholds_dbm(env).items()} for env in ENVIRONMENTS}
    entry = dict(by_env[REPORT_REFERENCE_ENVIRONMENT])
    entry["ce"] = {k: float(v) for k, v in dict(profile.ce_thresholds_dbm).items()}
    entry["by_environment"] = by_env
    return entry


def _normalise_techs(techs) -> tuple[str, ...]:
    if isinstance(techs, str):
        techs = (techs,)
    out = []
    for value in techs:
        tech = normalise_tech(value)
        if tech is None:
            raise ConfigError(f"unknown technology {value!r}; choose from {', '.join(TECH_IDS)}")
        if tech not in out:
            out.append(tech)
    if not out:
        raise ConfigError("no technology to predict")
    return tuple(out)


def _normalise_operators(operators) -> set[str] | None:
    if operators is None:
        return None
    if isinstance(operators, str):
        operators = (operators,)
    codes = set()
    for value in operators:
        code = normalise_operator(value)
        if code is None:
            raise ConfigError(f"unknown operator {value!r}; choose from {', '.join(op.code for op in OPERATORS)}")
        codes.add(code)
    return codes
