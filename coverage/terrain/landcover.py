"""Land-cover (clutter) rasters read by window: the class of the NEAREST cell.

:func:`open_landcover` opens a GeoTIFF (or any single-band GDAL raster) in any CRS
and returns a picklable :class:`LandCoverSource`, read by the same fixed blocks as
:class:`~coverage.terrain.dem.DemSource` (no margin, no fill). Classes are
categories, so a point takes the class of the cell it falls in, never an
interpolation; nodata, values outside 0–254 and points outside the raster give
:data:`CLASS_NODATA` (255), which the caller maps (e.g. to the sector's own
environment, :mod:`coverage.terrain.clutter`).

Any geographic CRS is taken as WGS-84 lon/lat: the MODIS MCD12C1 GeoTIFF declares
a Clarke 1866 geographic CRS, whose datum differs from WGS-84 by far less than its
0.05° cells. Projected CRSs (e.g. a UTM tile of ESA WorldCover reprojected) are
reached from lon/lat or the Albers plane with pyproj, point by point, so a point's
class depends only on its coordinates, whatever window it is asked in.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from coverage.errors import TerrainSourceError
from coverage.grid import CHINA_ALBERS_PROJ4
from coverage.terrain.dem import (
    DEFAULT_BLOCK_PX,
    DEFAULT_CACHE_BLOCKS,
    NETCDF_SUFFIXES,
    _WindowedRaster,
)

CLASS_NODATA = 255
"""Class code of nodata and of points outside the raster (MODIS MCD12C1's fill value)."""


class LandCoverSource(_WindowedRaster):
    """A land-cover raster opened by :func:`open_landcover`: nearest cell, uint8, picklable.

    Attributes
    ----------
    path : Path
        The file given.
    kind : str
        ``"geotiff"``, ``"vrt"`` or ``"netcdf"``.
    crs : str
        The CRS as given (``"EPSG:4326"`` or a WKT string).
    nodata : float or None
        The value read as :data:`CLASS_NODATA`.
    """

    kind_label = "land-cover raster"

    def _make_block(self, raw: np.ndarray, inner: tuple[slice, slice]) -> tuple:
        raw = raw[inner]
        bad = ~np.isfinite(raw) if raw.dtype.kind == "f" else np.zeros(raw.shape, dtype=bool)
        with np.errstate(invalid="ignore"):
            bad |= (raw < 0) | (raw > CLASS_NODATA - 1)
        if self.nodata is not None:
            bad |= raw == self.nodata
        classes = np.where(bad, CLASS_NODATA, raw).astype(np.uint8)
        return (np.ascontiguousarray(classes),)

    def _nearest(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Class of the cell holding each native point (flat arrays)."""
        x0, dx, y0, dy = self.transform
        out = np.full(x.shape, CLASS_NODATA, dtype=np.uint8)
        k = np.flatnonzero(self._inside(x, y))
        if k.size == 0:
            return out
        cols = np.minimum(np.floor((x[k] - x0) / dx), self.width - 1).astype(np.int64)
        rows = np.minimum(np.floor((y[k] - y0) / dy), self.height - 1).astype(np.int64)
        (out[k],) = self._gather(rows, cols, 1)
        return out

    def sample_lonlat_classes(self, lon_deg, lat_deg) -> np.ndarray:
        """Classes at WGS-84 points (nearest cell).

        Parameters
        ----------
        lon_deg, lat_deg : array_like
            Longitudes and latitudes, degrees (broadcast together).

        Returns
        -------
        numpy.ndarray of uint8
            Class codes; 255 for nodata and outside the raster.
        """
        lon, lat = np.broadcast_arrays(np.asarray(lon_deg, dtype=np.float64),
                                       np.asarray(lat_deg, dtype=np.float64))
        x, y = self._to_native(lon.ravel(), lat.ravel())
        return self._nearest(x, y).reshape(lon.shape)

    def lattice_classes(self, x_first_m: float, y_first_m: float, step_m: float, nx: int, ny: int,
                        crs: str = CHINA_ALBERS_PROJ4) -> np.ndarray:
        """Classes on a regular lattice of a projected plane (the China Albers grid).

        Point ``(j, i)`` is ``x = x_first_m + i·step_m``, ``y = y_first_m − j·step_m``,
        transformed exactly to the raster's CRS and given the class of the cell
        it falls in (see :meth:`coverage.terrain.dem.DemSource.lattice`).

        Returns
        -------
        numpy.ndarray of uint8, shape (ny, nx)
            Class codes; 255 for nodata and outside the raster.
        """
        x, y = self._lattice_native(x_first_m, y_first_m, step_m, nx, ny, crs)
        return self._nearest(x, y).reshape(ny, nx)


def open_landcover(spec: str | os.PathLike, *, crs: str | None = None, nodata: float | None = None,
                   block_px: int = DEFAULT_BLOCK_PX, cache_blocks: int = DEFAULT_CACHE_BLOCKS,
                   sha256: str | None = None) -> LandCoverSource:
    """Open a land-cover raster (GeoTIFF/COG/VRT, one band of class codes).

    Parameters
    ----------
    spec : path
        The file.
    crs : str, optional
        CRS to assign (overrides the file's; needed when it has none).
    nodata : float, optional
        Class value read as nodata instead of the declared one.
    block_px, cache_blocks : int
        Block side (cells) and blocks kept in memory.
    sha256 : str, optional
        The file's known sha256 (skips hashing it for :meth:`LandCoverSource.info`).

    Returns
    -------
    LandCoverSource

    Raises
    ------
    TerrainSourceError
        Missing or unreadable file, a folder, no CRS. The message names the file.

    Examples
    --------
    >>> from coverage.terrain.data import open_default_landcover
    >>> lc = open_default_landcover()  # doctest: +SKIP
    >>> lc.sample_lonlat_classes([118.09], [24.48])  # doctest: +SKIP
    array([13], dtype=uint8)
    """
    path = Path(spec).expanduser()
    if not path.exists():
        raise TerrainSourceError(f"land cover {path} does not exist")
    if path.is_dir():
        raise TerrainSourceError(f"land cover {path} is a folder; give one raster file (a VRT to mosaic tiles)")
    suffix = path.suffix.lower()
    kind = "netcdf" if suffix in NETCDF_SUFFIXES else ("vrt" if suffix == ".vrt" else "geotiff")
    return LandCoverSource(path, kind, str(path), crs=crs, nodata=nodata, block_px=block_px, margin_px=0,
                           cache_blocks=cache_blocks, sha256=sha256)
