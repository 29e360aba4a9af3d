"""covmap compare and build --previous: what changed between two runs.

Two real builds (flat earth, 250 m) of Xiamen that differ by one operator's
resubmission: China Mobile drops its site CM-2 (湖里区) and adds CM-3 (思明区);
China Telecom's file is the same in both, with a site in 同安区 too.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import rasterio
from test_pipeline import CM_SITES, CT_SITES, _coarse_config, _rows, _write
from test_publish import coordinate_pairs, embedded_pngs, near_sites, site_text_files

from cli import main
from coverage.compare import CHANGE_CLOSED, CHANGE_OPENED, compare_runs
from coverage.errors import ArgumentError, FileOverwriteError, GridMismatchError, IncompleteRunError
from coverage.pipeline import build, sample_dir
from coverage.publish.change import CHANGE_COLOURS, change_keys

CT = [*CT_SITES, ("CT-9", 118.150, 24.740)]  # 同安区, far from China Mobile's changes
CM_OLD = CM_SITES  # CM-1 思明区, CM-2 湖里区
CM_NEW = [CM_SITES[0], ("CM-3", 118.157, 24.470)]  # CM-2 removed, CM-3 added in 思明区
SIMING, HULI, TONGAN = "350203", "350206", "350212"
CM3_TOWN, CM2_TOWN = "350203002", "350206002"  # the synthetic townships holding CM-3 and CM-2


def _submissions(folder: Path, cm_sites) -> Path:
    folder.mkdir(parents=True)
    _write(folder / "ct.csv", _rows("CT", CT))
    _write(folder / "cm.csv", _rows("CM", cm_sites))
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """(old run, new run built with previous=old, comparison folder of `compare_runs`, site dir)."""
    root = tmp_path_factory.mktemp("compare")
    towns = gpd.read_file(sample_dir() / "townships_synthetic.gpkg")
    towns = towns[towns["parent"].astype(str).isin([SIMING, HULI, TONGAN])]
    towns.to_file(root / "townships.gpkg")
    config = _coarse_config(root)
    common = dict(config=config, scheduler="synchronous", townships=root / "townships.gpkg")
    old = root / "old"
    build(_submissions(root / "sub_old", CM_OLD), old, **common)
    new = root / "new"
    result = build(_submissions(root / "sub_new", CM_NEW), new, previous=old, **common)
    compared = compare_runs(old, new, root / "cmp")
    return {"old": old, "new": new, "cmp": root / "cmp", "result": result, "compared": compared, "root": root,
            "common": common}


def _table(folder: Path, level: str = "county") -> pd.DataFrame:
    return pd.read_parquet(folder / f"{level}.parquet")


def _stats(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "stats" / "county.csv", encoding="utf-8-sig", dtype={"code": str})


def test_only_the_resubmitting_operator_changes(runs):
    for level in ("county", "township"):
        table = _table(runs["cmp"], level)
        ct = table[table["operator"] == "CT"]
        assert len(ct) > 0
        for column in ("coverage_change_pp", "deep_coverage_change_pp", "gap_closed_km2", "gap_opened_km2",
                       "sites_added", "sites_removed", "sectors_added", "sectors_removed"):
            assert (ct[column] == 0).all(), (level, column)
        cm = table[table["operator"] == "CM"]
        assert (cm["gap_opened_km2"] > 0).any() and (cm["gap_closed_km2"] > 0).any(), level
        # the combined layer changes only where China Mobile's does
        both = table.pivot_table(index=["code", "tech"], columns="operator", values="gap_opened_km2")
        assert (both.loc[both["CM"] == 0, "all"] == 0).all()


def test_sites_added_and_removed_in_the_units_that_hold_them(runs):
    county = _table(runs["cmp"]).set_index(["code", "tech", "operator"])
    for tech in ("nbiot", "redcap"):
        for op in ("CM", "all"):
            assert county.loc[(SIMING, tech, op), ["sites_added", "sites_removed", "sectors_added"]].tolist() == [1, 0, 3]
            assert county.loc[(HULI, tech, op), ["sites_added", "sites_removed", "sectors_removed"]].tolist() == [0, 1, 3]
            assert county.loc[(TONGAN, tech, op), ["sites_added", "sites_removed"]].tolist() == [0, 0]
        # China Mobile's only site in 湖里区 was CM-2
        row = county.loc[(HULI, tech, "CM")]
        assert (row["sites_old"], row["sites_new"]) == (1, 0)
    town = _table(runs["cmp"], "township")
    moved = town[(town["operator"] == "CM") & ((town["sites_added"] > 0) | (town["sites_removed"] > 0))]
    assert sorted(set(zip(moved["code"], moved["sites_added"], moved["sites_removed"], strict=True))) == [
        (CM3_TOWN, 1, 0), (CM2_TOWN, 0, 1)]
    # 同安区 holds no China Mobile site in either run and lies beyond CM-3's reach: its townships
    # gain nothing; CM-2's removal reaches at most the one facing 湖里区 across the bay
    tongan = town[(town["operator"] == "CM") & (town["code"].str.startswith(TONGAN))]
    assert (tongan["gap_closed_km2"] == 0).all()
    assert (tongan.groupby("code")["gap_opened_km2"].max() > 0).sum() <= 1
    assert len(tongan["code"].unique()) >= 10


def test_closed_minus_opened_is_the_change_of_covered_area_and_matches_both_runs_stats(runs):
    for level in ("county", "township"):
        table = _table(runs["cmp"], level)
        np.testing.assert_allclose(table["gap_closed_km2"] - table["gap_opened_km2"],
                                   table["covered_km2_new"] - table["covered_km2_old"], atol=1e-6)
        np.testing.assert_allclose(table["coverage_change_pp"], table["coverage_pct_new"] - table["coverage_pct_old"])
    table = _table(runs["cmp"])
    for run, suffix in ((runs["old"], "old"), (runs["new"], "new")):
        stats = _stats(run).merge(table, on=["code", "tech", "operator"])
        assert len(stats) > 0
        # stats/county.csv is rounded for people: 0.01 km², 0.1 %
        np.testing.assert_allclose(stats[f"covered_km2_{suffix}"], stats["covered_km2"], atol=0.005 + 1e-9)
        np.testing.assert_allclose(stats[f"coverage_pct_{suffix}"], stats["coverage_pct"], atol=0.05 + 1e-9)
        np.testing.assert_allclose(stats[f"deep_coverage_pct_{suffix}"], stats["deep_coverage_pct"],
                                   atol=0.05 + 1e-9)
        assert (stats[f"sites_{suffix}"] == stats["sites"]).all()
        assert (stats[f"sectors_{suffix}"] == stats["sectors"]).all()


def test_change_rasters_pixel_by_pixel(runs):
    cmp, old, new = runs["cmp"], runs["old"], runs["new"]
    with rasterio.open(cmp / "raster" / "nbiot_cm_change.tif") as ds:
        codes, transform = ds.read(1), ds.transform
    with rasterio.open(old / "raster" / "nbiot_cm_class.tif") as a, rasterio.open(new / "raster" / "nbiot_cm_class.tif") as b:
        was, now = a.read(1), b.read(1)
        a_off = (round((a.transform.c - transform.c) / 250), round((transform.f - a.transform.f) / 250))
        b_off = (round((b.transform.c - transform.c) / 250), round((transform.f - b.transform.f) / 250))
    covered_old = np.zeros(codes.shape, bool)
    covered_old[a_off[1]:a_off[1] + was.shape[0], a_off[0]:a_off[0] + was.shape[1]] = np.isin(was, (1, 2))
    covered_new = np.zeros(codes.shape, bool)
    covered_new[b_off[1]:b_off[1] + now.shape[0], b_off[0]:b_off[0] + now.shape[1]] = np.isin(now, (1, 2))
    assert ((codes == CHANGE_CLOSED) == (covered_new & ~covered_old)).all()
    assert ((codes == CHANGE_OPENED) == (covered_old & ~covered_new)).all()
    assert (codes == CHANGE_CLOSED).sum() > 0 and (codes == CHANGE_OPENED).sum() > 0
    with rasterio.open(cmp / "raster" / "nbiot_ct_change.tif") as ds:
        assert not ds.read(1).any()


def test_csv_for_people_parquet_and_gpkg_at_full_precision(runs):
    cmp = runs["cmp"]
    raw = (cmp / "county.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    people = pd.read_csv(cmp / "county.csv", encoding="utf-8-sig", dtype={"code": str})
    full = _table(cmp)
    assert list(people.columns) == list(full.columns)
    for column, decimals in (("area_km2", 2), ("gap_opened_km2", 2), ("coverage_pct_new", 1),
                             ("coverage_change_pp", 1)):
        np.testing.assert_allclose(people[column], full[column].round(decimals))
        assert (people[column] == people[column].round(decimals)).all()
    assert (full["area_km2"] != full["area_km2"].round(2)).any()  # the Parquet keeps the digits
    text = raw.decode("utf-8-sig")
    assert not re.search(r"\d\.\d{3,}", text)
    layers = gpd.list_layers(cmp / "change.gpkg")["name"].tolist()
    assert layers == ["county", "township"]
    wide = gpd.read_file(cmp / "change.gpkg", layer="county").set_index("code")
    long = full.set_index(["code", "tech", "operator"])
    assert wide.loc[HULI, "nbiot_cm_coverage_change_pp"] == pytest.approx(long.loc[(HULI, "nbiot", "CM"), "coverage_change_pp"])
    assert wide.loc[SIMING, "redcap_all_sites_added"] == 1
    assert np.isnan(wide.loc[HULI, "nbiot_cu_gap_opened_km2"])  # no such layer in either run
    info = json.loads((cmp / "compare.json").read_text(encoding="utf-8"))
    assert info["old"]["run_id"] == json.loads((runs["old"] / "manifest.json").read_text())["run_id"]
    assert info["totals"]["nbiot"]["CT"]["coverage_change_pp"] == 0
    assert info["totals"]["nbiot"]["CM"]["sites_added"] == 1


def test_build_previous_runs_the_compare_stage_and_reuses_it(runs):
    result, new = runs["result"], runs["new"]
    assert "compare" in result.stages and not result.stages["compare"].reused
    assert _table(new / "change").equals(_table(runs["cmp"]))
    again = build(runs["root"] / "sub_new", new, previous=runs["old"], **runs["common"])
    assert again.reused_stages == ["validate", "predict", "aggregate", "compare", "publish"]


def test_change_pages_in_the_public_site(runs):
    site = runs["new"] / "site"
    index = (site / "index.html").read_text(encoding="utf-8")
    assert 'href="change.html"' in index and "Change since" in index
    province = (site / "provinces" / "350000.html").read_text(encoding="utf-8")
    assert 'href="350000_change.html"' in province
    page = (site / "change.html").read_text(encoding="utf-8")
    since = json.loads((runs["old"] / "manifest.json").read_text())["data_date"]
    assert f"Change in coverage since {since}" in page
    assert all(colour in page for colour in CHANGE_COLOURS)
    assert "≤ −10 pp" in page and "公开版不含站点数" in page
    data = _units_data(page)
    keys = change_keys()
    table = _table(runs["cmp"]).set_index(["code", "tech", "operator"])
    by_code = {f["properties"]["c"]: f["properties"]["v"] for f in data["features"]}
    assert set(by_code) == {SIMING, HULI, TONGAN}
    expected = round(float(table.loc[(HULI, "nbiot", "CM"), "coverage_change_pp"]), 1)
    assert expected < 0 and by_code[HULI][keys.index("nbiot_cm_coverage")] == expected
    assert by_code[HULI][keys.index("nbiot_cm_opened")] == round(float(table.loc[(HULI, "nbiot", "CM"),
                                                                                  "gap_opened_km2"]), 1)
    site_keys = [i for i, k in enumerate(keys) if k.endswith(("_sites_added", "_sites_removed"))]
    assert all(values[i] is None for values in by_code.values() for i in site_keys)  # public: no site counts
    assert (site / "provinces" / "350000_change.html").is_file()


def test_county_pages_draw_the_gaps_closed_and_opened_of_all_operators(runs):
    import io

    from PIL import Image

    from coverage.publish.change import CHANGE_OVERLAY_RGBA, county_overlay

    site = runs["new"] / "site"
    counties = gpd.read_file(runs["new"] / "stats" / "coverage.gpkg", layer="county")
    drawn = 0
    for code, geometry in zip(counties["code"].astype(str), counties.geometry, strict=True):
        text = (site / "counties" / f"{code}.html").read_text(encoding="utf-8")
        assert "Change since" in text  # the overlay's legend
        expected = [county_overlay(runs["new"] / "change", tech, geometry, 500, False) for tech in ("nbiot", "redcap")]
        change_pngs = [overlay.png for overlay in expected if overlay is not None]
        pngs = embedded_pngs(text)
        assert len(pngs) == 2 + len(change_pngs)  # the class overlays, then the change ones
        for png in change_pngs:
            assert png in pngs
            pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGBA")).reshape(-1, 4)
            colours = set(map(tuple, pixels.tolist())) - {(0, 0, 0, 0)}
            assert colours and colours <= set(CHANGE_OVERLAY_RGBA.values())
        drawn += len(change_pngs)
    assert drawn >= 1


def test_operator_edition_change_pages_carry_only_its_own_site_counts(runs, tmp_path):
    from coverage.publish import write_site

    write_site(runs["new"], tmp_path / "cm", edition="operator", operator="中国移动", change_dir=runs["cmp"])
    by_code = {f["properties"]["c"]: f["properties"]["v"]
               for f in _units_data((tmp_path / "cm" / "change.html").read_text(encoding="utf-8"))["features"]}
    keys = change_keys()
    assert by_code[SIMING][keys.index("nbiot_cm_sites_added")] == 1
    assert by_code[HULI][keys.index("redcap_cm_sites_removed")] == 1
    assert by_code[SIMING][keys.index("nbiot_all_sites_added")] is None
    assert by_code[SIMING][keys.index("nbiot_ct_sites_added")] is None


def test_public_change_pages_reveal_no_site_of_either_run(runs):
    sites = []
    for run in (runs["old"], runs["new"]):
        frame = gpd.read_parquet(run / "sectors.parquet")
        sites += [(s, o, p.x, p.y) for s, o, p in zip(frame["site_id"], frame["operator"], frame.geometry, strict=True)]
    scanned = 0
    change_pages = [p for p in (runs["new"] / "site").rglob("*change*.html")]
    assert len(change_pages) == 2
    for path, text in site_text_files(runs["new"] / "site"):
        pairs = coordinate_pairs(text)
        scanned += len(pairs)
        assert near_sites(pairs, sites) == set(), path
        assert "CM-3" not in text and "CM-2" not in text, path
    assert scanned > 1000


# ---------------------------------------------------------------- errors


def test_missing_or_incomplete_runs_raise_and_exit_2(runs, tmp_path, runner):
    with pytest.raises(IncompleteRunError, match="no such run directory"):
        compare_runs(tmp_path / "nowhere", runs["new"], tmp_path / "out")
    broken = tmp_path / "broken"
    shutil.copytree(runs["old"], broken, ignore=shutil.ignore_patterns("site", "change"))
    (broken / "raster" / "nbiot_cm_class.tif").unlink()
    with pytest.raises(IncompleteRunError, match="nbiot_cm_class.tif"):
        compare_runs(broken, runs["new"], tmp_path / "out")
    (broken / "stats" / "coverage.gpkg").unlink()
    result = runner.invoke(main, ["compare", str(broken), str(runs["new"]), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "old run" in result.output and "stats/coverage.gpkg" in result.output
    result = runner.invoke(main, ["compare", str(tmp_path / "nowhere"), str(runs["new"]), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_runs_on_other_grids_are_refused(runs, tmp_path):
    coarse = tmp_path / "coarse"
    build(runs["root"] / "sub_old", coarse, config=_coarse_config(tmp_path, resolution_m=500),
          scheduler="synchronous", publish_dir=tmp_path / "coarse_site")
    with pytest.raises(GridMismatchError, match="different resolutions"):
        compare_runs(coarse, runs["new"], tmp_path / "out")
    shifted = tmp_path / "shifted"
    shutil.copytree(runs["old"], shifted, ignore=shutil.ignore_patterns("site", "change"))
    for path in (shifted / "raster").glob("*_class.tif"):
        with rasterio.open(path, "r+", IGNORE_COG_LAYOUT_BREAK="YES") as ds:
            t = ds.transform
            ds.transform = rasterio.Affine(t.a, t.b, t.c + t.a / 2, t.d, t.e, t.f)
    with pytest.raises(GridMismatchError, match="do not line up"):
        compare_runs(shifted, runs["new"], tmp_path / "out")


def test_output_folder_rules(runs, tmp_path, runner):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine", encoding="utf-8")
    with pytest.raises(FileOverwriteError):
        compare_runs(runs["old"], runs["new"], foreign)
    result = runner.invoke(main, ["compare", str(runs["old"]), str(runs["new"]), "--out", str(foreign)])
    assert result.exit_code == 2 and "--overwrite" in result.output
    result = runner.invoke(main, ["compare", str(runs["old"]), str(runs["new"]), "--out", str(foreign), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert "nbiot   CM" in result.output and "sites +1 -1" in result.output
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "mine"
    again = runner.invoke(main, ["compare", str(runs["old"]), str(runs["new"]), "--out", str(foreign)])
    assert again.exit_code == 0  # its own comparison folder now
    with pytest.raises(ArgumentError, match="is the new run itself"):
        compare_runs(runs["old"], runs["new"], runs["new"])
    with pytest.raises(ArgumentError, match="is the run being built"):
        build(runs["root"] / "sub_new", runs["new"], previous=runs["new"], **runs["common"])


def _units_data(page: str) -> dict:
    match = re.search(r"covmap\.units\([^,]+, (\{.*?\}), \{\"fit\"", page, flags=re.S)
    assert match, "no units data in the page"
    return json.loads(match.group(1))


def test_cli_build_previous_and_publish_change(runs, runner, tmp_path):
    config = str(runs["common"]["config"])
    flat = ["--config", config, "--scheduler", "synchronous", "--dem", "none", "--clutter", "none"]
    submissions = str(runs["root"] / "sub_new")
    not_a_run = tmp_path / "empty"
    not_a_run.mkdir()
    result = runner.invoke(main, ["build", "--submissions", submissions, "--out", str(tmp_path / "r1"),
                                  "--previous", str(not_a_run), *flat])
    assert result.exit_code == 2 and "not a covmap run" in result.output
    assert not (tmp_path / "r1").exists()  # refused before any stage ran
    result = runner.invoke(main, ["build", "--submissions", submissions, "--out", str(tmp_path / "r2"),
                                  "--previous", str(runs["old"]), *flat])
    assert result.exit_code == 0, result.output
    assert re.search(r"^compare\s+\d+\.\d s$", result.output, flags=re.M)
    assert _table(tmp_path / "r2" / "change").equals(_table(runs["cmp"]))
    assert (tmp_path / "r2" / "site" / "change.html").is_file()

    result = runner.invoke(main, ["publish", str(runs["new"]), "--out", str(tmp_path / "maps"), "--change",
                                  str(runs["cmp"])])
    assert result.exit_code == 0, result.output
    assert "Change since" in (tmp_path / "maps" / "index.html").read_text(encoding="utf-8")
    result = runner.invoke(main, ["publish", str(runs["new"]), "--out", str(tmp_path / "maps2"), "--change",
                                  str(not_a_run)])
    assert result.exit_code == 2 and "compare.json not found" in result.output
