"""covmap build: the whole job, its manifest, reuse of unchanged results and recovery after a kill."""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from conftest import write_constant_dem_tif
from test_publish import near_sites

from cli import main
from coverage.errors import StageError
from coverage.pipeline import build

_NUMBER = r"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?"
BRACKETED_PAIR = re.compile(r"\[\s*(" + _NUMBER + r")\s*,\s*(" + _NUMBER + r")\s*\]")
HEADER = ["operator", "site_id", "cell_id", "tech", "lon", "lat", "freq_mhz", "eirp_dbm", "height_m",
          "azimuth_deg", "environment"]
# Sites on Xiamen island (思明区 350203 / 湖里区 350206), WGS-84.
CT_SITES = [("CT-1", 118.100, 24.480), ("CT-2", 118.130, 24.500), ("CT-3", 118.160, 24.470)]
CM_SITES = [("CM-1", 118.110, 24.460), ("CM-2", 118.150, 24.520)]


def _rows(operator: str, sites, techs=("nbiot", "redcap")):
    rows = []
    for site_id, lon, lat in sites:
        for tech in techs:
            freq, eirp = (942.5, 55.0) if tech == "nbiot" else (2595.0, 75.0)
            for azimuth in (0, 120, 240):
                rows.append([operator, site_id, f"{site_id}-{tech}-{azimuth}", tech, f"{lon:.5f}", f"{lat:.5f}",
                             freq, eirp, 30, azimuth, "urban"])
    return rows


def _write(path: Path, rows) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(rows)
    return path


@pytest.fixture
def submissions(tmp_path):
    """Two operators' small CSV submissions (3 CT sites, 2 CM sites, both technologies) in one folder."""
    folder = tmp_path / "submissions"
    folder.mkdir()
    _write(folder / "ct.csv", _rows("CT", CT_SITES))
    _write(folder / "cm.csv", _rows("CM", CM_SITES))
    return folder


def _coarse_config(tmp_path: Path, resolution_m: int = 250, tile_size_px: int = 64) -> Path:
    path = tmp_path / "covmap.toml"
    path.write_text(f"[grid]\nresolution_m = {resolution_m}\ntile_size_px = {tile_size_px}\n", encoding="utf-8")
    return path


def _digests(run_dir: Path) -> dict[str, str]:
    """sha256 of every table and raster of a run (the site's HTML carries random element ids)."""
    out = {}
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir).as_posix()
        if path.is_file() and not rel.startswith("site/") and rel != "manifest.json":
            out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def _build(submissions, run_dir, config, **kwargs):
    return build(submissions, run_dir, config=config, scheduler="synchronous", **kwargs)


def test_build_writes_every_stage_and_a_self_describing_manifest(submissions, tmp_path):
    run = tmp_path / "run"
    result = _build(submissions, run, _coarse_config(tmp_path))
    assert [name for name, stage in result.stages.items() if not stage.reused] == [
        "validate", "predict", "aggregate", "publish"]
    assert (result.rows_read, result.accepted, result.rejected) == (30, 30, 0)
    assert result.site_index == run / "site" / "index.html" and result.site_index.is_file()
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    shas = {Path(entry["path"]).name: entry["sha256"] for entry in manifest["inputs"]["submissions"]}
    assert shas["ct.csv"] == hashlib.sha256((submissions / "ct.csv").read_bytes()).hexdigest()
    assert manifest["rows"] == {"rows_read": 30, "accepted": 30, "rejected": 0}
    assert manifest["config"]["grid"]["resolution_m"] == 250
    assert manifest["versions"]["numba"] and manifest["versions"]["rasterio"]
    assert set(manifest["timings_s"]) == {"validate", "predict", "aggregate", "publish"}
    for name in ("county.csv", "summary.csv", "coverage.gpkg", "gaps_nbiot.csv"):
        assert (run / "stats" / name).is_file()
    # both operators cover part of Xiamen island; combined at least each operator
    headline = result.headline["nbiot"]
    assert 0 < headline["CT"]["coverage_pct"] <= headline["all"]["coverage_pct"] <= 100
    assert headline["CM"]["coverage_pct"] <= headline["all"]["coverage_pct"]


def test_rerun_reuses_everything_and_a_resubmission_recomputes_only_its_operator(submissions, tmp_path, capsys):
    run, config = tmp_path / "run", _coarse_config(tmp_path)
    _build(submissions, run, config)
    before = _digests(run)

    started = time.perf_counter()
    again = _build(submissions, run, config)
    seconds = time.perf_counter() - started
    assert again.reused_stages == ["validate", "predict", "aggregate", "publish"]
    assert _digests(run) == before
    with capsys.disabled():
        print(f"\n[reuse] second build of an unchanged run took {seconds:.2f} s")

    # the monthly update: China Mobile resubmits with one site moved
    moved = [("CM-1", 118.120, 24.455), CM_SITES[1]]
    _write(submissions / "cm.csv", _rows("CM", moved))
    update = _build(submissions, run, config)
    assert update.reused_stages == []
    layers = {(layer["tech"], layer["operator"]): layer["reused"]
              for layer in update.stages["predict"].detail["layers"]}
    assert layers == {("nbiot", "CT"): True, ("redcap", "CT"): True, ("nbiot", "CM"): False,
                      ("redcap", "CM"): False, ("nbiot", "all"): False, ("redcap", "all"): False}
    with capsys.disabled():
        print("[reuse] after CM resubmitted: recomputed "
              + ", ".join(f"{t}/{o}" for (t, o), reused in layers.items() if not reused))

    clean = tmp_path / "clean"
    _build(submissions, clean, config)
    # report.json says which layers were reused, so only it may differ from the clean run's
    reused_run, clean_run = _digests(run), _digests(clean)
    assert reused_run.pop("raster/report.json") != clean_run.pop("raster/report.json")
    assert reused_run == clean_run
    assert _digests(run)["raster/nbiot_ct_rsrp.tif"] == before["raster/nbiot_ct_rsrp.tif"]
    assert _digests(run)["raster/nbiot_cm_rsrp.tif"] != before["raster/nbiot_cm_rsrp.tif"]


def test_same_inputs_give_byte_identical_tables_and_rasters(submissions, tmp_path):
    config = _coarse_config(tmp_path)
    _build(submissions, tmp_path / "a", config)
    _build(submissions, tmp_path / "b", config)
    a, b = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert a == b and "raster/redcap_class.tif" in a and "stats/coverage.gpkg" in a


def test_failed_stage_names_itself_and_keeps_earlier_results(submissions, tmp_path):
    run = tmp_path / "run"
    bad_townships = tmp_path / "townships.geojson"
    bad_townships.write_text('{"type": "FeatureCollection", "features": []}', encoding="utf-8")
    with pytest.raises(StageError, match="stage 'aggregate' failed") as info:
        _build(submissions, run, _coarse_config(tmp_path), townships=bad_townships)
    assert info.value.stage == "aggregate"
    stages = json.loads((run / "manifest.json").read_text(encoding="utf-8"))["stages"]
    assert set(stages) == {"validate", "predict"}
    assert (run / "sectors.parquet").is_file() and (run / "raster" / "nbiot_class.tif").is_file()
    # without the bad file the next build goes on from the kept results
    result = _build(submissions, run, _coarse_config(tmp_path))
    assert result.reused_stages == ["validate", "predict"]


def _cli_build(args, cwd=None):
    code = "import sys; from cli import main; sys.exit(main())"
    return subprocess.Popen([sys.executable, "-c", code, "build", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)


@pytest.mark.slow
def test_build_killed_mid_prediction_reruns_to_the_clean_result(submissions, tmp_path):
    # fine cells and small tiles make prediction last long enough to be interrupted
    config = _coarse_config(tmp_path, resolution_m=40, tile_size_px=64)
    args = ["--submissions", str(submissions), "--config", str(config), "--scheduler", "synchronous"]
    run = tmp_path / "run"
    proc = _cli_build([*args, "--out", str(run)])
    manifest = run / "manifest.json"
    deadline = time.monotonic() + 120
    killed_in_predict = False
    while time.monotonic() < deadline and proc.poll() is None:
        stages = {}
        if manifest.is_file():
            try:
                stages = json.loads(manifest.read_text(encoding="utf-8")).get("stages", {})
            except json.JSONDecodeError:
                stages = {}
        if "validate" in stages and "predict" not in stages and (run / "raster").is_dir():
            time.sleep(0.3)  # well inside the tile loop
            os.killpg(proc.pid, signal.SIGKILL)
            killed_in_predict = True
            break
        time.sleep(0.02)
    proc.wait(timeout=60)
    assert killed_in_predict, "the build finished before it could be killed mid-prediction"
    assert proc.returncode == -signal.SIGKILL
    stages = json.loads(manifest.read_text(encoding="utf-8"))["stages"]
    assert "predict" not in stages  # it really died inside prediction

    rerun = _cli_build([*args, "--out", str(run)])
    rerun.communicate(timeout=600)
    assert rerun.returncode == 0
    clean = _cli_build([*args, "--out", str(tmp_path / "clean")])
    clean.communicate(timeout=600)
    assert clean.returncode == 0
    assert _digests(run) == _digests(tmp_path / "clean")
    leftovers = [p.name for p in (run / "raster").iterdir() if p.name.startswith(".")]
    assert leftovers == []


@pytest.mark.slow
def test_build_sample_publishes_maps_index(tmp_path, runner, monkeypatch):
    """The README's main command, run in an empty folder: exit 1 (the sample's bad rows), maps/index.html.

    It uses the embedded terrain and land cover (the CLI's default; `covmap data fetch`, which make runs).
    """
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(main, ["build", "--sample", "--resolution", "200"])
    assert result.exit_code == 1, result.output
    assert "13 rejected" in result.output
    index = tmp_path / "maps" / "index.html"
    assert index.is_file() and index.stat().st_size > 1000
    manifest = json.loads((tmp_path / "runs/sample/manifest.json").read_text(encoding="utf-8"))
    assert manifest["rows"]["rejected"] == 13
    # as users run it: with the embedded terrain and land cover, named on the pages
    assert manifest["inputs"]["dem"]["source"] == manifest["inputs"]["clutter"]["source"] == "default"
    assert "Terrain: meteva 30″ China DEM" in index.read_text(encoding="utf-8")
    county = (tmp_path / "runs/sample/stats/county.csv").read_text(encoding="utf-8-sig")
    assert county.count("\n350203,") >= 2  # 思明区, per technology
    # 同安区's RedCap gap for one operator comes as a list per township that adds up to it (issue 16)
    gaps = pd.read_csv(tmp_path / "runs/sample/stats/gaps_redcap.csv", encoding="utf-8-sig", dtype=str)
    areas = pd.read_csv(tmp_path / "runs/sample/stats/gap_areas_redcap.csv", encoding="utf-8-sig", dtype=str)
    mine = areas[(areas["county_code"] == "350212") & (areas["operator"] == "CM")]
    assert len(mine) >= 5 and set(mine["unit_kind"]) == {"township"}
    county_gap = gaps[(gaps["county_code"] == "350212") & (gaps["operator"] == "CM")]["area_km2"].astype(float)
    assert mine["area_km2"].astype(float).sum() == pytest.approx(county_gap.sum(), rel=0.005)
    assert mine["rank_in_county"].astype(int).tolist() == list(range(1, len(mine) + 1))
    # for people: areas to 0.01 km², percentages to 0.1 (was 99.9999999968242); the GPKG keeps every digit
    assert re.findall(r"\d\.\d{3,}", county) == []
    wide = gpd.read_file(tmp_path / "runs/sample/stats/coverage.gpkg", layer="county")
    assert any(len(repr(float(v)).split(".")[1]) > 3 for v in wide["nbiot_all_coverage_pct"])
    # the public edition of real data: no coordinate pair, in either order, within 50 m of a site
    sectors = gpd.read_parquet(tmp_path / "runs/sample/sectors.parquet").drop_duplicates(["operator", "site_id"])
    sites = [(f"{op}/{site}", None, g.x, g.y) for op, site, g in zip(sectors.operator, sectors.site_id,
                                                                      sectors.geometry, strict=True)]
    pairs = [(float(a), float(b)) for page in (tmp_path / "maps").rglob("*.html")
             for a, b in BRACKETED_PAIR.findall(page.read_text(encoding="utf-8"))]
    assert len(pairs) > 1000
    xy = np.array(pairs)
    assert near_sites(np.vstack([xy, xy[:, ::-1]]), sites) == set()  # GeoJSON [lon, lat], Leaflet [lat, lon]


def test_build_usage_errors_exit_2(runner, submissions, tmp_path):
    assert runner.invoke(main, ["build"]).exit_code == 2
    assert runner.invoke(main, ["build", "--sample", "--out", str(tmp_path / "x")]).exit_code == 2
    bad = runner.invoke(main, ["build", "--submissions", str(submissions), "--out", str(tmp_path / "r"),
                               "--crs", "mars-grid"])
    assert bad.exit_code == 2 and "--crs" in bad.output


def test_build_cli_reports_and_exits_1_on_rejected_rows(runner, submissions, tmp_path):
    rows = _rows("CT", CT_SITES, techs=("nbiot",))
    rows.append(["CT", "CT-9", "CT-9-1", "nbiot", "118.1", "24.5", 942.5, 55, -5, 0, "urban"])  # height -5
    _write(submissions / "ct.csv", rows)
    config = _coarse_config(tmp_path)
    result = runner.invoke(main, ["build", "--submissions", str(submissions), "--out", str(tmp_path / "r"),
                                  "--config", str(config), "--scheduler", "synchronous", "--tech", "nbiot"])
    assert result.exit_code == 1, result.output
    assert "1 rejected" in result.output and "map: " in result.output
    assert "nbiot   all  coverage" in result.output


# ---------------------------------------------------------------- terrain: fingerprints by content


def _xiamen_dem(path: Path, elevation_m: float) -> Path:
    """A constant-elevation DEM over Xiamen island and its surroundings (0.02° cells)."""
    return write_constant_dem_tif(path, 117.6, 24.0, 118.6, 25.0, elevation_m=elevation_m, cell_deg=0.02)


def _ran(result) -> list[str]:
    return [name for name, stage in result.stages.items() if not stage.reused]


def test_terrain_is_fingerprinted_by_content_not_path(submissions, tmp_path, monkeypatch):
    import coverage.terrain.dem as dem_module

    hashed = []
    real_sha256_of = dem_module._sha256_of
    monkeypatch.setattr(dem_module, "_sha256_of", lambda path: hashed.append(Path(path)) or real_sha256_of(path))
    run, config = tmp_path / "run", _coarse_config(tmp_path)
    dem = _xiamen_dem(tmp_path / "dem_a.tif", 20.0)
    first = _build(submissions, run, config, dem=dem, clutter=None)
    assert _ran(first) == ["validate", "predict", "aggregate", "publish"]
    assert hashed == [dem]  # hashed once per build, though predict opened and used it too
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    entry = manifest["inputs"]["dem"]
    assert entry["sha256"] == hashlib.sha256(dem.read_bytes()).hexdigest() and entry["path"] == str(dem)
    assert entry["crs"] == "EPSG:4326" and entry["nodata"] is None and entry["filled_share"] == 0
    assert min(entry["resolution_m"]) > 1900  # 0.02° cells
    assert manifest["inputs"]["clutter"] == {"source": "none"}
    report = json.loads((run / "raster" / "report.json").read_text(encoding="utf-8"))
    assert report["terrain"]["dem"]["sha256"] == entry["sha256"]
    before = _digests(run)

    assert _ran(_build(submissions, run, config, dem=dem)) == []

    moved = tmp_path / "elsewhere" / "same_dem.tif"
    moved.parent.mkdir()
    moved.write_bytes(dem.read_bytes())
    assert _ran(_build(submissions, run, config, dem=moved)) == []
    assert _digests(run) == before

    changed = _xiamen_dem(tmp_path / "dem_b.tif", 80.0)
    again = _build(submissions, run, config, dem=changed)
    assert _ran(again) == ["predict", "aggregate", "publish"]  # validate reused
    assert json.loads((run / "manifest.json").read_text(encoding="utf-8"))["inputs"]["dem"]["sha256"] == (
        hashlib.sha256(changed.read_bytes()).hexdigest())


def test_flat_build_keeps_its_fingerprints_and_records_no_terrain(submissions, tmp_path):
    run, config = tmp_path / "run", _coarse_config(tmp_path)
    flat = _build(submissions, run, config)  # the library's default: flat earth
    manifest = json.loads((run / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["inputs"]["dem"] == {"source": "none"} and manifest["inputs"]["clutter"] == {"source": "none"}
    assert "terrain" not in json.loads((run / "raster" / "report.json").read_text(encoding="utf-8"))
    assert _ran(_build(submissions, run, config, dem="none", clutter="none")) == []
    assert flat.headline == _build(submissions, tmp_path / "flat2", config, dem=None, clutter=None).headline


def test_default_terrain_is_recorded_with_its_wheel(submissions, tmp_path, default_dem):
    from coverage.terrain.data import DEFAULT_DEM, DEFAULT_LANDCOVER

    run = tmp_path / "run"
    result = _build(submissions, run, _coarse_config(tmp_path, resolution_m=500), dem="default",
                    clutter="default", techs=("nbiot",))
    inputs = json.loads((run / "manifest.json").read_text(encoding="utf-8"))["inputs"]
    assert inputs["dem"]["source"] == "default" and inputs["dem"]["sha256"] == DEFAULT_DEM.sha256
    assert (inputs["dem"]["package"], inputs["dem"]["version"]) == ("meteva", "1.9.6.2")
    assert inputs["dem"]["nodata"] == -999 and 0 < inputs["dem"]["filled_share"] < 1  # the sea around Xiamen
    assert inputs["clutter"]["sha256"] == DEFAULT_LANDCOVER.sha256 and inputs["clutter"]["class_table"] == "igbp"
    method = (result.site_index).read_text(encoding="utf-8")
    assert "Terrain: meteva 30″ China DEM (sha256 425eb34f…" in method


def test_build_cli_terrain_errors_exit_2(runner, submissions, tmp_path, monkeypatch):
    args = ["build", "--submissions", str(submissions), "--out", str(tmp_path / "r"), "--scheduler", "synchronous"]
    missing = runner.invoke(main, [*args, "--dem", str(tmp_path / "nope.tif")])
    assert missing.exit_code == 2 and str(tmp_path / "nope.tif") in missing.output
    monkeypatch.setenv("COVMAP_DATA_DIR", str(tmp_path / "no-cache"))
    unfetched = runner.invoke(main, [*args, "--dem", "none"])  # the land cover is still the default
    assert unfetched.exit_code == 2, unfetched.output
    assert "covmap data fetch" in unfetched.output and len(unfetched.output.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "manifest.json").exists()  # refused before any stage ran
