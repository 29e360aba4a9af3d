"""The raster grid: China Albers, the global lattice, tiles and sectors per tile."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Geod

from coverage.errors import ConfigError
from coverage.grid import (
    CHINA_ALBERS_PROJ4,
    Grid,
    check_resolution,
    grid_for_sectors,
    project_lonlat,
    sectors_by_tile,
)


def test_albers_is_the_documented_china_albers():
    """Central meridian 105°E on the equator is the origin; lat_1/lat_2 are 25/47."""
    assert "+lat_1=25" in CHINA_ALBERS_PROJ4 and "+lat_2=47" in CHINA_ALBERS_PROJ4
    x, y = project_lonlat([105.0], [0.0])
    assert abs(x[0]) < 1e-6 and abs(y[0]) < 1e-6
    x, y = project_lonlat([105.0, 116.4], [39.9, 39.9])
    assert abs(x[0]) < 1e-6 and y[0] > 4.0e6
    assert x[1] > 900e3  # Beijing is ~950 km east of 105°E


@pytest.mark.parametrize("lon0, lat0", [(87.0, 43.0), (116.0, 40.0), (113.0, 22.5), (91.0, 29.6)])
def test_albers_is_equal_area(lon0, lat0):
    """A 1° x 1° cell has its geodesic (WGS-84) area in the Albers plane, to 0.01 %."""
    lons = np.array([lon0, lon0 + 1, lon0 + 1, lon0])
    lats = np.array([lat0, lat0, lat0 + 1, lat0 + 1])
    # densify the edges: parallels are curves in the plane
    t = np.linspace(0, 1, 200, endpoint=False)
    ring_lon = np.concatenate([lons[i] + (lons[(i + 1) % 4] - lons[i]) * t for i in range(4)])
    ring_lat = np.concatenate([lats[i] + (lats[(i + 1) % 4] - lats[i]) * t for i in range(4)])
    x, y = project_lonlat(ring_lon, ring_lat)
    planar_m2 = 0.5 * abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))
    geodesic_m2 = abs(Geod(ellps="WGS84").polygon_area_perimeter(ring_lon, ring_lat)[0])
    assert planar_m2 == pytest.approx(geodesic_m2, rel=1e-4)


def test_from_bounds_snaps_out_to_whole_tiles_of_the_global_lattice():
    grid = Grid.from_bounds(1234.0, -5678.0, 20_001.0, 3_000.0, resolution_m=100, tile_size_px=16)
    tile_m = 1600.0
    assert grid.x0 == 0.0 and grid.y0 == 3200.0
    assert grid.x0 % tile_m == 0 and grid.y0 % tile_m == 0
    xmin, ymin, xmax, ymax = grid.bounds
    assert xmin <= 1234.0 and ymin <= -5678.0 and xmax >= 20_001.0 and ymax >= 3_000.0
    assert grid.width % 16 == 0 and grid.height % 16 == 0
    assert (grid.width, grid.height) == (13 * 16, 6 * 16)
    assert grid.transform.a == 100.0 and grid.transform.e == -100.0
    assert grid.pixel_area_m2 == 10_000.0


def test_negative_coordinates_snap_outwards():
    grid = Grid.from_bounds(-1.0, -1.0, 1.0, 1.0, resolution_m=50, tile_size_px=32)
    assert grid.bounds == (-1600.0, -1600.0, 1600.0, 1600.0)
    assert grid.n_tiles == 4


def test_grids_of_different_extent_and_tile_size_share_pixel_coordinates():
    small = Grid.from_bounds(10_000.0, 10_000.0, 12_000.0, 11_000.0, resolution_m=100, tile_size_px=16)
    large = Grid.from_bounds(-50_000.0, -50_000.0, 90_000.0, 60_000.0, resolution_m=100, tile_size_px=64)
    for tile in small.tiles():
        xs, ys = small.pixel_centres(tile)
        # every centre of the small grid is a pixel centre of the large one
        col = (xs - large.x0) / large.resolution_m - 0.5
        row = (large.y0 - ys) / large.resolution_m - 0.5
        assert np.array_equal(col, np.round(col)) and np.array_equal(row, np.round(row))
        # and the large grid computes bit-identical coordinates for those pixels
        big_tile = large.tile(int(row[0]) // 64 * large.n_tile_cols + int(col[0]) // 64)
        bx, by = large.pixel_centres(big_tile)
        c0 = int(col[0]) - big_tile.col_off
        r0 = int(row[0]) - big_tile.row_off
        assert np.array_equal(bx[c0:c0 + xs.size], xs)
        assert np.array_equal(by[r0:r0 + ys.size], ys)


def test_tiles_cover_the_grid_once():
    grid = Grid.from_bounds(0.0, -10_000.0, 10_000.0, 0.0, resolution_m=100, tile_size_px=32)
    seen = np.zeros((grid.height, grid.width), dtype=int)
    for tile in grid.tiles():
        w = tile.window()
        seen[w.row_off:w.row_off + w.height, w.col_off:w.col_off + w.width] += 1
    assert (seen == 1).all()
    assert grid.tile(grid.n_tiles - 1).index == grid.n_tiles - 1
    with pytest.raises(IndexError):
        grid.tile(grid.n_tiles)


@pytest.mark.parametrize("bad", [29, 1001, 0, -100, float("nan"), "abc"])
def test_resolution_out_of_range_is_a_config_error_naming_it(bad):
    with pytest.raises(ConfigError, match="resolution_m"):
        check_resolution(bad)
    with pytest.raises(ValueError):  # ConfigError is a ValueError
        Grid.from_bounds(0.0, 0.0, 1.0, 1.0, resolution_m=bad) if not isinstance(bad, str) else check_resolution(bad)


@pytest.mark.parametrize("bad", [0, 8, 100, 8192, 2.5])
def test_tile_size_must_be_a_block_size(bad):
    with pytest.raises(ConfigError, match="tile_size_px"):
        Grid.from_bounds(0.0, 0.0, 1.0, 1.0, resolution_m=100, tile_size_px=bad)


def test_grid_for_sectors_holds_every_reach_disc():
    rng = np.random.default_rng(1)
    x = rng.uniform(-30_000, 30_000, 50)
    y = rng.uniform(3.0e6, 3.05e6, 50)
    reach = rng.uniform(0, 8_000, 50)
    grid = grid_for_sectors(x, y, reach, resolution_m=200, tile_size_px=16)
    xmin, ymin, xmax, ymax = grid.bounds
    assert (x - reach >= xmin).all() and (x + reach <= xmax).all()
    assert (y - reach >= ymin).all() and (y + reach <= ymax).all()
    # snapped: no whole tile row or column beyond the discs
    assert xmin > (x - reach).min() - grid.tile_m and xmax < (x + reach).max() + grid.tile_m
    with pytest.raises(ValueError, match="no sectors"):
        grid_for_sectors([], [], [])


def _brute_force_candidates(grid, x, y, reach):
    """For each tile, the sectors within reach of at least one pixel centre."""
    needed = {}
    for tile in grid.tiles():
        xs, ys = grid.pixel_centres(tile)
        px, py = np.meshgrid(xs, ys)
        d = np.hypot(px[..., None] - x, py[..., None] - y)
        hit = np.flatnonzero((d <= reach).any(axis=(0, 1)))
        if hit.size:
            needed[tile.index] = set(hit.tolist())
    return needed


def _scattered_sectors(seed, n):
    """``n`` sectors over 40 km square with reaches from none to several tiles, and their grid."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 40_000, n)
    y = rng.uniform(-40_000, 0, n)
    reach = rng.choice([0.0, 150.0, 2_000.0, 9_000.0], n)
    return x, y, reach, grid_for_sectors(x, y, reach, resolution_m=250, tile_size_px=16)


def test_sectors_by_tile_never_leaves_out_a_sector_that_reaches_a_pixel():
    x, y, reach, grid = _scattered_sectors(7, 300)
    binned = sectors_by_tile(grid, x, y, reach)
    selected = {tile: set(rows.tolist()) for tile, rows in binned.items()}
    needed = _brute_force_candidates(grid, x, y, reach)
    for tile, sectors in needed.items():
        assert sectors <= selected.get(tile, set())
    # and the selection is tight: each selected disc meets its tile's box
    for tile_id, rows in binned.items():
        xmin, ymin, xmax, ymax = grid.tile_bounds(grid.tile(tile_id))
        dx = np.maximum.reduce([xmin - x[rows], x[rows] - xmax, np.zeros(rows.size)])
        dy = np.maximum.reduce([ymin - y[rows], y[rows] - ymax, np.zeros(rows.size)])
        assert (np.hypot(dx, dy) <= reach[rows] + 0.01).all()
        assert np.all(np.diff(rows) > 0)  # input order kept within a tile
    assert np.all(np.diff(binned.tile_index) > 0)


def test_sectors_meeting_square_sees_what_the_tiles_see():
    """One square alone (a calibration window, a benchmark tile) gets its tile's candidates."""
    from coverage.grid import sectors_meeting_square

    x, y, reach, grid = _scattered_sectors(11, 400)
    binned = dict(sectors_by_tile(grid, x, y, reach).items())
    seen = 0
    for tile in grid.tiles():
        xmin, _, _, ymax = grid.tile_bounds(tile)
        col0, row0 = round(xmin / grid.resolution_m), round(-ymax / grid.resolution_m)
        alone = sectors_meeting_square(x, y, reach, col0, row0, grid.tile_size_px, grid.resolution_m)
        assert np.array_equal(alone, binned.get(tile.index, np.zeros(0, dtype=np.int64)))
        seen += alone.size
    assert seen > x.size  # discs over several tiles were compared too


def test_sectors_by_tile_chunking_does_not_change_the_result():
    rng = np.random.default_rng(3)
    x = rng.uniform(0, 100_000, 2_000)
    y = rng.uniform(0, 100_000, 2_000)
    reach = rng.uniform(0, 20_000, 2_000)
    grid = grid_for_sectors(x, y, reach, resolution_m=500, tile_size_px=16)
    whole = sectors_by_tile(grid, x, y, reach)
    chunked = sectors_by_tile(grid, x, y, reach, chunk_sectors=97)
    for name in ("tile_index", "offsets", "sector_index"):
        assert np.array_equal(getattr(whole, name), getattr(chunked, name))


def test_sectors_by_tile_scales_to_a_national_count():
    """1.5 M sectors over China's extent bin in a few seconds (vectorised)."""
    import time

    rng = np.random.default_rng(0)
    n = 1_500_000
    x = rng.uniform(-2.6e6, 2.2e6, n)
    y = rng.uniform(1.9e6, 5.9e6, n)
    reach = rng.uniform(500, 15_000, n)
    grid = grid_for_sectors(x, y, reach, resolution_m=100, tile_size_px=512)
    t0 = time.perf_counter()
    binned = sectors_by_tile(grid, x, y, reach)
    elapsed = time.perf_counter() - t0
    assert binned.pairs >= n
    assert elapsed < 20.0
    assert grid.width * grid.height > 1.5e9  # a national raster never held as one array
