"""Measurement intake: every reader, every check, nothing lost."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import box

from coverage import chinacrs
from coverage.errors import ArgumentError, FileOverwriteError, InputReadError, SchemaError
from coverage.measure import (
    MEASUREMENT_COLUMNS,
    read_measurement_table,
    read_measurements,
    validate_measurements_to_dir,
    write_measurements,
)
from coverage.measure.intake import parse_times, rsrp_dbm_of_report
from coverage.measure.schema import normalise_measurement_operator, operator_of_plmn
from coverage.row_checks import write_rejects

DATA = Path(__file__).parent / "data"
DRIVE_CSV = DATA / "measurements_drive_gcj02.csv"
CHINA_BOX = box(73.0, 3.0, 136.0, 54.0)
HEADER = ["测试时间", "经度", "纬度", "运营商", "网络制式", "RSRP"]
GOOD_ROW = ["2024-05-01 10:00:00", "118.10", "24.50", "中国电信", "NB-IoT", "-100"]


def _write_csv(path: Path, header, rows, encoding="utf-8", sep=","):
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=sep)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _accounted(intake) -> set[tuple[str, int]]:
    accepted = set(zip(intake.measurements["source_file"], intake.measurements["source_row"].astype(int),
                       strict=True))
    rejected = set(zip(intake.rejects["source_file"], intake.rejects["source_row"].astype(int), strict=True))
    assert not accepted & rejected
    return accepted | rejected


# ---------------------------------------------------------------- the Chinese-header CSV


def test_chinese_header_csv_gcj02_to_wgs84():
    intake = read_measurements(DRIVE_CSV, outline=CHINA_BOX)
    m = intake.measurements
    assert intake.rows_read == 6 and len(m) == 6 and len(intake.rejects) == 0
    assert list(m.columns) == list(MEASUREMENT_COLUMNS) and m.crs.to_epsg() == 4326
    assert str(m["time"].dtype) == "datetime64[ns, Asia/Shanghai]"
    assert m["time"].iloc[0] == pd.Timestamp("2024-05-01 01:30:00", tz="UTC")
    assert m["operator"].tolist() == ["CT", "CT", "CT", "CM", "CU", "CU"]  # 460-11 is China Telecom
    assert m["tech"].tolist() == ["nbiot", "nbiot", "nbiot", "redcap", "redcap", "redcap"]  # NR -> redcap
    assert m["rsrp_dbm"].iloc[:5].tolist() == [-95.5, -96.0, -97.25, -88.0, -104.0]
    assert np.isnan(m["rsrp_dbm"].iloc[5])  # 无服务: a test without service, kept as NaN
    assert m["sinr_db"].iloc[0] == 12.1 and np.isnan(m["sinr_db"].iloc[5])
    assert str(m["pci"].dtype) == "Int64" and m["pci"].iloc[3] == 455 and m["pci"].isna().iloc[5]
    assert m["earfcn"].tolist()[:5] == [2506, 2506, 2506, 504990, 627264]
    assert m["cell_id"].tolist()[3:] == ["6012345678", "", ""]
    assert m["band"].tolist()[:4] == ["B5", "B5", "B5", "n41"]
    assert m["source_kind"].tolist() == ["scanner"] * 3 + ["handset"] * 3
    assert m["setting"].tolist() == ["in-vehicle"] * 3 + ["outdoor", "indoor", "outdoor"]
    assert m["external_antenna"].tolist() == [True, True, True, False, False, False]
    assert m["position_accuracy_m"].iloc[0] == 3.2 and np.isnan(m["position_accuracy_m"].iloc[4])
    assert m["source_row"].tolist() == [1, 2, 3, 4, 5, 6]
    lon, lat = chinacrs.gcj02_to_wgs84(np.array([118.089412]), np.array([24.479801]))
    assert m.geometry.x.iloc[0] == pytest.approx(lon[0], abs=1e-9)
    assert m.geometry.y.iloc[0] == pytest.approx(lat[0], abs=1e-9)
    # the GCJ-02 shift here is several hundred metres: converted, not passed through
    assert abs(m.geometry.x.iloc[0] - 118.089412) * 101_000 > 300
    assert intake.warnings == []


def test_gbk_and_bom_encodings_read_the_same(tmp_path):
    text = DRIVE_CSV.read_text(encoding="utf-8").replace("无服务", "-120")
    reference = read_measurements(DRIVE_CSV, outline=CHINA_BOX).measurements
    for encoding in ("gbk", "utf-8-sig"):
        path = tmp_path / f"drive_{encoding}.csv"
        path.write_bytes(text.encode(encoding))
        m = read_measurements(path, outline=CHINA_BOX).measurements
        assert m["operator"].tolist() == reference["operator"].tolist()
        assert m["setting"].tolist() == reference["setting"].tolist()
        assert m["rsrp_dbm"].iloc[5] == -120.0


def test_crs_option_per_file_and_warning_without_datum(tmp_path):
    path = _write_csv(tmp_path / "plain.csv", HEADER, [GOOD_ROW])
    plain = read_measurements(path, outline=CHINA_BOX)
    assert plain.measurements.geometry.x.iloc[0] == pytest.approx(118.10)
    assert len(plain.warnings) == 1 and "taken as WGS-84" in plain.warnings[0]
    for crs in ("bd09", {str(path): "百度坐标"}):
        shifted = read_measurements(path, crs, outline=CHINA_BOX)
        lon, lat = chinacrs.bd09_to_wgs84(np.array([118.10]), np.array([24.50]))
        assert shifted.measurements.geometry.x.iloc[0] == pytest.approx(lon[0], abs=1e-9)
        assert shifted.measurements.geometry.y.iloc[0] == pytest.approx(lat[0], abs=1e-9)
        assert shifted.warnings == []
    with pytest.raises(ArgumentError, match="crs"):
        read_measurements(path, "EPSG:3857", outline=CHINA_BOX)


def test_default_tz_and_offsets(tmp_path):
    rows = [["2024-05-01 02:00:00", *GOOD_ROW[1:]], ["2024-05-01T10:00:00+08:00", "118.11", *GOOD_ROW[2:]]]
    path = _write_csv(tmp_path / "utc.csv", HEADER, rows)
    m = read_measurements(path, outline=CHINA_BOX, default_tz="UTC").measurements
    # naive times are UTC here, the offset keeps its instant: both are 10:00 in Beijing
    assert [str(t) for t in m["time"]] == ["2024-05-01 10:00:00+08:00"] * 2
    with pytest.raises(ArgumentError, match="default_tz"):
        read_measurements(path, outline=CHINA_BOX, default_tz="Mars/Olympus")


def test_time_formats():
    times, bad = parse_times(pd.Series([
        "2024-05-01 10:00:00", "2024/5/1 9:05", "2024.05.01_10.00.00", "2024年5月1日 10时00分00秒",
        "2024-05-01T10:00:00.480", "2024-05-01T02:00:00Z", "2024-05-01", "10:00", "1", "", "2024-13-01 10:00:00",
    ]))
    assert [str(t) for t in times[:6]] == [
        "2024-05-01 10:00:00+08:00", "2024-05-01 09:05:00+08:00", "2024-05-01 10:00:00+08:00",
        "2024-05-01 10:00:00+08:00", "2024-05-01 10:00:00.480000+08:00", "2024-05-01 10:00:00+08:00"]
    assert bad.tolist() == [False] * 6 + [True, True, True, False, True]  # blank is 'missing', not 'bad'


def test_operators_and_mcc_mnc():
    assert [operator_of_plmn(v) for v in ("460-00", "46002", "460 04", "460-07", "46008")] == ["CM"] * 5
    assert [operator_of_plmn(v) for v in ("460-01", "46006", "460-09")] == ["CU"] * 3
    assert [operator_of_plmn(v) for v in ("460-03", "46005", "460-11")] == ["CT"] * 3
    assert operator_of_plmn("460-15") == "CBN" and operator_of_plmn("460-20") is None
    assert [normalise_measurement_operator(v) for v in ("中国电信", "CHN-CT", "CMCC", "China Unicom", "广电")] == [
        "CT", "CT", "CM", "CU", "CBN"]


def test_every_check_rejects_with_a_reason(tmp_path):
    header = [*HEADER, "场景", "数据来源", "定位精度", "PCI", "外接天线", "坐标系"]
    extra = ["", "", "", "", "", ""]
    bad = [
        (["", *GOOD_ROW[1:], *extra], "time missing"),
        (["yesterday", *GOOD_ROW[1:], *extra], "is not a date and time"),
        (["2015-01-01 10:00:00", *GOOD_ROW[1:], *extra], "is before 2016-06-01"),
        (["2099-01-01 10:00:00", *GOOD_ROW[1:], *extra], "is in the future"),
        ([*GOOD_ROW[:3], "", *GOOD_ROW[4:], *extra], "operator missing"),
        ([*GOOD_ROW[:3], "Vodafone", *GOOD_ROW[4:], *extra], "unknown operator 'Vodafone'"),
        ([*GOOD_ROW[:4], "LTE", GOOD_ROW[5], *extra], "neither NB-IoT nor 5G NR/RedCap"),
        ([*GOOD_ROW[:4], "WiFi", GOOD_ROW[5], *extra], "unknown technology 'WiFi'"),
        ([*GOOD_ROW[:4], "", GOOD_ROW[5], *extra], "technology (制式) missing"),
        ([*GOOD_ROW[:5], "", *extra], "RSRP missing"),
        ([*GOOD_ROW[:5], "-20", *extra], "rsrp_dbm -20 is outside -156…-31 dBm"),
        ([*GOOD_ROW[:5], "-157", *extra], "rsrp_dbm -157 is outside"),
        ([*GOOD_ROW[:5], "strong", *extra], "rsrp_dbm is not a number"),
        ([*GOOD_ROW, "在天上", "", "", "", "", ""], "unknown setting '在天上'"),
        ([*GOOD_ROW, "", "卫星", "", "", "", ""], "unknown source_kind '卫星'"),
        ([*GOOD_ROW, "", "", "80", "", "", ""], "position accuracy 80 m is worse than 50 m"),
        ([*GOOD_ROW, "", "", "", "1.5", "", ""], "pci 1.5 is not a whole number"),
        ([*GOOD_ROW, "", "", "", "", "也许", ""], "unknown external_antenna '也许'"),
        ([*GOOD_ROW, "", "", "", "", "", "EPSG:3857"], "unknown coordinate system"),
        ([GOOD_ROW[0], "", *GOOD_ROW[2:], *extra], "lon missing"),
        ([GOOD_ROW[0], "24.5", "118.1", *GOOD_ROW[3:], *extra], "appear swapped"),
        ([GOOD_ROW[0], "0", "0", *GOOD_ROW[3:], *extra], "outside China's extent"),
        ([GOOD_ROW[0], "126.5", "37.5", *GOOD_ROW[3:], *extra], "outside China's national boundary"),
    ]
    rows = [[*GOOD_ROW, *extra]] + [row for row, _ in bad]
    path = _write_csv(tmp_path / "bad.csv", header, rows)
    outline = box(73.0, 3.0, 125.0, 54.0)  # Seoul (126.5 E) is outside
    intake = read_measurements(path, outline=outline)
    assert intake.measurements["source_row"].tolist() == [1]
    reasons = intake.rejects.groupby("source_row")["reason"].apply(" | ".join)
    for row_number, (_, expected) in enumerate(bad, start=2):
        assert expected in reasons[row_number], (row_number, reasons.get(row_number))
    assert intake.rejected_rows == len(bad) and intake.rows_read == len(bad) + 1
    assert intake.summary()["rows"].sum() >= len(bad)


def test_duplicates_across_files_keep_the_first(tmp_path):
    a = _write_csv(tmp_path / "a.csv", HEADER, [GOOD_ROW, ["2024-05-01 10:00:01", *GOOD_ROW[1:]]])
    b = _write_csv(tmp_path / "b.csv", HEADER, [GOOD_ROW, [*GOOD_ROW[:5], "-101"]])
    intake = read_measurements([a, b], outline=CHINA_BOX)
    kept = list(zip(intake.measurements["source_file"], intake.measurements["source_row"], strict=True))
    assert kept == [(str(a), 1), (str(a), 2), (str(b), 2)]
    assert intake.rejects["reason"].tolist() == [f"duplicate of {a} row 1 (same time, place, operator, technology "
                                                 "and signal; that one is kept)"]


def test_operator_option_fills_blank_operators(tmp_path):
    path = _write_csv(tmp_path / "noop.csv", HEADER[:3] + HEADER[4:], [GOOD_ROW[:3] + GOOD_ROW[4:]])
    assert "operator missing" in read_measurements(path, outline=CHINA_BOX).rejects["reason"].iloc[0]
    assert read_measurements(path, outline=CHINA_BOX, operator="460-00").measurements["operator"].tolist() == ["CM"]


def test_unreadable_inputs_raise(tmp_path):
    with pytest.raises(InputReadError, match="no such file"):
        read_measurements(tmp_path / "missing.csv", outline=CHINA_BOX)
    (tmp_path / "x.dat").write_text("a")
    with pytest.raises(InputReadError, match="unknown format"):
        read_measurements(tmp_path / "x.dat", outline=CHINA_BOX)
    (tmp_path / "broken.xml").write_text("<bulkPmMrDataFile><eNB>")
    with pytest.raises(InputReadError, match="not a readable MRO XML"):
        read_measurements(tmp_path / "broken.xml", outline=CHINA_BOX)
    (tmp_path / "other.xml").write_text("<kml/>")
    with pytest.raises(InputReadError, match="not an MRO file"):
        read_measurements(tmp_path / "other.xml", outline=CHINA_BOX)
    no_coords = _write_csv(tmp_path / "nocoords.csv", ["时间", "RSRP"], [["2024-05-01 10:00:00", "-90"]])
    with pytest.raises(InputReadError, match="no coordinate columns"):
        read_measurements(no_coords, outline=CHINA_BOX)
    with pytest.raises(ArgumentError):
        read_measurements([], outline=CHINA_BOX)


# ---------------------------------------------------------------- XLSX, G-NetTrack, MRO


def test_xlsx_with_excel_datetimes(tmp_path):
    path = tmp_path / "drive.xlsx"
    frame = pd.DataFrame({
        "测试时间": [pd.Timestamp("2024-05-01 09:30:00"), pd.Timestamp("2024-05-01 09:30:01")],
        "经度": [118.0894, 118.0895], "纬度": [24.4798, 24.4799], "坐标系": ["WGS-84", "WGS-84"],
        "运营商": ["中国移动", "中国移动"], "制式": ["NB-IoT", "NB-IoT"], "NRSRP": [-101.5, -102],
        "小区ID": [143615745.0, 143615746], "PCI": [12.0, 13], "场景": ["室外", "室外"],
    })
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        pd.DataFrame({"说明": ["no coordinates here"]}).to_excel(writer, sheet_name="cover", index=False)
        frame.to_excel(writer, sheet_name="data", index=False)
    m = read_measurements(path, outline=CHINA_BOX).measurements
    assert [str(t) for t in m["time"]] == ["2024-05-01 09:30:00+08:00", "2024-05-01 09:30:01+08:00"]
    assert m["cell_id"].tolist() == ["143615745", "143615746"]  # Excel's 143615745.0 is an id, not a float
    assert m["pci"].tolist() == [12, 13] and m["rsrp_dbm"].tolist() == [-101.5, -102.0]


GNETTRACK_HEADER = ["Timestamp", "Longitude", "Latitude", "Speed", "Operatorname", "Operator", "CGI", "Cellname",
                    "Node", "CellID", "LAC", "NetworkTech", "NetworkMode", "Level", "Qual", "SNR", "CQI", "LTERSSI",
                    "ARFCN", "DL_bitrate", "UL_bitrate", "PSC", "Altitude", "Height", "Accuracy", "Location",
                    "State", "PINGAVG", "NTech1", "NCellName1", "NCellid1", "NARFCN1", "NRxLev1"]


def _gnettrack_row(ts, lon, lat, speed, name, plmn, tech, level, snr, accuracy="4"):
    return [ts, lon, lat, speed, name, plmn, f"{plmn}-22528-143615745", "", "561000", "143615745", "22528", tech,
            tech, level, "-11", snr, "", "", "2506", "0", "0", "101", "12", "", accuracy, "", "D", "", "LTE", "",
            "143615746", "2506", "-110"]


def test_gnettrack_export(tmp_path):
    rows = [
        _gnettrack_row("2024.05.01_09.30.00", "118.089412", "24.479801", "42", "CHN-CT", "46011", "NB-IoT", "-95",
                       "12.5"),
        _gnettrack_row("2024.05.01_09.30.01", "118.089520", "24.479856", "3", "CHN-CT", "46011", "NB-IoT", "-96",
                       "11"),
        _gnettrack_row("2024.05.01_09.30.02", "118.089633", "24.479910", "40", "", "46000", "NR", "-90", "20"),
        _gnettrack_row("2024.05.01_09.30.03", "118.089741", "24.479962", "40", "CHN-CT", "46011", "LTE", "-85", "9"),
        _gnettrack_row("2024.05.01_09.30.04", "118.089850", "24.480015", "40", "CHN-CT", "46011", "NB-IoT", "-97",
                       "9", accuracy="120"),
    ]
    path = _write_csv(tmp_path / "Log_2024.05.01_09.30.00.txt", GNETTRACK_HEADER, rows, sep="\t")
    intake = read_measurements(path, outline=CHINA_BOX)
    m = intake.measurements
    assert intake.warnings == []  # GPS positions: WGS-84 without asking
    assert m.geometry.x.tolist() == [118.089412, 118.089520, 118.089633]
    assert [str(t) for t in m["time"]] == ["2024-05-01 09:30:00+08:00", "2024-05-01 09:30:01+08:00",
                                           "2024-05-01 09:30:02+08:00"]
    assert m["operator"].tolist() == ["CT", "CT", "CM"]  # the third from its MCC-MNC (Operator column)
    assert m["tech"].tolist() == ["nbiot", "nbiot", "redcap"]
    assert m["rsrp_dbm"].tolist() == [-95.0, -96.0, -90.0] and m["sinr_db"].tolist() == [12.5, 11.0, 20.0]
    assert m["setting"].tolist() == ["in-vehicle", "outdoor", "in-vehicle"]  # by speed (≥ 15 km/h)
    assert m["source_kind"].tolist() == ["handset"] * 3
    assert m["pci"].tolist() == [101] * 3 and m["earfcn"].tolist() == [2506] * 3
    assert m["cell_id"].iloc[0] == "46011-22528-143615745"  # CGI, the global id, comes first
    assert m["position_accuracy_m"].tolist() == [4.0] * 3
    reasons = intake.rejects.set_index("source_row")["reason"]
    assert "'LTE' is neither NB-IoT nor 5G NR/RedCap" in reasons[4]
    assert "position accuracy 120 m" in reasons[5]


MRO_XML = """<?xml version="1.0" encoding="UTF-8"?>
<bulkPmMrDataFile>
  <fileHeader fileFormatVersion="V1.0.5" reportTime="2024-05-01T10:15:00.000" startTime="2024-05-01T10:00:00.000"
              endTime="2024-05-01T10:15:00.000" period="0" jobid="1" />
  <eNB MR.eNBId="561000">
    <measurement>
      <smr>MR.LteScRSRP MR.LteNcRSRP MR.LteScRSRQ MR.LteScEarfcn MR.LteScPci MR.LteScSinrUL MR.Longitude MR.Latitude</smr>
      <object id="460-11-561000-1" MmeUeS1apId="101" MmeGroupId="1" MmeCode="1" TimeStamp="2024-05-01T10:00:00.480">
        <v>45 30 20 2506 101 25 118.089412 24.479801</v>
        <v>45 28 20 2506 101 25 118.089412 24.479801</v>
      </object>
      <object id="460-11-561000-1" MmeUeS1apId="102" MmeGroupId="1" MmeCode="1" TimeStamp="2024-05-01T10:00:05.120">
        <v>NIL NIL 20 2506 101 25 118.089520 24.479856</v>
      </object>
      <object id="460-11-561000-2" MmeUeS1apId="103" MmeGroupId="1" MmeCode="1">
        <v>31 NIL 18 2506 102 22 NIL NIL</v>
      </object>
      <object id="561000-3" MmeUeS1apId="104" MmeGroupId="1" MmeCode="1" TimeStamp="2024-05-01T10:01:00.000">
        <v>20 NIL 18 2506 103 22 118.09 24.48</v>
      </object>
    </measurement>
    <measurement>
      <smr>MR.LteScPlrULQci1 MR.LteScPlrDLQci1</smr>
      <object id="460-11-561000-1"><v>0 0</v></object>
    </measurement>
  </eNB>
</bulkPmMrDataFile>
"""


def test_mro_xml_and_gz(tmp_path):
    plain = tmp_path / "NB_MRO_HUAWEI_XM01_561000_20240501100000.xml"
    plain.write_text(MRO_XML, encoding="utf-8")
    packed = tmp_path / "NB_MRO_HUAWEI_XM01_561000_20240501100000.xml.gz"
    packed.write_bytes(gzip.compress(MRO_XML.encode("utf-8")))
    for path in (plain, packed):
        intake = read_measurements(path, outline=CHINA_BOX)
        m = intake.measurements
        assert intake.rows_read == 4  # objects of the measurement with a serving RSRP; neighbour <v> rows are not rows
        assert m["rsrp_dbm"].tolist() == [45 - 141.0]  # TS 36.133 RSRP report mapping
        assert m["operator"].tolist() == ["CT"] and m["tech"].tolist() == ["nbiot"]  # CT from the id's 460-11
        assert [str(t) for t in m["time"]] == ["2024-05-01 10:00:00.480000+08:00"]
        assert m["source_kind"].tolist() == ["mr"] and m["setting"].tolist() == ["indoor"]
        assert m["pci"].tolist() == [101] and m["earfcn"].tolist() == [2506]
        assert m["sinr_db"].isna().all()  # MR.LteScSinrUL is uplink: not the downlink SINR
        assert m["cell_id"].tolist() == ["460-11-561000-1"]
        assert m.geometry.x.tolist() == [118.089412]
        reasons = intake.rejects.groupby("source_row")["reason"].apply(" | ".join)
        assert "RSRP missing" in reasons[2]  # NIL
        assert "lon missing" in reasons[3]  # no position
        assert "operator missing" in reasons[4]  # the object id names no PLMN and no operator was given
        assert intake.warnings == []
    with_op = read_measurements(plain, outline=CHINA_BOX, operator="CT").measurements
    assert with_op["rsrp_dbm"].tolist() == [45 - 141.0, 20 - 141.0]
    assert [str(t) for t in with_op["time"]] == ["2024-05-01 10:00:00.480000+08:00", "2024-05-01 10:01:00+08:00"]
    lte = tmp_path / "FDD-LTE_MRO_HUAWEI_XM01_561000_20240501100000.xml"
    lte.write_text(MRO_XML, encoding="utf-8")
    assert "neither NB-IoT nor 5G" in read_measurements(lte, outline=CHINA_BOX).rejects["reason"].iloc[0]


def test_rsrp_report_mappings():
    assert rsrp_dbm_of_report([0, 1, 97], "lte").tolist() == [-141.0, -140.0, -44.0]
    assert rsrp_dbm_of_report([0, 1, 113], "nb").tolist() == [-157.0, -156.0, -44.0]
    assert rsrp_dbm_of_report([1, 126], "nr").tolist() == [-156.0, -31.0]
    with pytest.raises(ArgumentError):
        rsrp_dbm_of_report([1], "gsm")


# ---------------------------------------------------------------- nothing lost (property)

CELL_TEXT = st.one_of(
    st.sampled_from(["", " ", "CT", "中国移动", "460-00", "46011", "Vodafone", "NB-IoT", "NR", "LTE", "118.1",
                     "24.5", "-100", "-31", "-156", "-157", "无服务", "=1+1", "@x", "+1", "-5", "2024-05-01 10:00:00",
                     "2024.05.01_10.00.00", "2015-01-01 00:00:00", "gcj02", "bd09", "室外", "车内", "室内", "是", "x",
                     "inf", "nan", "1e400", "，", "\"", "a,b", "x\ny"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=6),
)
COLUMN_SETS = st.lists(
    st.sampled_from(["测试时间", "运营商", "网络制式", "RSRP", "SINR", "PCI", "坐标系", "场景", "外接天线", "定位精度",
                     "MCC-MNC", "备注"]),
    min_size=0, max_size=10, unique=True,
).map(lambda cols: [*cols, "经度", "纬度"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=COLUMN_SETS, data=st.data())
def test_accepted_plus_rejected_equals_rows_read(tmp_path_factory, columns, data):
    n_rows = data.draw(st.integers(0, 12))
    rows = [[data.draw(CELL_TEXT) for _ in columns] for _ in range(n_rows)]
    rows += [rows[0]] if rows and data.draw(st.booleans()) else []  # a repeated row
    folder = tmp_path_factory.mktemp("prop")
    path = _write_csv(folder / "t.csv", columns, rows)
    intake = read_measurements(path, outline=CHINA_BOX)
    non_blank = sum(1 for row in rows if any(cell.strip() for cell in row))
    assert intake.rows_read == non_blank
    assert len(intake.measurements) + intake.rejected_rows == intake.rows_read
    assert len(_accounted(intake)) == intake.rows_read
    assert intake.measurements["time"].notna().all()
    if len(intake.rejects):
        assert intake.rejects["reason"].str.len().min() > 5
        written = write_rejects(intake.rejects, folder / "rejects.csv")
        back = pd.read_csv(written, encoding="utf-8-sig", dtype=str, keep_default_na=False)
        assert not back.map(lambda v: str(v).startswith(("=", "+", "-", "@"))).any().any()


# ---------------------------------------------------------------- writers


def test_round_trip_and_validate_to_dir(tmp_path):
    intake = read_measurements(DRIVE_CSV, outline=CHINA_BOX)
    path = write_measurements(intake.measurements, tmp_path / "m.parquet")
    back = read_measurement_table(path)
    assert list(back.columns) == list(MEASUREMENT_COLUMNS)
    assert back["time"].tolist() == intake.measurements["time"].tolist()
    assert str(back["pci"].dtype) == "Int64"
    with pytest.raises(FileOverwriteError):
        write_measurements(intake.measurements, path)
    with pytest.raises(SchemaError, match="lacks columns"):
        write_measurements(intake.measurements.drop(columns=["rsrp_dbm"]), tmp_path / "x.parquet")

    bad = _write_csv(tmp_path / "bad.csv", HEADER, [GOOD_ROW, [*GOOD_ROW[:5], "=HYPERLINK(\"x\")"]])
    out = tmp_path / "out"
    result = validate_measurements_to_dir([DRIVE_CSV, bad], out, outline=CHINA_BOX)
    assert len(read_measurement_table(out / "measurements.parquet")) == len(result.measurements) == 7
    rejects = (out / "measurement_rejects.csv").read_bytes()
    assert rejects.startswith(b"\xef\xbb\xbf") and b"'=HYPERLINK" in rejects
    validate_measurements_to_dir([DRIVE_CSV], out, outline=CHINA_BOX)  # the tool's run directory: replaced


def test_readme_measurement_table_matches_the_schema():
    import re

    from coverage.measure.schema import schema_markdown

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    block = re.search(r"<!-- measurement schema table:.*?-->\n(.*?)\n<!-- end of measurement schema table -->",
                      text, re.S)
    assert block is not None and block.group(1).strip() == schema_markdown().strip()
