"""coverage.targets: the 2027 targets by hand, and two sample runs that differ by one resubmission.

The hand-made run (100 m, China Albers, 100 × 100 pixels): county A is columns
0-49, county B columns 50-99, both in prefecture 350200 of province 350000. The
land cover (IGBP codes, on the same grid) is built-up (13) in a 20 × 30 pixel
block of each county (6.00 km² each). CT's RedCap covers the northern half of A's
block, CM's RedCap nothing; NB-IoT is deep everywhere in A and outdoor only in B.
"""

from __future__ import annotations

import json

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import Point, box

from coverage.layout import RunLayout
from coverage.targets import (
    TARGET_COLUMNS,
    for_people,
    read_targets,
    target_tables,
    write_targets,
)
from coverage.zonal import Layer

ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +x_0=0 +y_0=0 +datum=WGS84 +units=m"
RES_M = 100.0
WEST_M, NORTH_M = 1_330_000.0, 2_700_000.0
N_PX = 100
BUILT_A = (10, 30, 10, 40)  # rows 10-29, columns 10-39
BUILT_B = (60, 80, 60, 90)


def _grid_box(c0, r0, c1, r1):
    return box(WEST_M + c0 * RES_M, NORTH_M - r1 * RES_M, WEST_M + c1 * RES_M, NORTH_M - r0 * RES_M)


def _write(path, array):
    with rasterio.open(path, "w", driver="GTiff", width=N_PX, height=N_PX, count=1, dtype="uint8", crs=ALBERS,
                       transform=from_origin(WEST_M, NORTH_M, RES_M, RES_M), nodata=255) as dst:
        dst.write(array.astype(np.uint8), 1)
    return path


def _block(value, *blocks, base=0):
    out = np.full((N_PX, N_PX), base, dtype=np.uint8)
    for r0, r1, c0, c1 in blocks:
        out[r0:r1, c0:c1] = value
    return out


def make_hand_run(root, ct_redcap_blocks):
    """Rasters of the hand-made run; CT's RedCap covers ``ct_redcap_blocks``. Returns (layout, layers, counties)."""
    layout = RunLayout(root)
    layout.raster_dir.mkdir(parents=True)
    (root / "manifest.json").write_text("{}", encoding="utf-8")
    ct = _block(1, *ct_redcap_blocks)
    cm = _block(1)
    layers = [
        Layer("redcap", "all", _write(layout.coverage_class("redcap"), np.maximum(ct, cm))),
        Layer("redcap", "CM", _write(layout.coverage_class("redcap", "CM"), cm)),
        Layer("redcap", "CT", _write(layout.coverage_class("redcap", "CT"), ct)),
        Layer("nbiot", "all", _write(layout.coverage_class("nbiot"), _block(2, (0, N_PX, 0, 50), base=1))),
    ]
    _write(root / "landcover.tif", _block(13, BUILT_A, BUILT_B, base=12))
    counties = gpd.GeoDataFrame({
        "code": ["350201", "350202"], "name": ["甲区", "乙区"], "level": ["county", "county"],
        "parent": ["350200", "350200"], "parent_name": ["厦门市", "厦门市"],
        "province_code": ["350000", "350000"], "province": ["福建省", "福建省"],
    }, geometry=[_grid_box(0, 0, 50, N_PX), _grid_box(50, 0, N_PX, N_PX)], crs=ALBERS).to_crs(4326)
    return layout, layers, counties


TOWNSHIPS = pd.DataFrame({  # the long township table: RedCap coverage of 4 townships (2 per county)
    "code": ["350201001", "350201002", "350202001", "350202002"] * 2,
    "parent": ["350201", "350201", "350202", "350202"] * 2,
    "tech": ["redcap"] * 8,
    "operator": ["all"] * 4 + ["CT"] * 4,
    "coverage_pct": [30.0, 0.5, 1.0, 0.0, 30.0, 0.0, 0.9, 0.0],
})


def _tables(layout, layers, counties, **kwargs):
    landcover = {"path": layout.root / "landcover.tif", "classes": [13]}
    return target_tables(layers, counties, township_table=TOWNSHIPS, landcover=landcover, **kwargs)


def _row(table, code, op):
    rows = table[(table["code"] == code) & (table["operator"] == op)]
    assert len(rows) == 1, (code, op)
    return rows.iloc[0]


@pytest.fixture(scope="module")
def hand(tmp_path_factory):
    """The hand-made run with CT covering the northern half of A's built-up block: (layout, table, summary)."""
    layout, layers, counties = make_hand_run(tmp_path_factory.mktemp("t") / "run", [(10, 20, 10, 40)])
    table, summary = _tables(layout, layers, counties)
    return layout, table, summary


def test_county_figures_by_hand(hand):
    _, table, _ = hand
    a_ct, a_all, a_cm = _row(table, "350201", "CT"), _row(table, "350201", "all"), _row(table, "350201", "CM")
    assert a_ct["built_up_km2"] == pytest.approx(6.0)  # 20 × 30 pixels of 0.01 km²
    assert a_ct["redcap_built_up_covered_km2"] == pytest.approx(3.0)  # 10 × 30
    assert a_ct["redcap_built_up_coverage_pct"] == pytest.approx(50.0)
    assert a_all["redcap_built_up_coverage_pct"] == pytest.approx(50.0)
    assert a_cm["redcap_built_up_coverage_pct"] == 0.0
    assert not a_ct["redcap_at_scale"]
    assert a_all["nbiot_built_up_deep_coverage_pct"] == pytest.approx(100.0)
    assert np.isnan(a_ct["nbiot_built_up_deep_coverage_pct"])  # the run has no CT NB-IoT layer
    b_all = _row(table, "350202", "all")
    assert b_all["built_up_km2"] == pytest.approx(6.0)
    assert b_all["redcap_built_up_coverage_pct"] == 0.0
    assert b_all["nbiot_built_up_deep_coverage_pct"] == 0.0  # outdoor only
    assert b_all["built_up_source"] == "landcover"
    # townships reached: RedCap ≥ 1 % of the township's area
    assert (a_all["townships"], a_all["townships_reached_redcap"]) == (2, 1)
    assert (b_all["townships"], b_all["townships_reached_redcap"]) == (2, 1)
    assert _row(table, "350202", "CT")["townships_reached_redcap"] == 0  # 0.9 % < 1 %


def test_prefecture_and_progress_tables(hand):
    _, table, summary = hand
    pref = _row(table, "350200", "all")
    assert pref["level"] == "prefecture" and pref["parent"] == "350000"
    assert pref["built_up_km2"] == pytest.approx(12.0)
    assert pref["redcap_built_up_coverage_pct"] == pytest.approx(25.0)
    assert pref["nbiot_built_up_deep_coverage_pct"] == pytest.approx(50.0)
    assert pref["townships_reached_pct"] == pytest.approx(50.0)
    national = summary[(summary["scope"] == "national") & (summary["operator"] == "all")].iloc[0]
    assert national["counties"] == 2 and national["counties_at_scale"] == 0 and national["prefectures"] == 1
    assert national["redcap_built_up_coverage_pct"] == pytest.approx(25.0)
    province = summary[(summary["scope"] == "province") & (summary["operator"] == "all")].iloc[0]
    assert province["province_code"] == "350000" and province["built_up_km2"] == pytest.approx(12.0)
    assert list(table.columns) == list(TARGET_COLUMNS)


def test_threshold_from_the_config_decides_at_scale(tmp_path):
    table, summary = _tables(*make_hand_run(tmp_path / "run", [(10, 20, 10, 40)]), redcap_at_scale_pct=50.0)
    assert bool(_row(table, "350201", "all")["redcap_at_scale"]) is True  # 50 % ≥ 50 %
    assert bool(_row(table, "350202", "all")["redcap_at_scale"]) is False
    assert summary.loc[summary["scope"] == "national", "counties_at_scale"].iloc[0] == 1


def test_one_operators_added_sites_raise_exactly_the_affected_units(tmp_path):
    """CT resubmits with RedCap over B's built-up block: B's CT and all figures rise, nothing else moves."""
    before = _tables(*make_hand_run(tmp_path / "before", [(10, 20, 10, 40)]))[0]
    after = _tables(*make_hand_run(tmp_path / "after", [(10, 20, 10, 40), BUILT_B]))[0]
    key = ["code", "operator"]
    merged = before.merge(after, on=key, suffixes=("_before", "_after"))
    changed = merged[merged["redcap_built_up_coverage_pct_before"] != merged["redcap_built_up_coverage_pct_after"]]
    assert set(map(tuple, changed[key].to_numpy())) == {("350202", "CT"), ("350202", "all"), ("350200", "CT"),
                                                        ("350200", "all")}
    assert _row(after, "350202", "CT")["redcap_built_up_coverage_pct"] == pytest.approx(100.0)
    assert bool(_row(after, "350202", "CT")["redcap_at_scale"]) is True
    assert _row(after, "350200", "all")["redcap_built_up_coverage_pct"] == pytest.approx(75.0)
    for column in ("built_up_km2", "nbiot_built_up_deep_coverage_pct", "townships_reached_redcap"):
        pd.testing.assert_series_equal(merged[f"{column}_before"], merged[f"{column}_after"], check_names=False)


def test_without_land_cover_built_up_is_near_urban_sectors(tmp_path):
    """Flat run: built-up = pixel centres within 500 m of a dense_urban/urban sector (a rural one counts not)."""
    layout, layers, counties = make_hand_run(tmp_path / "run", [])
    x, y = WEST_M + 25 * RES_M, NORTH_M - 50 * RES_M  # a pixel corner inside A
    sectors = gpd.GeoDataFrame({"environment": ["urban", "rural"]},
                               geometry=[Point(x, y), Point(WEST_M + 75 * RES_M, NORTH_M - 50 * RES_M)],
                               crs=ALBERS).to_crs(4326)
    table, _ = target_tables(layers, counties, sectors=sectors, urban_site_radius_m=500.0)
    cols = WEST_M + (np.arange(N_PX) + 0.5) * RES_M
    rows = NORTH_M - (np.arange(N_PX) + 0.5) * RES_M
    gx, gy = np.meshgrid(cols, rows)
    expected = int((np.hypot(gx - x, gy - y) <= 500.0).sum())  # all in A (25 px from its edge)
    a = _row(table, "350201", "all")
    assert a["built_up_source"] == "urban_sectors"
    assert a["built_up_km2"] == pytest.approx(expected * 0.01)
    assert _row(table, "350202", "all")["built_up_km2"] == 0.0
    assert np.isnan(_row(table, "350202", "all")["redcap_built_up_coverage_pct"])
    assert np.isnan(a["townships"])  # no township table given


def test_csv_for_people(hand, tmp_path):
    layout, table, summary = hand
    table_path, summary_path = write_targets(layout, table, summary)
    assert table_path.read_bytes().startswith(b"\xef\xbb\xbf")
    back, back_summary = read_targets(layout.root)
    assert back["code"].tolist() == table["code"].tolist()  # codes stay text
    rounded = for_people(pd.DataFrame({"a_km2": [1.23456], "b_pct": [99.99999]}))
    assert rounded.iloc[0].tolist() == [1.23, 100.0]
    assert json.dumps(back_summary["scope"].tolist()) == '["national", "national", "national", "province", ' \
                                                         '"province", "province"]'


# ---------------------------------------------------------------- two predicted runs


@pytest.fixture(scope="module")
def two_sample_runs(tmp_path_factory):
    """RedCap predicted (flat) from the sample's sectors of 集美 350211 and 同安 350212, twice:
    before, without CT's 201 RedCap sectors deeper than 5 km inside 同安; after, with them (CT's
    resubmission). Returns (targets before, targets after)."""
    from coverage.aggregate import report_layers
    from coverage.boundaries import load_counties
    from coverage.pipeline import sample_job
    from coverage.predict import predict
    from coverage.targets import landcover_of_run
    from coverage.terrain.data import DEFAULT_LANDCOVER, cached_path

    landcover_path = cached_path(DEFAULT_LANDCOVER)
    if not landcover_path.exists():
        pytest.skip("the default land cover is not fetched: run `covmap data fetch`")
    from coverage.ingest import read_submissions

    job = sample_job()
    sectors = read_submissions(job.submissions, crs=job.crs_by_file).sectors
    counties = load_counties(codes=["350211", "350212"])
    counties = counties.assign(parent=counties["city_code"], parent_name=counties["city"])
    redcap = sectors[(sectors["tech"] == "redcap") & sectors.within(counties.union_all())]
    inner = counties[counties["code"] == "350212"].to_crs(3857).buffer(-5000).to_crs(4326).iloc[0]
    added = (redcap["operator"] == "CT") & redcap.within(inner)
    assert added.sum() > 50
    landcover = landcover_of_run({"terrain": {"clutter": {"path": str(landcover_path), "class_table": "igbp"}}})
    out = []
    for name, part in (("before", redcap[~added]), ("after", redcap)):
        root = tmp_path_factory.mktemp(name) / "run"
        report = predict(part, root, techs=("redcap",), scheduler="synchronous")
        layers = report_layers(RunLayout(root), report, "redcap")
        out.append(target_tables(layers, counties, landcover=landcover)[0])
    return out


def test_sample_resubmission_raises_only_the_resubmitted_county(two_sample_runs):
    before, after = two_sample_runs
    key = ["code", "operator"]
    merged = before.merge(after, on=key, suffixes=("_before", "_after"))
    rose = merged["redcap_built_up_covered_km2_after"] > merged["redcap_built_up_covered_km2_before"]
    moved = merged["redcap_built_up_covered_km2_after"] != merged["redcap_built_up_covered_km2_before"]
    assert set(map(tuple, merged.loc[moved, key].to_numpy())) == {
        ("350212", "CT"), ("350212", "all"), ("350200", "CT"), ("350200", "all")}
    assert rose[moved].all()  # added sites only add coverage
    tongan_ct = merged[(merged["code"] == "350212") & (merged["operator"] == "CT")].iloc[0]
    assert tongan_ct["redcap_built_up_coverage_pct_after"] > tongan_ct["redcap_built_up_coverage_pct_before"] + 1.0
    pd.testing.assert_series_equal(merged["built_up_km2_before"], merged["built_up_km2_after"], check_names=False)
    assert (merged["built_up_source_after"] == "landcover").all()
    assert merged.loc[merged["code"] == "350212", "built_up_km2_after"].iloc[0] > 10.0  # MODIS urban cells


def test_urban_discs_are_the_pixels_a_nearest_sector_query_finds():
    """The stamped discs mark exactly the pixel centres cKDTree finds within the radius (strictly
    closer, as its distance_upper_bound): random sites, sites on pixel centres whose disc edge
    passes exactly through other centres, and sites beyond the window's edges."""
    from scipy.spatial import cKDTree

    from coverage.targets import _UrbanSites

    rng = np.random.default_rng(7)
    rows, cols, res, radius = 180, 240, 100.0, 300.0
    transform = from_origin(WEST_M, NORTH_M, res, res)
    x = np.concatenate([WEST_M + rng.uniform(-400, cols * res + 400, 300),
                        WEST_M + (rng.integers(0, cols, 40) + 0.5) * res])
    y = np.concatenate([NORTH_M - rng.uniform(-400, rows * res + 400, 300),
                        NORTH_M - (rng.integers(0, rows, 40) + 0.5) * res])
    got = _UrbanSites(x, y).mask(transform, rows, cols, res, radius)

    gx, gy = np.meshgrid(WEST_M + (np.arange(cols) + 0.5) * res, NORTH_M - (np.arange(rows) + 0.5) * res)
    dist, _ = cKDTree(np.column_stack([x, y])).query(np.column_stack([gx.ravel(), gy.ravel()]),
                                                      distance_upper_bound=radius)
    expected = np.isfinite(dist).reshape(rows, cols)
    assert 0.1 < expected.mean() < 0.9
    np.testing.assert_array_equal(got, expected)
    on_centre = _UrbanSites([WEST_M + 10.5 * res], [NORTH_M - 10.5 * res]).mask(transform, rows, cols, res, radius)
    assert on_centre[10, 13 - 1] and not on_centre[10, 13]  # 300 m east of the site: on the edge, left out
    assert not _UrbanSites.none().mask(transform, rows, cols, res, radius).any()
