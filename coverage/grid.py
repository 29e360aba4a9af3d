"""The raster grid: an equal-area CRS for China, a global pixel lattice, tiles.

The CRS
-------
:data:`CHINA_ALBERS_PROJ4` is the common "China Albers" equal-area conic:
Albers on the WGS-84 ellipsoid, standard parallels 25°N and 47°N, latitude of
origin 0°, central meridian 105°E, false easting/northing 0, metres. CGCS2000
(the Chinese geodetic datum) differs from WGS-84 by centimetres, far below any
raster cell used here (30-1000 m), so WGS-84 serves for both. Areas measured in
this plane are true areas (the projection is equal-area), so a pixel of
``resolution_m`` × ``resolution_m`` is exactly ``resolution_m²`` of ground.

The global lattice
------------------
Every grid is a window of one global lattice of the Albers plane: pixel column
``i`` spans ``x`` from ``i·res`` to ``(i+1)·res`` and pixel row ``j`` spans ``y``
from ``−j·res`` to ``−(j+1)·res`` (rows count downwards, as in a raster). A grid's
top-left corner is snapped to multiples of ``res·tile_size_px`` and its size to
whole tiles, so grids of different extents line up pixel for pixel, tile ``(r, c)``
of one grid is a tile of the global tiling too, and a pixel centre is always the
same float64 number ``(i + 0.5)·res`` whatever the grid or tile it is computed in
(which is what makes outputs independent of the tile size).

Sectors per tile
----------------
:func:`sectors_by_tile` bins sectors into the tiles their reach disc touches,
vectorised (no Python loop over sectors), so that 1.5 M sectors are binned in
seconds. A sector's reach is the largest distance at which it can still deliver
the outdoor threshold with its boresight gain (0 dB relative), so no sector that
could reach a pixel is ever left out of that pixel's tile. The prediction stage
caps each reach at the radio horizon over a 4/3 Earth (``4.12 (√h_bs_m +
√h_ue_m)`` km, :func:`coverage.predict.radio_horizon_m`): the empirical path-loss
models ignore the Earth's curvature, and beyond the horizon diffraction losses grow
far faster than they predict. That cap also bounds the tiles a rural sector touches
(a 27.6 km disc instead of ~100 km: about 13 times fewer pixel × sector pairs).
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from coverage.errors import ConfigError

log = logging.getLogger(__name__)

CHINA_ALBERS_PROJ4 = (
    "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +x_0=0 +y_0=0 "
    "+datum=WGS84 +units=m +no_defs"
)
"""China Albers equal-area conic (WGS-84 ≈ CGCS2000 at raster scale)."""

RESOLUTION_MIN_M = 30.0
RESOLUTION_MAX_M = 1000.0
DEFAULT_RESOLUTION_M = 100.0
DEFAULT_TILE_SIZE_PX = 512
TILE_SIZE_MIN_PX = 16
TILE_SIZE_MAX_PX = 4096

# A tile box is widened by this much before testing it against a reach disc, so
# that float rounding can never drop a sector whose disc touches a pixel centre.
_SELECTION_SLACK_M = 1e-3


def china_albers_crs():
    """The grid CRS as a :class:`pyproj.CRS` (see :data:`CHINA_ALBERS_PROJ4`)."""
    from pyproj import CRS

    return CRS.from_proj4(CHINA_ALBERS_PROJ4)


def check_resolution(resolution_m: float) -> float:
    """Return ``resolution_m`` as float if it lies in 30-1000 m.

    Raises
    ------
    ConfigError
        The resolution is not a finite number in [30, 1000] m.
    """
    try:
        value = float(resolution_m)
    except (TypeError, ValueError):
        raise ConfigError(f"resolution_m must be a number of metres, got {resolution_m!r}") from None
    if not math.isfinite(value) or not RESOLUTION_MIN_M <= value <= RESOLUTION_MAX_M:
        raise ConfigError(
            f"resolution_m={resolution_m!r} is outside {RESOLUTION_MIN_M:g}-{RESOLUTION_MAX_M:g} m"
        )
    return value


def check_tile_size(tile_size_px: int) -> int:
    """Return ``tile_size_px`` if it is a multiple of 16 in 16-4096 (a GeoTIFF block size).

    Raises
    ------
    ConfigError
        Not an integer, not a multiple of 16 or out of range.
    """
    if isinstance(tile_size_px, bool) or not isinstance(tile_size_px, (int, np.integer)):
        raise ConfigError(f"tile_size_px must be an integer, got {tile_size_px!r}")
    value = int(tile_size_px)
    if not TILE_SIZE_MIN_PX <= value <= TILE_SIZE_MAX_PX or value % 16:
        raise ConfigError(
            f"tile_size_px={value} must be a multiple of 16 in {TILE_SIZE_MIN_PX}-{TILE_SIZE_MAX_PX}"
        )
    return value


@dataclass(frozen=True)
class Tile:
    """One tile of a grid: its index and its window (pixel offsets in the grid).

    Attributes
    ----------
    index : int
        Flat index ``tile_row · n_tile_cols + tile_col``.
    row_off, col_off : int
        Offset of the tile's top-left pixel in the grid, pixels.
    height, width : int
        Size in pixels (always ``tile_size_px``: grids are whole tiles).
    """

    index: int
    row_off: int
    col_off: int
    height: int
    width: int

    def window(self):
        """The tile as a :class:`rasterio.windows.Window`."""
        from rasterio.windows import Window

        return Window(self.col_off, self.row_off, self.width, self.height)


@dataclass(frozen=True)
class Grid:
    """A raster grid on the global China Albers lattice.

    Attributes
    ----------
    crs : str
        PROJ string of the grid's CRS (:data:`CHINA_ALBERS_PROJ4`).
    resolution_m : float
        Pixel size, metres (square pixels).
    x0, y0 : float
        Top-left corner in the CRS, metres; multiples of ``resolution_m · tile_size_px``.
    width, height : int
        Size in pixels; multiples of ``tile_size_px``.
    tile_size_px : int
        Tile edge, pixels.

    Examples
    --------
    >>> g = Grid.from_bounds(0.0, -1000.0, 1000.0, 0.0, resolution_m=100, tile_size_px=16)
    >>> (g.x0, g.y0, g.width, g.height, g.n_tiles)
    (0.0, 0.0, 16, 16, 1)
    >>> g.transform[:6]
    (100.0, 0.0, 0.0, 0.0, -100.0, 0.0)
    """

    crs: str
    resolution_m: float
    x0: float
    y0: float
    width: int
    height: int
    tile_size_px: int

    def __post_init__(self):
        check_resolution(self.resolution_m)
        check_tile_size(self.tile_size_px)
        tile_m = self.tile_m
        for name, value in (("x0", self.x0), ("y0", self.y0)):
            if value / tile_m != round(value / tile_m):
                raise ValueError(f"{name}={value} is not on the tile lattice ({tile_m} m)")
        for name, value in (("width", self.width), ("height", self.height)):
            if value <= 0 or value % self.tile_size_px:
                raise ValueError(f"{name}={value} is not a positive multiple of tile_size_px")

    # ------------------------------------------------------------ construction

    @classmethod
    def from_bounds(
        cls,
        xmin_m: float,
        ymin_m: float,
        xmax_m: float,
        ymax_m: float,
        resolution_m: float = DEFAULT_RESOLUTION_M,
        tile_size_px: int = DEFAULT_TILE_SIZE_PX,
        crs: str = CHINA_ALBERS_PROJ4,
    ) -> Grid:
        """The smallest lattice grid of whole tiles covering a box (Albers metres).

        Raises
        ------
        ConfigError
            Resolution or tile size out of range.
        ValueError
            Empty or non-finite box.
        """
        resolution_m = check_resolution(resolution_m)
        tile_size_px = check_tile_size(tile_size_px)
        box = np.array([xmin_m, ymin_m, xmax_m, ymax_m], dtype=np.float64)
        if not np.all(np.isfinite(box)) or xmax_m < xmin_m or ymax_m < ymin_m:
            raise ValueError(f"invalid bounds {tuple(box)}")
        tile_m = resolution_m * tile_size_px
        tx0 = math.floor(xmin_m / tile_m)
        tx1 = math.floor(xmax_m / tile_m) + 1
        ty0 = math.floor(-ymax_m / tile_m)  # tile rows count downwards from y = 0
        ty1 = math.floor(-ymin_m / tile_m) + 1
        return cls(
            crs=crs,
            resolution_m=resolution_m,
            x0=float(tx0 * tile_m),
            y0=float(-ty0 * tile_m) + 0.0,
            width=(tx1 - tx0) * tile_size_px,
            height=(ty1 - ty0) * tile_size_px,
            tile_size_px=tile_size_px,
        )

    # ------------------------------------------------------------ geometry

    @property
    def tile_m(self) -> float:
        """Tile edge, metres."""
        return self.resolution_m * self.tile_size_px

    @property
    def col0(self) -> int:
        """Global lattice column of the grid's first pixel column."""
        return round(self.x0 / self.resolution_m)

    @property
    def row0(self) -> int:
        """Global lattice row of the grid's first pixel row (rows count down from y = 0)."""
        return round(-self.y0 / self.resolution_m)

    @property
    def transform(self):
        """The affine pixel → CRS transform (:class:`affine.Affine`)."""
        from affine import Affine

        return Affine(self.resolution_m, 0.0, self.x0, 0.0, -self.resolution_m, self.y0)

    @property
    def bounds(self) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax), metres."""
        return (
            self.x0,
            self.y0 - self.height * self.resolution_m,
            self.x0 + self.width * self.resolution_m,
            self.y0,
        )

    @property
    def pixel_area_m2(self) -> float:
        """Area of one pixel, m² (true ground area: the CRS is equal-area)."""
        return self.resolution_m * self.resolution_m

    @property
    def n_tile_rows(self) -> int:
        return self.height // self.tile_size_px

    @property
    def n_tile_cols(self) -> int:
        return self.width // self.tile_size_px

    @property
    def n_tiles(self) -> int:
        return self.n_tile_rows * self.n_tile_cols

    def tile(self, index: int) -> Tile:
        """Tile number ``index`` (row-major)."""
        if not 0 <= index < self.n_tiles:
            raise IndexError(f"tile {index} outside 0-{self.n_tiles - 1}")
        tile_row, tile_col = divmod(int(index), self.n_tile_cols)
        size = self.tile_size_px
        return Tile(int(index), tile_row * size, tile_col * size, size, size)

    def tiles(self) -> Iterator[Tile]:
        """All tiles, row-major."""
        for index in range(self.n_tiles):
            yield self.tile(index)

    def tile_bounds(self, tile: Tile) -> tuple[float, float, float, float]:
        """(xmin, ymin, xmax, ymax) of a tile, metres."""
        res = self.resolution_m
        xmin = (self.col0 + tile.col_off) * res
        ymax = -(self.row0 + tile.row_off) * res
        return (xmin, ymax - tile.height * res, xmin + tile.width * res, ymax)

    def pixel_centres(self, tile: Tile) -> tuple[np.ndarray, np.ndarray]:
        """Pixel-centre coordinates of a tile: ``x_m`` per column, ``y_m`` per row.

        Computed from global lattice indices as ``(i + 0.5)·res`` (float64), so a
        pixel's coordinates do not depend on the grid or tile it is seen from.
        """
        res = self.resolution_m
        cols = self.col0 + tile.col_off + np.arange(tile.width, dtype=np.int64)
        rows = self.row0 + tile.row_off + np.arange(tile.height, dtype=np.int64)
        return (cols + 0.5) * res, -((rows + 0.5) * res)

    def as_dict(self) -> dict:
        """The grid as in ``report.json`` (``crs_wkt``, ``transform`` a..f, sizes)."""
        from pyproj import CRS

        t = self.transform
        return {
            "crs_wkt": CRS.from_proj4(self.crs).to_wkt(),
            "resolution_m": self.resolution_m,
            "width": self.width,
            "height": self.height,
            "transform": [t.a, t.b, t.c, t.d, t.e, t.f],
            "tile_size_px": self.tile_size_px,
        }


def grid_for_sectors(
    x_m: np.ndarray,
    y_m: np.ndarray,
    reach_m: np.ndarray,
    resolution_m: float = DEFAULT_RESOLUTION_M,
    tile_size_px: int = DEFAULT_TILE_SIZE_PX,
) -> Grid:
    """The lattice grid covering the union of all sectors' reach discs.

    Parameters
    ----------
    x_m, y_m : array of float
        Sector positions in the grid CRS (:data:`CHINA_ALBERS_PROJ4`), metres.
    reach_m : array of float
        Each sector's reach radius, metres (≥ 0).
    resolution_m : float, default 100
        Pixel size, metres, 30-1000.
    tile_size_px : int, default 512
        Tile edge, pixels (multiple of 16).

    Returns
    -------
    Grid
        Whole tiles of the global lattice, snapped outwards.

    Raises
    ------
    ConfigError
        Resolution or tile size out of range.
    ValueError
        No sectors, arrays of different lengths, or non-finite values.
    """
    x_m, y_m, reach_m = (np.asarray(a, dtype=np.float64) for a in (x_m, y_m, reach_m))
    if not (x_m.shape == y_m.shape == reach_m.shape) or x_m.ndim != 1:
        raise ValueError("x_m, y_m and reach_m must be 1-D arrays of one length")
    if x_m.size == 0:
        raise ValueError("no sectors to make a grid for")
    if not (np.all(np.isfinite(x_m)) and np.all(np.isfinite(y_m)) and np.all(np.isfinite(reach_m))):
        raise ValueError("sector positions and reaches must be finite")
    if np.any(reach_m < 0):
        raise ValueError("reach_m must be >= 0")
    return Grid.from_bounds(
        float(np.min(x_m - reach_m)),
        float(np.min(y_m - reach_m)),
        float(np.max(x_m + reach_m)),
        float(np.max(y_m + reach_m)),
        resolution_m=resolution_m,
        tile_size_px=tile_size_px,
    )


@dataclass(frozen=True)
class TileSectors:
    """Sectors binned by tile (compressed sparse rows).

    Attributes
    ----------
    tile_index : ndarray of int64
        Flat indices of the tiles with at least one candidate sector, ascending.
    offsets : ndarray of int64
        ``sector_index[offsets[k]:offsets[k+1]]`` are the candidates of ``tile_index[k]``.
    sector_index : ndarray of int64
        Sector row numbers, ascending within each tile (the input order is kept, which
        fixes the tie-break between equally strong servers).
    """

    tile_index: np.ndarray
    offsets: np.ndarray
    sector_index: np.ndarray

    def __len__(self) -> int:
        return int(self.tile_index.size)

    def items(self) -> Iterator[tuple[int, np.ndarray]]:
        """(tile index, candidate sector rows) for each non-empty tile."""
        for k, tile_id in enumerate(self.tile_index):
            yield int(tile_id), self.sector_index[self.offsets[k] : self.offsets[k + 1]]

    @property
    def pairs(self) -> int:
        """Number of (tile, sector) candidate pairs."""
        return int(self.sector_index.size)


def sectors_meeting_square(x_m, y_m, reach_m, col0: int, row0: int, size_px: int, res_m: float) -> np.ndarray:
    """Indices of the sectors whose reach disc meets a square of the run's pixel lattice.

    The same test as :func:`sectors_by_tile` (with its slack) for one square of
    ``size_px`` pixels whose top-left pixel is (``col0``, ``row0``) of the lattice
    whose pixel (c, r) spans ``x ∈ [c·res, (c+1)·res]``, ``y ∈ [−(r+1)·res, −r·res]``
    (the prediction's global pixels), so a tile or a window computed alone sees the
    sectors a tile of the run would.
    """
    x_m, y_m, reach_m = (np.asarray(a, dtype=np.float64) for a in (x_m, y_m, reach_m))
    bx0, bx1 = col0 * res_m, (col0 + size_px) * res_m
    by1, by0 = -row0 * res_m, -(row0 + size_px) * res_m
    dx = np.maximum(np.maximum(bx0 - x_m, x_m - bx1), 0.0)
    dy = np.maximum(np.maximum(by0 - y_m, y_m - by1), 0.0)
    r = reach_m + _SELECTION_SLACK_M
    return np.flatnonzero(dx * dx + dy * dy <= r * r)


def sectors_by_tile(
    grid: Grid,
    x_m: np.ndarray,
    y_m: np.ndarray,
    reach_m: np.ndarray,
    chunk_sectors: int = 262_144,
) -> TileSectors:
    """Bin sectors into the tiles their reach disc intersects (vectorised).

    A sector is a candidate of a tile when the disc of radius ``reach_m`` around it
    meets the tile's box (pixel edges, widened by 1 mm against float rounding), so
    every pixel centre within a sector's reach finds the sector among its tile's
    candidates.

    Parameters
    ----------
    grid : Grid
    x_m, y_m : array of float
        Sector positions in the grid CRS, metres.
    reach_m : array of float
        Reach radius per sector, metres.
    chunk_sectors : int, default 262144
        Sectors processed per vectorised step (bounds the temporary memory).

    Returns
    -------
    TileSectors
    """
    x_m, y_m, reach_m = (np.asarray(a, dtype=np.float64) for a in (x_m, y_m, reach_m))
    tile_m = grid.tile_m
    n_cols, n_rows = grid.n_tile_cols, grid.n_tile_rows
    tile_parts, sector_parts = [], []
    for start in range(0, x_m.size, chunk_sectors):
        stop = min(start + chunk_sectors, x_m.size)
        x, y, r = x_m[start:stop], y_m[start:stop], reach_m[start:stop] + _SELECTION_SLACK_M
        c_lo = np.clip(np.floor((x - r - grid.x0) / tile_m), 0, n_cols - 1).astype(np.int64)
        c_hi = np.clip(np.floor((x + r - grid.x0) / tile_m), -1, n_cols - 1).astype(np.int64)
        r_lo = np.clip(np.floor((grid.y0 - (y + r)) / tile_m), 0, n_rows - 1).astype(np.int64)
        r_hi = np.clip(np.floor((grid.y0 - (y - r)) / tile_m), -1, n_rows - 1).astype(np.int64)
        n_c = np.maximum(c_hi - c_lo + 1, 0)
        n_r = np.maximum(r_hi - r_lo + 1, 0)
        counts = n_c * n_r
        total = int(counts.sum())
        if total == 0:
            continue
        owner = np.repeat(np.arange(x.size, dtype=np.int64), counts)
        first = np.repeat(np.cumsum(counts) - counts, counts)
        k = np.arange(total, dtype=np.int64) - first
        n_c_rep = n_c[owner]
        tile_col = c_lo[owner] + k % n_c_rep
        tile_row = r_lo[owner] + k // n_c_rep
        # distance from the sector to the tile box (0 inside)
        bx0 = grid.x0 + tile_col * tile_m
        by1 = grid.y0 - tile_row * tile_m
        dx = np.maximum(np.maximum(bx0 - x[owner], x[owner] - (bx0 + tile_m)), 0.0)
        dy = np.maximum(np.maximum((by1 - tile_m) - y[owner], y[owner] - by1), 0.0)
        keep = dx * dx + dy * dy <= r[owner] * r[owner]
        tile_parts.append(tile_row[keep] * n_cols + tile_col[keep])
        sector_parts.append(owner[keep] + start)
    if not tile_parts:
        empty = np.zeros(0, dtype=np.int64)
        return TileSectors(empty, np.zeros(1, dtype=np.int64), empty)
    tiles = np.concatenate(tile_parts)
    sectors = np.concatenate(sector_parts)
    order = np.lexsort((sectors, tiles))
    tiles, sectors = tiles[order], sectors[order]
    tile_index, starts = np.unique(tiles, return_index=True)
    offsets = np.append(starts, tiles.size).astype(np.int64)
    log.debug("binned %d sectors into %d tiles (%d pairs)", x_m.size, tile_index.size, tiles.size)
    return TileSectors(tile_index.astype(np.int64), offsets, sectors)


def project_lonlat(lon_deg: np.ndarray, lat_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS-84 longitude/latitude (degrees) → China Albers x, y (metres), vectorised."""
    x_m, y_m = _lonlat_to_albers().transform(np.asarray(lon_deg, dtype=np.float64), np.asarray(lat_deg, dtype=np.float64))
    return np.asarray(x_m, dtype=np.float64), np.asarray(y_m, dtype=np.float64)


@functools.lru_cache(maxsize=1)
def _lonlat_to_albers():
    """One transformer for every call (making one costs ~14 ms; pyproj's are thread-safe since 3.1)."""
    from pyproj import Transformer

    return Transformer.from_crs("EPSG:4326", CHINA_ALBERS_PROJ4, always_xy=True)


def grid_north_bearing_deg(lon_deg: np.ndarray, lat_deg: np.ndarray) -> np.ndarray:
    """Direction of true north at each point, degrees clockwise from grid north.

    The meridian convergence of the Albers projection: 0 on the central meridian
    (105°E), about −0.58° per degree of longitude east of it (Beijing ≈ −6.6°,
    Kashgar ≈ +17°). A bearing measured from true north (an antenna azimuth) is
    ``this + azimuth`` in the grid. Computed by projecting a point 0.001° north.
    """
    lon = np.asarray(lon_deg, dtype=np.float64)
    lat = np.asarray(lat_deg, dtype=np.float64)
    x0, y0 = project_lonlat(lon, lat)
    step = np.where(lat > 89.0, -1e-3, 1e-3)
    x1, y1 = project_lonlat(lon, lat + step)
    return np.degrees(np.arctan2((x1 - x0) * np.sign(step), (y1 - y0) * np.sign(step)))
