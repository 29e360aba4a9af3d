"""The aggregate stage and the `covmap aggregate` / `covmap gaps` commands on a small run."""

from __future__ import annotations

import json
import math
import sys
import types

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import rasterio
import shapely
from rasterio.transform import from_origin

import cli
from coverage.aggregate import SUMMARY_COLUMNS, aggregate, county_gaps
from coverage.errors import UnknownUnitError
from coverage.gap_areas import read_gap_areas
from coverage.gaps import GAP_COLUMNS
from coverage.layout import RunLayout
from coverage.zonal import UNIT_TABLE_COLUMNS

try:
    from coverage.grid import CHINA_ALBERS_PROJ4 as ALBERS
except ImportError:  # pragma: no cover - grid.py not there yet
    ALBERS = "+proj=aea +lat_0=0 +lon_0=105 +lat_1=25 +lat_2=47 +x_0=0 +y_0=0 +datum=WGS84 +units=m +no_defs"

X0, Y0, RES_M, N = 100_000.0, 3_900_000.0, 50.0, 200  # a 10 × 10 km run grid at 50 m
CE = {"CE0": -105.0, "CE1": -115.0, "CE2": -125.0}
SITE_CT = (2500.0, 5000.0)   # metres from the top-left corner (y downwards)
SITE_CM = (7000.0, 5000.0)
RADIUS_M = {"CT": 2000.0, "CM": 1500.0}


def box(x_min_m, y_min_m, x_max_m, y_max_m):
    return shapely.box(X0 + x_min_m, Y0 - y_max_m, X0 + x_max_m, Y0 - y_min_m)


def _write(path, array, nodata):
    with rasterio.open(path, "w", driver="GTiff", width=N, height=N, count=1, dtype=array.dtype, crs=ALBERS,
                       transform=from_origin(X0, Y0, RES_M, RES_M), nodata=nodata) as ds:
        ds.write(array, 1)


@pytest.fixture
def run_dir(tmp_path):
    """A predicted run: CT and CM omni discs (nbiot and, CT only, redcap), report.json, sectors.

    RSRP falls 1 dB per 50 m from -90 dBm at the site; class 1 within the radius,
    class 2 within half of it.
    """
    run = tmp_path / "run"
    layout = RunLayout(run)
    layout.raster_dir.mkdir(parents=True)
    (run / "manifest.json").write_text("{}", encoding="utf-8")
    centres = (np.arange(N) + 0.5) * RES_M
    xx, yy = np.meshgrid(centres, centres)
    techs = {}
    for tech, ops in {"nbiot": ("CT", "CM"), "redcap": ("CT",)}.items():
        rsrps, classes, layers = [], [], []
        for op in ops:
            cx, cy = SITE_CT if op == "CT" else SITE_CM
            d = np.hypot(xx - cx, yy - cy)
            rsrp = np.where(d <= RADIUS_M[op], -90.0 - d / 50.0, -9999.0).astype(np.float32)
            cls = np.where(d <= RADIUS_M[op] / 2, 2, np.where(d <= RADIUS_M[op], 1, 0)).astype(np.uint8)
            rsrps.append(rsrp)
            classes.append(cls)
            _write(layout.rsrp(tech, op), rsrp, -9999.0)
            _write(layout.coverage_class(tech, op), cls, 255)
            layers.append({"operator": op, "rsrp": layout.rsrp(tech, op).name,
                           "class": layout.coverage_class(tech, op).name, "sectors": 1})
        _write(layout.rsrp(tech), np.max(rsrps, axis=0), -9999.0)
        _write(layout.coverage_class(tech), np.max(classes, axis=0), 255)
        layers.append({"operator": "all", "rsrp": layout.rsrp(tech).name,
                       "class": layout.coverage_class(tech).name, "sectors": len(ops)})
        techs[tech] = {"thresholds_dbm": {"outdoor": -130.0, "deep": -110.0, "ce": CE if tech == "nbiot" else {}},
                       "typical_cell_radius_m": {"dense_urban": 300.0, "urban": 600.0, "suburban": 1200.0,
                                                 "rural": 1000.0},
                       "layers": layers}
    report = {"grid": {"crs_wkt": rasterio.crs.CRS.from_string(ALBERS).to_wkt(), "resolution_m": RES_M,
                       "width": N, "height": N, "transform": [RES_M, 0, X0, 0, -RES_M, Y0], "tile_size_px": 100},
              "techs": techs, "warnings": [], "evaluations": 0, "timings_s": {}}
    layout.predict_report.write_text(json.dumps(report), encoding="utf-8")
    sectors = gpd.GeoDataFrame(
        {"operator": ["CT", "CT", "CM", "CT"], "site_id": ["ct1", "ct1", "cm1", "ct1"],
         "cell_id": ["1", "2", "1", "r1"], "tech": ["nbiot", "nbiot", "nbiot", "redcap"]},
        geometry=[shapely.Point(X0 + SITE_CT[0], Y0 - SITE_CT[1])] * 2
        + [shapely.Point(X0 + SITE_CM[0], Y0 - SITE_CM[1]), shapely.Point(X0 + SITE_CT[0], Y0 - SITE_CT[1])],
        crs=ALBERS).to_crs(4326)
    sectors.to_parquet(layout.sectors)
    return run


@pytest.fixture
def counties():
    """Three counties: west (holds CT), east (holds CM), and one further east with no sector."""
    return gpd.GeoDataFrame(
        {"code": ["420101", "420102", "420103"], "name": ["西县", "东县", "远县"],
         "province_code": ["420000"] * 3, "province": ["湖北省"] * 3,
         "city_code": ["420100"] * 3, "city": ["武汉市"] * 3},
        geometry=[box(0.0, 0.0, 5000.0, 10_000.0), box(5000.0, 0.0, 10_000.0, 10_000.0),
                  box(10_000.0, 0.0, 15_000.0, 10_000.0)], crs=ALBERS).to_crs(4326)


@pytest.fixture
def townships(tmp_path, counties):
    """Two townships splitting the west county at x = 2.2 km (not a pixel edge), as a GeoJSON file."""
    towns = gpd.GeoDataFrame(
        {"code": ["420101001", "420101002"], "name": ["甲镇", "乙镇"], "parent": ["420101"] * 2,
         "parent_name": ["西县"] * 2, "level": ["township"] * 2, "synthetic": [False, False]},
        geometry=[box(0.0, 0.0, 2210.0, 10_000.0), box(2210.0, 0.0, 5000.0, 10_000.0)], crs=ALBERS).to_crs(4326)
    path = tmp_path / "towns.geojson"
    towns.to_file(path, driver="GeoJSON")
    return path


@pytest.fixture
def fake_boundaries(monkeypatch, counties):
    """A stand-in ``coverage.boundaries`` module serving the three counties."""
    module = types.ModuleType("coverage.boundaries")
    module.load_counties = lambda province=None, city=None, codes=None: counties.copy()
    module.read_townships = lambda path, counties=None: gpd.read_file(path)
    monkeypatch.setitem(sys.modules, "coverage.boundaries", module)
    return module


def test_aggregate_writes_the_contract_files(run_dir, counties):
    result = aggregate(run_dir, counties=counties)
    layout = RunLayout(run_dir)
    for path in (layout.county_csv, layout.summary_csv, layout.gaps_csv("nbiot"), layout.gaps_csv("redcap")):
        assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    assert result["township_csv"] is None and not layout.township_csv.exists()
    table = pd.read_csv(layout.county_csv, encoding="utf-8-sig", dtype={"code": str, "parent": str})
    assert list(table.columns) == list(UNIT_TABLE_COLUMNS)
    # 3 counties × (nbiot: all, CT, CM + redcap: all, CT)
    assert len(table) == 3 * 5
    rows = table.set_index(["code", "tech", "operator"])
    west = rows.loc[("420101", "nbiot", "CT")]
    # the whole CT disc lies in the west county: π r² within 1 %
    assert west["covered_km2"] == pytest.approx(math.pi * 2.0 ** 2, rel=0.01)
    assert west["area_km2"] == pytest.approx(50.0, rel=1e-6)
    assert west["deep_covered_km2"] == pytest.approx(math.pi * 1.0 ** 2, rel=0.02)
    assert (west["sectors"], west["sites"]) == (2, 1)
    assert rows.loc[("420102", "nbiot", "all"), "sectors"] == 1
    far = rows.loc[("420103", "nbiot", "all")]
    assert far["coverage_pct"] == 0.0 and far["area_km2"] == pytest.approx(50.0, rel=1e-6)
    wide = table.pivot_table(index=["code", "tech"], columns="operator", values="coverage_pct")
    for op in ("CT", "CM"):
        present = wide[op].notna()
        assert (wide.loc[present, "all"] >= wide.loc[present, op] - 1e-9).all()
    assert (table["deep_coverage_pct"] <= table["coverage_pct"]).all()
    assert table.loc[table["tech"] == "redcap", ["ce0_pct", "ce1_pct", "ce2_pct"]].isna().all(axis=None)
    assert table.loc[table["tech"] == "nbiot", "ce0_pct"].notna().all()

    summary = pd.read_csv(layout.summary_csv, encoding="utf-8-sig")
    assert list(summary.columns) == list(SUMMARY_COLUMNS)
    national = summary[(summary["scope"] == "national") & (summary["tech"] == "nbiot")].set_index("operator")
    expected_all = 100.0 * (math.pi * 4.0 + math.pi * 2.25) / 150.0
    assert national.loc["all", "coverage_pct"] == pytest.approx(expected_all, rel=0.01)
    assert national.loc["all", "counties"] == 3
    assert national.loc["all", "counties_lt_50pct"] == 3
    assert national.loc["all", "counties_ge_95pct"] == 0
    assert result["headline"]["nbiot"]["all"]["coverage_pct"] == pytest.approx(expected_all, rel=0.01)
    assert set(summary["scope"]) == {"national", "province"}

    layers = dict(pyogrio.list_layers(layout.stats_gpkg))
    assert {"county", "gaps_nbiot", "gaps_redcap"} <= set(layers)
    gpkg = gpd.read_file(layout.stats_gpkg, layer="county")
    assert gpkg.crs.to_epsg() == 4326 and len(gpkg) == 3
    for op in ("ct", "cm", "cu", "cbn", "all"):
        assert f"nbiot_{op}_coverage_pct" in gpkg.columns and f"redcap_{op}_deep_coverage_pct" in gpkg.columns
    assert gpkg["nbiot_cu_coverage_pct"].isna().all()
    assert gpkg.set_index("code").loc["420101", "nbiot_ct_coverage_pct"] == pytest.approx(
        100.0 * math.pi * 4.0 / 50.0, rel=0.01)

    gaps = gpd.read_file(layout.stats_gpkg, layer="gaps_nbiot")
    assert list(gaps.columns) == [*GAP_COLUMNS, "geometry"]
    csv = pd.read_csv(layout.gaps_csv("nbiot"), encoding="utf-8-sig", dtype={"county_code": str})
    assert len(csv) == len(gaps) and "geometry" not in csv.columns
    # the far county is one 50 km² gap in every layer; in the west county the gap is county minus disc
    far_gaps = csv[csv["county_code"] == "420103"]
    assert far_gaps["area_km2"].tolist() == pytest.approx([50.0] * 3)
    west_all = csv[(csv["county_code"] == "420101") & (csv["operator"] == "all")]
    assert west_all["area_km2"].sum() == pytest.approx(50.0 - math.pi * 4.0, rel=0.01)
    assert west_all["rank_in_county"].min() == 1


def test_aggregate_with_townships_and_default_counties(run_dir, townships, fake_boundaries):
    result = aggregate(run_dir, townships=townships, min_gap_km2=2.0)
    # default counties: those holding a sector (the far county has none)
    assert result["counties"] == 2 and result["townships"] == 2
    layout = RunLayout(run_dir)
    assert layout.township_csv.read_bytes().startswith(b"\xef\xbb\xbf")
    towns = pd.read_csv(layout.township_csv, encoding="utf-8-sig", dtype={"code": str, "parent": str})
    county = pd.read_csv(layout.county_csv, encoding="utf-8-sig", dtype={"code": str})
    sel = (towns["tech"] == "nbiot") & (towns["operator"] == "all")
    west = county[(county["code"] == "420101") & (county["tech"] == "nbiot") & (county["operator"] == "all")]
    assert towns.loc[sel, "area_km2"].sum() == pytest.approx(west["area_km2"].iloc[0], rel=0.005)
    assert towns.loc[sel, "covered_km2"].sum() == pytest.approx(west["covered_km2"].iloc[0], rel=0.005)
    assert set(towns["level"]) == {"township"} and set(towns["parent"]) == {"420101"}
    assert set(towns["province"]) == {"湖北省"}
    assert "township" in dict(pyogrio.list_layers(layout.stats_gpkg))


def test_cli_aggregate_and_gaps(runner, run_dir, fake_boundaries):
    result = runner.invoke(cli.main, ["aggregate", str(run_dir)])
    assert result.exit_code == 0, result.output
    assert "county.csv" in result.output and "coverage.gpkg" in result.output
    assert "nbiot" in result.output and "coverage" in result.output

    result = runner.invoke(cli.main, ["gaps", str(run_dir), "--county", "420101", "--operator", "中国电信",
                                      "--tech", "NB-IoT"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:4] == ["rank", "county", "tech", "operator"]
    assert "420101 西县" in lines[1] and " CT " in lines[1]
    # without townships the county's gap comes split into H3 res-7 cells, ranked by area
    assert " H3 r7 " in lines[1] and "ranked by" not in lines[-2]
    assert lines[-1].endswith("gap_areas_nbiot.csv")
    areas = read_gap_areas(run_dir, county="420101", operator="CT", tech="nbiot")
    assert areas["area_km2"].round(6).is_monotonic_decreasing
    assert areas["area_km2"].sum() == pytest.approx(50.0 - math.pi * 4.0, rel=0.01)

    result = runner.invoke(cli.main, ["gaps", str(run_dir), "--county", "420101", "--operator", "中国电信",
                                      "--tech", "NB-IoT", "--whole"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[-1].endswith("gaps_nbiot.csv")
    frame = county_gaps(run_dir, county="420101", operator="CT", tech="nbiot")
    assert frame["area_km2"].is_monotonic_decreasing
    assert frame["area_km2"].sum() == pytest.approx(50.0 - math.pi * 4.0, rel=0.01)
    assert areas["area_km2"].sum() == pytest.approx(frame["area_km2"].sum(), rel=1e-4)
    # a rank without its data is a usage error
    result = runner.invoke(cli.main, ["gaps", str(run_dir), "--rank", "population"])
    assert result.exit_code == 2 and "population raster" in result.output


def test_cli_gaps_unknown_county_exits_2(runner, run_dir, counties):
    aggregate(run_dir, counties=counties)
    result = runner.invoke(cli.main, ["gaps", str(run_dir), "--county", "999999"])
    assert result.exit_code == 2
    assert "999999" in result.output
    with pytest.raises(UnknownUnitError):
        county_gaps(run_dir, county="999999")


def test_cli_gaps_before_aggregate_exits_2(runner, run_dir):
    result = runner.invoke(cli.main, ["gaps", str(run_dir)])
    assert result.exit_code == 2
    assert "aggregate" in result.output


def test_gap_areas_written_chunk_by_chunk_are_the_whole_table(run_dir, counties, tmp_path, monkeypatch):
    """With a chunk per county (as the country's vast counties need), the files hold the same rows."""
    import shutil

    import coverage.gap_areas

    whole_dir = tmp_path / "whole"
    shutil.copytree(run_dir, whole_dir)
    aggregate(whole_dir, counties=counties)
    monkeypatch.setattr(coverage.gap_areas, "DEFAULT_CHUNK_KM2", 1e-9)
    aggregate(run_dir, counties=counties)
    key = ["tech", "operator", "county_code", "rank_in_county"]
    for tech in ("nbiot", "redcap"):
        whole = pd.read_csv(RunLayout(whole_dir).gap_areas_csv(tech), encoding="utf-8-sig", dtype=str)
        chunked = pd.read_csv(RunLayout(run_dir).gap_areas_csv(tech), encoding="utf-8-sig", dtype=str)
        assert whole["county_code"].nunique() >= 2  # more than one chunk was written
        assert list(chunked.columns) == list(whole.columns)
        pd.testing.assert_frame_equal(chunked.sort_values(key).reset_index(drop=True),
                                      whole.sort_values(key).reset_index(drop=True))
        layer_whole = gpd.read_file(RunLayout(whole_dir).stats_gpkg, layer=f"gap_areas_{tech}")
        layer_chunked = gpd.read_file(RunLayout(run_dir).stats_gpkg, layer=f"gap_areas_{tech}")
        assert len(layer_chunked) == len(whole)
        a = layer_whole.sort_values(key).reset_index(drop=True)
        b = layer_chunked.sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(a.drop(columns="geometry"), b.drop(columns="geometry"))
        assert a.geometry.geom_equals_exact(b.geometry, 0).all()
