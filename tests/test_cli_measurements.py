"""covmap measurements validate: exit codes, outputs and the --crs/--operator/--tz options."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from cli import main
from coverage import chinacrs

DATA = Path(__file__).parent / "data"
DRIVE_CSV = DATA / "measurements_drive_gcj02.csv"
PLAIN = "测试时间,经度,纬度,运营商,网络制式,RSRP\n2024-05-01 10:00:00,118.10,24.50,中国电信,NB-IoT,-100\n"


def test_clean_file_exits_0_and_writes_the_outputs(runner, tmp_path):
    result = runner.invoke(main, ["measurements", "validate", str(DRIVE_CSV), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert "rows read 6: 6 accepted, 0 rejected" in result.output
    m = gpd.read_parquet(tmp_path / "run" / "measurements.parquet")
    assert m["operator"].tolist() == ["CT", "CT", "CT", "CM", "CU", "CU"]
    rejects = pd.read_csv(tmp_path / "run" / "measurement_rejects.csv", encoding="utf-8-sig")
    assert len(rejects) == 0 and list(rejects.columns) == ["source_file", "source_row", "column", "value", "reason"]


def test_rejected_rows_exit_1_with_reasons(runner, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(PLAIN + "2024-05-01 10:00:01,118.10,24.50,中国电信,NB-IoT,=1+1\n", encoding="utf-8")
    result = runner.invoke(main, ["measurements", "validate", str(path), "--out", str(tmp_path / "run")])
    assert result.exit_code == 1, result.output
    assert "1 accepted, 1 rejected" in result.output and "rsrp_dbm not a number: 1 rows" in result.output
    text = (tmp_path / "run" / "measurement_rejects.csv").read_text(encoding="utf-8-sig")
    assert "'=1+1" in text  # neutralised for Excel
    assert "warning:" in result.output  # no datum stated: taken as WGS-84, said so


@pytest.mark.parametrize("crs_arg", ["bd09", "{path}=百度坐标"])
def test_crs_for_all_files_or_one(runner, tmp_path, crs_arg):
    path = tmp_path / "plain.csv"
    path.write_text(PLAIN, encoding="utf-8")
    crs = crs_arg.format(path=path)
    result = runner.invoke(main, ["measurements", "validate", str(path), "--out", str(tmp_path / "run"),
                                  "--crs", crs])
    assert result.exit_code == 0, result.output
    m = gpd.read_parquet(tmp_path / "run" / "measurements.parquet")
    lon, _ = chinacrs.bd09_to_wgs84(np.array([118.10]), np.array([24.50]))
    assert m.geometry.x.iloc[0] == pytest.approx(lon[0], abs=1e-9)


def test_unusable_input_exits_2(runner, tmp_path):
    out = str(tmp_path / "run")
    result = runner.invoke(main, ["measurements", "validate", str(tmp_path / "missing.csv"), "--out", out])
    assert result.exit_code == 2 and "no such file" in result.output
    result = runner.invoke(main, ["measurements", "validate", str(DRIVE_CSV), "--out", out, "--crs", "EPSG:3857"])
    assert result.exit_code == 2 and "is not wgs84" in result.output
    result = runner.invoke(main, ["measurements", "validate", str(DRIVE_CSV), "--out", out, "--operator", "Vodafone"])
    assert result.exit_code == 2 and "unknown operator" in result.output
    result = runner.invoke(main, ["measurements", "validate", str(DRIVE_CSV), "--out", out, "--tz", "Mars/X"])
    assert result.exit_code == 2 and "not a time zone" in result.output
    result = runner.invoke(main, ["measurements", "validate", str(DRIVE_CSV), "--out", out, "--crs", "gcj02",
                                  "--crs", f"{DRIVE_CSV}=wgs84"])
    assert result.exit_code == 2 and "not both" in result.output


def test_operator_option_and_refusal_to_clobber(runner, tmp_path):
    path = tmp_path / "noop.csv"
    path.write_text("时间,经度,纬度,制式,RSRP\n2024-05-01 10:00:00,118.10,24.50,NB-IoT,-100\n", encoding="utf-8")
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "notes.txt").write_text("my own file")
    (folder / "measurements.parquet").write_text("not ours")
    args = ["measurements", "validate", str(path), "--out", str(folder), "--operator", "460-00"]
    result = runner.invoke(main, args)
    assert result.exit_code == 2 and "exists" in result.output
    result = runner.invoke(main, [*args, "--overwrite"])
    assert result.exit_code == 0, result.output
    assert gpd.read_parquet(folder / "measurements.parquet")["operator"].tolist() == ["CM"]
