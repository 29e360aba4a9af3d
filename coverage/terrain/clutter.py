"""Land-cover class tables: which environment of the empirical models applies at a receiver.

A :class:`ClassTable` maps each land-cover class code (0-254; 255 is nodata) of a
raster to a :class:`ClutterClass`:

``environment``
    ``dense_urban``, ``urban``, ``suburban`` or ``rural`` (the environments of
    :data:`coverage.radio.ENVIRONMENTS`); ``built_up``: the serving sector's own
    environment when it is ``dense_urban`` or ``urban``, else ``urban`` (a
    land-cover "built-up" class cannot tell a dense core from a county town; the
    sectors' site density can); or ``sector``: keep the serving sector's
    environment (nodata and classes a table does not list).
``foliage``
    Add :func:`coverage.radio.clutter_loss.foliage_excess_db` at the device.
``extra_loss_db``
    Any further fixed loss, dB (default 0).

Built-in tables: ``worldcover`` (ESA WorldCover v100/v200) and ``igbp`` (MODIS
MCD12C1 / MCD12Q1 Type 1); a user table is a TOML file (:func:`load_class_table`)::

    name = "my landcover"

    [classes.50]
    name = "built-up"
    environment = "built_up"

    [classes.10]
    environment = "rural"
    foliage = true
    extra_loss_db = 2.0

How double counting is avoided
------------------------------
covmap's path-loss models are empirical (Okumura-Hata, COST-231 Hata, 3GPP TR
38.901): each environment variant already contains the median loss of the clutter
around the receiver. The land-cover class therefore only *chooses* which variant
applies at the receiver: the Hata urban / suburban / open-area correction, TR
38.901 UMa or RMa, and the shadow-fading sigma of that environment (hence its
90 % location margin), in place of the serving sector's environment. No ITU-R
P.2108 clutter loss is added on top of Hata-urban or 38.901 UMa, whose rooftop
diffraction and street clutter are the same loss (at 900 MHz Hata urban exceeds
open area by 28.5 dB, P.2108's urban terminal correction is 22.6 dB). The one
additive term is foliage on tree classes: the P.2108-1 §3.1 trees/forest terminal
correction minus the open/rural one (4.8 dB at 900 MHz, 7.1 dB at 2.6 GHz for a
1.5 m device), which none of the chosen variants contains, since a tree class
selects the open-area / rural variant. Terrain diffraction uses the bare DEM
only: no clutter heights are added to the terrain profile, so buildings and
canopy are not counted a second time as obstacles.

The numba kernel reads a table as two 256-entry lookup tables indexed by the
class code: :func:`environment_lut` (uint8 :data:`ENV_CODES`) and
:func:`extra_loss_lut` (dB); :func:`receiver_environment` resolves ``built_up``
and ``sector`` against the serving sector's environment.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import logging
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from coverage.config import _NUMBER, _STR, _Checker  # validation rules and messages of the config
from coverage.errors import ConfigError
from coverage.radio import ENVIRONMENTS
from coverage.radio.clutter_loss import foliage_excess_db

log = logging.getLogger(__name__)

# ---------------------------------------------------------------- environment codes

BUILT_UP = 4
SECTOR = 5
# uint8 environment codes of the lookup tables: 0..3 index coverage.radio.ENVIRONMENTS.
ENV_CODES: dict[str, int] = {**{env: i for i, env in enumerate(ENVIRONMENTS)}, "built_up": BUILT_UP, "sector": SECTOR}
CLASS_ENVIRONMENTS: tuple[str, ...] = tuple(ENV_CODES)
NODATA_CLASS = 255  # the land-cover rasters' nodata code (MCD12 "unclassified" 255); never in a table
_MAX_CLASS = 254
# extra_loss_db range, dB: a loss, bounded like the profiles' penetration_margin_db (0-60 dB).
_EXTRA_LOSS_RANGE_DB = (0.0, 60.0)

BUILTIN_TABLES = ("worldcover", "igbp")


@dataclass(frozen=True)
class ClutterClass:
    """One land-cover class: the receiver environment it selects and its additive losses."""

    code: int  # class code in the raster, 0-254
    name: str  # the legend's label
    environment: str  # one of CLASS_ENVIRONMENTS
    foliage: bool = False  # add foliage_excess_db at the device
    extra_loss_db: float = 0.0  # further fixed loss, dB

    def as_dict(self) -> dict:
        """Plain data, as in a TOML ``[classes.<code>]`` table."""
        return {"name": self.name, "environment": self.environment, "foliage": self.foliage,
                "extra_loss_db": self.extra_loss_db}


@dataclass(frozen=True)
class ClassTable:
    """A land-cover legend mapped to receiver environments.

    Attributes
    ----------
    name : str
        The table's name (``worldcover``, ``igbp`` or the TOML file's ``name``).
    classes : dict of int to ClutterClass
        By class code; codes not listed mean ``sector``.
    source : str or None
        ``builtin`` or the TOML file read (not part of the fingerprint).
    """

    name: str
    classes: Mapping[int, ClutterClass]
    source: str | None = field(default=None, compare=False)

    def as_dict(self) -> dict:
        """Plain JSON-able data: ``{"name": ..., "classes": {"<code>": {...}}}`` by code."""
        return {"name": self.name,
                "classes": {str(code): self.classes[code].as_dict() for code in sorted(self.classes)}}

    def fingerprint(self) -> str:
        """sha256 of the canonical JSON of :meth:`as_dict` (for reusing results)."""
        text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _table(name: str, rows: Iterable[tuple]) -> ClassTable:
    classes = {code: ClutterClass(code, label, env, foliage) for code, label, env, foliage in rows}
    return ClassTable(name=name, classes=classes, source="builtin")


# ---------------------------------------------------------------- built-in tables

# ESA WorldCover 10 m v100 (2020) / v200 (2021), Product User Manual (Zanaga et al.
# 2021, 2022) §"Map legend": 11 classes coded 10-100, 0 = no data. Mapping after
# CRC-COVLIB's WorldCover table (ic-crc/crc-covlib src/Simulation.cpp: default
# OPEN_RURAL, 10 tree cover and 50 built-up as URBAN_TREES_FOREST; see
# /work/shared/research/terrain-and-clutter.md §3.2), split for covmap's empirical
# models: built-up chooses an urban variant, trees the open variant plus foliage.
_WORLDCOVER = _table("worldcover", [
    # PUM legend "No data" (0): keep the sector's environment
    (0, "no data", "sector", False),
    # PUM 10 "Tree cover" (trees ≥ 5 m): open ground plus foliage (CRC-COVLIB: URBAN_TREES_FOREST)
    (10, "tree cover", "rural", True),
    # PUM 20 "Shrubland" (woody plants < 5 m): open (below P.2108's 15 m trees)
    (20, "shrubland", "rural", False),
    # PUM 30 "Grassland": open (CRC-COVLIB default OPEN_RURAL)
    (30, "grassland", "rural", False),
    # PUM 40 "Cropland": open (CRC-COVLIB default OPEN_RURAL)
    (40, "cropland", "rural", False),
    # PUM 50 "Built-up" (buildings, roads, other man-made structures): urban variant,
    # dense core vs town from the sector (CRC-COVLIB: URBAN_TREES_FOREST)
    (50, "built-up", "built_up", False),
    # PUM 60 "Bare / sparse vegetation": open
    (60, "bare / sparse vegetation", "rural", False),
    # PUM 70 "Snow and ice": open
    (70, "snow and ice", "rural", False),
    # PUM 80 "Permanent water bodies": open (CRC-COVLIB: WATER_SEA, height gain like open/rural)
    (80, "permanent water bodies", "rural", False),
    # PUM 90 "Herbaceous wetland": open
    (90, "herbaceous wetland", "rural", False),
    # PUM 95 "Mangroves" (tree cover flooded by salt water): open ground plus foliage, like 10
    (95, "mangroves", "rural", True),
    # PUM 100 "Moss and lichen": open
    (100, "moss and lichen", "rural", False),
])

# MODIS land cover, IGBP legend: MCD12Q1 / MCD12C1 Collection 6 User Guide
# (Sulla-Menashe & Friedl 2018) Table 3, LC_Type1 / Majority_Land_Cover_Type_1.
# MCD12C1 codes water 0 and classes 1-16; MCD12Q1 codes classes 1-16 and water 17;
# 255 = unclassified (nodata). Forests are "tree cover > 60 %, canopy > 2 m".
_IGBP = _table("igbp", [
    # MCD12C1 0 "Water": open (P.2108 water/sea uses the open/rural height-gain model)
    (0, "water", "rural", False),
    # User Guide 1 "Evergreen Needleleaf Forests" (tree cover > 60 %): open plus foliage
    (1, "evergreen needleleaf forests", "rural", True),
    # User Guide 2 "Evergreen Broadleaf Forests" (tree cover > 60 %): open plus foliage
    (2, "evergreen broadleaf forests", "rural", True),
    # User Guide 3 "Deciduous Needleleaf Forests" (tree cover > 60 %): open plus foliage
    (3, "deciduous needleleaf forests", "rural", True),
    # User Guide 4 "Deciduous Broadleaf Forests" (tree cover > 60 %): open plus foliage
    (4, "deciduous broadleaf forests", "rural", True),
    # User Guide 5 "Mixed Forests" (tree cover > 60 %): open plus foliage
    (5, "mixed forests", "rural", True),
    # User Guide 6 "Closed Shrublands" (shrubs < 2 m, cover > 60 %): open, shrubs are below the device
    (6, "closed shrublands", "rural", False),
    # User Guide 7 "Open Shrublands" (shrubs < 2 m, cover 10-60 %): open
    (7, "open shrublands", "rural", False),
    # User Guide 8 "Woody Savannas" (tree cover 30-60 %, canopy > 2 m): open plus foliage
    (8, "woody savannas", "rural", True),
    # User Guide 9 "Savannas" (tree cover 10-30 %): open, too few trees for the 15 m canopy of P.2108
    (9, "savannas", "rural", False),
    # User Guide 10 "Grasslands": open
    (10, "grasslands", "rural", False),
    # User Guide 11 "Permanent Wetlands": open
    (11, "permanent wetlands", "rural", False),
    # User Guide 12 "Croplands" (cropland > 60 %): open
    (12, "croplands", "rural", False),
    # User Guide 13 "Urban and Built-up Lands" (impervious surface ≥ 30 %): urban variant,
    # dense core vs town from the sector
    (13, "urban and built-up lands", "built_up", False),
    # User Guide 14 "Cropland/Natural Vegetation Mosaics" (small-scale cultivation 40-60 %
    # with natural tree, shrub or herbaceous vegetation): open land, not housing, and most
    # of it not under canopy, so open without foliage
    (14, "cropland / natural vegetation mosaics", "rural", False),
    # User Guide 15 "Permanent Snow and Ice": open
    (15, "permanent snow and ice", "rural", False),
    # User Guide 16 "Barren" (at least 60 % non-vegetated): open
    (16, "barren", "rural", False),
    # MCD12Q1 17 "Water Bodies": open, like MCD12C1's 0
    (17, "water bodies", "rural", False),
])

_BUILTIN = {"worldcover": _WORLDCOVER, "igbp": _IGBP}
_WORLDCOVER_CODES = frozenset(_WORLDCOVER.classes)
_IGBP_CODES = frozenset(_IGBP.classes)


def builtin_table(name: str) -> ClassTable:
    """A built-in class table.

    Parameters
    ----------
    name : str
        ``worldcover`` (ESA WorldCover v100/v200) or ``igbp`` (MODIS IGBP legend).

    Returns
    -------
    ClassTable

    Raises
    ------
    ConfigError
        For another name.

    Examples
    --------
    >>> t = builtin_table("worldcover")
    >>> t.classes[50].environment, t.classes[10].foliage
    ('built_up', True)
    """
    key = str(name).strip().lower()
    if key not in _BUILTIN:
        raise ConfigError(f"unknown built-in clutter table {name!r}; choose from {', '.join(BUILTIN_TABLES)}")
    return _BUILTIN[key]


# ---------------------------------------------------------------- user tables (TOML)

_CLASS_KEYS = ("name", "environment", "foliage", "extra_loss_db")
_TOP_KEYS = ("name", "classes")


def _class_from_toml(checker: _Checker, code_text: str, value) -> ClutterClass:
    key = f"[classes.{code_text}]"
    text = code_text.strip()
    if not (text.isascii() and text.isdigit()):
        raise checker.fail(key, f"a class code must be an integer 0-{_MAX_CLASS}")
    code = int(text)
    if code == NODATA_CLASS:
        raise checker.fail(key, f"{NODATA_CLASS} is the nodata code; it always keeps the sector's environment")
    if not 0 <= code <= _MAX_CLASS:
        raise checker.fail(key, f"class code {code} is out of range 0-{_MAX_CLASS}")
    if not isinstance(value, dict):
        raise checker.fail(key, f"must be a table, got {value!r}")
    for name in value:
        if name not in _CLASS_KEYS:
            raise checker.unknown(f"{key} {name}", name, _CLASS_KEYS)
    if "environment" not in value:
        raise checker.fail(f"{key} environment", f"missing; choose from {', '.join(CLASS_ENVIRONMENTS)}")
    environment = checker.value(f"{key} environment", value["environment"], _STR, None, None, "")
    if environment not in ENV_CODES:
        hint = difflib.get_close_matches(environment, CLASS_ENVIRONMENTS, n=1)
        raise checker.fail(f"{key} environment", f"{environment!r} is not one of {', '.join(CLASS_ENVIRONMENTS)}"
                           + (f"; did you mean {hint[0]!r}?" if hint else ""))
    label = checker.value(f"{key} name", value["name"], _STR, None, None, "") if "name" in value else f"class {code}"
    foliage = value.get("foliage", False)
    if not isinstance(foliage, bool):
        raise checker.fail(f"{key} foliage", f"must be true or false, got {foliage!r}")
    extra = checker.value(f"{key} extra_loss_db", value.get("extra_loss_db", 0.0), _NUMBER,
                          *_EXTRA_LOSS_RANGE_DB, "dB")
    return ClutterClass(code=code, name=label, environment=environment, foliage=foliage, extra_loss_db=extra)


def class_table_from_dict(data: Mapping, source: str = "<class table>") -> ClassTable:
    """Validate parsed TOML data of a class table.

    Parameters
    ----------
    data : mapping
        ``{"name": str (optional), "classes": {"<code>": {...}}}``.
    source : str
        Named in error messages (the file).

    Returns
    -------
    ClassTable
        Named ``data["name"]``, else the file's stem.

    Raises
    ------
    ConfigError
        Unknown key, bad environment, a code outside 0-254, a wrong type or an
        out-of-range ``extra_loss_db``; the message names ``source`` and the key.
    """
    checker = _Checker(source)
    for name in data:
        if name not in _TOP_KEYS:
            raise checker.unknown(name, name, _TOP_KEYS)
    default_name = Path(source).stem if source != "<class table>" else "user table"
    table_name = checker.value("name", data["name"], _STR, None, None, "") if "name" in data else default_name
    classes_data = data.get("classes", {})
    if not isinstance(classes_data, dict):
        raise checker.fail("classes", f"must be a table of [classes.<code>] tables, got {classes_data!r}")
    classes: dict[int, ClutterClass] = {}
    for code_text, value in classes_data.items():
        item = _class_from_toml(checker, str(code_text), value)
        if item.code in classes:
            raise checker.fail(f"[classes.{code_text}]", f"class {item.code} is given twice")
        classes[item.code] = item
    return ClassTable(name=table_name, classes=dict(sorted(classes.items())),
                      source=None if source == "<class table>" else source)


def load_class_table(spec: str | os.PathLike, base_dir: str | os.PathLike | None = None) -> ClassTable:
    """A class table by built-in name or TOML file.

    Parameters
    ----------
    spec : str or path-like
        ``worldcover``, ``igbp``, or the path of a TOML class table.
    base_dir : path-like, optional
        Folder a relative path is relative to (the configuration file's folder);
        default the current directory.

    Returns
    -------
    ClassTable

    Raises
    ------
    ConfigError
        ``auto`` (it needs the raster: see :func:`guess_table`), a missing or
        unreadable file, invalid TOML, or an invalid table (the message names the
        file and the key).

    Examples
    --------
    >>> load_class_table("igbp").classes[13].environment
    'built_up'
    """
    text = os.fspath(spec)
    if isinstance(spec, str) and text.strip().lower() in _BUILTIN:
        return builtin_table(text)
    if text.strip().lower() == "auto":
        raise ConfigError("clutter table 'auto' is chosen from the land-cover raster's classes (guess_table)")
    path = Path(text)
    if base_dir is not None and not path.is_absolute():
        path = Path(base_dir) / path
    try:
        with path.open("rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError as exc:
        raise ConfigError(f"{path}: clutter class table not found") from exc
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the clutter class table: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    table = class_table_from_dict(data, source=str(path))
    log.info("clutter class table %s loaded: %d classes (fingerprint %s)", path, len(table.classes),
             table.fingerprint()[:12])
    return table


# ---------------------------------------------------------------- guessing the legend


def guess_table(class_values: Iterable[int], source: str = "the land-cover raster") -> str:
    """Which built-in legend a land-cover raster uses, from the class codes present.

    ``igbp`` when every code is an IGBP code (0-17), ``worldcover`` when every code
    is a WorldCover code (0, 10, 20, … 100, 95); the nodata code 255 is ignored.

    Parameters
    ----------
    class_values : iterable of int
        The distinct codes present in the raster (e.g. ``numpy.unique`` of it).
    source : str
        Named in the error message.

    Returns
    -------
    str
        ``"igbp"`` or ``"worldcover"``.

    Raises
    ------
    ConfigError
        The codes fit neither legend, or both (only 0 and 10 present, or none but
        nodata): the message asks for ``[terrain] clutter_table``.

    Examples
    --------
    >>> guess_table([1, 5, 12, 13, 255])
    'igbp'
    >>> guess_table([10, 30, 50, 80, 95])
    'worldcover'
    """
    codes = {int(v) for v in np.asarray(list(class_values)).ravel()} - {NODATA_CLASS}
    is_igbp = codes <= _IGBP_CODES
    is_worldcover = codes <= _WORLDCOVER_CODES
    ask = 'set [terrain] clutter_table to "worldcover", "igbp" or the path of a TOML class table'
    shown = ", ".join(str(c) for c in sorted(codes)[:20]) + (", …" if len(codes) > 20 else "")
    if is_igbp and is_worldcover:
        raise ConfigError(f"{source}: classes {{{shown}}} fit both the IGBP and the WorldCover legend; {ask}")
    if is_igbp:
        return "igbp"
    if is_worldcover:
        return "worldcover"
    raise ConfigError(f"{source}: classes {{{shown}}} are neither IGBP (0-17) nor WorldCover "
                      f"(0, 10-100, 95) codes; {ask}")


# ---------------------------------------------------------------- lookup tables for the kernel


def environment_lut(table: ClassTable) -> np.ndarray:
    """Environment code of every class code: ``uint8[256]`` of :data:`ENV_CODES`.

    Codes the table does not list, and 255 (nodata), are :data:`SECTOR`.

    Examples
    --------
    >>> lut = environment_lut(builtin_table("worldcover"))
    >>> int(lut[50]), int(lut[10]), int(lut[255]), int(lut[7])
    (4, 3, 5, 5)
    """
    lut = np.full(256, SECTOR, dtype=np.uint8)
    for code, item in table.classes.items():
        lut[code] = ENV_CODES[item.environment]
    lut[NODATA_CLASS] = SECTOR
    return lut


def extra_loss_lut(table: ClassTable, freq_mhz: float, ue_height_m: float,
                   class_offsets_db: Mapping[int, float] | None = None) -> np.ndarray:
    """Additive receiver-side loss of every class code, dB: ``float64[256]``.

    ``foliage_excess_db(freq_mhz, ue_height_m)`` where a class has ``foliage``, plus
    its ``extra_loss_db``, plus its calibrated offset (``[terrain.class_offsets_db]``,
    listed or not in the table); 0 for unlisted codes and 255 (nodata).

    Parameters
    ----------
    table : ClassTable
    freq_mhz : float
        Carrier frequency, MHz.
    ue_height_m : float
        Device height above ground, m.
    class_offsets_db : mapping of int to float, optional
        Fitted offsets by class code, dB (:mod:`coverage.measure.calibrate`); may be
        negative.

    Returns
    -------
    numpy.ndarray
        float64, shape (256,).

    Examples
    --------
    >>> lut = extra_loss_lut(builtin_table("worldcover"), 900.0, 1.5)
    >>> round(float(lut[10]), 2), float(lut[50])
    (4.85, 0.0)
    """
    foliage_db = float(foliage_excess_db(freq_mhz, ue_height_m))
    lut = np.zeros(256, dtype=np.float64)
    for code, item in table.classes.items():
        lut[code] = (foliage_db if item.foliage else 0.0) + item.extra_loss_db
    for code, offset_db in (class_offsets_db or {}).items():
        lut[int(code)] += float(offset_db)
    lut[NODATA_CLASS] = 0.0
    return lut


def receiver_environment(env_code, sector_env_code):
    """Resolve class environment codes against the serving sector's environment.

    ``0..3`` stay; :data:`BUILT_UP` becomes the sector's code when it is dense_urban
    (0) or urban (1), else urban (1); :data:`SECTOR` becomes the sector's code.

    Parameters
    ----------
    env_code : int or array_like of uint8
        Codes from :func:`environment_lut`.
    sector_env_code : int or array_like
        The sector's environment, an index into :data:`coverage.radio.ENVIRONMENTS`.

    Returns
    -------
    numpy.ndarray
        uint8 index into :data:`coverage.radio.ENVIRONMENTS` (broadcast shape).

    Examples
    --------
    >>> receiver_environment([0, 3, 4, 4, 5], [2, 2, 0, 3, 2]).tolist()
    [0, 3, 0, 1, 2]
    """
    env = np.asarray(env_code, dtype=np.int64)
    sector = np.asarray(sector_env_code, dtype=np.int64)
    built_up = np.where(sector <= ENV_CODES["urban"], sector, ENV_CODES["urban"])
    out = np.where(env < BUILT_UP, env, np.where(env == BUILT_UP, built_up, sector))
    return out.astype(np.uint8)


__all__ = ["BUILTIN_TABLES", "BUILT_UP", "CLASS_ENVIRONMENTS", "ENV_CODES", "NODATA_CLASS", "SECTOR",
           "ClassTable", "ClutterClass", "builtin_table", "class_table_from_dict", "environment_lut",
           "extra_loss_lut", "guess_table", "load_class_table", "receiver_environment"]
