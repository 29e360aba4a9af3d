"""Write the sample challenge test set (synthetic) for `covmap challenge`.

    .venv/bin/python sample_data/measurements/challenge/make_challenge.py [RUN_DIR] [OUT_DIR]

RUN_DIR (default ``runs/sample``, built by ``covmap build --sample``) gives the
predicted coverage the tests must fall in: China Telecom's NB-IoT class and signal
rasters. The script picks, on Xiamen island (思明区 and 湖里区, the run's county polygons),
H3 res-8 hexagons wholly on land whose seven res-9 point-hexes are all predicted covered with at least
``ROBUST_MARGIN_DB`` to spare (so a flat or coarser rebuild of the sample still
covers them), and writes tests for two of them:

* area A ("challenged"): 8 negative tests (NRSRP well below the -131.79 dBm service
  threshold, two with no service) in 5 of the 7 point-hexes, at 08:xx and 15:xx on
  two days, and 4 positive tests: all three thresholds are met; plus one indoor and
  one night test, which do not count;
* area B ("insufficient"): 6 negative tests 5 h apart, but in only 3 of the 7
  point-hexes (the geographic threshold missed by one), and 6 positive tests.

Every row is **synthetic** (the file name says so, and the manifest): generated
positions, times and signal levels, not measurements. Positions are written in
GCJ-02 (column 坐标系), as a handset app on an Amap base map records them. The
script is seeded and writes the same bytes for the same run rasters.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

import h3
import numpy as np
import rasterio
from pyproj import Transformer

SEED = 20261201
ROBUST_MARGIN_DB = 15.0  # above the pixel's outdoor threshold
OPERATOR, TECH, OPERATOR_NAME = "CT", "nbiot", "中国电信"
# Xiamen island: 思明区 and 湖里区 (WGS-84 box, approximate)
ISLAND = (118.07, 24.43, 118.20, 24.53)
ISLAND_COUNTIES = ("350203", "350206")
HEADERS = ["测试时间", "经度", "纬度", "坐标系", "运营商", "制式", "RSRP", "SINR", "PCI", "小区ID", "频点", "场景"]
SETTING_ZH = {"outdoor": "室外", "in-vehicle": "车内", "indoor": "室内"}
FILE_NAME = "challenge_tests_synthetic.csv"


def _rasters(run_dir: Path):
    raster = run_dir / "raster"
    with rasterio.open(raster / f"{TECH}_{OPERATOR.lower()}_class.tif") as src:
        classes, transform, crs = src.read(1), src.transform, src.crs
    with rasterio.open(raster / f"{TECH}_{OPERATOR.lower()}_rsrp.tif") as src:
        rsrp = src.read(1)
    report = json.loads((raster / "report.json").read_text(encoding="utf-8"))
    outdoor_max = max(t["outdoor"] for t in report["techs"][TECH]["thresholds_dbm"]["by_environment"].values())
    return classes, rsrp, transform, Transformer.from_crs(4326, crs, always_xy=True), outdoor_max


def _island(run_dir: Path):
    """思明区 and 湖里区 together, from the run's county layer (WGS-84)."""
    import geopandas as gpd

    counties = gpd.read_file(run_dir / "stats" / "coverage.gpkg", layer="county")
    return counties[counties["code"].astype(str).isin(ISLAND_COUNTIES)].to_crs(4326).union_all()


def _robust_hexes(run_dir: Path) -> list[str]:
    """Res-8 hexagons wholly on the island whose 7 point-hexes are covered with margin (sorted)."""
    import shapely

    classes, rsrp, transform, to_grid, outdoor_max = _rasters(run_dir)
    island = _island(run_dir)
    west, south, east, north = ISLAND
    seeds = {h3.latlng_to_cell(lat, lon, 8) for lat in np.arange(south, north, 0.003)
             for lon in np.arange(west, east, 0.003)}
    good = []
    for hex_id in sorted(seeds):
        points = []
        for child in h3.cell_to_children(hex_id, 9):
            # the centre and the six vertices of the point-hex
            points.append(h3.cell_to_latlng(child))
            points.extend(h3.cell_to_boundary(child))
        lat, lon = np.array(points).T
        if not shapely.contains_xy(island, lon, lat).all():
            continue
        x, y = to_grid.transform(lon, lat)
        rows, cols = rasterio.transform.rowcol(transform, x, y)
        rows, cols = np.asarray(rows), np.asarray(cols)
        if rows.min() < 0 or cols.min() < 0 or rows.max() >= classes.shape[0] or cols.max() >= classes.shape[1]:
            continue
        if np.all(np.isin(classes[rows, cols], (1, 2))) and np.all(rsrp[rows, cols] >= outdoor_max + ROBUST_MARGIN_DB):
            good.append(hex_id)
    return good


def _point_in(child: str, rng: np.random.Generator) -> tuple[float, float]:
    """A WGS-84 (lon, lat) within ~60 m of the point-hex's centre (so surely inside it)."""
    lat0, lon0 = h3.cell_to_latlng(child)
    while True:
        r, a = 60.0 * np.sqrt(rng.random()), 2 * np.pi * rng.random()
        lat = lat0 + r * np.sin(a) / 110_574.0
        lon = lon0 + r * np.cos(a) / (111_320.0 * np.cos(np.radians(lat0)))
        if h3.latlng_to_cell(lat, lon, 9) == child:
            return lon, lat


def _rows(hex_id: str, plan, rng, pci_base: int) -> list[dict]:
    kids = sorted(h3.cell_to_children(hex_id, 9))
    rows = []
    for kid_index, when, rsrp, setting in plan:
        lon, lat = _point_in(kids[kid_index], rng)
        rows.append({"time": when, "lon": lon, "lat": lat, "rsrp": rsrp, "setting": setting,
                     "sinr": None if rsrp is None else round(float(rng.uniform(-8, 12)), 1),
                     "pci": pci_base + int(rng.integers(0, 3))})
    return rows


def _area_a(rng):
    """Negatives in point-hexes 0-4, at 08:xx and 15:xx on two days; 4 positives; an indoor and a night test."""
    plan = []
    for i in range(8):
        day = "2026-10-13" if i < 4 else "2026-11-04"
        hour = "08" if i % 2 == 0 else "15"
        rsrp = None if i in (3, 6) else round(float(rng.uniform(-150, -136)), 1)
        plan.append((i % 5, f"{day} {hour}:{int(rng.integers(0, 60)):02d}:00", rsrp, "outdoor" if i % 3 else "in-vehicle"))
    for i in range(4):
        plan.append((5 + i % 2, f"2026-10-13 11:{10 + i:02d}:00", round(float(rng.uniform(-118, -100)), 1), "outdoor"))
    plan.append((6, "2026-10-13 12:30:00", -148.0, "indoor"))  # indoors: never counts
    plan.append((5, "2026-11-04 23:10:00", -147.5, "outdoor"))  # after 22:00: does not count
    return plan


def _area_b(rng):
    """Negatives in point-hexes 0-2 only (3 of 7), 09:xx and 14:xx; 6 positives elsewhere."""
    plan = []
    for i in range(6):
        hour = "09" if i % 2 == 0 else "14"
        plan.append((i % 3, f"2026-10-20 {hour}:{int(rng.integers(0, 60)):02d}:00",
                     round(float(rng.uniform(-150, -136)), 1), "outdoor"))
    for i in range(6):
        plan.append((3 + i % 4, f"2026-10-20 10:{20 + i:02d}:00", round(float(rng.uniform(-120, -100)), 1),
                     "in-vehicle"))
    return plan


def generate(run_dir: Path, out_dir: Path) -> dict:
    from coverage.chinacrs import wgs84_to_gcj02

    rng = np.random.default_rng(SEED)
    candidates = _robust_hexes(run_dir)
    if len(candidates) < 2:
        raise SystemExit(f"{run_dir}: fewer than two robustly covered hexagons on Xiamen island")
    area_a = candidates[int(rng.integers(0, len(candidates)))]
    far = [h for h in candidates if h3.grid_distance(area_a, h) >= 4]  # ≥ ~3 km apart
    area_b = far[int(rng.integers(0, len(far)))]
    rows = _rows(area_a, _area_a(rng), rng, 120) + _rows(area_b, _area_b(rng), rng, 240)
    lon, lat = wgs84_to_gcj02(np.array([r["lon"] for r in rows]), np.array([r["lat"] for r in rows]))
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(HEADERS)
    for row, x, y in zip(rows, lon, lat, strict=True):
        writer.writerow([row["time"], f"{x:.6f}", f"{y:.6f}", "GCJ-02", OPERATOR_NAME, "NB-IoT",
                         "无服务" if row["rsrp"] is None else f"{row['rsrp']:.1f}",
                         "" if row["sinr"] is None else f"{row['sinr']:.1f}", row["pci"], "", "875",
                         SETTING_ZH[row["setting"]]])
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / FILE_NAME).write_bytes(b"\xef\xbb\xbf" + text.getvalue().encode("utf-8"))
    manifest = {
        "synthetic": True,
        "generator": "sample_data/measurements/challenge/make_challenge.py",
        "seed": SEED,
        "file": FILE_NAME,
        "format": "CSV, UTF-8 with BOM, Chinese headers, GCJ-02 positions",
        "operator": OPERATOR, "tech": TECH,
        "rows": len(rows),
        "areas": {
            "A": {"h3_res8": area_a, "expected_status": "challenged", "negative_tests": 8, "tests_counted": 12,
                  "point_hexes": 5, "excluded": {"indoor": 1, "night": 1}},
            "B": {"h3_res8": area_b, "expected_status": "insufficient", "negative_tests": 6, "tests_counted": 12,
                  "point_hexes": 3, "missed": "geographic: 3 of 4 point-hexes"},
        },
        "dates": "2026-10-13 to 2026-11-04: count for runs whose data date is within a year (until 2027-10-13)",
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, ensure_ascii=False, indent=1) + "\n",
                                           encoding="utf-8")
    return manifest


if __name__ == "__main__":
    run = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("runs/sample")
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else Path(__file__).resolve().parent
    print(json.dumps(generate(run, out), ensure_ascii=False, indent=1))
