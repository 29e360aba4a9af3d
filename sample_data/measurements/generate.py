"""Generate the SYNTHETIC sample measurements of 厦门市 from a known "truth".

Usage::

    .venv/bin/covmap build --sample                                  # the rasters the truth starts from
    .venv/bin/python sample_data/measurements/generate.py            # rewrites this folder
    .venv/bin/python sample_data/measurements/generate.py --run runs/sample --out /tmp/m

Drive routes along road-like polylines through the six districts are sampled every
``STEP_M`` metres. At each point the truth of a network (operator × technology) is

    truth_dbm = predicted_dbm + OFFSET_DB[operator][environment] + shadow_db(x, y)
                + (1 − TRUE_DIFFRACTION_WEIGHT) · diffraction_db − TRUE_CLASS_OFFSETS_DB[land class]

where ``predicted_dbm`` is the sample run's best-server raster
``raster/<tech>_<op>_rsrp.tif`` at the point, ``environment`` is the zone of
``sample_data/make_sample.py`` (``zone_of`` with its ``URBAN_CENTRES``) at the point, and
``shadow_db`` a spatially correlated Gaussian field (σ = ``SHADOW_SIGMA_DB`` dB in dB, i.e.
log-normal, decorrelating over ``SHADOW_CORRELATION_M``) of its own per network. A
receiver then adds its error: scanners N(0, ``SCANNER_SIGMA_DB``), handsets
N(``HANDSET_BIAS_DB``, ``HANDSET_SIGMA_DB``). ``diffraction_db`` (the Bullington excess of
the pixel's best server, at weight 1) and the land class are those the sample run's kernel
used at the point's pixel (:func:`coverage.measure.terrain_terms.bin_terrain_terms`): the
truth has less terrain diffraction than the model and more loss on IGBP class 9 (savannas,
the tree-dotted hills the model treats as open ground). Where the prediction is nodata or the
measured value falls below −140 dBm the row says no service (无服务 / empty Level).
Everything is seeded (``SEED``) and written to ``truth.json`` beside the files.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import rasterio
from pyproj import Transformer
from scipy.ndimage import gaussian_filter

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE.parent))

from make_sample import CRS_METRIC, URBAN_CENTRES, zone_of  # noqa: E402

from coverage import chinacrs  # noqa: E402

SEED = 20240501
STEP_M = 20.0
SHADOW_SIGMA_DB = 8.0
SHADOW_CORRELATION_M = 100.0  # Gudmundson-style decorrelation distance of urban shadowing (50–100 m)
SHADOW_GRID_M = 50.0
SCANNER_SIGMA_DB = 1.0
HANDSET_BIAS_DB = 0.0
HANDSET_SIGMA_DB = 3.0
NO_SERVICE_BELOW_DBM = -140.0

# Known offsets of the truth from the model: truth − predicted, dB, per operator and environment
# (the same for both technologies). The model is optimistic in the city (negative offsets).
OFFSET_DB = {
    "CT": {"dense_urban": -6.0, "urban": -4.0, "suburban": -2.0, "rural": 1.0},
    "CM": {"dense_urban": -3.0, "urban": -2.0, "suburban": 0.0, "rural": 2.0},
    "CU": {"dense_urban": -8.0, "urban": -5.0, "suburban": -3.0, "rural": 0.0},
}
# Known terrain departures (what covmap calibrate fits over terrain and land cover): the truth's
# [terrain] diffraction_weight (the model's is 1.0) and its extra loss per IGBP land-cover class, dB.
TRUE_DIFFRACTION_WEIGHT = 0.5
TRUE_CLASS_OFFSETS_DB = {9: 5.0}
NETWORKS = [(op, tech) for op in ("CT", "CM", "CU") for tech in ("nbiot", "redcap")]
OPERATOR_ZH = {"CT": "中国电信", "CM": "中国移动", "CU": "中国联通"}
TECH_LABEL = {"nbiot": "NB-IoT", "redcap": "5G RedCap"}
GNT_OPERATOR = {"CT": ("CHN-CT", "46011"), "CM": ("CHINA MOBILE", "46000"), "CU": ("CHN-UNICOM", "46001")}
EARFCN = {("CT", "nbiot"): 2506, ("CM", "nbiot"): 3738, ("CU", "nbiot"): 3768,
          ("CT", "redcap"): 633984, ("CM", "redcap"): 504990, ("CU", "redcap"): 427250}
BAND = {("CT", "nbiot"): "B5", ("CM", "nbiot"): "B8", ("CU", "nbiot"): "B8",
        ("CT", "redcap"): "n78", ("CM", "redcap"): "n41", ("CU", "redcap"): "n1"}

# Road-like routes (WGS-84 waypoints, approximate courses of real roads read off public maps).
ROUTES = {
    "环岛路 (思明)": [(118.079, 24.433), (118.100, 24.436), (118.128, 24.441), (118.158, 24.456),
                     (118.182, 24.478), (118.193, 24.500)],
    "厦禾路-湖滨 (思明→湖里)": [(118.072, 24.456), (118.090, 24.468), (118.110, 24.479), (118.130, 24.491),
                             (118.150, 24.502), (118.172, 24.512)],
    "成功大道 (思明→湖里)": [(118.121, 24.452), (118.118, 24.480), (118.115, 24.510), (118.110, 24.540)],
    "厦门大桥-集美大道": [(118.106, 24.548), (118.100, 24.570), (118.090, 24.595), (118.062, 24.610),
                       (118.032, 24.620)],
    "海沧大道": [(118.055, 24.492), (118.022, 24.491), (117.992, 24.502), (117.962, 24.522)],
    "同集路-同安": [(118.102, 24.622), (118.122, 24.660), (118.148, 24.718), (118.160, 24.760),
                  (118.140, 24.820)],
    "翔安大道": [(118.200, 24.552), (118.238, 24.580), (118.268, 24.620), (118.300, 24.662)],
}
CSV_ROUTES = ["厦禾路-湖滨 (思明→湖里)", "同集路-同安"]  # the scanner's drives
GNETTRACK_PHONES = [  # (operator, tech, routes)
    ("CM", "redcap", ["厦禾路-湖滨 (思明→湖里)", "成功大道 (思明→湖里)", "同集路-同安"]),
    ("CT", "nbiot", ["环岛路 (思明)", "海沧大道", "翔安大道"]),
]
MRO_NETWORK = ("CT", "nbiot")
MRO_ROUTE = "厦禾路-湖滨 (思明→湖里)"
MRO_OBJECTS = 300


def densify(waypoints, step_m: float, rng: np.random.Generator, to_m: Transformer) -> np.ndarray:
    """Points every ``step_m`` along the polyline, with a gentle meander (± 30 m) and 3 m GPS jitter."""
    xy = np.array([to_m.transform(lon, lat) for lon, lat in waypoints])
    seg = np.diff(xy, axis=0)
    lengths = np.hypot(seg[:, 0], seg[:, 1])
    total = lengths.sum()
    s = np.arange(0.0, total, step_m)
    cum = np.concatenate([[0.0], np.cumsum(lengths)])
    i = np.clip(np.searchsorted(cum, s, side="right") - 1, 0, len(seg) - 1)
    t = (s - cum[i]) / lengths[i]
    pts = xy[i] + seg[i] * t[:, None]
    normal = np.column_stack([-seg[i, 1], seg[i, 0]]) / lengths[i][:, None]
    meander = 30.0 * np.sin(2 * np.pi * s / rng.uniform(600, 1200)) + 10.0 * np.sin(2 * np.pi * s / 230.0)
    return pts + normal * meander[:, None] + rng.normal(0, 3.0, pts.shape)


class Truth:
    """The sample run's predicted rasters, the shadowing fields and the offsets."""

    def __init__(self, run_dir: Path, rng: np.random.Generator):
        self.run_dir = run_dir
        self.terms: dict[tuple, tuple[float, int]] = {}  # (op, tech, col, row) -> (diffraction_db, land class)
        self.terrain_realised: dict[tuple[str, str], list] = {}
        self.rasters = {}
        for op, tech in NETWORKS:
            path = run_dir / "raster" / f"{tech}_{op.lower()}_rsrp.tif"
            with rasterio.open(path) as ds:
                self.rasters[(op, tech)] = (ds.read(1), ds.transform, ds.nodata, ds.crs)
        _, _, _, raster_crs = next(iter(self.rasters.values()))
        self.to_raster = Transformer.from_crs(CRS_METRIC, raster_crs, always_xy=True)
        # shadowing grids in UTM 50N over the city
        self.x0, self.y0 = 560_000.0, 2_690_000.0
        n = int(60_000 / SHADOW_GRID_M)
        self.fields = {}
        for key in NETWORKS:
            white = rng.standard_normal((n, n))
            field = gaussian_filter(white, SHADOW_CORRELATION_M / SHADOW_GRID_M, mode="wrap")
            self.fields[key] = (field / field.std() * SHADOW_SIGMA_DB).astype(np.float32)
        self.realised: dict[tuple[str, str, str], tuple[float, int]] = {}
        centres = Transformer.from_crs("EPSG:4326", CRS_METRIC, always_xy=True)
        self.centres_m = [(*centres.transform(c[1], c[2]), c[3] * 1000.0, c[4]) for c in URBAN_CENTRES]

    def _pixels(self, key, x_m, y_m):
        band, transform, _, _ = self.rasters[key]
        rx, ry = self.to_raster.transform(x_m, y_m)
        col, row = ~transform * (np.asarray(rx), np.asarray(ry))
        return np.floor(row).astype(int), np.floor(col).astype(int)

    def predicted(self, key, x_m, y_m) -> np.ndarray:
        band, transform, nodata, _ = self.rasters[key]
        row, col = self._pixels(key, x_m, y_m)
        inside = (row >= 0) & (row < band.shape[0]) & (col >= 0) & (col < band.shape[1])
        out = np.full(len(x_m), np.nan)
        out[inside] = band[row[inside], col[inside]]
        out[out == nodata] = np.nan
        return out

    def terrain_departure(self, key, x_m, y_m) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(departure dB = (1 − TRUE_DIFFRACTION_WEIGHT) · diffraction − TRUE_CLASS_OFFSETS_DB[class], diffraction, class)."""
        from coverage.measure.evaluate import run_config
        from coverage.measure.terrain_terms import bin_terrain_terms

        _, transform, _, _ = self.rasters[key]
        row, col = self._pixels(key, x_m, y_m)
        res = transform.a
        gcol = col + int(round(transform.c / res))
        grow = row + int(round(-transform.f / res))
        wanted = sorted({(c, r) for c, r in zip(gcol.tolist(), grow.tolist(), strict=True)
                         if (*key, c, r) not in self.terms})
        if wanted:
            bins = pd.DataFrame({"tech": key[1], "operator": key[0], "col": [c for c, _ in wanted],
                                 "row": [r for _, r in wanted]})
            found = bin_terrain_terms(bins, self.run_dir, run_config(self.run_dir)).bins
            for c, r, d, k in zip(found["col"], found["row"], found["diffraction_db"], found["land_class"],
                                  strict=True):
                self.terms[(*key, int(c), int(r))] = (0.0 if np.isnan(d) else float(d), int(k))
        terms = [self.terms[(*key, c, r)] for c, r in zip(gcol.tolist(), grow.tolist(), strict=True)]
        diffraction = np.array([t[0] for t in terms])
        land_class = np.array([t[1] for t in terms])
        offset = np.array([TRUE_CLASS_OFFSETS_DB.get(k, 0.0) for k in land_class.tolist()])
        return (1.0 - TRUE_DIFFRACTION_WEIGHT) * diffraction - offset, diffraction, land_class

    def shadow(self, key, x_m, y_m) -> np.ndarray:
        field = self.fields[key]
        i = np.clip(((y_m - self.y0) / SHADOW_GRID_M).astype(int), 0, field.shape[0] - 1)
        j = np.clip(((x_m - self.x0) / SHADOW_GRID_M).astype(int), 0, field.shape[1] - 1)
        return field[i, j].astype(np.float64)

    def environment(self, x_m, y_m) -> np.ndarray:
        return zone_of(np.asarray(x_m), np.asarray(y_m), self.centres_m)[1]

    def measure(self, key, x_m, y_m, sigma_db, bias_db, rng) -> tuple[np.ndarray, np.ndarray]:
        """(measured dBm with NaN = no service, environment) at metric points."""
        env = self.environment(x_m, y_m)
        offset = np.array([OFFSET_DB[key[0]][e] for e in env])
        by_environment = self.predicted(key, x_m, y_m) + offset + self.shadow(key, x_m, y_m)
        departure, diffraction, land_class = self.terrain_departure(key, x_m, y_m)
        truth = by_environment + departure
        measured = truth + bias_db + rng.normal(0, sigma_db, len(truth))
        measured[measured < NO_SERVICE_BELOW_DBM] = np.nan
        recorded = np.isfinite(measured)
        self._tally(key, (by_environment - self.predicted(key, x_m, y_m))[recorded], env[recorded])
        self.terrain_realised.setdefault(key, []).append((diffraction[recorded], land_class[recorded]))
        return measured, env

    def _tally(self, key, departure_db: np.ndarray, env: np.ndarray) -> None:
        """Sum of truth − predicted per (network, environment) over the rows that record a signal."""
        for e in np.unique(env):
            total, count = self.realised.get((*key, e), (0.0, 0))
            sel = env == e
            self.realised[(*key, e)] = (total + float(departure_db[sel].sum()), count + int(sel.sum()))


def _times(start: dt.datetime, n: int) -> list[dt.datetime]:
    return [start + dt.timedelta(seconds=int(k)) for k in range(n)]


def write_scanner_csv(truth: Truth, routes_m: dict, rng, path: Path) -> dict:
    """Chinese headers, GCJ-02 coordinates, UTF-8 with BOM; a scanner logging all six networks each second."""
    rows = []
    start = dt.datetime(2024, 5, 1, 8, 30, 0)
    for r, name in enumerate(CSV_ROUTES):
        xy = routes_m[name]
        times = _times(start + dt.timedelta(hours=2 * r), len(xy))
        measured = {key: truth.measure(key, xy[:, 0], xy[:, 1], SCANNER_SIGMA_DB, 0.0, rng)[0] for key in NETWORKS}
        lon, lat = Transformer.from_crs(CRS_METRIC, "EPSG:4326", always_xy=True).transform(xy[:, 0], xy[:, 1])
        glon, glat = chinacrs.wgs84_to_gcj02(np.asarray(lon), np.asarray(lat))
        for p in range(len(xy)):
            for op, tech in NETWORKS:
                value = measured[(op, tech)][p]
                text = "无服务" if np.isnan(value) else f"{value:.1f}"
                sinr = "" if np.isnan(value) else f"{np.clip(value + 110 + rng.normal(0, 4), -10, 30):.0f}"
                rows.append([times[p].strftime("%Y-%m-%d %H:%M:%S"), f"{glon[p]:.6f}", f"{glat[p]:.6f}", "GCJ-02",
                             OPERATOR_ZH[op], TECH_LABEL[tech], text, sinr, EARFCN[(op, tech)], BAND[(op, tech)],
                             "车内", "扫频仪", "是"])
    frame = pd.DataFrame(rows, columns=["测试时间", "经度", "纬度", "坐标系", "运营商", "网络制式", "RSRP(dBm)",
                                        "SINR(dB)", "频点", "频段", "场景", "数据来源", "外接天线"])
    bad = {"rsrp_out_of_range": 1001, "time_missing": 2002}  # 1-based data rows, deliberately bad
    frame.loc[bad["rsrp_out_of_range"] - 1, "RSRP(dBm)"] = "-20.0"
    frame.loc[bad["time_missing"] - 1, "测试时间"] = ""
    frame.to_csv(path, index=False, encoding="utf-8-sig", lineterminator="\n")
    return {"rows": len(frame), "bad_rows": bad, "no_service_rows": int((frame["RSRP(dBm)"] == "无服务").sum())}


GNETTRACK_HEADER = ["Timestamp", "Longitude", "Latitude", "Speed", "Operatorname", "Operator", "CGI", "Cellname",
                    "Node", "CellID", "LAC", "NetworkTech", "NetworkMode", "Level", "Qual", "SNR", "CQI", "LTERSSI",
                    "ARFCN", "DL_bitrate", "UL_bitrate", "PSC", "Altitude", "Height", "Accuracy", "Location",
                    "State"]


def write_gnettrack(truth: Truth, routes_m: dict, rng, op: str, tech: str, routes, path: Path) -> dict:
    """G-NetTrack Pro's tab-separated export: WGS-84 GPS, Level = RSRP (dBm, whole), one phone.

    Without service the sample writes ``no service`` in Level (an empty Level would be
    rejected as a missing RSRP: the intake cannot tell a gap in the log from no service).
    """
    name, plmn = GNT_OPERATOR[op]
    lines = ["\t".join(GNETTRACK_HEADER)]
    start = dt.datetime(2024, 5, 2, 9, 0, 0) if op == "CM" else dt.datetime(2024, 5, 2, 14, 0, 0)
    to_ll = Transformer.from_crs(CRS_METRIC, "EPSG:4326", always_xy=True)
    n_rows = 0
    for r, route in enumerate(routes):
        xy = routes_m[route] + rng.normal(0, 2.0, routes_m[route].shape)  # the same road, another lane
        measured, _ = truth.measure((op, tech), xy[:, 0], xy[:, 1], HANDSET_SIGMA_DB, HANDSET_BIAS_DB, rng)
        lon, lat = to_ll.transform(xy[:, 0], xy[:, 1])
        times = _times(start + dt.timedelta(hours=2 * r), len(xy))
        speed = np.clip(rng.normal(40, 8, len(xy)), 0, 80)
        for p in range(len(xy)):
            level = "no service" if np.isnan(measured[p]) else f"{measured[p]:.0f}"
            snr = "" if np.isnan(measured[p]) else f"{np.clip(measured[p] + 110 + rng.normal(0, 4), -10, 30):.0f}"
            cell = str(561000 * 256 + int(p // 60) % 3)
            lines.append("\t".join([
                times[p].strftime("%Y.%m.%d_%H.%M.%S"), f"{lon[p]:.6f}", f"{lat[p]:.6f}", f"{speed[p]:.0f}", name,
                plmn, f"{plmn}-22528-{cell}", "", "", cell, "22528", "NB-IoT" if tech == "nbiot" else "NR",
                "NB-IoT" if tech == "nbiot" else "NR SA", level, "-11", snr, "", "", str(EARFCN[(op, tech)]),
                "0", "0", str(100 + int(p // 60) % 3), "15", "", f"{rng.uniform(3, 8):.0f}", "", "D",
            ]))
            n_rows += 1
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"rows": n_rows, "no_service_rows": int(sum(line.split("\t")[13] == "no service" for line in lines[1:]))}


def write_mro(truth: Truth, routes_m: dict, rng, path: Path) -> dict:
    """A small MRO XML: raw RSRP index (TS 36.133: dBm = index − 141), MR.Longitude/MR.Latitude (WGS-84)."""
    op, tech = MRO_NETWORK
    xy = routes_m[MRO_ROUTE][:: max(1, len(routes_m[MRO_ROUTE]) // MRO_OBJECTS)][:MRO_OBJECTS]
    measured, _ = truth.measure((op, tech), xy[:, 0], xy[:, 1], HANDSET_SIGMA_DB, HANDSET_BIAS_DB, rng)
    lon, lat = Transformer.from_crs(CRS_METRIC, "EPSG:4326", always_xy=True).transform(xy[:, 0], xy[:, 1])
    start = dt.datetime(2024, 5, 2, 10, 0, 0)
    out = ['<?xml version="1.0" encoding="UTF-8"?>', "<bulkPmMrDataFile>",
           '  <fileHeader fileFormatVersion="V1.0.5" reportTime="2024-05-02T10:15:00.000" '
           'startTime="2024-05-02T10:00:00.000" endTime="2024-05-02T10:15:00.000" period="0" jobid="1"/>',
           '  <eNB MR.eNBId="561000">', "    <measurement>",
           "      <smr>MR.LteScRSRP MR.LteNcRSRP MR.LteScRSRQ MR.LteScEarfcn MR.LteScPci MR.LteScSinrUL "
           "MR.Longitude MR.Latitude</smr>"]
    for p in range(len(xy)):
        index = "NIL" if np.isnan(measured[p]) else str(int(np.clip(np.floor(measured[p]) + 141, 0, 97)))
        t = (start + dt.timedelta(seconds=3 * p)).strftime("%Y-%m-%dT%H:%M:%S.000")
        out.append(f'      <object id="460-11-561000-{p % 3 + 1}" MmeUeS1apId="{1000 + p}" MmeGroupId="1" '
                   f'MmeCode="1" TimeStamp="{t}">')
        out.append(f"        <v>{index} NIL 20 2506 {100 + p % 3} 25 {lon[p]:.6f} {lat[p]:.6f}</v>")
        out.append("      </object>")
    out += ["    </measurement>", "  </eNB>", "</bulkPmMrDataFile>"]
    path.write_text("\n".join(out) + "\n", encoding="utf-8")
    return {"rows": len(xy), "no_service_rows": int(np.isnan(measured).sum())}


def _realised(truth: Truth) -> dict:
    out: dict = {}
    for (op, tech, env), (total, count) in sorted(truth.realised.items()):
        out.setdefault(tech, {}).setdefault(op, {})[env] = {"mean_db": round(total / count, 3), "n": count}
    return out


def _terrain_realised(truth: Truth) -> dict:
    """Per tech and operator: recorded rows, those with ≥ 1 dB of diffraction (and its mean), per class."""
    out: dict = {}
    for (op, tech), parts in sorted(truth.terrain_realised.items()):
        diffraction = np.concatenate([d for d, _ in parts])
        land_class = np.concatenate([k for _, k in parts])
        shadowed = diffraction >= 1.0
        classes, counts = np.unique(land_class, return_counts=True)
        out.setdefault(tech, {})[op] = {
            "rows": int(diffraction.size), "rows_diffraction_ge_1db": int(shadowed.sum()),
            "mean_diffraction_db_where_ge_1db": round(float(diffraction[shadowed].mean()), 3) if shadowed.any()
            else None,
            "rows_per_class": {str(int(k)): int(n) for k, n in zip(classes, counts, strict=True)}}
    return out


def main(run_dir: Path, out_dir: Path) -> dict:
    rng = np.random.default_rng(SEED)
    truth = Truth(run_dir, rng)
    to_m = Transformer.from_crs("EPSG:4326", CRS_METRIC, always_xy=True)
    routes_m = {name: densify(wp, STEP_M, rng, to_m) for name, wp in ROUTES.items()}
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    files["drive_scanner_gcj02.csv"] = write_scanner_csv(truth, routes_m, rng, out_dir / "drive_scanner_gcj02.csv")
    for op, tech, routes in GNETTRACK_PHONES:
        name = f"gnettrack_{op.lower()}_{tech}.txt"
        files[name] = write_gnettrack(truth, routes_m, rng, op, tech, routes, out_dir / name)
    mro_name = "NB_MRO_HUAWEI_XM01_561000_20240502100000.xml"
    files[mro_name] = write_mro(truth, routes_m, rng, out_dir / mro_name)
    description = {
        "synthetic": True,
        "description": "SYNTHETIC measurements of 厦门市 generated from the sample run's predictions plus known "
                       "offsets, shadowing and receiver error; not real measurements.",
        "generator": "sample_data/measurements/generate.py", "seed": SEED,
        "run": "runs/sample (covmap build --sample): raster/<tech>_<op>_rsrp.tif",
        "model": "truth_dbm = predicted_dbm + offsets_db[operator][environment] + shadow_db "
                 "+ (1 - terrain.diffraction_weight) * diffraction_db - terrain.class_offsets_db[land_class]; "
                 "measured_dbm = truth_dbm + receiver error; NaN (no service) below "
                 f"{NO_SERVICE_BELOW_DBM:g} dBm or where the prediction is nodata",
        "terrain": {"diffraction_weight": TRUE_DIFFRACTION_WEIGHT, "model_diffraction_weight": 1.0,
                    "class_offsets_db": {str(k): v for k, v in TRUE_CLASS_OFFSETS_DB.items()},
                    "class_table": "igbp (the sample run's MODIS MCD12C1 land cover)",
                    "note": "diffraction_db (Bullington excess of the pixel's best server at weight 1) and the land "
                            "class at each point's pixel, as the sample run's kernel used them "
                            "(coverage.measure.terrain_terms.bin_terrain_terms); class offsets are extra loss, so "
                            "the truth is lower by them; the same for both technologies",
                    "realised": _terrain_realised(truth)},
        "offsets_db": OFFSET_DB,
        "offsets_sign": "truth minus predicted (dB); the evaluation's mean error (predicted − measured) "
                        "of a group is minus its offset",
        "offsets_apply_to": ["nbiot", "redcap"],
        "realised_offsets_db": _realised(truth),
        "realised_offsets_note": "mean of the environment part of truth − predicted (offset + the shadowing that "
                                 "fell on the routes; the terrain part is left out) over "
                                 "the rows of all files that record a signal (MRO included), per tech, operator and "
                                 "environment, with n: what a perfect fit of these rows finds. The shadowing is "
                                 "correlated over ~100 m, so a group's realised offset departs from the injected one "
                                 "by up to a few dB",
        "environment": "zone of the measurement point by sample_data/make_sample.py zone_of(URBAN_CENTRES): "
                       "dense_urban/urban within a centre's radius, suburban to 2.2 × radius, rural beyond",
        "shadowing": {"sigma_db": SHADOW_SIGMA_DB, "correlation_m": SHADOW_CORRELATION_M,
                      "grid_m": SHADOW_GRID_M, "kind": "Gaussian-filtered white noise, one field per network"},
        "receiver_error": {"scanner": {"bias_db": 0.0, "sigma_db": SCANNER_SIGMA_DB},
                           "handset": {"bias_db": HANDSET_BIAS_DB, "sigma_db": HANDSET_SIGMA_DB},
                           "mr": {"bias_db": HANDSET_BIAS_DB, "sigma_db": HANDSET_SIGMA_DB,
                                  "quantisation": "1 dB report index (floor), TS 36.133"}},
        "files": files,
    }
    (out_dir / "truth.json").write_text(json.dumps(description, ensure_ascii=False, indent=2) + "\n",
                                        encoding="utf-8")
    return description


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=ROOT / "runs" / "sample")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    summary = main(args.run, args.out)
    for name, info in summary["files"].items():
        print(f"{name}: {info['rows']} rows")
