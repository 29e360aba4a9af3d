"""The run directory: where every stage reads and writes, and the codes they share.

A run directory is self-describing (``manifest.json``) and belongs to the tool.
Every path a stage reads or writes comes from :class:`RunLayout`, so the stages
agree on names without importing each other.

Raster codes
------------
``<tech>[_<op>]_rsrp.tif``: best-server received signal, dBm, float32,
nodata :data:`RSRP_NODATA_DBM` where no sector is in reach.
``<tech>[_<op>]_class.tif``: uint8 coverage class, nodata :data:`CLASS_NODATA`:
:data:`CLASS_NONE` (not covered), :data:`CLASS_OUTDOOR` (covered outdoors),
:data:`CLASS_DEEP` (deep / indoor coverage, the outdoor threshold plus the
penetration margin). Without ``_<op>`` the layer is all operators combined.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ALL_OPERATORS = "all"

RSRP_NODATA_DBM = -9999.0
CLASS_NONE = 0
CLASS_OUTDOOR = 1
CLASS_DEEP = 2
CLASS_NODATA = 255
CLASS_LABELS = {
    CLASS_NONE: "无覆盖 not covered",
    CLASS_OUTDOOR: "室外覆盖 outdoor",
    CLASS_DEEP: "深度覆盖 deep / indoor",
}


def layer_key(tech: str, operator: str = ALL_OPERATORS) -> str:
    """File stem of a technology's layer: ``nbiot`` (all operators) or ``nbiot_ct``."""
    if operator == ALL_OPERATORS:
        return tech
    return f"{tech}_{operator.lower()}"


@dataclass(frozen=True)
class RunLayout:
    """Paths of one run directory.

    Examples
    --------
    >>> RunLayout("run").rsrp("nbiot", "CT").as_posix()
    'run/raster/nbiot_ct_rsrp.tif'
    >>> RunLayout("run").coverage_class("redcap").as_posix()
    'run/raster/redcap_class.tif'
    """

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def sectors(self) -> Path:
        return self.root / "sectors.parquet"

    @property
    def rejects(self) -> Path:
        return self.root / "rejects.csv"

    @property
    def raster_dir(self) -> Path:
        return self.root / "raster"

    def rsrp(self, tech: str, operator: str = ALL_OPERATORS) -> Path:
        return self.raster_dir / f"{layer_key(tech, operator)}_rsrp.tif"

    def coverage_class(self, tech: str, operator: str = ALL_OPERATORS) -> Path:
        return self.raster_dir / f"{layer_key(tech, operator)}_class.tif"

    @property
    def predict_report(self) -> Path:
        return self.raster_dir / "report.json"

    @property
    def stats_dir(self) -> Path:
        return self.root / "stats"

    @property
    def county_csv(self) -> Path:
        return self.stats_dir / "county.csv"

    @property
    def township_csv(self) -> Path:
        return self.stats_dir / "township.csv"

    @property
    def summary_csv(self) -> Path:
        return self.stats_dir / "summary.csv"

    @property
    def stats_gpkg(self) -> Path:
        return self.stats_dir / "coverage.gpkg"

    def gaps_csv(self, tech: str) -> Path:
        return self.stats_dir / f"gaps_{tech}.csv"

    @property
    def change_dir(self) -> Path:
        """What changed since the previous run (``build --previous``; see :mod:`coverage.compare`)."""
        return self.root / "change"

    def gap_areas_csv(self, tech: str) -> Path:
        return self.stats_dir / f"gap_areas_{tech}.csv"

    @property
    def challenge_dir(self) -> Path:
        return self.root / "challenge"

    @property
    def challenge_csv(self) -> Path:
        return self.challenge_dir / "hexes.csv"

    @property
    def challenge_gpkg(self) -> Path:
        return self.challenge_dir / "hexes.gpkg"

    @property
    def challenge_tests_csv(self) -> Path:
        return self.challenge_dir / "tests.csv"
