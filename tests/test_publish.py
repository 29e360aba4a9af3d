"""coverage.publish: the static coverage site (library and CLI, no browser).

The fake run follows docs/CONTRACTS.md: four 0.2° square counties in two provinces
(EPSG:4326), four townships in one county, wide coverage columns (some operators
missing), gap layers, class rasters in the Albers CRS, sectors of two operators
and a manifest. Names carry HTML/JS payloads to check escaping.
"""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from rasterio.transform import from_origin
from shapely.geometry import Point, Polygon, box

from coverage.errors import FileOverwriteError, PublishError
from coverage.layout import RunLayout

ALBERS = "+proj=aea +lat_1=25 +lat_2=47 +lat_0=0 +lon_0=105 +x_0=0 +y_0=0 +datum=WGS84 +units=m"
EVIL_COUNTY = '<img src=x onerror="console.log(\'XSS-county\');alert(1)">县'
EVIL_SITE = '<script>console.log("XSS-site");alert(2)</script>站'
EVIL_TOWN = "</script><script>alert(3)</script>镇"
JINJA_COUNTY = "丁县{{ 7 * 7 }}{% raw %}"  # text, never template code

# code, name, province_code, province, (west, south)
COUNTIES = [
    ("110101", "甲县", "110000", "测试省A", (110.0, 30.0)),
    ("110102", EVIL_COUNTY, "110000", "测试省A", (110.2, 30.0)),
    ("120101", "丙县", "120000", "测试省B", (110.0, 30.2)),
    ("120102", JINJA_COUNTY, "120000", "测试省B", (110.2, 30.2)),
]
# figures: county -> {column: pct}; cu and cbn have no sectors (columns missing)
FIGURES = {
    "110101": {"nbiot_all": (97.3, 81.2), "nbiot_ct": (91.0, 70.0), "nbiot_cm": (60.0, 40.0),
               "redcap_all": (42.0, 20.0), "redcap_ct": (40.0, 18.0), "redcap_cm": (10.0, 5.0)},
    "110102": {"nbiot_all": (85.5, 60.1), "nbiot_ct": (80.0, 55.0), "nbiot_cm": (30.0, 10.0),
               "redcap_all": (92.0, 70.0), "redcap_ct": (90.5, 66.0), "redcap_cm": (50.0, 30.0)},
    "120101": {"nbiot_all": (55.0, 30.0), "nbiot_ct": (50.0, 25.0), "nbiot_cm": (20.0, 10.0),
               "redcap_all": (96.0, 91.0), "redcap_ct": (95.0, 90.0), "redcap_cm": (12.0, 6.0)},
    "120102": {"nbiot_all": (12.0, 3.0), "nbiot_ct": (10.0, 2.0), "nbiot_cm": (5.0, 1.0),
               "redcap_all": (88.0, 50.0), "redcap_ct": (85.0, 49.0), "redcap_cm": (44.0, 22.0)},
}
# site_id, operator, lon, lat: interior points, none within 2 km of a county or
# township border or vertex (those lie on multiples of 0.1 degree)
SITES = [
    ("CT-0001", "CT", 110.0731, 30.0413),
    (EVIL_SITE, "CT", 110.2877, 30.1262),
    ("CT-0003", "CT", 110.3123, 30.2877),
    ("CM-0001", "CM", 110.1537, 30.3311),
    ("CM-0002", "CM", 110.0466, 30.1688),
]


def _square(west, south, size=0.2):
    return box(west, south, west + size, south + size)


def _write_rasters(layout: RunLayout) -> None:
    """Class rasters: deep within 1.5 km of a site, outdoor within 4 km, else none; 100 m cells."""
    to_albers = gpd.GeoSeries([Point(s[2], s[3]) for s in SITES], crs=4326).to_crs(ALBERS)
    area = gpd.GeoSeries([box(109.98, 29.98, 110.42, 30.42)], crs=4326).to_crs(ALBERS).total_bounds
    res = 100.0
    west, south, east, north = area
    width, height = int(math.ceil((east - west) / res)), int(math.ceil((north - south) / res))
    transform = from_origin(west, north, res, res)
    xs = west + (np.arange(width) + 0.5) * res
    ys = north - (np.arange(height) + 0.5) * res
    gx, gy = np.meshgrid(xs, ys)
    layout.raster_dir.mkdir(parents=True, exist_ok=True)
    for tech, scale in (("nbiot", 1.0), ("redcap", 0.6)):
        dist = np.full(gx.shape, np.inf)
        for pt in to_albers:
            dist = np.minimum(dist, np.hypot(gx - pt.x, gy - pt.y))
        classes = np.where(dist < 1500 * scale, 2, np.where(dist < 4000 * scale, 1, 0)).astype(np.uint8)
        classes[:3, :] = 255
        profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="uint8", crs=ALBERS,
                       transform=transform, nodata=255, tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate")
        with rasterio.open(layout.coverage_class(tech), "w", **profile) as dst:
            dst.write(classes, 1)
    report = {
        "grid": {"crs_wkt": rasterio.crs.CRS.from_proj4(ALBERS).to_wkt(), "resolution_m": res, "width": width,
                 "height": height, "transform": list(transform)[:6], "tile_size_px": 256},
        "techs": {t: {"thresholds_dbm": {"outdoor": -115 if t == "nbiot" else -105,
                                         "deep": -105 if t == "nbiot" else -95},
                      "layers": [{"operator": "all", "class": f"{t}_class.tif", "sectors": len(SITES)}]}
                  for t in ("nbiot", "redcap")},
        "warnings": [], "evaluations": 1, "timings_s": {},
    }
    layout.predict_report.write_text(json.dumps(report), encoding="utf-8")


def _write_open_data(layout: RunLayout, counties) -> None:
    """The H3 tables and the 2027 targets of the fake run, by the aggregate stage's own functions."""
    from coverage.h3hex import write_h3
    from coverage.targets import target_tables, write_targets
    from coverage.zonal import Layer

    layers = [Layer(tech, "all", layout.coverage_class(tech)) for tech in ("nbiot", "redcap")]
    write_h3(layout, layers, counties)
    table, summary = target_tables(layers, counties, sectors=gpd.read_parquet(layout.sectors))
    write_targets(layout, table, summary, {"redcap_at_scale_pct": 95.0, "township_reached_pct": 1.0})


def make_run(root: Path, manifest: bool = True) -> Path:
    """Build a small run directory following docs/CONTRACTS.md; return its path."""
    layout = RunLayout(root)
    layout.stats_dir.mkdir(parents=True, exist_ok=True)
    rows, long_rows = [], []
    for code, name, pcode, pname, (w, s) in COUNTIES:
        row = {"code": code, "name": name, "level": "county", "parent": pcode, "parent_name": pname,
               "province_code": pcode, "province": pname, "city_code": code[:4] + "00", "city": pname + "市"}
        for key, (cov, deep) in FIGURES[code].items():
            row[f"{key}_coverage_pct"] = cov
            row[f"{key}_deep_coverage_pct"] = deep
            tech, op = key.split("_")
            long_rows.append({"code": code, "name": name, "level": "county", "parent": pcode, "parent_name": pname,
                              "province_code": pcode, "province": pname, "tech": tech, "operator": op,
                              "area_km2": 440.0, "covered_km2": 4.4 * cov, "coverage_pct": cov,
                              "deep_covered_km2": 4.4 * deep, "deep_coverage_pct": deep})
        row["geometry"] = _square(w, s)
        rows.append(row)
    counties = gpd.GeoDataFrame(rows, geometry="geometry", crs=4326)
    counties.to_file(layout.stats_gpkg, layer="county", driver="GPKG")
    pd.DataFrame(long_rows).to_csv(layout.county_csv, index=False, encoding="utf-8-sig")
    towns = []
    for i, (dx, dy) in enumerate([(0, 0), (0.1, 0), (0, 0.1), (0.1, 0.1)]):
        name = EVIL_TOWN if i == 1 else f"乡{i}"
        cov = 99.0 - 30 * i
        towns.append({"code": f"110101{i:03d}", "name": name, "level": "township", "parent": "110101",
                      "parent_name": "甲县", "synthetic": i == 3, "nbiot_all_coverage_pct": cov,
                      "nbiot_all_deep_coverage_pct": cov / 2, "redcap_all_coverage_pct": 100 - cov,
                      "redcap_all_deep_coverage_pct": (100 - cov) / 2,
                      "geometry": _square(110.0 + dx, 30.0 + dy, 0.1)})
    gpd.GeoDataFrame(towns, geometry="geometry", crs=4326).to_file(layout.stats_gpkg, layer="township")
    for tech in ("nbiot", "redcap"):
        gaps = []
        for op, (w, s) in (("all", (110.15, 30.15)), ("CT", (110.13, 30.12)), ("CM", (110.02, 30.02))):
            geom = box(w, s, w + 0.03, s + 0.02)
            gaps.append({"gap_id": f"{tech}-{op}-1", "tech": tech, "operator": op, "county_code": "110101",
                         "county_name": "甲县", "unit_code": "110101003", "unit_name": "乡3", "area_km2": 6.4,
                         "centroid_lon": geom.centroid.x, "centroid_lat": geom.centroid.y,
                         "sites_needed_estimate": 2.0, "rank_in_county": 1,
                         "nearest_sector_km": 7.25 if op != "CM" else 3.5, "geometry": geom})
        frame = gpd.GeoDataFrame(gaps, geometry="geometry", crs=4326)
        frame.to_file(layout.stats_gpkg, layer=f"gaps_{tech}")
        frame.drop(columns="geometry").to_csv(layout.gaps_csv(tech), index=False, encoding="utf-8-sig")
    sectors = []
    for site_id, op, lon, lat in SITES:
        for k, tech in enumerate(("nbiot", "redcap")):
            sectors.append({"operator": op, "site_id": site_id, "cell_id": f"{site_id}-{k}", "tech": tech,
                            "freq_mhz": 850.0, "eirp_dbm": 46.0, "height_m": 30.0, "azimuth_deg": float("nan"),
                            "beamwidth_deg": 65.0, "downtilt_deg": 6.0,
                            "environment": "urban" if site_id == "CT-0001" else "rural",
                            "source_file": "sub.csv", "source_row": len(sectors) + 1, "geometry": Point(lon, lat)})
    gpd.GeoDataFrame(sectors, geometry="geometry", crs=4326).to_parquet(layout.sectors)
    _write_rasters(layout)
    _write_open_data(layout, counties)
    if manifest:
        layout.manifest.write_text(json.dumps({"created": "2024-06-30T12:00:00", "run_id": "run-test-7"}),
                                   encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small run directory (see module docstring)."""
    return make_run(tmp_path_factory.mktemp("run") / "run")


@pytest.fixture(scope="module")
def public_site(run_dir, tmp_path_factory):
    """The public edition of ``run_dir``: (result dict, site folder)."""
    from coverage.publish import write_site

    out = tmp_path_factory.mktemp("site") / "maps"
    return write_site(run_dir, out), out


@pytest.fixture(scope="module")
def operator_site(run_dir, tmp_path_factory):
    """The operator edition for 中国电信 of ``run_dir``: (result dict, site folder)."""
    from coverage.publish import write_site

    out = tmp_path_factory.mktemp("site") / "maps_ct"
    return write_site(run_dir, out, edition="operator", operator="中国电信"), out


# ---------------------------------------------------------------- coordinate scanning

NUMBER = re.compile(r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")


def coordinate_pairs(text: str) -> np.ndarray:
    """Every pair of consecutive numbers in ``text``, both orders, as (lon, lat) rows.

    Consecutive numbers are how GeoJSON arrays ([lon,lat]), Leaflet ([lat,lon]),
    bounds and table rows (lon cell, lat cell) carry positions.
    """
    values = np.array([float(m) for m in NUMBER.findall(text)], dtype=float)
    if len(values) < 2:
        return np.empty((0, 2))
    pairs = np.column_stack([values[:-1], values[1:]])
    return np.vstack([pairs, pairs[:, ::-1]])


def near_sites(pairs: np.ndarray, sites, radius_m: float = 50.0) -> set[str]:
    """Site ids with a (lon, lat) pair within ``radius_m`` metres."""
    found = set()
    for site_id, _, lon, lat in sites:
        dx = (pairs[:, 0] - lon) * 111_320.0 * math.cos(math.radians(lat))
        dy = (pairs[:, 1] - lat) * 110_574.0
        if np.any(np.hypot(dx, dy) <= radius_m):
            found.add(site_id)
    return found


def site_text_files(folder: Path):
    """Every text file of a site, and every Parquet file as CSV text (its numbers, as a reader gets them)."""
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.suffix in {".html", ".js", ".css", ".json", ".md", ".txt", ".csv", ""}:
            yield path, path.read_text(encoding="utf-8", errors="replace")
        elif path.is_file() and path.suffix == ".parquet":
            yield path, pd.read_parquet(path).to_csv(index=False)


H3_TOKEN = re.compile(r"\b8[0-9a-f]{14}\b")


def h3_resolutions(text: str) -> set[int]:
    """Resolutions of the H3 cell ids in ``text``."""
    from h3.api import basic_str as h3

    return {h3.get_resolution(t) for t in H3_TOKEN.findall(text) if h3.is_valid_cell(t)}


def embedded_pngs(text: str):
    return [base64.b64decode(m) for m in re.findall(r"data:image/png;base64,([A-Za-z0-9+/=]+)", text)]


# ---------------------------------------------------------------- tests: the site


def test_public_site_pages_and_result(public_site):
    result, out = public_site
    assert result["counties"] == 4 and result["provinces"] == 2
    expected = {"index.html", "provinces/110000.html", "provinces/120000.html", "targets.html",
                *(f"counties/{c[0]}.html" for c in COUNTIES), "downloads/county.csv", "lookup/index.js",
                *(f"lookup/{c[0]}.js" for c in COUNTIES)}
    assert set(result["downloads"]) == {
        *(f"downloads/h3_res8_{t}.{ext}" for t in ("nbiot", "redcap") for ext in ("csv", "parquet")),
        "downloads/targets.csv", "downloads/targets_summary.csv"}
    for rel, size in result["downloads"].items():
        assert (out / rel).stat().st_size == size
    assert set(result["pages"]) == expected
    for rel, size in result["pages"].items():
        assert (out / rel).stat().st_size == size
    assert result["index_bytes"] == (out / "index.html").stat().st_size
    assert (out / "assets/leaflet/leaflet.js").exists() and (out / "assets/leaflet/LICENSE").exists()
    assert not (out / "assets/markercluster").exists()
    assert result["data_date"] == "2024-06-30" and result["data_version"] == "run-test-7"


def test_every_page_has_titles_date_version_method(public_site):
    _, out = public_site
    for page in out.rglob("*.html"):
        text = page.read_text(encoding="utf-8")
        assert "全国NB-IoT与5G RedCap覆盖地图" in text and "China NB-IoT and 5G RedCap coverage map" in text
        assert "数据日期 Data date" in text and "2024-06-30" in text
        assert "数据版本 Data version" in text and "run-test-7" in text
        assert "方法说明 Method" in text and "not measured" in text
        assert "≥ 95 %" in text and "#ffea46" in text  # printed legend


def test_no_remote_urls_in_public_site(public_site):
    _, out = public_site
    for path, text in site_text_files(out):
        if path.suffix != ".html":
            continue
        urls = re.findall(r"(?:src|href)\s*=\s*[\"']([^\"']+)", text)
        assert urls, path
        for url in urls:
            assert not re.match(r"^(https?:)?//", url), (path, url)
        assert "cdn" not in text.lower(), path
        assert "https://" not in text and "http://" not in text, path


def test_national_geojson_carries_all_figures(public_site):
    _, out = public_site
    text = (out / "index.html").read_text(encoding="utf-8")
    assert text.count('"type":"Feature"') == 4
    from coverage.publish.layers import figure_keys

    keys = figure_keys()
    match = re.search(r'"c":"110101".*?"v":\[([^\]]*)\]', text)
    values = json.loads("[" + match.group(1) + "]")
    assert values[keys.index("nbiot_all_coverage")] == 97.3
    assert values[keys.index("redcap_ct_deep")] == 18.0
    assert values[keys.index("nbiot_cu_coverage")] is None  # operator without sectors
    assert "nearest_sector_km" not in text


@pytest.fixture(scope="module")
def public_change_site(run_dir, tmp_path_factory):
    """The public edition of ``run_dir`` with its change pages (compared with itself): the site folder."""
    from coverage.compare import compare_runs
    from coverage.publish import write_site

    root = tmp_path_factory.mktemp("change")
    compare_runs(run_dir, run_dir, root / "change")
    write_site(run_dir, root / "maps", change_dir=root / "change")
    return root / "maps"


def test_public_edition_has_no_site_coordinates(public_site, operator_site, public_change_site):
    """No pair of numbers in any public file lies within 50 m of a submitted site.

    The same scanner finds the sites in the operator edition, so it does read
    the formats the site emits. The change pages are scanned too.
    """
    _, out = public_site
    assert (public_change_site / "change.html").is_file()
    assert (public_change_site / "provinces" / "110000_change.html").is_file()
    scanned = 0
    resolutions = set()
    for path, text in [*site_text_files(out), *site_text_files(public_change_site)]:
        pairs = coordinate_pairs(text)
        scanned += len(pairs)
        assert near_sites(pairs, SITES) == set(), path
        resolutions |= h3_resolutions(text)
        assert "nearest_sector" not in text and "7.25" not in NUMBER.findall(text), path  # the distance
        for site_id, *_ in SITES[:1] + SITES[2:]:
            assert site_id not in text, path
    assert scanned > 1000
    assert resolutions == {8}  # the H3 downloads: resolution 8 only, never the run's resolution 9
    _, op_out = operator_site
    found = set()
    for _, text in site_text_files(op_out):
        found |= near_sites(coordinate_pairs(text), SITES)
    assert found == {s[0] for s in SITES if s[1] == "CT"}


def test_public_overlay_no_finer_than_publish_resolution(public_site):
    _, out = public_site
    text = (out / "counties/110101.html").read_text(encoding="utf-8")
    pngs = embedded_pngs(text)
    assert len(pngs) == 2  # nbiot, redcap
    bounds = re.findall(r"L\.imageOverlay\(\s*\"data:image/png[^\"]*\",\s*(\[\[[^\]]*\],\s*\[[^\]]*\]\])", text)
    assert len(bounds) == 2
    for png, bound in zip(pngs, bounds, strict=True):
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        (s, w), (n, e) = json.loads(bound)
        ground_w_m = (e - w) * 111_320 * math.cos(math.radians((s + n) / 2))
        ground_h_m = (n - s) * 110_574
        assert ground_w_m / width >= 500 * 0.97 and ground_h_m / height >= 500 * 0.9
        assert width <= 50 and height <= 50


def test_overlay_classes_and_clipping(run_dir):
    from coverage.publish.layers import class_overlay

    county = Polygon([(110.2, 30.0), (110.2, 30.2), (110.4, 30.2)])  # a triangle: half the grid is outside
    overlay = class_overlay(RunLayout(run_dir).coverage_class("nbiot"), county, 500)
    classes = overlay.classes
    assert overlay.cell_m == 500 and overlay.png.startswith(b"\x89PNG")
    assert set(np.unique(classes)) == {0, 1, 2, 255}
    (s, w), (n, e) = overlay.bounds
    assert w <= 110.2 and e >= 110.4 and s <= 30.0 and n >= 30.2
    # the cell holding the site at (110.2877, 30.1262) is deep; one 0.05 degree west of the county is outside
    def cell(lon, lat):
        from coverage.lookup import lonlat_to_3857 as _lonlat_to_3857

        (x, y), = _lonlat_to_3857(np.array([[lon, lat]]))
        (x0, y1), = _lonlat_to_3857(np.array([[w, n]]))
        (x1, y0), = _lonlat_to_3857(np.array([[e, s]]))
        col = int((x - x0) / (x1 - x0) * classes.shape[1])
        row = int((y1 - y) / (y1 - y0) * classes.shape[0])
        return classes[row, col]
    assert cell(110.2877, 30.1262) == 2
    assert cell(110.25, 30.19) == 0
    assert cell(110.39, 30.01) == 255  # outside the triangle
    assert class_overlay(RunLayout(run_dir).coverage_class("nbiot"), _square(120.0, 40.0), 500) is None


def test_operator_edition_only_own_sites_and_gap_table(operator_site):
    result, out = operator_site
    assert result["operator"] == "CT" and "gaps.html" in result["pages"]
    assert (out / "assets/markercluster/leaflet.markercluster.js").exists()
    all_text = "".join(t for _, t in site_text_files(out))
    assert "CT-0001" in all_text and "CT-0003" in all_text
    assert "CM-0001" not in all_text and "CM-0002" not in all_text
    gaps = (out / "gaps.html").read_text(encoding="utf-8")
    assert "7.25" in gaps and "nearest sector" in gaps and "3.50" not in gaps  # CM's gap not shown
    county = (out / "counties/110101.html").read_text(encoding="utf-8")
    assert "markercluster" in county and "covmap.sites(" in county


def test_names_are_escaped_in_raw_html(public_site, operator_site, public_change_site):
    for _, out in (public_site, operator_site, (None, public_change_site)):
        for path, text in site_text_files(out):
            if path.suffix in (".csv", ".parquet"):
                continue  # data downloads hold the names as they are; no browser renders them
            assert "<img src=x" not in text, path
            assert '<script>console.log("XSS-site")' not in text, path
            assert "</script><script>alert(3)" not in text, path
    county = (public_site[1] / "counties/110102.html").read_text(encoding="utf-8")
    assert "<title>&lt;img src=x onerror=" in county
    assert "\\u003cimg src=x onerror=" in (public_site[1] / "index.html").read_text(encoding="utf-8")


def test_names_are_not_template_code(public_site, operator_site):
    for _, out in (public_site, operator_site):
        page = (out / "counties/120102.html").read_text(encoding="utf-8")
        assert "丁县49" not in page
        assert "<h1>丁县{{ 7 * 7 }}{% raw %}" in page


def test_change_pages_escape_names_and_keep_them_as_text(public_change_site):
    page = (public_change_site / "change.html").read_text(encoding="utf-8")
    assert "\\u003cimg src=x onerror=" in page and "丁县49" not in page
    province = (public_change_site / "provinces" / "120000_change.html").read_text(encoding="utf-8")
    assert "<h1>测试省B 覆盖变化" in province and "丁县{{ 7 * 7 }}{% raw %}" in province


def test_county_page_townships_synthetic_and_gaps(public_site):
    _, out = public_site
    text = (out / "counties/110101.html").read_text(encoding="utf-8")
    assert text.count('"type":"Feature"') >= 4 + 2  # four townships + one gap per tech
    assert '"s":1' in text  # the synthetic township is flagged
    assert 'covmap.gaps(' in text and '"a":6.4' in text
    other = (out / "counties/120101.html").read_text(encoding="utf-8")
    assert other.count('"c":"120101"') == 1  # no townships: the county itself


def test_missing_manifest_gives_today_and_unversioned(tmp_path):
    import datetime as dt

    from coverage.publish.layers import read_run_info

    run = make_run(tmp_path / "run", manifest=False)
    info = read_run_info(run)
    assert info.data_date == dt.date.today().isoformat() and info.data_version == "unversioned"
    assert read_run_info(run, data_date="2025-01-01", data_version="v9").data_version == "v9"


def test_gaode_shifts_overlays_to_gcj02(run_dir, tmp_path, public_site):
    from coverage.chinacrs import wgs84_to_gcj02
    from coverage.publish import write_site

    write_site(run_dir, tmp_path / "gaode", basemap="gaode")
    text = (tmp_path / "gaode/counties/120101.html").read_text(encoding="utf-8")
    assert "autonavi" in text
    glon, glat = wgs84_to_gcj02(110.0, 30.2)
    assert json.dumps([round(float(glon), 5), round(float(glat), 5)], separators=(",", ":")) in text
    assert "[110.0,30.2]" not in text and "[110,30.2]" not in text


def test_tianditu_and_osm_basemaps_keep_wgs84(run_dir, tmp_path):
    from coverage.publish import write_site

    write_site(run_dir, tmp_path / "tdt", basemap="tianditu", tianditu_key="k&y<1>")
    text = (tmp_path / "tdt/index.html").read_text(encoding="utf-8")
    assert "tianditu.gov.cn/vec_w/wmts" in text and "tianditu.gov.cn/cva_w/wmts" in text
    assert "tk=k%26y%3C1%3E" in text and "k&y<1>" not in text
    assert "[110.0,30.2]" in (tmp_path / "tdt/counties/120101.html").read_text(encoding="utf-8")
    write_site(run_dir, tmp_path / "osm", basemap="osm")
    assert "tile.openstreetmap.org" in (tmp_path / "osm/index.html").read_text(encoding="utf-8")


def test_bad_options_raise(run_dir, tmp_path):
    from coverage.publish import write_site

    with pytest.raises(PublishError, match="Tianditu"):
        write_site(run_dir, tmp_path / "a", basemap="tianditu")
    with pytest.raises(PublishError, match="--operator"):
        write_site(run_dir, tmp_path / "a", edition="operator")
    with pytest.raises(PublishError, match="unknown operator"):
        write_site(run_dir, tmp_path / "a", edition="operator", operator="Vodafone")
    with pytest.raises(PublishError, match="edition"):
        write_site(run_dir, tmp_path / "a", edition="secret")


def test_refuses_foreign_folder_without_overwrite(run_dir, tmp_path):
    from coverage.publish import write_site

    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FileOverwriteError):
        write_site(run_dir, out)
    assert write_site(run_dir, out, overwrite=True)["counties"] == 4
    assert (out / "notes.txt").read_text() == "mine"
    assert write_site(run_dir, out)["counties"] == 4  # a covmap site may be refreshed


def test_simplification_keeps_shared_borders():
    from shapely import coverage_is_valid
    from shapely.geometry import Polygon

    from coverage.publish.layers import display_geometries

    # two neighbours sharing a wiggly border
    border = [(0.0, 0.0)] + [(0.001 * i, 1e-4 * ((-1) ** i)) for i in range(1, 200)] + [(0.2, 0.0)]
    north = Polygon(border + [(0.2, 0.2), (0.0, 0.2)])
    south = Polygon(border + [(0.2, -0.2), (0.0, -0.2)])
    out = display_geometries([north, south], 0.005, decimals=5)
    assert all(len(g.exterior.coords) < 20 for g in out)
    assert out[0].intersection(out[1]).area < 1e-12
    assert abs(out[0].union(out[1]).area - 0.08) < 1e-6
    assert coverage_is_valid(out)


def test_cli_publish(runner, run_dir, tmp_path):
    from cli import main

    out = tmp_path / "cli_maps"
    result = runner.invoke(main, ["publish", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "index.html").exists() and "index.html" in result.output
    result = runner.invoke(main, ["publish", str(run_dir), "--out", str(tmp_path / "x"), "--basemap", "tianditu"])
    assert result.exit_code == 2 and "Tianditu" in result.output
    result = runner.invoke(main, ["publish", str(run_dir), "--out", str(tmp_path / "y"), "--edition", "operator",
                                  "--operator", "中国电信"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "y/gaps.html").exists()


def test_county_pages_in_worker_processes_equal_the_serial_pages(run_dir, public_site, tmp_path):
    """workers=2 writes the county pages in two processes: the same pages (folium's random ids aside)."""
    from coverage.publish import write_site

    serial_result, serial_out = public_site
    result = write_site(run_dir, tmp_path / "maps", workers=2)
    assert list(result["pages"]) == list(serial_result["pages"])

    def normalised(path):
        return re.sub(r"_[0-9a-f]{32}\b", "_ID", path.read_text(encoding="utf-8"))

    for rel in result["pages"]:
        assert normalised(tmp_path / "maps" / rel) == normalised(serial_out / rel), rel


# ---------------------------------------------------------------- the method note: terrain and land cover


def method_text(page: Path) -> str:
    """The text of a page's method note (tags dropped, entities decoded)."""
    import html as html_module

    block = re.search(r'<div class="covmap-method">(.*?)</div>', page.read_text(encoding="utf-8"), re.S)
    assert block is not None, page
    return html_module.unescape(re.sub(r"<[^>]+>", " ", block.group(1)))


def _with_terrain(root: Path, terrain: dict) -> Path:
    run = make_run(root)
    report_path = RunLayout(run).predict_report
    report = json.loads(report_path.read_text(encoding="utf-8"))
    report_path.write_text(json.dumps({**report, "terrain": terrain}), encoding="utf-8")
    return run


def _dem_info(path: str, sha256: str, resolution_m) -> dict:
    return {"path": path, "kind": "geotiff", "sha256": sha256, "crs": "EPSG:4326", "resolution_m": resolution_m,
            "bounds_lonlat": [109.0, 29.0, 111.0, 31.0], "nodata": -32768, "filled_share": 0.01}


def test_method_note_of_a_flat_run_says_flat_earth(public_site):
    _, out = public_site
    for page in out.rglob("*.html"):
        assert "Terrain: none (flat earth); land cover: none" in method_text(page), page


def test_method_note_names_the_default_terrain_and_land_cover(tmp_path):
    from coverage.publish import write_site
    from coverage.terrain.data import DEFAULT_DEM, DEFAULT_LANDCOVER

    terrain = {
        "dem": _dem_info("/root/.cache/covmap/meteva-1.9.6.2_dem_0.00833.nc", DEFAULT_DEM.sha256, [803.9, 921.4]),
        "clutter": {"path": "/root/.cache/covmap/mcd12c1.tif", "sha256": DEFAULT_LANDCOVER.sha256,
                    "class_table": "igbp"},
        "lattice_step_m": 500.0, "diffraction_weight": 1.0, "earth_curvature_per_km": 0.0001,
    }
    out = tmp_path / "maps"
    write_site(_with_terrain(tmp_path / "run", terrain), out)
    pages = list(out.rglob("*.html"))
    assert len(pages) == 8  # 7 map pages and the targets page, each with the method note
    for page in pages:
        text = method_text(page)
        assert ("Terrain: meteva 30″ China DEM (sha256 425eb34f…, ~0.9 km), Bullington diffraction (ITU-R P.526) "
                "and P.1546 effective height; land cover: MODIS MCD12C1 2019 (IGBP), receiver environment "
                "per class.") in text, page
        assert "flat earth" not in text and "/root" not in text
        assert near_sites(coordinate_pairs(text), SITES) == set()


def test_method_note_names_a_user_dem_by_file_name_only(tmp_path):
    from coverage.publish import write_site

    terrain = {"dem": _dem_info("/data/operators/secret-folder/fabdem_fujian.tif", "ab12cd34" + "0" * 56,
                                [28.1, 30.9]),
               "clutter": None, "lattice_step_m": 100.0, "diffraction_weight": 0.5,
               "earth_curvature_per_km": 0.0001}
    out = tmp_path / "maps"
    write_site(_with_terrain(tmp_path / "run", terrain), out)
    text = method_text(out / "index.html")
    assert ("Terrain: fabdem_fujian.tif (sha256 ab12cd34…, ~31 m), Bullington diffraction (ITU-R P.526) × 0.5 "
            "and P.1546 effective height; land cover: none") in text
    assert "secret-folder" not in (out / "index.html").read_text(encoding="utf-8")


# ---------------------------------------------------------------- tests: open data and targets


def test_h3_downloads_public_res8_operator_own_res9(run_dir, public_site, operator_site):
    from coverage.h3hex import h3_paths

    _, out = public_site
    for tech in ("nbiot", "redcap"):
        paths = h3_paths(RunLayout(run_dir), tech)
        assert (out / "downloads" / f"h3_res8_{tech}.parquet").read_bytes() == paths.res8_parquet.read_bytes()
        assert not (out / "downloads" / f"h3_res9_{tech}.parquet").exists()
        assert not list((out / "downloads").glob("h3_res9_*"))
    _, op_out = operator_site
    own = pd.read_parquet(op_out / "downloads" / "h3_res9_redcap_ct.parquet")
    run9 = pd.read_parquet(h3_paths(RunLayout(run_dir), "redcap").res9_parquet)
    assert set(own["operator"]) <= {"CT"}  # the fake run has only "all" layers: nothing of anyone else
    assert len(own) == (run9["operator"] == "CT").sum()
    national = (out / "index.html").read_text(encoding="utf-8")
    assert 'href="targets.html"' in national


def test_targets_page_shows_the_run_figures_and_rules(run_dir, public_site):
    from coverage.targets import read_targets

    _, out = public_site
    text = (out / "targets.html").read_text(encoding="utf-8")
    units, summary = read_targets(run_dir)
    assert "RedCap 覆盖建成区 ≥ 95 %" in text and "≥ 1 %" in text
    assert "pixels near sectors submitted as dense urban or urban" in text  # no land cover in this run
    built = units[(units["code"] == "110101") & (units["operator"] == "all")].iloc[0]
    assert built["built_up_km2"] > 0.5  # the urban site CT-0001: ~0.79 km² within 500 m
    assert f"{built['built_up_km2']:,.2f}" in text
    national = summary[(summary["scope"] == "national") & (summary["operator"] == "all")].iloc[0]
    assert f"<td>{int(national['counties'])}</td>" in text
    assert 'href="downloads/targets.csv"' in text and 'href="downloads/h3_res8_redcap.csv"' in text
