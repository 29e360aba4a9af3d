"""`covmap validate`: outputs, summary table and the exact exit codes 0 / 1 / 2."""

from __future__ import annotations

import shutil
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import box

import coverage.ingest
from cli import main

DATA = Path(__file__).parent / "data"


@pytest.fixture(autouse=True)
def china_box_outline(monkeypatch):
    """Check points against China's bounding box instead of loading the national outline."""
    monkeypatch.setattr(coverage.ingest, "_national_outline", lambda: box(73.0, 3.0, 136.0, 54.0))


def test_all_accepted_exit_0(runner, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(main, ["validate", str(DATA / "sectors_gbk.csv"), "--out", str(out)])
    assert result.exit_code == 0, result.output
    sectors = gpd.read_parquet(out / "sectors.parquet")
    assert len(sectors) == 4 and sorted(sectors["operator"].unique()) == ["CM", "CT", "CU"]
    rejects = pd.read_csv(out / "rejects.csv", encoding="utf-8-sig")
    assert len(rejects) == 0 and list(rejects.columns) == ["source_file", "source_row", "column", "value", "reason"]
    lines = {line.split()[0]: line.split()[1:4] for line in result.output.splitlines()[1:6]}
    assert lines["CT"] == ["2", "2", "0"] and lines["all"] == ["4", "4", "0"]


def test_some_rejected_exit_1_and_summary(runner, tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(main, ["validate", str(DATA / "sectors_bad_rows.csv"), str(DATA / "sectors_gcj02.csv"),
                                  "--out", str(out)])
    assert result.exit_code == 1, result.output
    assert "height_m out of range ×2" in result.output
    all_line = next(line for line in result.output.splitlines() if line.startswith("all"))
    assert all_line.split()[1:4] == ["22", "6", "16"]
    assert len(gpd.read_parquet(out / "sectors.parquet")) == 6
    rejects = pd.read_csv(out / "rejects.csv", encoding="utf-8-sig", dtype=str)
    assert rejects[["source_file", "source_row"]].drop_duplicates().shape[0] == 16
    assert "'=1+1" in rejects["value"].tolist()


def test_crs_and_operator_options(runner, tmp_path):
    src = tmp_path / "gcj.csv"
    src.write_text("site_id,cell_id,tech,lon,lat\nBJ01,BJ01-1,nbiot,116.38404722455657,39.91334545536069\n",
                   encoding="utf-8")
    out = tmp_path / "run"
    result = runner.invoke(main, ["validate", str(src), "--out", str(out), "--crs", "GCJ-02", "--operator", "电信"])
    assert result.exit_code == 0, result.output
    sectors = gpd.read_parquet(out / "sectors.parquet")
    assert sectors["operator"].tolist() == ["CT"]
    assert sectors.geometry.x.iloc[0] == pytest.approx(116.377817, abs=1e-7)
    bad = runner.invoke(main, ["validate", str(src), "--out", str(out), "--crs", "EPSG:3857"])
    assert bad.exit_code == 2 and "--crs" in bad.output
    bad = runner.invoke(main, ["validate", str(src), "--out", str(out), "--operator", "Vodafone"])
    assert bad.exit_code == 2 and "unknown operator" in bad.output


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [("sites.docx", b"x", "unknown format"), ("sites.csv", b"name,value\nx,1\n", "no coordinate columns")],
)
def test_unreadable_file_exit_2_one_line(runner, tmp_path, name, content, message):
    bad = tmp_path / name
    bad.write_bytes(content)
    out = tmp_path / "run"
    result = runner.invoke(main, ["validate", str(DATA / "sectors_gbk.csv"), str(bad), "--out", str(out)])
    assert result.exit_code == 2
    assert message in result.output and str(bad) in result.output
    assert "Traceback" not in result.output
    assert not (out / "sectors.parquet").exists()


def test_missing_file_argument_exit_2(runner, tmp_path):
    result = runner.invoke(main, ["validate", "--out", str(tmp_path / "run")])
    assert result.exit_code == 2
    result = runner.invoke(main, ["validate", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_new_directory_becomes_a_run_directory(runner, tmp_path):
    out = tmp_path / "run"
    args = ["validate", str(DATA / "sectors_gbk.csv"), "--out", str(out)]
    assert runner.invoke(main, args).exit_code == 0
    assert (out / "manifest.json").exists()
    assert runner.invoke(main, args).exit_code == 0  # the tool owns it: no --overwrite needed


def test_user_directory_needs_overwrite(runner, tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    args = ["validate", str(DATA / "sectors_gbk.csv"), "--out", str(out)]
    assert runner.invoke(main, args).exit_code == 0  # other files are fine
    again = runner.invoke(main, args)
    assert again.exit_code == 2 and "--overwrite" in again.output
    assert runner.invoke(main, [*args, "--overwrite"]).exit_code == 0
    assert (out / "notes.txt").read_text() == "keep me"
    (out / "manifest.json").write_text("{}")  # a run directory belongs to the tool
    assert runner.invoke(main, args).exit_code == 0


def test_sample_style_mixed_formats(runner, tmp_path):
    xlsx = tmp_path / "cm.xlsx"
    pd.DataFrame({"运营商": ["中国移动"], "站号": ["0001"], "小区号": [1], "制式": ["NB-IoT"], "经度": [116.4],
                  "纬度": [39.9]}).to_excel(xlsx, index=False)
    gbk = tmp_path / "ct.csv"
    shutil.copy(DATA / "sectors_gbk.csv", gbk)
    result = runner.invoke(main, ["validate", str(xlsx), str(gbk), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    sectors = gpd.read_parquet(tmp_path / "run" / "sectors.parquet")
    assert sectors["cell_id"].tolist()[0] == "0001-1"
