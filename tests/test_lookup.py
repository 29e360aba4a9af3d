"""coverage.lookup and ``covmap lookup``: coverage answers for points.

The run is test_publish's fake run (four 0.2° counties, townships in 110101,
class rasters in Albers at 100 m) plus China Telecom's own NB-IoT layers
(class and RSRP rasters computed here from the distance to CT's sites).
"""

from __future__ import annotations

import json
import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from pyproj import Transformer
from shapely.geometry import Point
from test_publish import ALBERS, SITES, make_run

from coverage import chinacrs
from coverage.errors import ArgumentError, FileOverwriteError
from coverage.layout import RunLayout
from coverage.lookup import class_grid, lookup, lookup_points, read_points

CE = {"CE0": -75.0, "CE1": -85.0, "CE2": -131.79}
OUTDOOR_DBM, DEEP_DBM = -95.0, -80.0


def _add_ct_layers(layout: RunLayout) -> None:
    """CT's NB-IoT RSRP (-50 dBm at a CT site, -12 dB per km) and its classes (outdoor -95, deep -80 dBm)."""
    with rasterio.open(layout.coverage_class("nbiot")) as src:
        profile, transform, shape = src.profile, src.transform, src.shape
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    xs, ys = rasterio.transform.xy(transform, rows.ravel(), cols.ravel())
    xs, ys = np.asarray(xs).reshape(shape), np.asarray(ys).reshape(shape)
    to_albers = Transformer.from_crs(4326, ALBERS, always_xy=True)
    dist_m = np.full(shape, np.inf)
    for _, op, lon, lat in SITES:
        if op == "CT":
            x, y = to_albers.transform(lon, lat)
            dist_m = np.minimum(dist_m, np.hypot(xs - x, ys - y))
    rsrp = (-50.0 - 12.0 * dist_m / 1000.0).astype(np.float32)
    rsrp[dist_m > 9000] = -9999.0  # beyond reach
    classes = np.where(rsrp >= DEEP_DBM, 2, np.where(rsrp >= OUTDOOR_DBM, 1, 0)).astype(np.uint8)
    classes[rsrp == -9999.0] = 255
    with rasterio.open(layout.coverage_class("nbiot", "CT"), "w", **profile) as dst:
        dst.write(classes, 1)
    with rasterio.open(layout.rsrp("nbiot", "CT"), "w", **{**profile, "dtype": "float32", "nodata": -9999.0}) as dst:
        dst.write(rsrp, 1)
    report = json.loads(layout.predict_report.read_text(encoding="utf-8"))
    report["techs"]["nbiot"]["thresholds_dbm"]["ce"] = CE
    layout.predict_report.write_text(json.dumps(report), encoding="utf-8")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """test_publish's fake run with CT's NB-IoT class and RSRP layers."""
    root = make_run(tmp_path_factory.mktemp("lookup") / "run")
    _add_ct_layers(RunLayout(root))
    return root


@pytest.fixture(scope="module")
def points():
    """400 WGS-84 points spread over the four counties (none on a border)."""
    rng = np.random.default_rng(7)
    lon = rng.uniform(110.001, 110.399, 400)
    lat = rng.uniform(30.001, 30.399, 400)
    return pd.DataFrame({"point_id": [f"p{i}" for i in range(400)], "lon": lon, "lat": lat})


def _raster_values(path, lon, lat):
    """Band 1 at each WGS-84 point, through rasterio's own sampling (an independent path)."""
    with rasterio.open(path) as src:
        x, y = Transformer.from_crs(4326, src.crs, always_xy=True).transform(lon, lat)
        return np.array([v[0] for v in src.sample(zip(x, y, strict=True))])


def test_operator_edition_classes_and_rsrp_equal_the_raster_pixel(run_dir, points):
    answers, outside = lookup_points(run_dir, points, edition="operator", operator="中国电信")
    assert not outside.any()
    ct = answers[(answers["tech"] == "nbiot") & (answers["operator"] == "ct")]
    assert len(ct) == len(points) and ct["point_id"].tolist() == points["point_id"].tolist()
    classes = _raster_values(RunLayout(run_dir).coverage_class("nbiot", "CT"), points["lon"], points["lat"])
    names = np.array(["none", "outdoor", "deep"] + ["none"] * 253, dtype=object)
    assert ct["coverage"].astype(str).tolist() == names[classes].tolist()
    assert {"none", "outdoor", "deep"} <= set(ct["coverage"].astype(str))
    rsrp = _raster_values(RunLayout(run_dir).rsrp("nbiot", "CT"), points["lon"], points["lat"])
    expected = np.where(rsrp == -9999.0, np.nan, rsrp)
    np.testing.assert_array_equal(ct["rsrp_dbm"].to_numpy(), expected.astype(np.float32))
    covered = classes >= 1
    want_ce = np.where(~covered | (classes == 255), "", np.where(rsrp >= CE["CE0"], "CE0",
                       np.where(rsrp >= CE["CE1"], "CE1", "CE2")))
    assert ct["ce_level"].astype(str).tolist() == want_ce.tolist()
    assert set(want_ce) == {"", "CE0", "CE1", "CE2"}
    assert (ct["resolution_m"] == 100.0).all()
    # the other layers answer as the public edition does: classes at 500 m, no signal, no CE level
    others = answers[answers["operator"] != "ct"]
    assert others["rsrp_dbm"].isna().all() and (others["ce_level"].astype(str) == "").all()
    assert (others["resolution_m"] == 500.0).all()


def test_public_edition_equals_the_published_overlay_grid(run_dir, points):
    from coverage.publish.layers import class_overlay

    answers, _ = lookup_points(run_dir, points)
    assert "rsrp_dbm" not in answers.columns and (answers["ce_level"].astype(str) == "").all()
    assert set(zip(answers["tech"], answers["operator"], strict=True)) == {
        ("nbiot", "all"), ("redcap", "all"), ("nbiot", "ct")}
    counties = gpd.read_file(RunLayout(run_dir).stats_gpkg, layer="county")
    for tech in ("nbiot", "redcap"):
        got = answers[(answers["tech"] == tech) & (answers["operator"] == "all")]
        assert got["county_code"].astype(str).str.len().eq(6).all()
        for code, part in got.groupby(got["county_code"].astype(str), observed=True):
            geom = counties.loc[counties["code"] == code, "geometry"].iloc[0]
            overlay = class_overlay(RunLayout(run_dir).coverage_class(tech), geom, 500.0)
            (south, west), (north, east) = overlay.bounds
            height, width = overlay.classes.shape
            # the overlay's own cell of each point, from its published bounds (web mercator rows)
            merc = Transformer.from_crs(4326, 3857, always_xy=True)
            x0, y1 = merc.transform(west, north)
            x1, y0 = merc.transform(east, south)
            x, y = merc.transform(part["lon"].to_numpy(), part["lat"].to_numpy())
            col = np.floor((x - x0) / (x1 - x0) * width).astype(int)
            row = np.floor((y1 - y) / (y1 - y0) * height).astype(int)
            published = overlay.classes[row, col]
            names = np.array(["none", "outdoor", "deep"] + ["none"] * 253, dtype=object)
            assert part["coverage"].astype(str).tolist() == names[published].tolist(), (tech, code)
            assert (part["resolution_m"] == overlay.cell_m).all()


def test_gcj02_and_bd09_twins_land_on_the_same_pixel(run_dir, tmp_path, points):
    lon, lat = points["lon"].to_numpy(), points["lat"].to_numpy()
    glon, glat = chinacrs.wgs84_to_gcj02(lon, lat)
    blon, blat = chinacrs.wgs84_to_bd09(lon, lat)
    assert np.hypot(glon - lon, glat - lat).min() > 0.003  # the datums really differ (~400 m)
    rows = pd.concat([
        pd.DataFrame({"编号": points["point_id"] + "-w", "经度": lon, "纬度": lat, "坐标系": "WGS-84"}),
        pd.DataFrame({"编号": points["point_id"] + "-g", "经度": glon, "纬度": glat, "坐标系": "火星坐标"}),
        pd.DataFrame({"编号": points["point_id"] + "-b", "经度": blon, "纬度": blat, "坐标系": "百度"}),
    ])
    path = tmp_path / "twins.csv"
    rows.to_csv(path, index=False, encoding="utf-8-sig", float_format="%.10f")
    read = read_points(path)
    assert len(read.frame) == 3 * len(points) and read.rejects.empty
    answers, _ = lookup_points(run_dir, read.frame, edition="operator", operator="CT")
    ct = answers[answers["operator"] == "ct"].copy()
    ct["twin"] = ct["point_id"].astype(str).str[:-2]
    ct["datum"] = ct["point_id"].astype(str).str[-1]
    wide = ct.pivot(index="twin", columns="datum", values="rsrp_dbm")
    np.testing.assert_array_equal(wide["g"].to_numpy(), wide["w"].to_numpy())
    np.testing.assert_array_equal(wide["b"].to_numpy(), wide["w"].to_numpy())
    pos = ct.pivot(index="twin", columns="datum", values="lon")
    assert np.abs(pos["g"] - pos["w"]).max() < 1e-7 and np.abs(pos["b"] - pos["w"]).max() < 1e-7
    # the public grid too (the same 500 m cell)
    public, _ = lookup_points(run_dir, read.frame)
    public = public[public["tech"] == "redcap"].copy()
    public["twin"] = public["point_id"].astype(str).str[:-2]
    public["datum"] = public["point_id"].astype(str).str[-1]
    cls = public.pivot(index="twin", columns="datum", values="coverage")
    assert (cls["g"] == cls["w"]).all() and (cls["b"] == cls["w"]).all()


def test_per_file_datum_and_chinese_headers_in_xlsx_and_geojson(run_dir, tmp_path):
    lon, lat = 110.0731 + 0.01, 30.0413 + 0.005
    glon, glat = (float(v) for v in chinacrs.wgs84_to_gcj02(lon, lat))
    xlsx = tmp_path / "meters.xlsx"
    pd.DataFrame({"名称": ["水表一"], "编号": [1001], "经度": [glon], "纬度": [glat]}).to_excel(xlsx, index=False)
    geojson = tmp_path / "meters.geojson"
    gpd.GeoDataFrame({"id": ["g-1"], "name": ["电表"]}, geometry=[Point(lon, lat)], crs=4326).to_file(geojson)
    read = read_points([xlsx, geojson], crs={str(xlsx): "gcj02"})
    assert read.frame["point_id"].tolist() == ["1001", "g-1"]  # Excel's 1001.0 is 1001
    assert read.frame["name"].tolist() == ["水表一", "电表"]
    assert np.allclose(read.frame["lon"], lon, atol=1e-8) and np.allclose(read.frame["lat"], lat, atol=1e-8)
    answers, _ = lookup_points(run_dir, read.frame)
    first = answers[answers["point_id"] == "1001"]
    assert first["county_code"].astype(str).unique().tolist() == ["110101"]
    assert first["township_code"].astype(str).unique().tolist() == ["110101000"]


def test_reader_problems_and_ids_across_files(tmp_path):
    # the second file's malformed row is rejected under its own file and row (the reader's positions are
    # per file; the points of both files are read as one table), and IDs follow the submissions' rule
    first = tmp_path / "a.csv"
    first.write_text("编号,经度,纬度\n12.00,110.05,30.05\n0012,110.06,30.06\n", encoding="utf-8")
    second = tmp_path / "b.csv"
    second.write_text("编号,经度,纬度\nb1,110.05,30.05\nb2,110.06,30.06,extra\nb3,110.07,30.07\n"
                      "b4,140.0,200.0\n", encoding="utf-8")
    read = read_points([first, second])
    assert read.frame["point_id"].tolist() == ["12", "0012", "b1", "b3"]
    assert read.total_read == 6 and len(read.frame) + len(read.rejects) == 6
    rejects = read.rejects.set_index(["source_file", "source_row"])["reason"]
    assert "fields but the header has" in rejects[(str(second), 2)]
    # one line per row: out of range in both coordinates, reported once
    assert "longitude is outside" in rejects[(str(second), 4)]
    assert not rejects.index.duplicated().any()


def test_rejects_with_reasons_nothing_lost(run_dir, tmp_path):
    path = tmp_path / "points.csv"
    path.write_text(
        "编号,经度,纬度,坐标系\n"
        "ok1,110.05,30.05,\n"
        "dms,110°3'0\"E,30°3'0\"N,\n"
        "blank,,30.1,\n"
        "text,abc,30.1,\n"
        "swap,30.1,110.1,\n"
        "far,140.0,30.1,\n"
        "utm,110.1,30.1,UTM50\n"
        "sea,115.0,30.1,\n"
        "=cmd,110.15,30.15,\n", encoding="utf-8")
    result = lookup(run_dir, [path], tmp_path / "out")
    assert result.rows_read == 9 and result.points == 3 and result.rejected == 6
    assert result.points + result.rejected == result.rows_read
    rejects = pd.read_csv(tmp_path / "out/rejects.csv", encoding="utf-8-sig", dtype=str)
    reasons = dict(zip(rejects["source_row"].astype(int), rejects["reason"], strict=True))
    assert "longitude missing" in reasons[3] and "not a number" in reasons[4]
    assert "swapped" in reasons[5] and "outside China" in reasons[6]
    assert "unknown coordinate system" in reasons[7] and "in no county of this run" in reasons[8]
    raw = (tmp_path / "out/lookup.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    table = pd.read_csv(tmp_path / "out/lookup.csv", encoding="utf-8-sig", dtype=str)
    assert table.columns.tolist() == ["point_id", "name", "lon", "lat", "county_code", "county_name",
                                      "township_code", "tech", "operator", "coverage", "ce_level", "resolution_m"]
    assert set(table["point_id"]) == {"ok1", "dms", "'=cmd"}  # a formula is shown, not run
    assert len(table) == 3 * 3  # three layers in this run
    parquet = pd.read_parquet(tmp_path / "out/lookup.parquet")
    assert len(parquet) == 9 and parquet["point_id"].astype(str).tolist()[-1] == "=cmd"
    dms = parquet[parquet["point_id"] == "dms"].iloc[0]
    assert math.isclose(dms["lon"], 110.05) and math.isclose(dms["lat"], 30.05)
    with pytest.raises(FileOverwriteError):
        lookup(run_dir, [path], tmp_path / "out")


def test_bad_edition_and_operator_raise(run_dir, tmp_path, points):
    with pytest.raises(ArgumentError, match="operator edition"):
        lookup_points(run_dir, points, edition="operator")
    with pytest.raises(ArgumentError, match="only for the operator edition"):
        lookup_points(run_dir, points, operator="CT")
    with pytest.raises(ArgumentError, match="unknown operator"):
        lookup_points(run_dir, points, edition="operator", operator="Vodafone")


def test_class_grid_is_none_for_a_missing_raster(run_dir):
    from shapely.geometry import box

    assert class_grid(RunLayout(run_dir).coverage_class("redcap", "CU"), box(110, 30, 110.1, 30.1), 500) is None


def test_cli_lookup(runner, run_dir, tmp_path):
    from cli import main

    good = tmp_path / "good.csv"
    good.write_text("名称,经度,纬度\n甲,110.05,30.05\n乙,110.25,30.25\n", encoding="utf-8")
    out = tmp_path / "lk"
    result = runner.invoke(main, ["lookup", str(run_dir), str(good), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "2 points read: 2 answered, 0 rejected; 6 rows" in result.output
    table = pd.read_csv(out / "lookup.csv", encoding="utf-8-sig", dtype=str)
    assert table["point_id"].tolist()[:3] == ["1", "1", "1"] and table["name"].iloc[0] == "甲"
    bad = tmp_path / "bad.csv"
    bad.write_text("经度,纬度\n110.05,30.05\nx,30.05\n", encoding="utf-8")
    result = runner.invoke(main, ["lookup", str(run_dir), str(bad), "--out", str(tmp_path / "lk2"),
                                  "--edition", "operator", "--operator", "中国电信", "--crs", "gcj02"])
    assert result.exit_code == 1, result.output
    assert "rsrp_dbm" in (tmp_path / "lk2/lookup.csv").read_text(encoding="utf-8-sig").splitlines()[0]
    result = runner.invoke(main, ["lookup", str(run_dir), str(good), "--out", str(tmp_path / "lk3"),
                                  "--operator", "CT"])
    assert result.exit_code == 2 and "operator edition" in result.output
    result = runner.invoke(main, ["lookup", str(run_dir), str(tmp_path / "missing.csv"), "--out",
                                  str(tmp_path / "lk4")])
    assert result.exit_code == 2 and "missing.csv" in result.output
    result = runner.invoke(main, ["lookup", str(run_dir), str(good), "--out", str(out)])
    assert result.exit_code == 2 and "--overwrite" in result.output


def test_public_lookup_files_hold_no_site_coordinates(run_dir, tmp_path):
    """The public answers add no position of their own (the scan of test_publish finds none near a site)."""
    from test_publish import coordinate_pairs, near_sites

    lon, lat = np.meshgrid(np.linspace(110.013, 110.387, 23), np.linspace(30.013, 30.387, 23))
    path = tmp_path / "grid.csv"
    pd.DataFrame({"经度": lon.ravel(), "纬度": lat.ravel()}).to_csv(path, index=False)
    assert near_sites(coordinate_pairs(path.read_text()), SITES) == set()  # the points themselves are clear
    lookup(run_dir, [path], tmp_path / "public")
    for name in ("lookup.csv", "rejects.csv"):
        text = (tmp_path / "public" / name).read_text(encoding="utf-8-sig")
        assert near_sites(coordinate_pairs(text), SITES) == set(), name
        assert "rsrp" not in text and "CE0" not in text
    table = pd.read_parquet(tmp_path / "public/lookup.parquet")
    assert "rsrp_dbm" not in table.columns and (table["resolution_m"] == 500.0).all()


def test_every_point_rejected_still_writes_empty_answers(run_dir, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("经度,纬度\nx,30\n140,30\n", encoding="utf-8")
    for edition, operator in (("public", None), ("operator", "CT")):
        result = lookup(run_dir, [path], tmp_path / edition, edition=edition, operator=operator)
        assert (result.rows_read, result.points, result.rejected, result.answers) == (2, 0, 2, 0)
        assert pd.read_parquet(tmp_path / edition / "lookup.parquet").empty
