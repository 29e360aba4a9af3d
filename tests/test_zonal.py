"""Zonal statistics: exact edge fractions, areas, CE shares, sectors, population."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

from coverage.errors import EmptyCoverageError, SchemaError
from coverage.layout import ALL_OPERATORS
from coverage.zonal import UNIT_TABLE_COLUMNS, Layer, count_sectors, unit_table, zonal_stats

try:
    from coverage.grid import CHINA_ALBERS_PROJ4 as ALBERS
except ImportError:  # pragma: no cover - grid.py not there yet
    ALBERS = "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"

X0, Y0 = 100_000.0, 3_900_000.0  # top-left corner of the test rasters (Albers m), central China
RES_M = 100.0
CE = {"CE0": -105.0, "CE1": -115.0, "CE2": -125.0}


def write_raster(path, array, res_m=RES_M, nodata=None, crs=ALBERS, x0=X0, y0=Y0):
    """Write a single-band GeoTIFF whose top-left corner is (x0, y0)."""
    with rasterio.open(path, "w", driver="GTiff", width=array.shape[1], height=array.shape[0], count=1,
                       dtype=array.dtype, crs=crs, transform=from_origin(x0, y0, res_m, res_m),
                       nodata=nodata) as ds:
        ds.write(array, 1)
    return path


def box(x_min_m, y_min_m, x_max_m, y_max_m):
    """A box given in metres relative to the raster's top-left corner (y downwards)."""
    return shapely.box(X0 + x_min_m, Y0 - y_max_m, X0 + x_max_m, Y0 - y_min_m)


def units_frame(geoms, codes=None, crs=ALBERS, **columns):
    """GeoDataFrame of units, reprojected to WGS-84 like real boundaries."""
    codes = codes or [f"1101{i:02d}" for i in range(1, len(geoms) + 1)]
    data = {"code": codes, "name": [f"县{c}" for c in codes], **columns}
    return gpd.GeoDataFrame(data, geometry=list(geoms), crs=crs).to_crs(4326)


@pytest.fixture
def half_class(tmp_path):
    """100×100 class raster at 100 m: left half (x < 5 km) outdoor, right half none."""
    cls = np.zeros((100, 100), np.uint8)
    cls[:, :50] = 1
    return write_raster(tmp_path / "half_class.tif", cls, nodata=255)


@pytest.fixture
def banded(tmp_path):
    """Class and RSRP rasters in vertical 2 km bands: CE0 deep, CE0, CE1, CE2, uncovered.

    rsrp: -100 (cols 0-19, class 2), -100 (20-39, class 1), -110 (40-59, 1),
    -120 (60-79, 1), -130 (80-99, class 0).
    """
    rsrp = np.empty((100, 100), np.float32)
    cls = np.empty((100, 100), np.uint8)
    for band, (value, klass) in enumerate([(-100, 2), (-100, 1), (-110, 1), (-120, 1), (-130, 0)]):
        rsrp[:, band * 20:(band + 1) * 20] = value
        cls[:, band * 20:(band + 1) * 20] = klass
    return (write_raster(tmp_path / "b_class.tif", cls, nodata=255),
            write_raster(tmp_path / "b_rsrp.tif", rsrp, nodata=-9999.0))


def test_unit_fully_inside_coverage_is_100_pct(half_class):
    units = units_frame([box(520.5, 1033.3, 4390.7, 8777.7)])
    stats = zonal_stats(units, half_class)
    assert stats["coverage_pct"].iloc[0] == pytest.approx(100.0, abs=1e-6)
    assert stats["covered_km2"].iloc[0] == pytest.approx(stats["area_km2"].iloc[0], rel=1e-6)
    assert stats["deep_coverage_pct"].iloc[0] == pytest.approx(0.0)


def test_half_covered_square_is_50_pct(half_class):
    # edges at 2530 and 7470 m: not on pixel edges, the coverage edge at 5000 m halves it
    units = units_frame([box(2530.0, 2030.0, 7470.0, 6970.0)])
    stats = zonal_stats(units, half_class)
    assert stats["area_km2"].iloc[0] == pytest.approx(4.94 * 4.94, rel=1e-6)
    assert stats["coverage_pct"].iloc[0] == pytest.approx(50.0, abs=0.5)


def test_edge_pixels_count_by_their_fraction(half_class):
    # 2470 of 5000 m covered = 49.4 %; counting pixel centres would say 50 %
    units = units_frame([box(2530.0, 2030.0, 7530.0, 7030.0)])
    stats = zonal_stats(units, half_class)
    assert stats["coverage_pct"].iloc[0] == pytest.approx(49.4, abs=0.01)
    assert stats["covered_km2"].iloc[0] == pytest.approx(2.47 * 5.0, rel=1e-4)


def test_area_is_the_polygon_area_even_outside_the_raster(half_class):
    # 10 km × 10 km square, the left half hangs off the raster's west edge
    units = units_frame([box(-5000.0, 0.0, 5000.0, 10_000.0)])
    stats = zonal_stats(units, half_class)
    assert stats["area_km2"].iloc[0] == pytest.approx(100.0, rel=1e-6)
    assert stats["covered_km2"].iloc[0] == pytest.approx(50.0, rel=1e-6)
    assert stats["coverage_pct"].iloc[0] == pytest.approx(50.0, abs=1e-4)


def test_disc_of_known_radius_gives_pi_r_squared(tmp_path):
    """The analytic single-site case: a disc of r = 3 km rasterised at 10 m."""
    res_m, n, radius_m = 10.0, 800, 3000.0
    centres = (np.arange(n) + 0.5) * res_m
    xx, yy = np.meshgrid(centres, centres)
    disc = ((xx - 4000.0) ** 2 + (yy - 4000.0) ** 2 <= radius_m ** 2).astype(np.uint8)
    cls_path = write_raster(tmp_path / "disc_class.tif", disc, res_m=res_m, nodata=255)
    county = units_frame([box(-2000.0, -1500.0, 9000.0, 9500.0)])
    stats = zonal_stats(county, cls_path)
    assert stats["covered_km2"].iloc[0] == pytest.approx(math.pi * radius_m ** 2 / 1e6, rel=0.01)
    assert stats["area_km2"].iloc[0] == pytest.approx(11.0 * 11.0, rel=1e-6)


def test_ce_shares_deep_and_median(banded):
    cls_path, rsrp_path = banded
    # whole raster: 20 % deep, 80 % covered, CE0 40 %, CE1 20 %, CE2 20 %
    whole = units_frame([box(0.0, 0.0, 10_000.0, 10_000.0)])
    stats = zonal_stats(whole, cls_path, rsrp_path, {"outdoor": -125.0, "deep": -110.0, "ce": CE})
    row = stats.iloc[0]
    assert row["coverage_pct"] == pytest.approx(80.0)
    assert row["deep_coverage_pct"] == pytest.approx(20.0)
    assert (row["ce0_pct"], row["ce1_pct"], row["ce2_pct"]) == pytest.approx((40.0, 20.0, 20.0))
    # covered pixels: half at -100, a quarter at -110, a quarter at -120 (exactextract
    # interpolates its weighted median between values); the -130 dBm band is not covered
    assert -110.0 <= row["median_rsrp_dbm"] <= -100.0
    # a unit over the CE1 and CE2 bands (and 0.1 km of the uncovered band)
    right = units_frame([box(4500.0, 0.0, 7900.0, 10_000.0)])
    row = zonal_stats(right, cls_path, rsrp_path, CE).iloc[0]
    assert row["ce0_pct"] == pytest.approx(0.0)
    assert row["ce1_pct"] == pytest.approx(1500.0 / 3400.0 * 100.0)
    assert row["ce2_pct"] == pytest.approx(1900.0 / 3400.0 * 100.0)
    assert -120.0 <= row["median_rsrp_dbm"] <= -110.0


def test_without_thresholds_ce_is_empty(banded):
    cls_path, rsrp_path = banded
    stats = zonal_stats(units_frame([box(0.0, 0.0, 3950.0, 5000.0)]), cls_path, rsrp_path)
    assert stats[["ce0_pct", "ce1_pct", "ce2_pct"]].isna().all(axis=None)
    assert stats["median_rsrp_dbm"].iloc[0] == pytest.approx(-100.0)
    uncovered = zonal_stats(units_frame([box(8050.0, 0.0, 9950.0, 5000.0)]), cls_path, rsrp_path, CE)
    assert np.isnan(uncovered["median_rsrp_dbm"].iloc[0])
    assert uncovered[["coverage_pct", "ce0_pct", "ce2_pct"]].iloc[0].tolist() == [0.0, 0.0, 0.0]


def test_township_areas_add_up_to_the_county(half_class):
    county_geom = box(1234.5, 987.6, 8765.4, 9012.3)
    # four townships cut by a slanted line and a vertical line, not on pixel edges
    cut_v = shapely.LineString([(X0 + 4321.0, Y0 + 10), (X0 + 5555.5, Y0 - 10_010)])
    cut_h = shapely.LineString([(X0 - 10, Y0 - 3333.3), (X0 + 10_010, Y0 - 6100.7)])
    parts = shapely.get_parts(shapely.ops.split(county_geom, cut_v))
    towns = [g for p in parts for g in shapely.get_parts(shapely.ops.split(p, cut_h))]
    assert len(towns) == 4
    county = units_frame([county_geom], codes=["110101"])
    townships = units_frame(towns, codes=[f"110101{i:03d}" for i in range(4)],
                            parent=["110101"] * 4, parent_name=["县110101"] * 4, level=["township"] * 4)
    c = zonal_stats(county, half_class)
    t = zonal_stats(townships, half_class)
    assert t["area_km2"].sum() == pytest.approx(c["area_km2"].iloc[0], rel=0.005)
    assert t["covered_km2"].sum() == pytest.approx(c["covered_km2"].iloc[0], rel=0.005)


@pytest.fixture
def operator_layers(tmp_path):
    """Class and RSRP rasters of CT (west disc), CM (east disc, deep core) and 'all' = best server."""
    centres = (np.arange(100) + 0.5) * RES_M
    xx, yy = np.meshgrid(centres, centres)
    layers = []
    rsrps = {}
    for op, (cx, cy) in {"CT": (3000.0, 5000.0), "CM": (6500.0, 4000.0)}.items():
        d = np.hypot(xx - cx, yy - cy)
        rsrp = (-80.0 - d / 100.0).astype(np.float32)  # -1 dB per 100 m
        rsrps[op] = rsrp
    rsrps[ALL_OPERATORS] = np.maximum(rsrps["CT"], rsrps["CM"])
    for op, rsrp in rsrps.items():
        cls = np.where(rsrp >= -100, 2, np.where(rsrp >= -112, 1, 0)).astype(np.uint8)
        stem = "nbiot" if op == ALL_OPERATORS else f"nbiot_{op.lower()}"
        layers.append(Layer("nbiot", op,
                            write_raster(tmp_path / f"{stem}_class.tif", cls, nodata=255),
                            write_raster(tmp_path / f"{stem}_rsrp.tif", rsrp, nodata=-9999.0), CE))
    return layers


def test_unit_table_rows_combined_and_deep(operator_layers):
    units = units_frame([box(0.0, 0.0, 5050.0, 10_000.0), box(5050.0, 0.0, 10_000.0, 10_000.0),
                         box(1111.1, 2222.2, 9876.5, 8765.4)],
                        codes=["110101", "110102", "110103"],
                        province_code=["110000"] * 3, province=["北京市"] * 3,
                        city_code=["110100"] * 3, city=["北京城区"] * 3)
    sectors = gpd.GeoDataFrame(
        {"operator": ["CT", "CT", "CT", "CM"], "site_id": ["s1", "s1", "s1", "m1"], "tech": ["nbiot"] * 4},
        geometry=[shapely.Point(X0 + 3000, Y0 - 5000)] * 3 + [shapely.Point(X0 + 6500, Y0 - 4000)],
        crs=ALBERS).to_crs(4326)
    table = unit_table(units, operator_layers, sectors=sectors)
    assert list(table.columns) == list(UNIT_TABLE_COLUMNS)
    assert len(table) == 3 * 3
    assert set(table["operator"]) == {"all", "CT", "CM"}
    assert (table.groupby("code")["operator"].first() == "all").all()
    wide = table.pivot(index="code", columns="operator", values="coverage_pct")
    assert (wide["all"] >= wide["CT"] - 1e-9).all() and (wide["all"] >= wide["CM"] - 1e-9).all()
    assert (wide["all"] > wide["CT"]).any()
    assert (table["deep_coverage_pct"] <= table["coverage_pct"] + 1e-9).all()
    assert (table["deep_covered_km2"] > 0).any()
    # ce shares lie within the covered share
    assert (table["ce0_pct"] + table["ce1_pct"] + table["ce2_pct"] <= table["coverage_pct"] + 1e-6).all()
    row = table.set_index(["code", "operator"])
    assert row.loc[("110101", "all"), ["sectors", "sites"]].tolist() == [3, 1]
    assert row.loc[("110101", "CT"), ["sectors", "sites"]].tolist() == [3, 1]
    assert row.loc[("110101", "CM"), ["sectors", "sites"]].tolist() == [0, 0]
    assert row.loc[("110103", "all"), ["sectors", "sites"]].tolist() == [4, 2]
    assert row.loc[("110101", "all"), "parent"] == "110100"
    assert row.loc[("110101", "all"), "province"] == "北京市"
    assert row.loc[("110101", "all"), "level"] == "county"
    assert table["population"].isna().all()


def test_count_sectors_border_point_counts_once():
    units = gpd.GeoDataFrame({"code": ["a", "b"]}, geometry=[box(0, 0, 1000, 1000), box(1000, 0, 2000, 1000)],
                             crs=ALBERS)
    sectors = gpd.GeoDataFrame({"operator": ["CU"], "site_id": ["x"], "tech": ["redcap"]},
                               geometry=[shapely.Point(X0 + 1000, Y0 - 500)], crs=ALBERS)
    counts = count_sectors(units, sectors)
    assert counts.loc[counts["operator"] == "CU", "sectors"].sum() == 1
    assert counts.loc[counts["operator"] == "all", "sectors"].sum() == 1


def test_population_share_covered(half_class, tmp_path):
    """Population raster in WGS-84 (~0.005°) with 10 people per pixel over the area."""
    units = units_frame([box(1000.0, 1000.0, 9000.0, 9000.0)])
    lon0, lat0, lon1, lat1 = units.total_bounds
    res_deg = 0.005
    x0, y0 = lon0 - 0.02, lat1 + 0.02
    ncols = int(math.ceil((lon1 + 0.02 - x0) / res_deg))
    nrows = int(math.ceil((y0 - (lat0 - 0.02)) / res_deg))
    pop = np.full((nrows, ncols), 10.0, np.float32)
    pop_path = write_raster(tmp_path / "pop.tif", pop, res_m=res_deg, nodata=-1.0, crs="EPSG:4326", x0=x0, y0=y0)
    stats = zonal_stats(units, half_class, population=pop_path)
    # uniform people per pixel on a lon/lat grid -> density nearly uniform over 8 km
    pixel_km2 = (res_deg * 111.32 * math.cos(math.radians((lat0 + lat1) / 2))) * (res_deg * 110.95)
    assert stats["population"].iloc[0] == pytest.approx(10.0 * 64.0 / pixel_km2, rel=0.03)
    # covered: x < 5 km of 1..9 km -> half the people
    assert stats["population_covered_pct"].iloc[0] == pytest.approx(50.0, abs=2.0)


def test_bad_units_raise(half_class):
    with pytest.raises(SchemaError):
        zonal_stats(np.zeros(3), half_class)
    empty = gpd.GeoDataFrame({"code": []}, geometry=[], crs=4326)
    with pytest.raises(EmptyCoverageError):
        zonal_stats(empty, half_class)


def test_median_is_binned_to_a_tenth_of_a_db(tmp_path):
    # RSRP varying smoothly (not on a 0.1 dB grid), every pixel covered, the unit on pixel edges
    centres = np.arange(100) + 0.5
    rsrp = (-120.0 + 0.2037 * centres[None, :] + 0.0113 * centres[:, None] ** 1.5).astype(np.float32)
    cls = np.ones((100, 100), np.uint8)
    cls_path = write_raster(tmp_path / "g_class.tif", cls, nodata=255)
    rsrp_path = write_raster(tmp_path / "g_rsrp.tif", rsrp, nodata=-9999.0)
    unit = units_frame([box(0.0, 0.0, 6000.0, 10_000.0)])
    median = zonal_stats(unit, cls_path, rsrp_path)["median_rsrp_dbm"].iloc[0]
    exact = float(np.median(rsrp[:, :60]))
    assert abs(median - exact) < 0.1  # the same 0.1 dB bin
    assert round(median / 0.1) == round(exact / 0.1)
    # a constant RSRP is returned as its 0.1 dB bin's centre
    constant = write_raster(tmp_path / "c_rsrp.tif", np.full((100, 100), -100.03, np.float32), nodata=-9999.0)
    assert zonal_stats(unit, cls_path, constant)["median_rsrp_dbm"].iloc[0] == pytest.approx(-100.0)


def _reference_layer_stats(projected, cls, rsrp, transform, crs):
    """One layer's covered/deep/CE pixel sums and median straight from exactextract's own ops."""
    from exactextract import exact_extract
    from exactextract.raster import NumPyRasterSource

    from coverage.zonal import MEDIAN_STEP_DB, _histogram_median

    h, w = cls.shape
    ext = (transform.c, transform.f + h * transform.e, transform.c + w * transform.a, transform.f)
    covered = (cls == 1) | (cls == 2)
    valid = covered & (rsrp != -9999.0)
    masks = {"cov": covered, "deep": cls == 2, "ce0": valid & (rsrp >= CE["CE0"]),
             "ce1": valid & (rsrp < CE["CE0"]) & (rsrp >= CE["CE1"]),
             "ce2": valid & (rsrp < CE["CE1"]) & (rsrp >= CE["CE2"])}
    sources = [NumPyRasterSource(m.astype(np.float64), *ext, name=k, srs_wkt=crs.to_wkt()) for k, m in masks.items()]
    steps = np.where(valid, np.rint(rsrp / MEDIAN_STEP_DB), np.nan)
    sources.append(NumPyRasterSource(steps, *ext, name="steps", srs_wkt=crs.to_wkt(), nodata=np.nan))
    frame = exact_extract(sources[:-1], projected, ["sum"], output="pandas")
    values = exact_extract(sources[-1], projected, ["values", "coverage"], output="pandas")
    sums = frame[[f"{k}_sum" for k in masks]].to_numpy()
    medians = []
    for vals, fracs in zip(values["values"], values["coverage"], strict=True):
        vals, fracs = np.asarray(vals, float), np.asarray(fracs, float)
        keep = ~np.isnan(vals)
        if not keep.any():
            medians.append(np.nan)
            continue
        uniq, inverse = np.unique(vals[keep], return_inverse=True)
        medians.append(_histogram_median(uniq, np.bincount(inverse, weights=fracs[keep])) * MEDIAN_STEP_DB)
    return sums, np.array(medians)


def test_strips_give_exactextract_sums_and_medians(tmp_path, monkeypatch):
    """Irregular units over many strips (16-row blocks): every sum and median as exactextract computes it."""
    import coverage.zonal as zonal

    monkeypatch.setattr(zonal, "_STRIP_TARGET_CELLS", 1)  # one 16-px block row per strip
    rng = np.random.default_rng(7)
    h, w = 120, 90
    layers, arrays = [], []
    for i in range(3):
        cls = rng.choice(np.array([0, 1, 2, 255], np.uint8), size=(h, w), p=[0.3, 0.4, 0.2, 0.1])
        rsrp = np.round(rng.uniform(-132.0, -95.0, size=(h, w)) * 128) / 128
        rsrp = np.where(cls == 255, -9999.0, rsrp).astype(np.float32)
        for name, array, nodata in (("class", cls, 255), ("rsrp", rsrp, -9999.0)):
            with rasterio.open(tmp_path / f"{name}{i}.tif", "w", driver="GTiff", width=w, height=h, count=1,
                               dtype=array.dtype, crs=ALBERS, transform=from_origin(X0, Y0, RES_M, RES_M),
                               nodata=nodata, tiled=True, blockxsize=16, blockysize=16) as ds:
                ds.write(array, 1)
        layers.append(Layer("nbiot", f"op{i}", tmp_path / f"class{i}.tif", tmp_path / f"rsrp{i}.tif", CE))
        arrays.append((cls, rsrp))
    geoms = [shapely.Point(X0 + 2_000 + 900 * k, Y0 - 1_500 - 950 * k).buffer(600 + 700 * k, quad_segs=5)
             for k in range(7)]
    geoms.append(shapely.Polygon([(X0 - 500, Y0 + 500), (X0 + 4_321, Y0 - 11_777), (X0 + 8_000, Y0 - 3_210)]))
    # discs one under the other: each strip's histogram slots are reused by the next disc
    geoms += [shapely.Point(X0 + 7_000, Y0 - 1_000 - 2_500 * j).buffer(700) for j in range(5)]
    units = units_frame(geoms)
    stats = zonal.layer_stats(units, layers)
    with rasterio.open(tmp_path / "class0.tif") as ds:
        transform, crs = ds.transform, ds.crs
    projected = zonal.units_in_crs(units, crs)
    area_km2 = projected.geometry.area.to_numpy() / 1e6
    pixel_km2 = RES_M * RES_M / 1e6
    for i, (cls, rsrp) in enumerate(arrays):
        sums, medians = _reference_layer_stats(projected, cls, rsrp, transform, crs)
        got = stats[stats["operator"] == f"op{i}"].sort_values("_unit")
        assert got["covered_km2"].to_numpy() == pytest.approx(np.minimum(sums[:, 0] * pixel_km2, area_km2))
        assert got["deep_covered_km2"].to_numpy() == pytest.approx(sums[:, 1] * pixel_km2)
        for k, column in enumerate(("ce0_pct", "ce1_pct", "ce2_pct")):
            assert got[column].to_numpy() == pytest.approx(sums[:, 2 + k] * pixel_km2 / area_km2 * 100)
        assert got["median_rsrp_dbm"].to_numpy() == pytest.approx(medians, abs=1e-9, nan_ok=True)
