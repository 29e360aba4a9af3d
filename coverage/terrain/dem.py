"""Digital elevation models read by window, sampled bilinearly, voids filled.

:func:`open_dem` opens any of

* a GeoTIFF, COG or VRT in any CRS (a raster without a CRS is an error unless
  ``crs=`` assigns one);
* a folder of SRTM ``.hgt`` tiles (``N24E118.hgt``: 1201² cells = 3″ or 3601² =
  1″, big-endian int16, −32768 = void), or a single ``.hgt`` tile; the folder is
  mosaicked by a VRT written in memory (GDAL's SRTMHGT driver reads each tile);
* a CF NetCDF on a lat/lon grid, read by GDAL's netCDF driver. Its elevation
  variable is the only one with two or more dimensions, else the first present of
  :data:`NETCDF_ELEVATION_NAMES`. GDAL opens such files without a CRS: when the
  geotransform is a sane lon/lat grid (and the coordinate variables, where they
  say, are in degrees) EPSG:4326 is assumed and ``info()["assumed_crs"]`` is True.

and returns a :class:`DemSource`, which reads only the windows it needs and can be
pickled (it stores the spec and reopens the file lazily in each process, so Dask
worker processes can use it).

Samples are a pure function of position
---------------------------------------
The DEM's native grid is cut into a FIXED partition of ``block_px`` × ``block_px``
blocks. Each block is read with a fixed margin of ``margin_px`` cells around it,
and its nodata cells (sea and neighbouring countries in the national file, SRTM
voids) take the value of the nearest valid cell of that window
(:func:`scipy.ndimage.distance_transform_edt` with ``return_indices``; distances
in ground units, so a geographic grid's cells count as their true aspect). Cells
with no valid cell in the whole window get 0 m (open sea). Off a coast the filled
value is the coast's height (near 0 m); beyond a land border it is the border's
own height, never a 0 m valley beside a Himalayan site. A cell's value therefore
depends only on its block, never on the window a caller asked for, and bilinear
sampling of these cells (:meth:`DemSource.sample_lonlat`,
:meth:`DemSource.lattice`) gives bit-identical values for the same point whatever
tile it is computed in. GDAL's warper is not used (its approximate transformer
depends on the window). Filled blocks are kept in a small LRU cache
(``cache_blocks`` blocks, ~330 KB each at 256²).

Geographic CRSs are taken as WGS-84 lon/lat (a datum shift of a geographic CRS is
metres to tens of metres, below the cells of the DEMs used here); projected CRSs
are reached from lon/lat with pyproj, point by point.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import threading
import warnings
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from xml.sax.saxutils import escape

import numpy as np

from coverage.errors import TerrainCoverageError, TerrainSourceError
from coverage.grid import CHINA_ALBERS_PROJ4

log = logging.getLogger(__name__)

DEFAULT_BLOCK_PX = 256
"""Side of the fixed blocks of the native grid in which voids are filled, cells."""

DEFAULT_MARGIN_PX = 128
"""Cells read around each block to find the nearest valid cell of its voids."""

DEFAULT_CACHE_BLOCKS = 64
"""Filled blocks kept in memory per source (LRU): 64 × 256² × 5 B ≈ 21 MB."""

SRTM_VOID = -32768
"""Void value of SRTM ``.hgt`` tiles (NASA SRTM v3 user guide; GDAL SRTMHGT driver)."""

SRTM_TILE_PX = {1201: 3, 3601: 1}
"""Cells per side of an SRTM ``.hgt`` tile -> arc-seconds per cell (SRTM3, SRTM1)."""

NETCDF_ELEVATION_NAMES = ("data0", "elevation", "z", "height", "Band1")
"""NetCDF variables taken as elevation, in this order, when several are 2-D or more."""

NETCDF_SUFFIXES = (".nc", ".nc4", ".cdf", ".netcdf")

_HGT_NAME = re.compile(r"^([NS])(\d{2})([EW])(\d{3})\.hgt$", re.IGNORECASE)

# WGS-84 metres per degree of latitude / of longitude at the equator (mean values,
# enough for the approximate ground resolution reported by info()).
_M_PER_DEG_LAT = 110_574.0
_M_PER_DEG_LON = 111_320.0


# ---------------------------------------------------------------- the shared reader


class _WindowedRaster:
    """A single-band raster read by fixed blocks, picklable, opened lazily per process.

    Subclasses turn a block's window into the cached block (:meth:`_make_block`).
    All attributes set in ``__init__`` are plain values; the dataset handle, the
    lock, the block cache and the pyproj transformers live in ``_local`` state that
    is dropped on pickling and rebuilt in the new process.
    """

    kind_label = "raster"

    def __init__(self, path: Path, kind: str, open_name: str, *, crs: str | None,
                 nodata: float | None, block_px: int, margin_px: int, cache_blocks: int,
                 sha256: str | None = None):
        import rasterio
        from pyproj import CRS

        if block_px < 2 or margin_px < 0 or cache_blocks < 1:
            raise ValueError("block_px >= 2, margin_px >= 0 and cache_blocks >= 1 are required")
        self.path = path
        self.kind = kind
        self._open_name = open_name
        self.block_px = int(block_px)
        self.margin_px = int(margin_px)
        self.cache_blocks = int(cache_blocks)
        self._sha256 = sha256
        self._local: dict = {}
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
                with rasterio.open(open_name) as ds:
                    if ds.count < 1:
                        raise TerrainSourceError(f"{path}: no raster band to read")
                    transform = ds.transform
                    ds_crs = ds.crs
                    ds_nodata = ds.nodata
                    self.width, self.height = ds.width, ds.height
                    self.dtype = ds.dtypes[0]
                    tags = ds.tags()
        except TerrainSourceError:
            raise
        except rasterio.errors.RasterioError as exc:
            raise TerrainSourceError(f"{path}: cannot be read as a {self.kind_label} ({exc})") from exc
        if transform.b != 0 or transform.d != 0:
            raise TerrainSourceError(f"{path}: rotated or sheared rasters are not supported")
        if self.width < 2 or self.height < 2:
            raise TerrainSourceError(f"{path}: {self.width}×{self.height} cells; at least 2×2 are needed")
        self.transform = (transform.c, transform.a, transform.f, transform.e)  # x0, dx, y0, dy
        self.assumed_crs = False
        if crs is not None:
            crs_obj = CRS.from_user_input(crs)
        elif ds_crs is not None:
            crs_obj = CRS.from_user_input(ds_crs.to_wkt())
        elif kind == "netcdf" and _sane_lonlat_grid(self.transform, self.width, self.height, tags):
            crs_obj = CRS.from_epsg(4326)
            self.assumed_crs = True
            log.info("%s has no CRS; its lat/lon grid in degrees is taken as EPSG:4326", path)
        else:
            raise TerrainSourceError(
                f"{path} has no CRS (and is not a NetCDF on a lat/lon grid); assign one with crs=, "
                "e.g. crs='EPSG:4326'")
        self.crs_wkt = crs_obj.to_wkt()
        self.crs = _crs_label(crs_obj)
        self.is_geographic = bool(crs_obj.is_geographic)
        if nodata is not None:
            self.nodata = float(nodata)
        elif ds_nodata is not None:
            self.nodata = float(ds_nodata)
        elif kind == "hgt":
            self.nodata = float(SRTM_VOID)
        else:
            self.nodata = None
        x0, dx, y0, dy = self.transform
        if dx <= 0 or dy >= 0:
            raise TerrainSourceError(f"{path}: only north-up rasters are supported (dx={dx}, dy={dy})")
        self.bounds = (x0, y0 + dy * self.height, x0 + dx * self.width, y0)
        self.bounds_lonlat = self._lonlat_bounds()
        # A geographic grid stored in 0-360 degrees takes western longitudes as +360.
        self._wrap_360 = self.is_geographic and self.bounds[0] >= 0 and self.bounds[2] > 180

    # ------------------------------------------------------------ pickling, lazy state

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_local"] = {}
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)

    def _state(self) -> dict:
        """The per-process state (dataset, lock, cache, transformers), rebuilt after fork."""
        local = self._local
        if local.get("pid") != os.getpid():
            local.clear()
            local.update(pid=os.getpid(), lock=threading.Lock(), cache=OrderedDict(),
                         transformers={}, ds=None)
        return local

    def _dataset(self, local: dict):
        if local["ds"] is None:
            import rasterio

            try:
                local["ds"] = rasterio.open(self._open_name)
            except rasterio.errors.RasterioError as exc:
                raise TerrainSourceError(f"{self.path}: cannot be reopened ({exc})") from exc
        return local["ds"]

    def close(self) -> None:
        """Close this process's dataset handle and drop its cached blocks."""
        local = self._local
        if local.get("pid") == os.getpid() and local.get("ds") is not None:
            local["ds"].close()
        local.clear()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({str(self.path)!r}, kind={self.kind!r}, crs={self.crs!r})"

    # ------------------------------------------------------------ description

    @property
    def sha256(self) -> str:
        """Hex sha256 of the file (a folder: of its tiles' names and sha256s); computed once."""
        if self._sha256 is None:
            self._sha256 = _sha256_of(self.path)
        return self._sha256

    def info(self) -> dict:
        """Describe the source for a run's manifest.

        Returns
        -------
        dict
            ``path``, ``kind``, ``sha256``, ``crs`` (as given or assumed, e.g.
            ``"EPSG:4326"``), ``assumed_crs`` (bool), ``resolution`` (x, y) in CRS
            units, ``resolution_m`` (x, y) approximate ground metres at the centre,
            ``bounds_lonlat`` (lon_min, lat_min, lon_max, lat_max), ``nodata`` (the
            value treated as nodata, or None), ``width``, ``height``.
        """
        x0, dx, y0, dy = self.transform
        return {
            "path": str(self.path),
            "kind": self.kind,
            "sha256": self.sha256,
            "crs": self.crs,
            "assumed_crs": self.assumed_crs,
            "resolution": (dx, -dy),
            "resolution_m": self._resolution_m(),
            "bounds_lonlat": self.bounds_lonlat,
            "nodata": self.nodata,
            "width": self.width,
            "height": self.height,
        }

    def _resolution_m(self) -> tuple[float, float]:
        _, dx, _, dy = self.transform
        if not self.is_geographic:
            return (dx, -dy)
        lat_c = 0.5 * (self.bounds[1] + self.bounds[3])
        return (dx * _M_PER_DEG_LON * math.cos(math.radians(lat_c)), -dy * _M_PER_DEG_LAT)

    def _lonlat_bounds(self) -> tuple[float, float, float, float]:
        if self.is_geographic:
            return tuple(float(v) for v in self.bounds)
        from rasterio.warp import transform_bounds

        return tuple(float(v) for v in transform_bounds(self.crs_wkt, "EPSG:4326", *self.bounds,
                                                         densify_pts=51))

    # ------------------------------------------------------------ coverage checks

    def check_covers(self, lon_min: float, lat_min: float, lon_max: float, lat_max: float) -> None:
        """Raise unless the source covers the lon/lat box (WGS-84 degrees).

        For a projected source the box's densified outline is tested in the
        source's CRS; the message gives the missing strips in lon/lat.

        Raises
        ------
        TerrainCoverageError
            Naming the file, the extent it covers, the extent needed and the
            uncovered part.
        """
        if not (lon_min <= lon_max and lat_min <= lat_max):
            raise ValueError(f"empty box {lon_min}, {lat_min}, {lon_max}, {lat_max}")
        t = np.linspace(0.0, 1.0, 51)
        lon = np.concatenate([lon_min + (lon_max - lon_min) * t, np.full(51, lon_max),
                              lon_max - (lon_max - lon_min) * t, np.full(51, lon_min)])
        lat = np.concatenate([np.full(51, lat_min), lat_min + (lat_max - lat_min) * t,
                              np.full(51, lat_max), lat_max - (lat_max - lat_min) * t])
        if self._inside(*self._to_native(lon, lat)).all():
            return
        w, s, e, n = self.bounds_lonlat
        strips = []
        if lon_min < w:
            strips.append(f"{_lon_range(lon_min, min(w, lon_max))} on the west")
        if lon_max > e:
            strips.append(f"{_lon_range(max(e, lon_min), lon_max)} on the east")
        if lat_min < s:
            strips.append(f"{_lat_range(lat_min, min(s, lat_max))} on the south")
        if lat_max > n:
            strips.append(f"{_lat_range(max(n, lat_min), lat_max)} on the north")
        if not strips:
            strips.append("corners of the box outside the projected extent")
        raise TerrainCoverageError(
            f"{self.path} covers {_lon_range(w, e)}, {_lat_range(s, n)}; the run needs "
            f"{_lon_range(lon_min, lon_max)}, {_lat_range(lat_min, lat_max)} "
            f"(uncovered: {'; '.join(strips)})")

    def check_points_inside(self, lon_deg, lat_deg, labels: Sequence | None = None, show: int = 5) -> None:
        """Raise unless every point (e.g. a site) lies inside the source.

        Parameters
        ----------
        lon_deg, lat_deg : array_like
            WGS-84 longitudes and latitudes, degrees.
        labels : sequence, optional
            Names of the points (e.g. sector ids) used in the message.
        show : int, default 5
            How many outside points the message lists.

        Raises
        ------
        TerrainCoverageError
            Saying how many points are outside and listing the first few.
        """
        lon = np.atleast_1d(np.asarray(lon_deg, dtype=np.float64)).ravel()
        lat = np.atleast_1d(np.asarray(lat_deg, dtype=np.float64)).ravel()
        outside = np.flatnonzero(~self._inside(*self._to_native(lon, lat)))
        if outside.size == 0:
            return
        shown = []
        for k in outside[:show]:
            where = f"({lon[k]:.4f}, {lat[k]:.4f})"
            shown.append(f"{labels[k]} {where}" if labels is not None else where)
        w, s, e, n = self.bounds_lonlat
        raise TerrainCoverageError(
            f"{outside.size:,} of {lon.size:,} sites lie outside {self.path}, which covers "
            f"{_lon_range(w, e)}, {_lat_range(s, n)}; first: {', '.join(shown)}")

    # ------------------------------------------------------------ coordinates

    def _transformer(self, src_crs: str):
        local = self._state()
        cached = local["transformers"].get(src_crs)
        if cached is None:
            from pyproj import Transformer

            target = "EPSG:4326" if self.is_geographic else self.crs_wkt
            cached = Transformer.from_crs(src_crs, target, always_xy=True)
            local["transformers"][src_crs] = cached
        return cached

    def _to_native(self, lon, lat) -> tuple[np.ndarray, np.ndarray]:
        """WGS-84 lon/lat -> the source's CRS (geographic sources: lon/lat as they are)."""
        lon = np.asarray(lon, dtype=np.float64)
        lat = np.asarray(lat, dtype=np.float64)
        if self.is_geographic:
            if self._wrap_360:
                lon = np.where(lon < 0, lon + 360.0, lon)
            return lon, lat
        x, y = self._transformer("EPSG:4326").transform(lon, lat)
        return np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)

    def _lattice_native(self, x_first_m, y_first_m, step_m, nx, ny, crs) -> tuple[np.ndarray, np.ndarray]:
        """The lattice points (row-major) in the source's CRS."""
        if nx < 0 or ny < 0 or not step_m > 0:
            raise ValueError(f"lattice needs nx, ny >= 0 and step_m > 0 (got {nx}, {ny}, {step_m})")
        xs = x_first_m + np.arange(nx, dtype=np.float64) * step_m
        ys = y_first_m - np.arange(ny, dtype=np.float64) * step_m
        x = np.tile(xs, ny)
        y = np.repeat(ys, nx)
        x, y = self._transformer(str(crs)).transform(x, y)
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        if self._wrap_360:
            x = np.where(x < 0, x + 360.0, x)
        return x, y

    def _inside(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        left, bottom, right, top = self.bounds
        return (x >= left) & (x <= right) & (y >= bottom) & (y <= top)

    # ------------------------------------------------------------ blocks

    def _block(self, bi: int, bj: int) -> tuple:
        """The cached block (row bi, column bj) of the fixed partition."""
        local = self._state()
        key = (bi, bj)
        with local["lock"]:
            cache = local["cache"]
            hit = cache.get(key)
            if hit is not None:
                cache.move_to_end(key)
                return hit
            from rasterio.windows import Window

            b, m = self.block_px, self.margin_px
            r0, c0 = bi * b, bj * b
            r1, c1 = min(r0 + b, self.height), min(c0 + b, self.width)
            wr0, wc0 = max(r0 - m, 0), max(c0 - m, 0)
            wr1, wc1 = min(r1 + m, self.height), min(c1 + m, self.width)
            ds = self._dataset(local)
            raw = ds.read(1, window=Window(wc0, wr0, wc1 - wc0, wr1 - wr0))
            block = self._make_block(raw, (slice(r0 - wr0, r1 - wr0), slice(c0 - wc0, c1 - wc0)))
            cache[key] = block
            while len(cache) > self.cache_blocks:
                cache.popitem(last=False)
            return block

    def _make_block(self, raw: np.ndarray, inner: tuple[slice, slice]) -> tuple:
        raise NotImplementedError

    def _gather(self, rows: np.ndarray, cols: np.ndarray, n_parts: int) -> list[np.ndarray]:
        """Values of the cached blocks at integer cells (rows, cols), part by part.

        Cells are grouped by block so that each block is fetched once. Returns one
        output array per part of the block tuple (e.g. values, valid mask).
        """
        b = self.block_px
        blocks_x = -(-self.width // b)
        keys = (rows // b) * blocks_x + cols // b
        if -(-self.height // b) * blocks_x < 2**15:
            keys = keys.astype(np.int16)  # numpy's stable sort of 16-bit keys is a radix sort
        order = np.argsort(keys, kind="stable")
        sorted_keys = keys[order]
        starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        stops = np.r_[starts[1:], sorted_keys.size]
        outs = None
        for start, stop in zip(starts, stops, strict=True):
            key = int(sorted_keys[start])
            bi, bj = divmod(key, blocks_x)
            parts = self._block(bi, bj)
            if outs is None:
                outs = [np.empty(rows.size, dtype=part.dtype) for part in parts[:n_parts]]
            idx = order[start:stop]
            rr = rows[idx] - bi * b
            cc = cols[idx] - bj * b
            for out, part in zip(outs, parts[:n_parts], strict=True):
                out[idx] = part[rr, cc]
        return outs or []


# ---------------------------------------------------------------- the DEM


class DemSource(_WindowedRaster):
    """A DEM opened by :func:`open_dem`: windowed, void-filled, bilinear, picklable.

    Attributes
    ----------
    path : Path
        The file or folder given.
    kind : str
        ``"geotiff"`` (GeoTIFF, COG, other GDAL rasters), ``"vrt"``, ``"hgt"`` (an
        SRTM tile or folder of tiles) or ``"netcdf"``.
    crs : str
        The CRS as given or assumed (``"EPSG:4326"`` or a WKT string).
    nodata : float or None
        The value treated as nodata (NaN is always nodata).
    vertical_scale : float
        Factor applied to stored values to get metres (0.3048 for feet).
    """

    kind_label = "DEM"

    def __init__(self, path: Path, kind: str, open_name: str, *, vertical_scale: float = 1.0, **kwargs):
        if not (math.isfinite(vertical_scale) and vertical_scale > 0):
            raise ValueError(f"vertical_scale must be a positive number (got {vertical_scale})")
        self.vertical_scale = float(vertical_scale)
        super().__init__(path, kind, open_name, **kwargs)
        if self.is_geographic:
            lat_c = 0.5 * (self.bounds[1] + self.bounds[3])
            aspect = max(math.cos(math.radians(lat_c)), 0.05) * _M_PER_DEG_LON / _M_PER_DEG_LAT
            _, dx, _, dy = self.transform
            self._edt_sampling = (-dy, dx * aspect)
        else:
            _, dx, _, dy = self.transform
            self._edt_sampling = (-dy, dx)

    def info(self) -> dict:
        """Describe the DEM (see :meth:`_WindowedRaster.info`), plus ``vertical_scale``,
        ``block_px`` and ``margin_px`` (the fill partition)."""
        info = super().info()
        info.update(vertical_scale=self.vertical_scale, block_px=self.block_px, margin_px=self.margin_px)
        return info

    def _make_block(self, raw: np.ndarray, inner: tuple[slice, slice]) -> tuple:
        from scipy.ndimage import distance_transform_edt

        valid = np.isfinite(raw) if raw.dtype.kind == "f" else np.ones(raw.shape, dtype=bool)
        if self.nodata is not None:
            valid &= raw != self.nodata
        values = (raw.astype(np.float64) * self.vertical_scale).astype(np.float32)
        inner_valid = valid[inner]
        if inner_valid.all():
            filled = values[inner]
        elif not valid.any():
            filled = np.zeros(inner_valid.shape, dtype=np.float32)
        else:
            idx = distance_transform_edt(~valid, sampling=self._edt_sampling,
                                         return_distances=False, return_indices=True)
            filled = values[idx[0][inner], idx[1][inner]]
        return (np.ascontiguousarray(filled, dtype=np.float32), np.ascontiguousarray(inner_valid))

    def _bilinear(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Bilinear sample of the filled grid at native coordinates (flat arrays)."""
        x0, dx, y0, dy = self.transform
        col = (x - x0) / dx - 0.5  # 0 at the first cell centre
        row = (y - y0) / dy - 0.5
        inside = self._inside(x, y)
        elevation = np.full(x.shape, np.nan, dtype=np.float64)
        filled = np.zeros(x.shape, dtype=bool)
        k = np.flatnonzero(inside)
        if k.size == 0:
            return elevation, filled
        col = np.clip(col[k], 0.0, self.width - 1.0)
        row = np.clip(row[k], 0.0, self.height - 1.0)
        c0 = np.minimum(np.floor(col), self.width - 2.0)
        r0 = np.minimum(np.floor(row), self.height - 2.0)
        fc = col - c0
        fr = row - r0
        c0 = c0.astype(np.int64)
        r0 = r0.astype(np.int64)
        rows = np.concatenate([r0, r0, r0 + 1, r0 + 1])
        cols = np.concatenate([c0, c0 + 1, c0, c0 + 1])
        values, valid = self._gather(rows, cols, 2)
        n = k.size
        v = values.astype(np.float64).reshape(4, n)
        ok = valid.reshape(4, n)
        elevation[k] = (v[0] * (1.0 - fc) + v[1] * fc) * (1.0 - fr) + (v[2] * (1.0 - fc) + v[3] * fc) * fr
        weighted = np.stack([(fc < 1) & (fr < 1), (fc > 0) & (fr < 1), (fc < 1) & (fr > 0), (fc > 0) & (fr > 0)])
        filled[k] = (weighted & ~ok).any(axis=0)
        return elevation, filled

    def sample_lonlat(self, lon_deg, lat_deg) -> tuple[np.ndarray, np.ndarray]:
        """Elevations at WGS-84 points, bilinear between cell centres of the filled DEM.

        Parameters
        ----------
        lon_deg, lat_deg : array_like
            Longitudes and latitudes, degrees (broadcast together).

        Returns
        -------
        elevation_m : numpy.ndarray of float64
            Metres (stored values × ``vertical_scale``); NaN outside the DEM (check
            with :meth:`check_points_inside` first).
        filled : numpy.ndarray of bool
            True where a cell used with non-zero weight was nodata (filled).

        Examples
        --------
        >>> z_m, filled = dem.sample_lonlat([118.09], [24.45])  # doctest: +SKIP
        """
        lon, lat = np.broadcast_arrays(np.asarray(lon_deg, dtype=np.float64),
                                       np.asarray(lat_deg, dtype=np.float64))
        shape = lon.shape
        x, y = self._to_native(lon.ravel(), lat.ravel())
        elevation, filled = self._bilinear(x, y)
        return elevation.reshape(shape), filled.reshape(shape)

    def lattice(self, x_first_m: float, y_first_m: float, step_m: float, nx: int, ny: int,
                crs: str = CHINA_ALBERS_PROJ4, edge: bool = False) -> tuple[np.ndarray, int]:
        """Elevations on a regular lattice of a projected plane (the China Albers grid).

        Point ``(j, i)`` is ``x = x_first_m + i·step_m``, ``y = y_first_m − j·step_m``
        (i: column, j: row; rows go south), computed in float64 as written. Each
        point is transformed exactly (pyproj) to the DEM's CRS and sampled
        bilinearly, so its value depends only on its coordinates: windows of one
        lattice whose coordinates are exact (e.g. the grid's pixel centres,
        multiples of half a resolution) agree bit for bit.

        Parameters
        ----------
        x_first_m, y_first_m : float
            Coordinates of the first (north-west) point, metres in ``crs``.
        step_m : float
            Spacing, metres.
        nx, ny : int
            Columns and rows.
        crs : str, default :data:`coverage.grid.CHINA_ALBERS_PROJ4`
            The plane's CRS.
        edge : bool, default False
            Points beyond the DEM's edge take the value at the nearest point of its
            edge (as nodata takes the nearest valid cell's) and count as filled,
            instead of NaN.

        Returns
        -------
        elevation_m : numpy.ndarray of float32, shape (ny, nx)
            Metres; NaN outside the DEM unless ``edge``.
        filled_count : int
            How many points used filled (nodata) cells.
        """
        x, y = self._lattice_native(x_first_m, y_first_m, step_m, nx, ny, crs)
        outside = None
        if edge:
            left, bottom, right, top = self.bounds
            outside = ~self._inside(x, y)
            x = np.clip(x, left, right)
            y = np.clip(y, bottom, top)
        elevation, filled = self._bilinear(x, y)
        if outside is not None:
            filled |= outside
        return elevation.astype(np.float32).reshape(ny, nx), int(filled.sum())


# ---------------------------------------------------------------- opening


def open_dem(spec: str | os.PathLike, vertical_scale: float = 1.0, *, crs: str | None = None,
             nodata: float | None = None, variable: str | None = None,
             block_px: int = DEFAULT_BLOCK_PX, margin_px: int = DEFAULT_MARGIN_PX,
             cache_blocks: int = DEFAULT_CACHE_BLOCKS, sha256: str | None = None) -> DemSource:
    """Open a DEM: a GeoTIFF/COG/VRT, a folder of SRTM ``.hgt`` tiles or a CF NetCDF.

    Parameters
    ----------
    spec : path
        The file or folder.
    vertical_scale : float, default 1.0
        Factor from stored values to metres (0.3048 for a DEM in feet).
    crs : str, optional
        CRS to assign (overrides the file's; needed for a GeoTIFF without one).
    nodata : float, optional
        Value to treat as nodata instead of the declared one (the meteva NetCDF
        declares −32767 but uses −999).
    variable : str, optional
        NetCDF variable to read (default: see :data:`NETCDF_ELEVATION_NAMES`).
    block_px, margin_px : int
        The fixed fill partition: block side and margin, cells.
    cache_blocks : int
        Filled blocks kept in memory.
    sha256 : str, optional
        The file's known sha256 (skips hashing it for :meth:`DemSource.info`).

    Returns
    -------
    DemSource

    Raises
    ------
    TerrainSourceError
        Missing file, unreadable file, no CRS (GeoTIFF), empty folder or no
        ``.hgt`` tiles, NetCDF without a usable variable. The message names the file.

    Examples
    --------
    >>> dem = open_dem("/usr/share/ncarg/data/cdf/trinidad.nc", vertical_scale=0.3048)  # doctest: +SKIP
    >>> dem.info()["crs"]  # doctest: +SKIP
    'EPSG:4326'
    """
    path, kind, open_name = _resolve_spec(spec, variable, "DEM")
    return DemSource(path, kind, open_name, vertical_scale=vertical_scale, crs=crs, nodata=nodata,
                     block_px=block_px, margin_px=margin_px, cache_blocks=cache_blocks, sha256=sha256)


def _resolve_spec(spec: str | os.PathLike, variable: str | None, what: str) -> tuple[Path, str, str]:
    """(path, kind, the name rasterio opens) of a source spec."""
    path = Path(spec).expanduser()
    if not path.exists():
        raise TerrainSourceError(f"{what} {path} does not exist")
    if path.is_dir():
        return path, "hgt", _hgt_folder_vrt(path)
    suffix = path.suffix.lower()
    if suffix == ".hgt":
        return path, "hgt", _hgt_folder_vrt(path.parent, [path])
    if suffix in NETCDF_SUFFIXES:
        return path, "netcdf", _netcdf_variable(path, variable)
    return path, ("vrt" if suffix == ".vrt" else "geotiff"), str(path)


def _netcdf_variable(path: Path, variable: str | None) -> str:
    """The GDAL name of the NetCDF's elevation variable."""
    import rasterio

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", rasterio.errors.NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                subdatasets = list(ds.subdatasets)
                count = ds.count
    except rasterio.errors.RasterioError as exc:
        raise TerrainSourceError(f"{path}: cannot be read as NetCDF ({exc})") from exc
    names = [sub.rsplit(":", 1)[-1] for sub in subdatasets]
    if variable is None:
        if not subdatasets:
            if count >= 1:
                return str(path)
            raise TerrainSourceError(f"{path}: no variable with two or more dimensions")
        if len(names) == 1:
            variable = names[0]
        else:
            variable = next((name for name in NETCDF_ELEVATION_NAMES if name in names), None)
            if variable is None:
                raise TerrainSourceError(
                    f"{path}: no elevation variable among {', '.join(names)} (looked for "
                    f"{', '.join(NETCDF_ELEVATION_NAMES)}); pass variable=")
    elif subdatasets and variable not in names:
        raise TerrainSourceError(f"{path}: no variable {variable!r} (has {', '.join(names)})")
    elif not subdatasets:
        return str(path)
    return f'NETCDF:"{path}":{variable}'


def _sane_lonlat_grid(transform: tuple, width: int, height: int, tags: dict) -> bool:
    """True when a CRS-less NetCDF grid looks like CF lat/lon in degrees."""
    x0, dx, y0, dy = transform
    if not (0 < dx <= 10 and -10 <= dy < 0):
        return False
    left, right, top, bottom = x0, x0 + dx * width, y0, y0 + dy * height
    if not (-180 - dx <= left and right <= 360 + dx and -90 + dy <= bottom and top <= 90 - dy):
        return False
    if (left, top, dx, dy) == (0.0, 0.0, 1.0, 1.0):
        return False
    for key, value in tags.items():
        name = key.split("#")[0].lower()
        if key.lower().endswith("#units") and name in ("lat", "latitude", "lon", "longitude"):
            if "degree" not in value.lower():
                return False
    return True


def _hgt_folder_vrt(folder: Path, files: list[Path] | None = None) -> str:
    """VRT XML mosaicking the SRTM ``.hgt`` tiles of a folder (or the files given)."""
    if files is None:
        if not any(folder.iterdir()):
            raise TerrainSourceError(f"DEM folder {folder} is empty")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() == ".hgt" and p.is_file())
        if not files:
            raise TerrainSourceError(f"DEM folder {folder} has no SRTM .hgt tiles (names like N24E118.hgt)")
    tiles = []
    size = None
    for file in files:
        match = _HGT_NAME.match(file.name)
        if match is None:
            raise TerrainSourceError(f"{file}: not an SRTM tile name (like N24E118.hgt)")
        n_bytes = file.stat().st_size
        side = math.isqrt(n_bytes // 2)
        if side not in SRTM_TILE_PX or side * side * 2 != n_bytes:
            raise TerrainSourceError(f"{file}: {n_bytes:,} bytes is neither a 1201² nor a 3601² SRTM tile")
        if size is not None and side != size:
            raise TerrainSourceError(f"{folder}: mixes 1201² and 3601² SRTM tiles; keep one resolution")
        size = side
        lat = int(match[2]) * (1 if match[1].upper() == "N" else -1)
        lon = int(match[4]) * (1 if match[3].upper() == "E" else -1)
        tiles.append((lat, lon, file))
    cells = size - 1  # cells per degree
    res = 1.0 / cells
    lat_top = max(t[0] for t in tiles) + 1
    lat_bottom = min(t[0] for t in tiles)
    lon_left = min(t[1] for t in tiles)
    lon_right = max(t[1] for t in tiles) + 1
    width = (lon_right - lon_left) * cells + 1
    height = (lat_top - lat_bottom) * cells + 1
    sources = []
    for lat, lon, file in tiles:
        xoff = (lon - lon_left) * cells
        yoff = (lat_top - (lat + 1)) * cells
        sources.append(
            f'<ComplexSource><SourceFilename relativeToVRT="0">{escape(str(file.resolve()))}</SourceFilename>'
            f'<SourceBand>1</SourceBand><SrcRect xOff="0" yOff="0" xSize="{size}" ySize="{size}"/>'
            f'<DstRect xOff="{xoff}" yOff="{yoff}" xSize="{size}" ySize="{size}"/>'
            f"<NODATA>{SRTM_VOID}</NODATA></ComplexSource>")
    geotransform = f"{lon_left - res / 2!r}, {res!r}, 0, {lat_top + res / 2!r}, 0, {-res!r}"
    return (f'<VRTDataset rasterXSize="{width}" rasterYSize="{height}"><SRS>EPSG:4326</SRS>'
            f"<GeoTransform>{geotransform}</GeoTransform>"
            f'<VRTRasterBand dataType="Int16" band="1"><NoDataValue>{SRTM_VOID}</NoDataValue>'
            f"{''.join(sources)}</VRTRasterBand></VRTDataset>")


def _sha256_of(path: Path) -> str:
    """sha256 of a file, or of a folder's sorted (tile name, tile sha256) lines."""
    from coverage.files import sha256_file

    if not path.is_dir():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.iterdir() if p.suffix.lower() == ".hgt" and p.is_file()):
        digest.update(f"{file.name} {sha256_file(file)}\n".encode())
    return digest.hexdigest()


def _crs_label(crs) -> str:
    """``"EPSG:4326"`` when the CRS has an EPSG code, else its WKT."""
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg is not None else crs.to_wkt()


def _lon_range(a: float, b: float) -> str:
    if a >= 0:
        return f"{a:.2f}–{b:.2f} °E"
    if b <= 0:
        return f"{-a:.2f}–{-b:.2f} °W"
    return f"{-a:.2f} °W–{b:.2f} °E"


def _lat_range(a: float, b: float) -> str:
    if a >= 0:
        return f"{a:.2f}–{b:.2f} °N"
    if b <= 0:
        return f"{-a:.2f}–{-b:.2f} °S"
    return f"{-a:.2f} °S–{b:.2f} °N"
