"""What each pixel of a run's grid is worth to a planner: area, built-up area, people.

A :class:`GridWindow` is a rectangle of the run's global pixel lattice
(:mod:`coverage.grid`; pixels may lie outside the run's own raster extent). On it:

- :func:`unit_fractions`: the fraction of each pixel inside some polygons
  (exactextract's coverage fractions, as the statistics use, so sums over a
  window agree with ``stats/county.csv``);
- :func:`built_up_mask`: pixels whose land-cover class is built-up — the class
  table maps the class to ``built_up``, ``urban`` or ``dense_urban``
  (:mod:`coverage.terrain.clutter`); the class is that of the land-cover cell
  holding the pixel centre, as the prediction reads it;
- :func:`population_on_window`: people per pixel from a population raster in any
  CRS, warped onto the window with GDAL's ``sum`` resampling (each source pixel's
  people shared out by the area it overlaps, so totals are kept);
- :func:`polygon_sums`: per polygon, Σ coverage fraction × value of some of the
  above.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import rasterio
import shapely
from affine import Affine
from exactextract import exact_extract
from rasterio.warp import Resampling, reproject, transform_bounds

from coverage.errors import CRSMismatchError, InputReadError
from coverage.grid import CHINA_ALBERS_PROJ4
from coverage.zonal import _GridSource, pixel_window

M2_PER_KM2 = 1.0e6
BUILT_UP_ENVIRONMENTS = frozenset({"built_up", "urban", "dense_urban"})


@dataclass(frozen=True)
class GridWindow:
    """``width × height`` pixels of the global lattice from column ``col0``, row ``row0``."""

    col0: int
    row0: int
    width: int
    height: int
    resolution_m: float
    crs_wkt: str = CHINA_ALBERS_PROJ4

    @classmethod
    def around(cls, bounds_xy, resolution_m: float, pad_px: int = 1) -> GridWindow:
        """The smallest window holding ``bounds_xy`` (x_min, y_min, x_max, y_max, lattice CRS) plus ``pad_px``."""
        x_min, y_min, x_max, y_max = (float(v) for v in bounds_xy)
        res = float(resolution_m)
        col0 = math.floor(x_min / res) - pad_px
        col1 = math.ceil(x_max / res) + pad_px
        row0 = math.floor(-y_max / res) - pad_px
        row1 = math.ceil(-y_min / res) + pad_px
        return cls(col0, row0, max(col1 - col0, 1), max(row1 - row0, 1), res)

    @property
    def transform(self) -> Affine:
        return Affine(self.resolution_m, 0.0, self.col0 * self.resolution_m,
                      0.0, -self.resolution_m, -self.row0 * self.resolution_m)

    @property
    def shape(self) -> tuple[int, int]:
        return self.height, self.width

    @property
    def pixel_area_km2(self) -> float:
        return self.resolution_m ** 2 / M2_PER_KM2

    def pixel_centres(self, flat_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x, y (lattice CRS) of the pixels at ``flat_index`` (row-major in the window)."""
        rows, cols = np.divmod(np.asarray(flat_index, dtype=np.int64), self.width)
        return (self.col0 + cols + 0.5) * self.resolution_m, -(self.row0 + rows + 0.5) * self.resolution_m

    def read_class(self, path, nodata: int = 255) -> np.ndarray:
        """A class raster of the same lattice on this window; ``nodata`` where the raster does not reach."""
        out = np.full(self.shape, nodata, dtype=np.uint8)
        try:
            ds = rasterio.open(path)
        except rasterio.errors.RasterioIOError as exc:
            raise InputReadError(f"cannot read {path}: {exc}") from exc
        with ds:
            res = ds.transform.a
            if not math.isclose(res, self.resolution_m) or ds.crs is None:
                raise CRSMismatchError(f"{path} is not on a {self.resolution_m:g} m lattice of the run's grid")
            src_col0 = round(ds.transform.c / res)
            src_row0 = round(-ds.transform.f / res)
            c0, c1 = max(self.col0, src_col0), min(self.col0 + self.width, src_col0 + ds.width)
            r0, r1 = max(self.row0, src_row0), min(self.row0 + self.height, src_row0 + ds.height)
            if c1 > c0 and r1 > r0:
                window = rasterio.windows.Window(c0 - src_col0, r0 - src_row0, c1 - c0, r1 - r0)
                ds.read(1, window=window, out=out[r0 - self.row0:r1 - self.row0, c0 - self.col0:c1 - self.col0])
        return out


def unit_fractions(window: GridWindow, polygons_xy) -> np.ndarray:
    """Per pixel, the fraction of its area inside the union of ``polygons_xy`` (non-overlapping, lattice CRS)."""
    frac = np.zeros(window.shape, dtype=np.float64)
    for cell_ids, fractions in _cells(window, polygons_xy):
        np.add.at(frac.reshape(-1), cell_ids, fractions)
    np.minimum(frac, 1.0, out=frac)
    return frac


def polygon_sums(window: GridWindow, polygons_xy, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Per polygon (lattice CRS) and per named pixel array, Σ coverage fraction × value."""
    polygons = list(polygons_xy)
    out = {name: np.zeros(len(polygons)) for name in values}
    flat = {name: np.asarray(v, dtype=np.float64).reshape(-1) for name, v in values.items()}
    for i, (cell_ids, fractions) in enumerate(_cells(window, polygons)):
        for name, v in flat.items():
            out[name][i] = float(np.dot(v[cell_ids], fractions)) if len(cell_ids) else 0.0
    return out


def _cells(window: GridWindow, polygons_xy):
    """(flat cell ids in the window, coverage fractions) of each polygon, in order."""
    polygons = list(polygons_xy)
    if not polygons:
        return []
    frame = gpd.GeoDataFrame({"_i": np.arange(len(polygons))}, geometry=polygons, crs=window.crs_wkt)
    empty = shapely.is_empty(frame.geometry.to_numpy()) | frame.geometry.isna().to_numpy()
    result = [(np.zeros(0, dtype=np.int64), np.zeros(0))] * len(polygons)
    if (~empty).any():
        t = window.transform
        grid = _GridSource((t.c, t.f - window.height * window.resolution_m, t.c + window.width * t.a, t.f),
                           (window.resolution_m, window.resolution_m), window.crs_wkt)
        cells = exact_extract(grid, frame[~empty], ["cell_id", "coverage"], include_cols=["_i"],
                              output="pandas")
        for i, cell_ids, fractions in zip(cells["_i"], cells["cell_id"], cells["coverage"], strict=True):
            result[int(i)] = (np.asarray(cell_ids, dtype=np.int64), np.asarray(fractions, dtype=np.float64))
    return result


def built_up_mask(window: GridWindow, landcover, class_table) -> np.ndarray:
    """True where the land-cover class at the pixel centre is built-up (module docstring)."""
    codes = landcover.lattice_classes((window.col0 + 0.5) * window.resolution_m,
                                      -(window.row0 + 0.5) * window.resolution_m,
                                      window.resolution_m, window.width, window.height)
    lut = np.zeros(256, dtype=bool)
    for code, cls in class_table.classes.items():
        lut[code] = cls.environment in BUILT_UP_ENVIRONMENTS
    return lut[codes]


def population_on_window(window: GridWindow, population) -> np.ndarray:
    """People per pixel of ``window`` from a population raster (people per pixel, any CRS)."""
    out = np.zeros(window.shape, dtype=np.float64)
    try:
        ds = rasterio.open(population)
    except rasterio.errors.RasterioIOError as exc:
        raise InputReadError(f"cannot read population raster {population}: {exc}") from exc
    with ds:
        if ds.crs is None:
            raise CRSMismatchError(f"population raster {population} has no CRS")
        t = window.transform
        bounds = transform_bounds(window.crs_wkt, ds.crs, t.c, t.f - window.height * window.resolution_m,
                                  t.c + window.width * t.a, t.f, densify_pts=21)
        src_window = pixel_window(bounds, ds, pad_px=2)
        if src_window is None:
            return out
        source = ds.read(1, window=src_window, masked=True).astype(np.float64).filled(0.0)
        source[~np.isfinite(source) | (source < 0)] = 0.0
        reproject(source, out, src_transform=ds.window_transform(src_window), src_crs=ds.crs,
                  dst_transform=window.transform, dst_crs=window.crs_wkt, resampling=Resampling.sum,
                  src_nodata=None, dst_nodata=None)
    return out


def run_land_cover(report: dict, config=None):
    """``(land cover, class table)`` a run was predicted with (its ``raster/report.json``), or ``(None, None)``.

    Raises
    ------
    TerrainSourceError
        The land-cover file the run used cannot be opened any more.
    """
    entry = (report.get("terrain") or {}).get("clutter")
    if not entry:
        return None, None
    from coverage.terrain.clutter import BUILTIN_TABLES, builtin_table, load_class_table
    from coverage.terrain.landcover import open_landcover

    landcover = open_landcover(entry["path"])
    name = entry.get("class_table")
    if name in BUILTIN_TABLES:
        return landcover, builtin_table(name)
    spec = getattr(getattr(config, "terrain", None), "clutter_table", None)
    return landcover, load_class_table(spec)
