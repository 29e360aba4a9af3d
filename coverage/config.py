"""The configuration: one TOML file, validated when loaded; the defaults live in code.

Tables and keys (units in the key names)
----------------------------------------
``[nbiot]``, ``[redcap]``
    Any field of :class:`coverage.radio.profiles.TechProfile` (defaults:
    :data:`coverage.radio.profiles.NBIOT` / ``REDCAP``, each with its source).
    Sub-tables (``[nbiot.bands]``, ``[redcap.carrier_subcarriers]``,
    ``[nbiot.shadow_sigma_db]``, ``[nbiot.ce_thresholds_dbm]``) are merged key by
    key into the defaults. ``tech`` cannot change.
``[grid]``
    ``resolution_m`` (default 100, 30-1000), ``tile_size_px`` (default 512,
    64-4096, a multiple of 16).
``[gaps]``
    ``min_gap_km2``: smallest uncovered area reported as a gap (default 1.0);
    ``rank``: how the gap areas of a county are ranked, ``"auto"`` (population when
    a population raster is given, else built-up area when the run used land cover,
    else area; the default), ``"population"``, ``"built-up"`` or ``"area"``.
``[plan]``
    ``spacing_fraction``: spacing of the candidate site grid of ``covmap plan`` as a
    fraction of the technology's typical rural cell radius (default 0.5, 0.05-2).
``[publish]``
    ``resolution_m``: cell size of the public raster overlays (default 500, 100-5000).
``[h3]``
    ``covered_fraction``: share of a hexagon's resolution-11 centres that must be
    covered for its ``covered`` flag (default 0.5, 0.5-1; the 5G Fund's "substantial
    majority", 47 CFR §54.1012(c)(1)(iii), see :mod:`coverage.h3hex`); ``csv``: the CSV
    files beside the Parquet ones, ``auto`` (default) those whose rows fit one
    spreadsheet sheet (2²⁰ rows: with five operator layers, about 22,000 km² of land at
    resolution 9 and 155,000 km² at resolution 8), ``always`` or ``never``.
``[targets]``
    The 2027 targets (:mod:`coverage.targets`): ``redcap_at_scale_pct``, RedCap
    coverage of a county's built-up area that counts as 规模覆盖 at scale (default
    95, 1-100); ``township_reached_pct``, RedCap coverage of a township's area that
    counts as reached (default 1, 0.01-100); ``urban_site_radius_m``, without a land
    cover the built-up area is the land within this distance of a dense-urban or
    urban sector (default 500, 50-5000).
``[terrain]``
    ``diffraction_weight``: weight of the Bullington terrain diffraction loss
    (default 1.0, 0-2); ``earth_k_factor``: effective Earth radius factor
    (default 4/3, 0.5-10); ``clutter_table``: the land-cover class table,
    ``"auto"`` (guessed from the raster's classes, the default), ``"worldcover"``,
    ``"igbp"`` or the path of a TOML class table (relative to the configuration
    file's folder; see :mod:`coverage.terrain.clutter`); ``sweep_step_m``: sampling
    step of the per-site terrain sweep (default 0 = automatic, else 10-2000).
``[terrain.class_offsets_db.<tech>]``
    Fitted extra loss per land-cover class code, written by ``covmap calibrate``:
    ``<code> = <dB>`` (code 0-254 of the run's land cover, −40…40 dB), added to the
    class's foliage and extra loss for that technology in the terrain kernel (no
    effect without land cover). Absent = no offset.
``[challenge]``
    The public challenge process on H3 (:mod:`coverage.measure.challenge`), each
    threshold from the FCC's Broadband Data Collection mobile challenge rules
    (DA 22-241): ``hex_resolution`` (8), ``min_point_hexes`` (4 of the 7 res-9
    children), ``min_hours_apart`` (4.0 h), ``min_negative_tests`` (5),
    ``confidence`` (0.95, of the one-sided binomial test against the failure share
    ``1 − cell_edge_reliability`` of each technology), ``day_start_hour`` /
    ``day_end_hour`` (6 / 22, local time), ``max_test_age_days`` (365) and
    ``rsrp_tolerance_db`` (0: a test is negative below the service threshold minus
    this). It changes no build stage: it is not part of the configuration's
    fingerprint.
``[evaluation]``
    Comparing the prediction with measurements (:mod:`coverage.measure.evaluate`)
    and calibrating it (:mod:`coverage.measure.calibrate`): ``min_samples_per_bin``
    (default 3, 1-10000), ``uncertain_db`` (default 3.0, 0-20),
    ``min_bins_per_group`` (default 30, 2-1000000), ``holdout_block_m`` (default
    2000, 100-100000), ``holdout_every`` (default 5, 2-100).
``[calibration.<tech>.<band>]``
    Fitted corrections of the path loss per technology, band and environment,
    written by ``covmap calibrate``: ``<environment> = { loss_offset_db = …,
    loss_slope_db_per_decade = … }`` (offset −40…40 dB; slope −15…15 dB/decade,
    applied to the log-distance models only: Hata and COST-231 Hata; see
    :class:`CalibrationConfig`). Absent = no correction.

Example::

    [nbiot]
    eirp_dbm = 52.0
    penetration_margin_db = 15.0

    [nbiot.shadow_sigma_db]
    urban = 9.0

    [grid]
    resolution_m = 50

An unknown key, a wrong type or a value out of range raises
:class:`coverage.errors.ConfigError` naming the key and the file.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import math
import os
import tomllib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from coverage.errors import ConfigError
from coverage.radio import ENVIRONMENTS
from coverage.radio.profiles import PROFILES, TechProfile

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GridConfig:
    """The raster grid."""

    resolution_m: int = 100  # cell size, metres (30-1000)
    tile_size_px: int = 512  # tile edge, pixels (COG block multiple of 16)


@dataclass(frozen=True)
class GapsConfig:
    """Coverage gaps."""

    min_gap_km2: float = 1.0  # smallest uncovered area reported as a gap, km²
    rank: str = "auto"  # ranking key of the gap areas: auto, population, built-up, area


@dataclass(frozen=True)
class PlanConfig:
    """Site planning (``covmap plan``)."""

    spacing_fraction: float = 0.5  # candidate grid spacing / typical rural cell radius


@dataclass(frozen=True)
class PublishConfig:
    """The public site."""

    resolution_m: int = 500  # cell size of the public raster overlays, metres


@dataclass(frozen=True)
class H3Config:
    """The H3 open data (coverage.h3hex)."""

    # 47 CFR §54.1012(c)(1)(iii): a hex-9 is served when a "substantial majority" of its
    # land hex-11 centres are; the stored rule text read breaks off before its figure,
    # so a simple majority (coverage.h3hex.DEFAULT_COVERED_FRACTION).
    covered_fraction: float = 0.5
    # CSV beside each Parquet table: "auto" when its rows fit one spreadsheet sheet
    # (2^20; a national resolution-9 table has ~4e8), "always" or "never" (H3_CSV_CHOICES).
    csv: str = "auto"


@dataclass(frozen=True)
class TargetsConfig:
    """The 2027 targets (coverage.targets)."""

    # 规模覆盖 "at scale": RedCap coverage of the built-up area, percent. The notice sets
    # no figure; 95 % is the summary's "counties ≥ 95 %" mark (aggregate.COVERAGE_GOOD_PCT).
    redcap_at_scale_pct: float = 95.0
    # A township is reached by RedCap when RedCap covers this share of its area, percent
    # (1 % of a 100 km² township is 1 km², about one RedCap cell of ~0.6 km radius).
    township_reached_pct: float = 1.0
    # Without a land-cover raster: built-up = land within this distance of a dense_urban or
    # urban sector, m (500 m: the urban-macro inter-site distance of 3GPP TR 38.913 §6.1.3).
    urban_site_radius_m: float = 500.0


# [terrain] clutter_table values that are not paths: guess from the raster, or a built-in table.
CLUTTER_TABLE_NAMES = ("auto", "worldcover", "igbp")
GAP_RANKS = ("auto", "population", "built-up", "area")  # [gaps] rank
H3_CSV_CHOICES = ("auto", "always", "never")  # [h3] csv, and csv of coverage.h3hex.write_h3


@dataclass(frozen=True)
class TerrainConfig:
    """Terrain diffraction, the per-site sweep and the land-cover class table."""

    # Weight of the Bullington terrain diffraction loss (ITU-R P.526 §4.5), 0-2: the
    # calibration knob of Atoll's Standard Propagation Model, whose K4 multiplies its
    # diffraction loss (Forsk Atoll technical reference; research note §3.2); 1 = the
    # loss as computed, fitted by the measurements work.
    diffraction_weight: float = 1.0
    # Effective Earth radius factor k, 0.5-10: 4/3 is the median of the standard
    # atmosphere (ITU-R P.453: median lapse ΔN ≈ 40 N-units/km, k = 157 / (157 − ΔN)
    # ≈ 4/3; ITU-R P.834).
    earth_k_factor: float = 4.0 / 3.0
    # "auto" (guess the legend from the land-cover raster's classes), "worldcover",
    # "igbp", or the path of a TOML class table (coverage.terrain.clutter).
    clutter_table: str = "auto"
    # Sampling step of the per-site terrain sweep, m: 0 = automatic (the larger of
    # the grid resolution and half the DEM's resolution: Nyquist for the DEM, and no
    # finer than the cells predicted), else 10-2000 m.
    sweep_step_m: float = 0.0
    # Fitted extra loss per land-cover class, {tech: {class code: dB}}, added to the
    # class's foliage and extra loss (coverage.terrain.clutter.extra_loss_lut); written
    # by covmap calibrate (coverage.measure.calibrate), empty by default.
    class_offsets_db: dict = field(default_factory=dict)

    def class_offsets(self, tech: str) -> dict[int, float]:
        """The class offsets of one technology, ``{code: dB}`` (empty when none)."""
        return dict(self.class_offsets_db.get(tech, {}))


@dataclass(frozen=True)
class ChallengeConfig:
    """The public challenge process on H3: when the tests contest a hexagon.

    Every default is the FCC's, from the Broadband Data Collection mobile challenge
    rules (BDC Mobile Technical Requirements Order, DA 22-241, 87 FR 21476, 2022;
    research note measurements-and-challenge.md §1.2-1.5).
    """

    # Challenges are judged per H3 resolution-8 hexagon (≈ 0.74 km²); its seven
    # resolution-9 children are the "point-hexes" (DA 22-241 Technical Appendix).
    hex_resolution: int = 8
    # Geographic threshold: negative tests in at least 4 of the 7 point-hexes, or in
    # all of them that are accessible (here: overlap land) when fewer (DA 22-241).
    min_point_hexes: int = 4
    # Temporal threshold: two negative tests whose times of day differ by at least
    # 4 hours, on any dates (DA 22-241).
    min_hours_apart: float = 4.0
    # Testing threshold: at least 5 negative tests (DA 22-241) ...
    min_negative_tests: int = 5
    # ... and a negative share that a one-sided binomial test at 95 % confidence finds
    # above the failure share the 90 % cell-edge probability allows (DA 22-241
    # Technical Appendix: n = 20 -> 5, n = 100 -> 16).
    confidence: float = 0.95
    # Valid tests are taken between 06:00 and 22:00 local time (FCC BDC help centre,
    # "bulk challenge speed-test data").
    day_start_hour: float = 6.0
    day_end_hour: float = 22.0
    # A test counts for one year (FCC BDC help centre): here within a year of the
    # run's data date.
    max_test_age_days: int = 365
    # A test is negative below the service threshold minus this, dB; 0 as the FCC
    # (the research note's §5 suggests up to 3 dB for handsets' ±6 dB RSRP accuracy,
    # TS 36.133).
    rsrp_tolerance_db: float = 0.0


# Tables that change no build stage: left out of Config.fingerprint().
_NOT_FINGERPRINTED = ("challenge", "evaluation")


@dataclass(frozen=True)
class EvaluationConfig:
    """Comparing the prediction with measurements, and calibrating it."""

    # Fewest samples in a bin (pixel × operator × technology) for it to count: the
    # median of 3 discards one outlier; a drive test at 1 sample/s and 40 km/h leaves
    # ~9 samples per 100 m pixel (research note §2.2, Lee's 36-50 samples per 40λ
    # are averaged within each pixel).
    min_samples_per_bin: int = 3
    # Half-width of the "uncertain" band around the coverage threshold, dB: the
    # ±3 dB of the issue (UE RSRP accuracy is ±6 dB, TS 36.133; research note §2.2).
    uncertain_db: float = 3.0
    # Fewest training bins for a calibration group (technology × band × environment);
    # fewer keep the defaults (research note §2.4: a minimum per class before tuning).
    min_bins_per_group: int = 30
    # Edge of the square spatial blocks held out together, m: errors are correlated
    # over hundreds of metres, so blocks of kilometres keep test bins apart from
    # training bins (research note §2.4).
    holdout_block_m: float = 2000.0
    # One block in this many is held out (5: 20 % of the blocks).
    holdout_every: int = 5


# Limits of a fitted correction: ±40 dB of offset is already a wrong EIRP, not a model;
# ±15 dB/decade keeps the corrected slope of every log-distance model positive (Hata's
# is 44.9 − 6.55 log10(hb) ≥ 27.2 dB/decade up to 500 m masts), so the loss still grows
# with distance, which the kernel's bounds rely on.
CALIBRATION_OFFSET_LIMIT_DB = 40.0
CALIBRATION_SLOPE_LIMIT_DB_PER_DECADE = 15.0


@dataclass(frozen=True)
class CalibrationConfig:
    """Fitted path-loss corrections per (technology, band, environment).

    ``corrections[(tech, band, environment)] = (loss_offset_db,
    loss_slope_db_per_decade)``: the sector's path loss becomes
    ``L(d) + loss_offset_db + loss_slope_db_per_decade · log10(d / 1 km)`` (the K1
    and K2 corrections of a Standard Propagation Model tuning; research note §2).
    The slope applies to the log-distance models (Hata, COST-231 Hata) only.
    """

    corrections: dict = field(default_factory=dict)

    def correction(self, tech: str, band: str, environment: str) -> tuple[float, float]:
        return self.corrections.get((tech, band, environment), (0.0, 0.0))

    def as_dict(self) -> dict:
        out: dict = {}
        for (tech, band, env), (offset, slope) in sorted(self.corrections.items()):
            out.setdefault(tech, {}).setdefault(band, {})[env] = {
                "loss_offset_db": offset, "loss_slope_db_per_decade": slope}
        return out


@dataclass(frozen=True)
class Config:
    """Effective configuration: defaults overridden by one TOML file.

    Attributes
    ----------
    profiles : dict of str to TechProfile
        ``profiles["nbiot"]``, ``profiles["redcap"]``.
    grid, gaps, plan, publish, terrain, h3, targets, challenge
        The other tables.
    source : str or None
        The TOML file read, None for the defaults (not part of the fingerprint).
    """

    profiles: dict[str, TechProfile] = field(default_factory=lambda: dict(PROFILES))
    grid: GridConfig = GridConfig()
    gaps: GapsConfig = GapsConfig()
    plan: PlanConfig = PlanConfig()
    publish: PublishConfig = PublishConfig()
    terrain: TerrainConfig = TerrainConfig()
    h3: H3Config = H3Config()
    targets: TargetsConfig = TargetsConfig()
    challenge: ChallengeConfig = ChallengeConfig()
    evaluation: EvaluationConfig = EvaluationConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    source: str | None = None

    def as_dict(self) -> dict:
        """Effective values as plain JSON-able data (tables as in the TOML file)."""
        out = {tech: profile.as_dict() for tech, profile in self.profiles.items()}
        out["grid"] = asdict(self.grid)
        out["gaps"] = asdict(self.gaps)
        out["plan"] = asdict(self.plan)
        out["publish"] = asdict(self.publish)
        out["terrain"] = asdict(self.terrain)
        # only when set, as [calibration]: without offsets the fingerprint (and the layers) stay as they were
        offsets = out["terrain"].pop("class_offsets_db")
        if any(offsets.values()):
            out["terrain"]["class_offsets_db"] = {
                tech: {str(code): float(db) for code, db in sorted(by_code.items())}
                for tech, by_code in sorted(offsets.items()) if by_code}
        out["h3"] = asdict(self.h3)
        out["targets"] = asdict(self.targets)
        out["challenge"] = asdict(self.challenge)
        out["evaluation"] = asdict(self.evaluation)
        # only when set: a configuration without corrections keeps its fingerprint (and its layers)
        if self.calibration.corrections:
            out["calibration"] = self.calibration.as_dict()
        return out

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of :meth:`as_dict` (for reusing results).

        ``[challenge]`` and ``[evaluation]`` are left out: they change no prediction, statistic or page.
        """
        data = {k: v for k, v in self.as_dict().items() if k not in _NOT_FINGERPRINTED}
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()

    def to_toml(self) -> str:
        """The effective values as TOML text that :func:`load_config` reads back.

        Derived thresholds per environment are added as comments.
        """
        lines = []
        if self.source:
            lines.append(f"# effective configuration: defaults overridden by {self.source}")
        else:
            lines.append("# effective configuration: built-in defaults")
        for table, values in self.as_dict().items():
            if table == "calibration":
                lines.extend(_calibration_toml(values))
                continue
            scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
            subtables = {k: v for k, v in values.items() if isinstance(v, dict)}
            lines.append("")
            lines.append(f"[{table}]")
            lines.extend(f"{key} = {_toml_value(value)}" for key, value in scalars.items())
            if table in self.profiles:
                profile = self.profiles[table]
                lines.append(f"# z(cell_edge_reliability) = {profile.shadow_z:.4f}")
                for env in ENVIRONMENTS:
                    t = profile.thresholds_dbm(env)
                    lines.append(f"# thresholds {env}: outdoor {t['outdoor']:.2f} dBm, deep {t['deep']:.2f} dBm")
            for key, sub in subtables.items():
                if key == "class_offsets_db":  # one more level: [terrain.class_offsets_db.<tech>]
                    for tech, by_code in sub.items():
                        lines.append("")
                        lines.append(f"[{table}.{key}.{_toml_key(tech)}]")
                        lines.extend(f"{_toml_key(code)} = {_toml_value(float(db))}" for code, db in by_code.items())
                    continue
                lines.append("")
                lines.append(f"[{table}.{key}]")
                lines.extend(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in sub.items())
        return "\n".join(lines) + "\n"


def _calibration_toml(values: dict) -> list[str]:
    lines = []
    for tech, bands in values.items():
        for band, envs in bands.items():
            lines.append("")
            lines.append(f"[calibration.{_toml_key(tech)}.{_toml_key(band)}]")
            for env, pair in envs.items():
                inner = ", ".join(f"{k} = {_toml_value(float(v))}" for k, v in pair.items())
                lines.append(f"{_toml_key(env)} = {{ {inner} }}")
    return lines


def _toml_key(key: str) -> str:
    return key if key.replace("_", "").replace("-", "").isalnum() and key.isascii() else json.dumps(key)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False)


# ---------------------------------------------------------------- validation rules

# kind, low, high (inclusive), unit for the message
_NUMBER, _INT, _STR, _DICT = "number", "integer", "string", "table"

_PROFILE_RULES: dict[str, tuple] = {
    "label": (_STR, None, None, ""),
    "default_band": (_STR, None, None, ""),
    "eirp_dbm": (_NUMBER, -10.0, 100.0, "dBm"),
    "antenna_gain_dbi": (_NUMBER, -10.0, 40.0, "dBi"),
    "height_m": (_NUMBER, 1.0, 500.0, "m"),
    "beamwidth_deg": (_NUMBER, 1.0, 360.0, "degrees"),
    "downtilt_deg": (_NUMBER, -20.0, 60.0, "degrees"),
    "vertical_beamwidth_deg": (_NUMBER, 1.0, 180.0, "degrees"),
    "front_to_back_db": (_NUMBER, 0.0, 80.0, "dB"),
    "sla_v_db": (_NUMBER, 0.0, 80.0, "dB"),
    "ue_height_m": (_NUMBER, 0.1, 50.0, "m"),
    "ue_antenna_gain_dbi": (_NUMBER, -30.0, 20.0, "dBi"),
    "body_loss_db": (_NUMBER, 0.0, 40.0, "dB"),
    "device_loss_db": (_NUMBER, 0.0, 40.0, "dB"),
    "rsrp_threshold_dbm": (_NUMBER, -160.0, -30.0, "dBm"),
    "penetration_margin_db": (_NUMBER, 0.0, 60.0, "dB"),
    "cell_edge_reliability": (_NUMBER, 0.5, 0.999, "fraction"),
}
# Sub-tables: allowed keys (None = any band name), value kind and range.
_PROFILE_TABLES: dict[str, tuple] = {
    "bands": (None, _NUMBER, 1.0, 100_000.0, "MHz"),
    "carrier_subcarriers": (None, _INT, 12, 6600, "subcarriers"),
    "shadow_sigma_db": (ENVIRONMENTS, _NUMBER, 0.0, 20.0, "dB"),
    "ce_thresholds_dbm": (("CE0", "CE1", "CE2"), _NUMBER, -160.0, -30.0, "dBm"),
}
_SECTION_RULES: dict[str, tuple[type, dict[str, tuple]]] = {
    "grid": (GridConfig, {"resolution_m": (_INT, 30, 1000, "m"), "tile_size_px": (_INT, 64, 4096, "pixels")}),
    "gaps": (GapsConfig, {"min_gap_km2": (_NUMBER, 0.0, 100_000.0, "km²"),
                          "rank": (_STR, None, None, "")}),  # checked in _override_section
    "plan": (PlanConfig, {"spacing_fraction": (_NUMBER, 0.05, 2.0, "")}),
    "publish": (PublishConfig, {"resolution_m": (_INT, 100, 5000, "m")}),
    "h3": (H3Config, {"covered_fraction": (_NUMBER, 0.5, 1.0, ""),
                      "csv": (_STR, None, None, "")}),  # checked in _override_section
    "targets": (TargetsConfig, {
        "redcap_at_scale_pct": (_NUMBER, 1.0, 100.0, "%"),
        "township_reached_pct": (_NUMBER, 0.01, 100.0, "%"),
        "urban_site_radius_m": (_NUMBER, 50.0, 5000.0, "m"),
    }),
    "terrain": (TerrainConfig, {
        "diffraction_weight": (_NUMBER, 0.0, 2.0, ""),  # 0 = no diffraction, 2 = twice the loss
        "earth_k_factor": (_NUMBER, 0.5, 10.0, ""),  # sub-refraction to strong super-refraction (ITU-R P.453)
        "clutter_table": (_STR, None, None, ""),  # checked in _terrain_section
        "sweep_step_m": (_NUMBER, 0.0, 2000.0, "m"),  # 0 or 10-2000, checked in _terrain_section
    }),
    "challenge": (ChallengeConfig, {
        "hex_resolution": (_INT, 5, 12, ""),  # H3 res-5 (≈ 250 km²) to res-12 (≈ 300 m²); res+1 are the children
        "min_point_hexes": (_INT, 1, 7, "point-hexes"),  # of the 7 children
        "min_hours_apart": (_NUMBER, 0.0, 16.0, "h"),  # at most the 06-22 window
        "min_negative_tests": (_INT, 1, 1000, "tests"),
        "confidence": (_NUMBER, 0.5, 0.999, "fraction"),
        "day_start_hour": (_NUMBER, 0.0, 24.0, "h"),  # start < end, checked in _override_section
        "day_end_hour": (_NUMBER, 0.0, 24.0, "h"),
        "max_test_age_days": (_INT, 1, 3660, "days"),
        "rsrp_tolerance_db": (_NUMBER, 0.0, 20.0, "dB"),
    }),
    "evaluation": (EvaluationConfig, {
        "min_samples_per_bin": (_INT, 1, 10_000, "samples"),
        "uncertain_db": (_NUMBER, 0.0, 20.0, "dB"),
        "min_bins_per_group": (_INT, 2, 1_000_000, "bins"),
        "holdout_block_m": (_NUMBER, 100.0, 100_000.0, "m"),
        "holdout_every": (_INT, 2, 100, "blocks"),
    }),
}
_CALIBRATION_RULES = {
    "loss_offset_db": (_NUMBER, -CALIBRATION_OFFSET_LIMIT_DB, CALIBRATION_OFFSET_LIMIT_DB, "dB"),
    "loss_slope_db_per_decade": (_NUMBER, -CALIBRATION_SLOPE_LIMIT_DB_PER_DECADE,
                                 CALIBRATION_SLOPE_LIMIT_DB_PER_DECADE, "dB/decade"),
}
# Largest land-cover class code (255 is the rasters' nodata: coverage.terrain.clutter.NODATA_CLASS).
_MAX_CLASS_CODE = 254
# Smallest explicit [terrain] sweep_step_m, m (finer than any DEM covmap reads: 30 m SRTM/Copernicus).
_MIN_SWEEP_STEP_M = 10.0


class _Checker:
    """Builds ConfigErrors that name the key and the file."""

    def __init__(self, source: str):
        self.source = source

    def fail(self, key: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {key}: {message}")

    def unknown(self, key: str, name: str, allowed) -> ConfigError:
        hint = difflib.get_close_matches(name, list(allowed), n=1)
        extra = f"; did you mean {hint[0]!r}?" if hint else f"; allowed: {', '.join(allowed)}"
        return self.fail(key, f"unknown key{extra}")

    def value(self, key: str, value, kind: str, low, high, unit: str):
        if kind == _STR:
            if not isinstance(value, str) or not value.strip():
                raise self.fail(key, f"must be a non-empty string, got {value!r}")
            return value
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                kind == _INT and not isinstance(value, int)):
            unit_text = f" in {unit}" if unit else ""
            raise self.fail(key, f"must be {'an integer' if kind == _INT else 'a number'}{unit_text}, got {value!r}")
        if isinstance(value, float) and not math.isfinite(value):
            raise self.fail(key, f"must be finite, got {value!r}")
        if not low <= value <= high:
            raise self.fail(key, f"{value!r} {unit} is out of range {low}-{high} {unit}".replace("  ", " "))
        return float(value) if kind == _NUMBER else int(value)


def _table(checker: _Checker, key: str, value) -> dict:
    if not isinstance(value, dict):
        raise checker.fail(key, f"must be a table, got {value!r}")
    return value


def _override_profile(checker: _Checker, tech: str, base: TechProfile, table: dict) -> TechProfile:
    changes: dict = {}
    allowed = ("tech", *_PROFILE_RULES, *_PROFILE_TABLES)
    for name, value in table.items():
        key = f"[{tech}] {name}"
        if name == "tech":
            if value != tech:
                raise checker.fail(key, f"cannot change the technology of [{tech}] (got {value!r})")
        elif name in _PROFILE_RULES:
            changes[name] = checker.value(key, value, *_PROFILE_RULES[name])
        elif name in _PROFILE_TABLES:
            keys, kind, low, high, unit = _PROFILE_TABLES[name]
            if name == "ce_thresholds_dbm" and not base.ce_thresholds_dbm and value:
                raise checker.fail(key, f"coverage-enhancement levels exist only for NB-IoT, not {tech}")
            merged = dict(getattr(base, name))
            for sub_name, sub_value in _table(checker, key, value).items():
                sub_key = f"[{tech}.{name}] {sub_name}"
                if keys is not None and sub_name not in keys:
                    raise checker.unknown(sub_key, sub_name, keys)
                merged[sub_name] = checker.value(sub_key, sub_value, kind, low, high, unit)
            changes[name] = merged
        else:
            raise checker.unknown(key, name, allowed)
    profile = replace(base, **changes)
    # Cross-field checks.
    if profile.default_band not in profile.bands:
        raise checker.fail(f"[{tech}] default_band",
                           f"{profile.default_band!r} is not one of the bands {', '.join(profile.bands)}")
    missing = [band for band in profile.bands if band not in profile.carrier_subcarriers]
    if missing:
        raise checker.fail(f"[{tech}.carrier_subcarriers]", f"no subcarrier count for band(s) {', '.join(missing)}")
    ce = profile.ce_thresholds_dbm
    if ce and not ce["CE0"] > ce["CE1"] > ce["CE2"]:
        raise checker.fail(f"[{tech}.ce_thresholds_dbm]", f"must decrease from CE0 to CE2, got {ce}")
    return profile


def _override_section(checker: _Checker, name: str, table: dict):
    cls, rules = _SECTION_RULES[name]
    changes = {}
    if name == "terrain" and "class_offsets_db" in table:
        table = dict(table)
        changes["class_offsets_db"] = _class_offsets_section(checker, table.pop("class_offsets_db"))
    for key_name, value in table.items():
        key = f"[{name}] {key_name}"
        if key_name not in rules:
            raise checker.unknown(key, key_name, rules)
        changes[key_name] = checker.value(key, value, *rules[key_name])
    section = cls(**changes)
    if name == "grid" and section.tile_size_px % 16:
        raise checker.fail("[grid] tile_size_px", f"{section.tile_size_px} must be a multiple of 16")
    if name == "terrain":
        section = _terrain_section(checker, section)
    if name == "gaps":
        rank = section.rank.strip().lower().replace("_", "-")
        if rank not in GAP_RANKS:
            raise checker.fail("[gaps] rank", f"{section.rank!r} is not one of {', '.join(GAP_RANKS)}")
        section = replace(section, rank=rank)
    if name == "h3":
        choice = section.csv.strip().lower()
        if choice not in H3_CSV_CHOICES:
            raise checker.fail("[h3] csv", f"{section.csv!r} is not one of {', '.join(H3_CSV_CHOICES)}")
        section = replace(section, csv=choice)
    if name == "challenge" and not section.day_start_hour < section.day_end_hour:
        raise checker.fail("[challenge] day_end_hour",
                           f"{section.day_end_hour!r} h must be after day_start_hour {section.day_start_hour!r} h")
    return section


def _terrain_section(checker: _Checker, section: TerrainConfig) -> TerrainConfig:
    """Cross-checks of [terrain]: the sweep step, and the class table (read and validated)."""
    if 0.0 < section.sweep_step_m < _MIN_SWEEP_STEP_M:
        raise checker.fail("[terrain] sweep_step_m",
                           f"{section.sweep_step_m!r} m must be 0 (automatic) or {_MIN_SWEEP_STEP_M:g}-2000 m")
    spec = section.clutter_table.strip()
    if spec.lower() in CLUTTER_TABLE_NAMES:
        return replace(section, clutter_table=spec.lower())
    from coverage.terrain.clutter import load_class_table  # numpy; only for a user table

    path = Path(spec).expanduser()
    if not path.is_absolute() and checker.source != "<config>":
        path = Path(checker.source).parent / path
    path = path.absolute()
    if not path.is_file():
        raise checker.fail("[terrain] clutter_table",
                           f"{spec!r} is not one of {', '.join(CLUTTER_TABLE_NAMES)} and no such file ({path})")
    try:
        load_class_table(path)
    except ConfigError as exc:
        raise checker.fail("[terrain] clutter_table", str(exc)) from exc
    return replace(section, clutter_table=str(path))


def _class_offsets_section(checker: _Checker, table) -> dict:
    """[terrain.class_offsets_db.<tech>] <class code> = <dB>."""
    offsets: dict = {}
    for tech, by_code in _table(checker, "[terrain.class_offsets_db]", table).items():
        if tech not in PROFILES:
            raise checker.unknown(f"[terrain.class_offsets_db] {tech}", tech, PROFILES)
        for code_text, value in _table(checker, f"[terrain.class_offsets_db.{tech}]", by_code).items():
            key = f"[terrain.class_offsets_db.{tech}] {code_text}"
            text = str(code_text).strip()
            if not (text.isascii() and text.isdigit() and 0 <= int(text) <= _MAX_CLASS_CODE):
                raise checker.fail(key, f"a land-cover class code must be an integer 0-{_MAX_CLASS_CODE}")
            offsets.setdefault(tech, {})[int(text)] = checker.value(key, value, *_CALIBRATION_RULES["loss_offset_db"])
    return {tech: dict(sorted(by_code.items())) for tech, by_code in sorted(offsets.items())}


def _calibration_section(checker: _Checker, table: dict, profiles: dict) -> CalibrationConfig:
    """[calibration.<tech>.<band>] <environment> = {loss_offset_db, loss_slope_db_per_decade}."""
    corrections = {}
    for tech, bands in table.items():
        if tech not in PROFILES:
            raise checker.unknown(f"[calibration] {tech}", tech, PROFILES)
        for band, envs in _table(checker, f"[calibration.{tech}]", bands).items():
            if band not in profiles[tech].bands:
                raise checker.unknown(f"[calibration.{tech}] {band}", band, profiles[tech].bands)
            for env, pair in _table(checker, f"[calibration.{tech}.{band}]", envs).items():
                key = f"[calibration.{tech}.{band}] {env}"
                if env not in ENVIRONMENTS:
                    raise checker.unknown(key, env, ENVIRONMENTS)
                values = {"loss_offset_db": 0.0, "loss_slope_db_per_decade": 0.0}
                for name, value in _table(checker, key, pair).items():
                    if name not in _CALIBRATION_RULES:
                        raise checker.unknown(f"{key}.{name}", name, _CALIBRATION_RULES)
                    values[name] = checker.value(f"{key}.{name}", value, *_CALIBRATION_RULES[name])
                corrections[(tech, band, env)] = (values["loss_offset_db"], values["loss_slope_db_per_decade"])
    return CalibrationConfig(corrections=corrections)


def config_from_dict(data: dict, source: str = "<config>") -> Config:
    """Validate parsed TOML data (a dict of tables) and apply it to the defaults.

    Raises
    ------
    ConfigError
        Unknown table or key, wrong type, value out of range; the message names
        ``source`` and the key.
    """
    checker = _Checker(source)
    profiles = dict(PROFILES)
    sections = {}
    allowed = (*PROFILES, *_SECTION_RULES, "calibration")
    for name, value in data.items():
        if name == "calibration":
            continue  # after the profiles, whose bands it names
        if name in PROFILES:
            profiles[name] = _override_profile(checker, name, PROFILES[name], _table(checker, f"[{name}]", value))
        elif name in _SECTION_RULES:
            sections[name] = _override_section(checker, name, _table(checker, f"[{name}]", value))
        else:
            raise checker.unknown(name, name, allowed)
    if "calibration" in data:
        sections["calibration"] = _calibration_section(checker, _table(checker, "[calibration]", data["calibration"]),
                                                       profiles)
    return Config(profiles=profiles, source=None if source == "<config>" else source, **sections)


def load_config(path: str | os.PathLike | None = None) -> Config:
    """Load the configuration: the built-in defaults, overridden by a TOML file.

    Parameters
    ----------
    path : path-like, optional
        A TOML file; None for the defaults alone.

    Returns
    -------
    Config

    Raises
    ------
    ConfigError
        The file is missing, not valid TOML (the message gives the line), or has
        an unknown key, a wrong type or an out-of-range value.

    Examples
    --------
    >>> cfg = load_config()
    >>> cfg.grid.resolution_m, cfg.profiles["nbiot"].penetration_margin_db
    (100, 20.0)
    """
    if path is None:
        return Config()
    path = Path(path)
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: configuration file not found") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration file: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    config = config_from_dict(data, source=str(path))
    log.info("configuration %s loaded (fingerprint %s)", path, config.fingerprint()[:12])
    return config


__all__ = ["CLUTTER_TABLE_NAMES", "CalibrationConfig", "ChallengeConfig", "Config", "EvaluationConfig", "GAP_RANKS",
           "GapsConfig", "GridConfig", "H3Config", "PlanConfig", "PublishConfig", "TargetsConfig", "TerrainConfig",
           "config_from_dict", "load_config"]
