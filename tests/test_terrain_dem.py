"""DEM and land-cover sources: GeoTIFF (geographic, projected), SRTM .hgt folders, CF NetCDF, real DEMs.

Values are checked at known points (cell centres and hand-computed bilinear
values), the nodata fill at a coast and a land border, and the lattice's
independence of the window it is computed in (bit for bit).
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import rasterio
from pyproj import Transformer
from rasterio.transform import from_origin

from coverage.errors import TerrainCoverageError, TerrainSourceError
from coverage.grid import CHINA_ALBERS_PROJ4
from coverage.terrain.dem import open_dem


def write_tif(path, values, crs, transform, nodata=None):
    """Write a one-band GeoTIFF of ``values`` (any dtype); returns ``path``."""
    values = np.asarray(values)
    with rasterio.open(path, "w", driver="GTiff", width=values.shape[1], height=values.shape[0], count=1,
                       dtype=values.dtype, crs=crs, transform=transform, nodata=nodata) as ds:
        ds.write(values, 1)
    return path


def product_grid(rows=5, cols=4):
    """10·r + c + r·c: not a plane, so bilinear differs from other interpolations."""
    r, c = np.mgrid[0:rows, 0:cols]
    return (10 * r + c + r * c).astype(np.int16)


# ---------------------------------------------------------------- GeoTIFF


def test_geotiff_lonlat_cell_centres_and_bilinear(tmp_path):
    tif = write_tif(tmp_path / "dem_4326.tif", product_grid(), "EPSG:4326", from_origin(100, 30, 0.5, 0.5))
    dem = open_dem(tif)
    # Cell (r=1, c=2) has its centre at 101.25 °E, 29.25 °N: value 10 + 2 + 2 = 14.
    z, filled = dem.sample_lonlat([101.25, 100.25], [29.25, 29.75])
    assert z.tolist() == [14.0, 0.0] and not filled.any()
    # A quarter cell east and half a cell south of that centre: corners 14, 16 / 26, 29.
    z, _ = dem.sample_lonlat(101.25 + 0.125, 29.25 - 0.25)
    assert z == pytest.approx((14 * 0.75 + 16 * 0.25) * 0.5 + (26 * 0.75 + 29 * 0.25) * 0.5)  # 20.625
    info = dem.info()
    assert info["kind"] == "geotiff" and info["crs"] == "EPSG:4326" and not info["assumed_crs"]
    assert info["resolution"] == (0.5, 0.5) and info["bounds_lonlat"] == (100.0, 27.5, 102.0, 30.0)
    assert info["nodata"] is None and len(info["sha256"]) == 64
    assert 45_000 < info["resolution_m"][0] < 50_000  # 0.5° of longitude at 28.75 °N
    # Outside the raster: NaN, not filled.
    z, filled = dem.sample_lonlat(99.0, 29.0)
    assert np.isnan(z) and not filled


def test_geotiff_projected_utm_reproduces_a_plane(tmp_path):
    """Bilinear sampling reproduces a plane exactly; points given in lon/lat go through pyproj."""
    x0, y0, step = 400_000.0, 2_720_000.0, 100.0
    cols, rows = np.meshgrid(np.arange(60), np.arange(50))
    x_c, y_c = x0 + (cols + 0.5) * step, y0 - (rows + 0.5) * step
    plane = 100 + 0.01 * (x_c - x0) + 0.02 * (y0 - y_c)
    dem = open_dem(write_tif(tmp_path / "dem_utm50n.tif", plane.astype(np.float64), "EPSG:32650",
                             from_origin(x0, y0, step, step)))
    x = np.array([400_123.0, 404_567.8, 405_900.0])
    y = np.array([2_719_950.0, 2_716_001.3, 2_715_100.0])
    lon, lat = Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True).transform(x, y)
    z, filled = dem.sample_lonlat(lon, lat)
    np.testing.assert_allclose(z, 100 + 0.01 * (x - x0) + 0.02 * (y0 - y), atol=1e-6)
    assert not filled.any()
    info = dem.info()
    assert info["crs"] == "EPSG:32650" and info["resolution"] == (100.0, 100.0)
    assert info["resolution_m"] == (100.0, 100.0)
    w, s, e, n = info["bounds_lonlat"]
    assert 116.0 < w < e < 116.1 and 24.5 < s < n < 24.6  # 100 km west of the 117 °E meridian
    # The lattice in China Albers meets the same plane.
    ax, ay = Transformer.from_crs("EPSG:32650", CHINA_ALBERS_PROJ4, always_xy=True).transform(401_000.0, 2_718_000.0)
    grid, filled_count = dem.lattice(ax, ay, 250.0, 8, 6)
    assert grid.shape == (6, 8) and grid.dtype == np.float32 and filled_count == 0
    back = Transformer.from_crs(CHINA_ALBERS_PROJ4, "EPSG:32650", always_xy=True)
    px, py = back.transform(ax + 250.0 * np.arange(8)[None, :] + 0 * np.arange(6)[:, None],
                            ay - 250.0 * np.arange(6)[:, None] + 0 * np.arange(8)[None, :])
    np.testing.assert_allclose(grid, 100 + 0.01 * (px - x0) + 0.02 * (y0 - py), atol=1e-3)


# ---------------------------------------------------------------- SRTM .hgt


def write_hgt(folder, name, values):
    """An SRTM tile: big-endian int16, 1201² (3″)."""
    assert values.shape == (1201, 1201)
    values.astype(">i2").tofile(folder / name)


def test_hgt_folder_mosaic_values_seam_and_voids(tmp_path):
    folder = tmp_path / "srtm"
    folder.mkdir()
    rows, cols = np.mgrid[0:1201, 0:2401]
    mosaic = (rows + cols).astype(np.int16)  # global (row + col) over N24E118 + N24E119
    west, east = mosaic[:, :1201].copy(), mosaic[:, 1200:].copy()
    west[99:102, 99:102] = -32768  # a void
    write_hgt(folder, "N24E118.hgt", west)
    write_hgt(folder, "N24E119.hgt", east)
    dem = open_dem(folder)
    info = dem.info()
    assert info["kind"] == "hgt" and info["crs"] == "EPSG:4326" and info["nodata"] == -32768
    assert info["resolution"][0] == pytest.approx(1 / 1200)
    np.testing.assert_allclose(info["bounds_lonlat"], (118 - 1 / 2400, 24 - 1 / 2400, 120 + 1 / 2400, 25 + 1 / 2400))
    # 118.5 °E 24.5 °N is cell (600, 600); 119.25 °E 24.75 °N is (300, 1500) in the mosaic.
    z, filled = dem.sample_lonlat([118.5, 119.25, 119.0], [24.5, 24.75, 24.0])
    np.testing.assert_allclose(z, [1200.0, 1800.0, 2400.0], atol=1e-6)  # the seam: (1200, 1200)
    assert not filled.any()
    # Between cells on the plane row + col: exact.
    z, _ = dem.sample_lonlat(118 + 600.5 / 1200, 25 - 600.25 / 1200)
    assert z == pytest.approx(1200.75)
    # The void takes its nearest valid neighbours' values (within ±2 of row + col) and is flagged.
    z, filled = dem.sample_lonlat(118 + 100 / 1200, 25 - 100 / 1200)
    assert filled and abs(z - 200) <= 2
    # The folder's sha256 is the hash of its tiles' names and hashes, stable.
    assert info["sha256"] == open_dem(folder).info()["sha256"]


def test_single_hgt_tile(tmp_path):
    values = np.full((1201, 1201), 321, dtype=np.int16)
    write_hgt(tmp_path, "S01W070.hgt", values)
    dem = open_dem(tmp_path / "S01W070.hgt")
    z, _ = dem.sample_lonlat(-69.5, -0.5)
    assert z == 321.0 and dem.info()["bounds_lonlat"][0] == pytest.approx(-70 - 1 / 2400)


# ---------------------------------------------------------------- NetCDF


def write_cf_netcdf(path, variables, lat_deg, lon_deg):
    """A CF NetCDF-3 file with lat/lon coordinate variables in degrees (scipy's writer)."""
    from scipy.io import netcdf_file

    with netcdf_file(path, "w") as nc:
        nc.createDimension("lat", len(lat_deg))
        nc.createDimension("lon", len(lon_deg))
        lat = nc.createVariable("lat", "f8", ("lat",))
        lat[:] = lat_deg
        lat.units = "degrees_north"
        lon = nc.createVariable("lon", "f8", ("lon",))
        lon[:] = lon_deg
        lon.units = "degrees_east"
        for name, values in variables.items():
            var = nc.createVariable(name, values.dtype.char, ("lat", "lon"))
            var[:] = values
    return path


def test_cf_netcdf_lat_ascending_assumed_wgs84(tmp_path):
    lat = 20.125 + 0.25 * np.arange(6)  # south to north, as CF files often are
    lon = 110.125 + 0.25 * np.arange(8)
    i, j = np.mgrid[0:6, 0:8]
    nc = write_cf_netcdf(tmp_path / "dem.nc", {"quality": np.ones((6, 8), "f4"),
                                                "elevation": (100 * i + j).astype("i2")}, lat, lon)
    dem = open_dem(nc)
    info = dem.info()
    assert info["kind"] == "netcdf" and info["crs"] == "EPSG:4326" and info["assumed_crs"]
    np.testing.assert_allclose(info["bounds_lonlat"], (110.0, 20.0, 112.0, 21.5))
    # Southernmost row, first column is elevation[0, 0] = 0; the north-east corner is 507.
    z, _ = dem.sample_lonlat([110.125, 111.875, 110.375], [20.125, 21.375, 20.375])
    assert z.tolist() == [0.0, 507.0, 101.0]


def test_netcdf_without_elevation_variable_is_an_error(tmp_path):
    nc = write_cf_netcdf(tmp_path / "two.nc", {"a": np.ones((3, 4), "f4"), "b": np.ones((3, 4), "f4")},
                         [20.5, 21.5, 22.5], [110.5, 111.5, 112.5, 113.5])
    with pytest.raises(TerrainSourceError, match=r"two\.nc.*no elevation variable among a, b"):
        open_dem(nc)
    assert open_dem(nc, variable="b").sample_lonlat(111.0, 21.0)[0] == 1.0


# ---------------------------------------------------------------- the nodata fill


def fill_dem(tmp_path, land_cols, land_m, name):
    """400×400 cells of 100 m (UTM 50N), land in the first ``land_cols`` columns, nodata beyond."""
    values = np.full((400, 400), -9999, dtype=np.int16)
    values[:, :land_cols] = land_m
    tif = write_tif(tmp_path / name, values, "EPSG:32650", from_origin(400_000, 2_740_000, 100, 100), nodata=-9999)
    return open_dem(tif, block_px=64, margin_px=32)


def centres_lonlat(cols, row=200):
    """Lon/lat of the centres of cells (row, cols) of :func:`fill_dem`."""
    x = 400_000 + (np.asarray(cols) + 0.5) * 100
    y = np.full(x.shape, 2_740_000 - (row + 0.5) * 100)
    return Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True).transform(x, y)


def test_fill_off_a_coast_takes_the_coast_height_then_open_sea(tmp_path):
    land = np.tile(2 + np.arange(50)[::-1], (400, 1))  # falls to 2 m at the coast (column 49)
    values = np.full((400, 400), -9999, dtype=np.int16)
    values[:, :50] = land
    tif = write_tif(tmp_path / "coast.tif", values, "EPSG:32650", from_origin(400_000, 2_740_000, 100, 100),
                    nodata=-9999)
    dem = open_dem(tif, block_px=64, margin_px=32)
    # Column 10 is land (41 m); 60 and 95 are sea whose block window (to column 95/127) holds the
    # coast: 2 m; 300 is in block 4 (columns 256-319), whose window 224-351 has no land: 0 m.
    z, filled = dem.sample_lonlat(*centres_lonlat([10, 60, 95, 300]))
    np.testing.assert_allclose(z, [41.0, 2.0, 2.0, 0.0], atol=1e-6)
    assert filled.tolist() == [False, True, True, True]


def test_fill_beyond_a_land_border_keeps_the_plateau_height(tmp_path):
    dem = fill_dem(tmp_path, 200, 5000, "plateau.tif")
    z, filled = dem.sample_lonlat(*centres_lonlat([150, 199, 200, 230, 255]))
    np.testing.assert_allclose(z, 5000.0)  # never a 0 m valley beside the plateau
    assert filled.tolist() == [False, False, True, True, True]
    # The share of filled points of a lattice is reported.
    x, y = Transformer.from_crs("EPSG:32650", CHINA_ALBERS_PROJ4, always_xy=True).transform(405_000.0, 2_735_000.0)
    grid, filled_count = dem.lattice(x, y, 500.0, 40, 40)
    assert 0 < filled_count < grid.size and np.isfinite(grid).all()


def split_lattice(dem, x_first, y_first, step, nx, ny, cut_x, cut_y):
    """The lattice computed as four sub-windows cut at column cut_x and row cut_y, stitched."""
    out = np.empty((ny, nx), dtype=np.float32)
    count = 0
    for j0, j1 in ((0, cut_y), (cut_y, ny)):
        for i0, i1 in ((0, cut_x), (cut_x, nx)):
            part, n = dem.lattice(x_first + i0 * step, y_first - j0 * step, step, i1 - i0, j1 - j0)
            out[j0:j1, i0:i1] = part
            count += n
    return out, count


def test_lattice_is_tiling_independent_on_small_blocks(tmp_path):
    """Blocks of 16 cells meet many times inside the window; values do not move."""
    rng = np.random.default_rng(7)
    values = rng.integers(0, 3000, size=(300, 300)).astype(np.int16)
    values[rng.random((300, 300)) < 0.3] = -32768  # 30 % voids spread everywhere
    values[:, 220:] = -32768  # and a border
    tif = write_tif(tmp_path / "voids.tif", values, "EPSG:32650", from_origin(400_000, 2_740_000, 90, 90),
                    nodata=-32768)
    dem = open_dem(tif, block_px=16, margin_px=8, cache_blocks=4)  # a tiny cache: blocks are refilled
    x, y = Transformer.from_crs("EPSG:32650", CHINA_ALBERS_PROJ4, always_xy=True).transform(402_000.0, 2_738_000.0)
    x, y = np.floor(x / 250) * 250 + 125, np.floor(y / 250) * 250 + 125  # exact coordinates
    big, n_big = dem.lattice(x, y, 125.0, 160, 150)
    for cut_x, cut_y in ((80, 75), (13, 141), (159, 1)):
        parts, n_parts = split_lattice(dem, x, y, 125.0, 160, 150, cut_x, cut_y)
        assert np.array_equal(big, parts, equal_nan=True) and n_parts == n_big
    again = pickle.loads(pickle.dumps(dem)).lattice(x, y, 125.0, 160, 150)[0]
    assert np.array_equal(big, again, equal_nan=True)


def test_lattice_is_tiling_independent_on_the_default_dem(default_dem):
    """220×220 at 500 m over Xiamen (sea, masked coast, block edges) equals four sub-windows."""
    x, y = Transformer.from_crs("EPSG:4326", CHINA_ALBERS_PROJ4, always_xy=True).transform(117.6, 25.0)
    x, y = np.floor(x / 500) * 500 + 250, np.floor(y / 500) * 500 + 250
    big, n_big = default_dem.lattice(x, y, 500.0, 220, 220)
    parts, n_parts = split_lattice(default_dem, x, y, 500.0, 220, 220, 97, 123)
    assert np.array_equal(big, parts) and n_parts == n_big
    assert 0.2 < n_big / big.size < 0.8 and np.nanmax(big) > 500 and np.nanmin(big) >= 0


# ---------------------------------------------------------------- errors


def test_geotiff_without_crs_is_an_error(tmp_path):
    tif = tmp_path / "nocrs.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=4, height=5, count=1, dtype="int16",
                       transform=from_origin(100, 30, 0.5, 0.5)) as ds:
        ds.write(product_grid(), 1)
    with pytest.raises(TerrainSourceError, match=r"nocrs\.tif has no CRS"):
        open_dem(tif)
    assert open_dem(tif, crs="EPSG:4326").sample_lonlat(101.25, 29.25)[0] == 14.0


def test_missing_file_empty_folder_and_bad_tiles(tmp_path):
    with pytest.raises(TerrainSourceError, match=r"missing\.tif does not exist"):
        open_dem(tmp_path / "missing.tif")
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(TerrainSourceError, match="empty"):
        open_dem(empty)
    (empty / "readme.txt").write_text("no tiles here")
    with pytest.raises(TerrainSourceError, match=r"no SRTM \.hgt tiles"):
        open_dem(empty)
    (empty / "N24E118.hgt").write_bytes(b"\0" * 1000)
    with pytest.raises(TerrainSourceError, match="neither a 1201² nor a 3601²"):
        open_dem(empty)
    junk = tmp_path / "junk.tif"
    junk.write_text("not a raster")
    with pytest.raises(TerrainSourceError, match=r"junk\.tif: cannot be read"):
        open_dem(junk)


def test_extent_not_covered_names_file_and_missing_strips(tmp_path):
    tif = write_tif(tmp_path / "dem_x.tif", np.zeros((40, 40), np.int16), "EPSG:4326",
                    from_origin(117.0, 25.5, 0.05, 0.05))
    dem = open_dem(tif)
    dem.check_covers(117.5, 24.0, 118.5, 25.0)
    with pytest.raises(TerrainCoverageError) as caught:
        dem.check_covers(116.5, 23.5, 119.2, 25.5)
    message = str(caught.value)
    assert "dem_x.tif covers 117.00–119.00 °E, 23.50–25.50 °N" in message
    assert "the run needs 116.50–119.20 °E, 23.50–25.50 °N" in message
    assert "116.50–117.00 °E on the west" in message and "119.00–119.20 °E on the east" in message


def test_projected_extent_check(tmp_path):
    dem = open_dem(write_tif(tmp_path / "utm.tif", np.zeros((100, 100), np.float32), "EPSG:32650",
                             from_origin(400_000, 2_740_000, 100, 100)))
    w, s, e, n = dem.info()["bounds_lonlat"]
    dem.check_covers(w + 0.01, s + 0.01, e - 0.01, n - 0.01)
    with pytest.raises(TerrainCoverageError, match="on the north"):
        dem.check_covers(w + 0.01, s + 0.01, e - 0.01, n + 0.2)


def test_sites_outside_the_dem(tmp_path):
    dem = open_dem(write_tif(tmp_path / "dem_x.tif", np.zeros((40, 40), np.int16), "EPSG:4326",
                             from_origin(117.0, 25.5, 0.05, 0.05)))
    dem.check_points_inside([117.5, 118.9], [24.0, 25.4])
    with pytest.raises(TerrainCoverageError, match=r"2 of 3 sites lie outside .*dem_x\.tif.*first: "
                                                   r"s2 \(116\.9000, 24\.0000\), s3 \(118\.0000, 26\.0000\)"):
        dem.check_points_inside([117.5, 116.9, 118.0], [24.0, 24.0, 26.0], labels=["s1", "s2", "s3"])


# ---------------------------------------------------------------- real DEMs


def test_trinidad_feet_netcdf(trinidad_nc):
    dem = open_dem(trinidad_nc, vertical_scale=0.3048)
    info = dem.info()
    assert info["kind"] == "netcdf" and info["crs"] == "EPSG:4326" and info["assumed_crs"]
    assert info["resolution"][0] == pytest.approx(3 / 3600) and info["vertical_scale"] == 0.3048
    np.testing.assert_allclose(info["bounds_lonlat"], (-106 - 1 / 2400, 37 - 1 / 2400, -104 + 1 / 2400, 38 + 1 / 2400),
                               atol=1e-6)
    with rasterio.open(trinidad_nc) as ds:
        feet = ds.read(1)
        transform = ds.transform
    for index in (np.argmax(feet), np.argmin(feet)):
        r, c = np.unravel_index(index, feet.shape)
        lon, lat = transform @ (c + 0.5, r + 0.5)
        z, filled = dem.sample_lonlat(lon, lat)
        assert z == pytest.approx(float(feet[r, c]) * 0.3048, abs=1e-3) and not filled
    rng = np.random.default_rng(1)
    z, filled = dem.sample_lonlat(rng.uniform(-106, -104, 100_000), rng.uniform(37, 38, 100_000))
    assert 1358.6 <= z.min() and z.max() <= 4320.9 and not filled.any()  # 4,457-14,176 ft


def test_jacksboro_real_usgs_dem(jacksboro_dem_tif):
    dem = open_dem(jacksboro_dem_tif)
    w, s, e, n = dem.info()["bounds_lonlat"]
    assert w == pytest.approx(-84.41375) and n == pytest.approx(36.73291667) and s < n
    z, filled = dem.sample_lonlat(np.linspace(w + 0.001, e - 0.001, 500), np.linspace(s + 0.001, n - 0.001, 500))
    assert 236 <= z.min() and z.max() <= 1076 and z.max() - z.min() > 300 and not filled.any()


def test_default_dem_picklable_and_masked_coast(default_dem):
    info = default_dem.info()
    assert info["kind"] == "netcdf" and info["nodata"] == -999 and info["crs"] == "EPSG:4326"
    assert not info["assumed_crs"]  # assigned, not guessed
    # 118.10 °E 24.48 °N on Xiamen island is masked (−999) in the file: filled from the coast.
    z, filled = default_dem.sample_lonlat([118.10, 118.09], [24.48, 24.45])
    assert filled[0] and 0 <= z[0] < 200
    clone = pickle.loads(pickle.dumps(default_dem))
    assert np.array_equal(clone.sample_lonlat([118.10, 118.09], [24.48, 24.45])[0], z)


# ---------------------------------------------------------------- land cover


def test_landcover_nearest_cell_in_utm(tmp_path):
    from coverage.terrain.landcover import open_landcover

    classes = (np.arange(30 * 40).reshape(30, 40) % 17).astype(np.uint8)
    classes[5, 7] = 255  # nodata
    classes[6, 7] = 200  # a class code kept as it is
    tif = write_tif(tmp_path / "lc_utm.tif", classes, "EPSG:32650", from_origin(400_000, 2_740_000, 100, 100),
                    nodata=255)
    lc = open_landcover(tif, block_px=8)
    to_lonlat = Transformer.from_crs("EPSG:32650", "EPSG:4326", always_xy=True)
    # Just inside the west and east edges of cell (2, 3), the centre of (5, 7), (6, 7), and outside.
    x = np.array([400_300.5, 400_399.5, 400_750.0, 400_750.0, 390_000.0])
    y = np.array([2_739_750.0, 2_739_750.0, 2_739_450.0, 2_739_350.0, 2_739_750.0])
    got = lc.sample_lonlat_classes(*to_lonlat.transform(x, y))
    assert got.dtype == np.uint8 and got.tolist() == [classes[2, 3], classes[2, 3], 255, 200, 255]
    info = lc.info()
    assert info["kind"] == "geotiff" and info["crs"] == "EPSG:32650" and info["nodata"] == 255
    ax, ay = Transformer.from_crs("EPSG:32650", CHINA_ALBERS_PROJ4, always_xy=True).transform(401_000.0, 2_738_000.0)
    ax, ay = np.floor(ax / 100) * 100 + 50, np.floor(ay / 100) * 100 + 50
    big = lc.lattice_classes(ax, ay, 50.0, 40, 30)
    parts = np.empty_like(big)
    for j0, j1, i0, i1 in ((0, 11, 0, 23), (0, 11, 23, 40), (11, 30, 0, 23), (11, 30, 23, 40)):
        parts[j0:j1, i0:i1] = lc.lattice_classes(ax + i0 * 50.0, ay - j0 * 50.0, 50.0, i1 - i0, j1 - j0)
    assert big.dtype == np.uint8 and np.array_equal(big, parts)
    assert set(np.unique(big)) <= set(np.unique(classes))
    assert np.array_equal(pickle.loads(pickle.dumps(lc)).lattice_classes(ax, ay, 50.0, 40, 30), big)


def test_landcover_errors(tmp_path):
    from coverage.terrain.landcover import open_landcover

    with pytest.raises(TerrainSourceError, match=r"land cover .*nope\.tif does not exist"):
        open_landcover(tmp_path / "nope.tif")
    with pytest.raises(TerrainSourceError, match="is a folder"):
        open_landcover(tmp_path)
    tif = tmp_path / "lc_nocrs.tif"
    with rasterio.open(tif, "w", driver="GTiff", width=4, height=4, count=1, dtype="uint8",
                       transform=from_origin(100, 30, 0.5, 0.5)) as ds:
        ds.write(np.zeros((4, 4), np.uint8), 1)
    with pytest.raises(TerrainSourceError, match=r"lc_nocrs\.tif has no CRS"):
        open_landcover(tif)
    lc = open_landcover(tif, crs="EPSG:4326")
    with pytest.raises(TerrainCoverageError, match=r"lc_nocrs\.tif covers 100\.00–102\.00 °E"):
        lc.check_covers(99.0, 28.5, 101.0, 29.5)
