"""The bundled sample (sample_data/): files match the generator's manifest, sites and townships are sound."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely

from coverage.boundaries import load_counties, read_townships
from coverage.chinacrs import gcj02_to_wgs84
from coverage.errors import SyntheticDataWarning

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data"


@pytest.fixture(scope="module")
def manifest() -> dict:
    """sample_data/manifest.json as written by sample_data/make_sample.py."""
    return json.loads((SAMPLE / "manifest.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def counties(manifest):
    """The real (WGS-84) county polygons of the sample city."""
    return load_counties(city=manifest["city"]["code"])


def _read(entry: dict) -> pd.DataFrame:
    """One submission file as a plain table (lon/lat columns in the file's own CRS)."""
    path = SAMPLE / entry["path"]
    if path.suffix == ".csv":
        return pd.read_csv(path, encoding="gbk", dtype=str, keep_default_na=False)
    if path.suffix == ".xlsx":
        return pd.read_excel(path, dtype=object)
    frame = pyogrio.read_dataframe(path)
    return pd.DataFrame(frame.drop(columns="geometry")).assign(lon=frame.geometry.x, lat=frame.geometry.y)


@pytest.fixture(scope="module")
def tables(manifest) -> dict[str, pd.DataFrame]:
    """Every submission file of the manifest, read once."""
    return {entry["path"]: _read(entry) for entry in manifest["files"]}


def test_files_exist_match_the_manifest_and_stay_small(manifest, tables):
    assert {e["operator"] for e in manifest["files"]} == {"CT", "CM", "CU"}
    assert {Path(e["path"]).suffix for e in manifest["files"]} == {".csv", ".xlsx", ".gpkg"}
    for entry in manifest["files"]:
        assert len(tables[entry["path"]]) == entry["rows"], entry["path"]
    n_bad = len({(b["path"], b["row"]) for b in manifest["bad_rows"]})
    assert sum(e["rows"] for e in manifest["files"]) - n_bad == manifest["sectors_expected"]
    assert 1500 <= manifest["sectors_expected"] <= 7000  # the sample build stays well under 2 minutes
    assert 5 <= len({b["kind"] for b in manifest["bad_rows"]}) <= 15
    # the submissions sample; the measurements beside it have their own bound (test_sample_measurements)
    total_bytes = sum(p.stat().st_size for p in SAMPLE.rglob("*")
                      if p.is_file() and "__pycache__" not in p.parts and "measurements" not in p.relative_to(SAMPLE).parts)
    assert total_bytes < 1_000_000


def test_ct_csv_is_gbk_with_chinese_headers(manifest):
    path = SAMPLE / next(e["path"] for e in manifest["files"] if e["operator"] == "CT")
    raw = path.read_bytes()
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    header = raw.decode("gbk").splitlines()[0].split(",")
    assert header[:6] == ["运营商", "站号", "小区号", "制式", "经度", "纬度"]


def test_both_technologies_sector_and_omni_sites(tables, manifest):
    cu = tables[next(e["path"] for e in manifest["files"] if e["operator"] == "CU")]
    assert set(cu["tech"]) >= {"NB-IoT", "NR-RedCap"}
    omni = cu["azimuth_deg"].isna()
    assert 0.02 < omni.mean() < 0.3
    per_site = cu[~omni].groupby("site_id").size()
    assert (per_site == 3).mean() > 0.95
    assert cu["height_m"].between(20, 50).all()
    assert cu["environment"].isna().any() and cu["environment"].notna().mean() > 0.8


def _good_points(entry: dict, table: pd.DataFrame, bad_rows: set[int]) -> np.ndarray:
    """WGS-84 lon/lat of the rows not listed as bad (GCJ-02 files converted back)."""
    good = ~np.isin(np.arange(1, len(table) + 1), sorted(bad_rows))
    lon_col = "经度" if "经度" in table else "lon"
    lat_col = "纬度" if "纬度" in table else "lat"
    lon = pd.to_numeric(table.loc[good, lon_col]).to_numpy(dtype=float)
    lat = pd.to_numeric(table.loc[good, lat_col]).to_numpy(dtype=float)
    if entry["crs"] == "gcj02":
        lon, lat = gcj02_to_wgs84(lon, lat)
    return np.column_stack([lon, lat])


def test_good_sites_lie_inside_the_sample_counties(manifest, tables, counties):
    city = shapely.union_all(counties.geometry.values)
    for entry in manifest["files"]:
        bad = {b["row"] for b in manifest["bad_rows"] if b["path"] == entry["path"]}
        xy = _good_points(entry, tables[entry["path"]], bad)
        assert len(xy) == entry["good_rows"]
        inside = shapely.contains_xy(city, xy[:, 0], xy[:, 1])
        assert inside.all(), f"{entry['path']}: {int((~inside).sum())} good sites outside the counties"
    # urban and rural densities differ: the dense island districts have far more sites per km²
    ct = manifest["files"][0]
    xy = _good_points(ct, tables[ct["path"]], {b["row"] for b in manifest["bad_rows"] if b["path"] == ct["path"]})
    area_km2 = counties.to_crs("EPSG:6933").set_index("code").area / 1e6
    density = {code: shapely.contains_xy(geom, xy[:, 0], xy[:, 1]).sum() / area_km2[code]
               for code, geom in zip(counties["code"], counties.geometry, strict=True)}
    assert density["350203"] > 5 * density["350212"]   # 思明区 vs 同安区


def test_the_gcj02_file_is_really_shifted(manifest, tables, counties):
    cm = next(e for e in manifest["files"] if e["crs"] == "gcj02")
    table = tables[cm["path"]]
    assert set(table["坐标系"]) == {"GCJ-02"}
    bad = {b["row"] for b in manifest["bad_rows"] if b["path"] == cm["path"]}
    raw = _good_points({**cm, "crs": "wgs84"}, table, bad)
    wgs = _good_points(cm, table, bad)
    shift_m = np.hypot((raw[:, 0] - wgs[:, 0]) * 101_000, (raw[:, 1] - wgs[:, 1]) * 111_000)
    assert 300 < np.median(shift_m) < 700


def test_validator_reports_every_bad_row_and_accepts_the_rest(manifest):
    from coverage.ingest import read_submissions

    result = read_submissions([SAMPLE / e["path"] for e in manifest["files"]])
    assert len(result.sectors) == manifest["sectors_expected"]
    found = {(Path(f).as_posix(), int(r), c) for f, r, c in zip(
        result.rejects["source_file"], result.rejects["source_row"], result.reject_check, strict=True)}
    expected = {((SAMPLE / b["path"]).as_posix(), b["row"], b["check"]) for b in manifest["bad_rows"]}
    assert found == expected
    assert result.sectors.groupby(["operator", "tech"]).size().to_dict().keys() == {
        ("CM", "nbiot"), ("CM", "redcap"), ("CT", "nbiot"), ("CT", "redcap"), ("CU", "nbiot"), ("CU", "redcap")}


def test_synthetic_townships_tile_their_counties(manifest, counties):
    path = SAMPLE / manifest["townships"]
    info = pyogrio.read_info(path)
    assert "SYNTHETIC" in info["layer_metadata"]["DESCRIPTION"]
    with pytest.warns(SyntheticDataWarning):
        towns = read_townships(path, counties=counties)
    assert len(towns) == manifest["townships_layer"]["rows"]
    assert towns["synthetic"].all()
    assert towns["name"].str.endswith("(synthetic)").all() and towns["name"].str.contains("合成乡镇").all()
    assert towns["code"].str.fullmatch(r"\d{9}").all()
    assert (towns["code"].str[:6] == towns["parent"]).all()
    counts = towns.groupby("parent").size()
    assert counts.between(4, 12).all() and set(counts.index) == set(counties["code"])
    town_km2 = towns.to_crs("EPSG:6933").area.groupby(towns["parent"]).sum() / 1e6
    county_km2 = counties.to_crs("EPSG:6933").set_index("code").area / 1e6
    rel = (town_km2[county_km2.index] - county_km2).abs() / county_km2
    assert (rel < 0.005).all(), rel.to_dict()
    # no overlaps: the parts add up without double counting
    union_km2 = shapely.union_all(towns.to_crs("EPSG:6933").geometry.values).area / 1e6
    assert union_km2 == pytest.approx(town_km2.sum(), rel=1e-4)


def test_generator_is_deterministic(tmp_path, monkeypatch):
    """Re-running the generator elsewhere writes byte-identical files (~5 s)."""
    spec = importlib.util.spec_from_file_location("make_sample", SAMPLE / "make_sample.py")
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "make_sample", module)   # dataclasses look their module up
    spec.loader.exec_module(module)
    out = tmp_path / "sample_data"
    module.main(out)
    for committed in [SAMPLE / "manifest.json", SAMPLE / "townships_synthetic.gpkg", *SAMPLE.glob("submissions/*")]:
        fresh = out / committed.relative_to(SAMPLE)
        assert fresh.read_bytes() == committed.read_bytes(), committed.name
