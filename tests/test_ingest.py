"""Ingest: every reader, every check, nothing lost, safe writers."""

from __future__ import annotations

import csv
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Point, Polygon, box

from coverage.errors import ArgumentError, FileOverwriteError, InputReadError, SchemaError
from coverage.ingest import read_sectors, read_submissions, write_sectors
from coverage.radio.profiles import sector_defaults
from coverage.row_checks import neutralise_formulas, write_rejects
from coverage.schema import SECTOR_COLUMNS
from coverage.tables import read_table

DATA = Path(__file__).parent / "data"
CHINA_BOX = box(73.0, 3.0, 136.0, 54.0)
HEADER = ["operator", "site_id", "cell_id", "tech", "lon", "lat", "freq_mhz", "eirp_dbm", "height_m", "azimuth_deg"]


def _rows_accounted(result) -> set[tuple[str, int]]:
    accepted = set(zip(result.sectors["source_file"], result.sectors["source_row"].astype(int), strict=True))
    rejected = set(zip(result.rejects["source_file"], result.rejects["source_row"].astype(int), strict=True))
    assert not accepted & rejected
    return accepted | rejected


@pytest.fixture
def english_rows():
    """Three valid rows (CT NB-IoT sector, CM omni NB-IoT, CU RedCap) in English columns."""
    return [
        ["CT", "S1", "S1-1", "NB-IoT", "116.40", "39.90", "875", "55", "30", "0"],
        ["CM", "S2", "S2-1", "NB", "116.50", "39.95", "", "", "25", ""],
        ["CU", "S3", "S3-1", "RedCap", "116.60", "40.00", "3500", "63", "35", "240"],
    ]


def _write_csv(path: Path, header, rows, encoding="utf-8", sep=","):
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle, delimiter=sep)
        writer.writerow(header)
        writer.writerows(rows)
    return path


# ---------------------------------------------------------------- readers


def test_gbk_csv_with_chinese_headers():
    result = read_submissions(DATA / "sectors_gbk.csv", outline=CHINA_BOX)
    s = result.sectors
    assert len(s) == 4 and len(result.rejects) == 0
    assert s["operator"].tolist() == ["CT", "CT", "CM", "CU"]
    assert s["site_id"].tolist()[0] == "0571001"  # leading zero kept
    assert s["tech"].tolist() == ["nbiot", "nbiot", "nbiot", "redcap"]
    # band B5 -> 875 MHz, B8 -> 942.5, n78 -> 3500 (coverage.radio.profiles)
    assert s["freq_mhz"].tolist() == [875.0, 875.0, 942.5, 3500.0]
    # 发射功率 43 + 天线增益 15 = 58 dBm; blank -> profile EIRP 55; 50 + 10 = 60
    assert s["eirp_dbm"].tolist() == [58.0, 58.0, 55.0, 60.0]
    assert np.isnan(s["azimuth_deg"].iloc[2])  # blank = omni
    assert s["environment"].tolist() == ["dense_urban", "dense_urban", "suburban", "rural"]
    assert s.geometry.x.tolist() == [120.1551, 120.1551, 120.21, 120.3]


def test_utf8_bom_csv_and_defaults(tmp_path, english_rows):
    path = tmp_path / "bom.csv"
    _write_csv(path, HEADER, english_rows, encoding="utf-8-sig")
    result = read_submissions(path, outline=CHINA_BOX)
    s = result.sectors
    assert result.rows_read == {str(path): 3} and len(s) == 3
    nb = sector_defaults("nbiot")
    cm = s.iloc[1]
    assert (cm.freq_mhz, cm.eirp_dbm, cm.beamwidth_deg, cm.downtilt_deg) == (
        nb["freq_mhz"], nb["eirp_dbm"], nb["beamwidth_deg"], nb["downtilt_deg"])
    assert cm.environment is None
    assert s.crs.to_epsg() == 4326 and list(s.columns) == list(SECTOR_COLUMNS)


def test_title_rows_tab_separated_and_blank_rows(tmp_path, english_rows):
    path = tmp_path / "title.txt"
    with open(path, "w", encoding="utf-8", newline="") as handle:
        handle.write("2024年第三季度 NB-IoT 工参表\n\n")
        writer = csv.writer(handle, delimiter="\t")
        writer.writerow(HEADER)
        writer.writerow(english_rows[0])
        writer.writerow([])
        writer.writerow(english_rows[2])
    result = read_submissions(path, outline=CHINA_BOX)
    assert result.rows_read[str(path)] == 2
    assert result.sectors["source_row"].tolist() == [1, 3]  # the blank row keeps its number


def test_gb18030_only_characters(tmp_path):
    path = tmp_path / "gb18030.csv"
    header = ["运营商", "站号", "小区号", "制式", "经度", "纬度"]
    _write_csv(path, header, [["中国电信", "𠀀站", "1", "NB-IoT", "116.4", "39.9"]], encoding="gb18030")
    result = read_submissions(path, outline=CHINA_BOX)
    assert result.sectors["site_id"].tolist() == ["𠀀站"]
    assert result.sectors["cell_id"].tolist() == ["𠀀站-1"]  # a local cell number is qualified by its site


def test_xlsx_ids_and_sheet_choice(tmp_path):
    path = tmp_path / "cm.xlsx"
    data = pd.DataFrame({
        "运营商": ["中国移动", "中国移动"], "站号": ["00123", 4567.0], "小区ID": [12345.0, 12346],
        "制式": ["NB-IoT", "NB-IoT"], "经度": [113.30, 113.31], "纬度": [23.10, 23.11], "挂高": [30, 40.5],
    })
    with pd.ExcelWriter(path, engine="openpyxl") as writer:
        pd.DataFrame({"说明": ["cover sheet"]}).to_excel(writer, sheet_name="说明", index=False)
        data.to_excel(writer, sheet_name="工参", index=False)
    result = read_submissions(path, outline=CHINA_BOX)
    s = result.sectors
    assert s["site_id"].tolist() == ["00123", "4567"]
    assert s["cell_id"].tolist() == ["12345", "12346"]
    assert s["height_m"].tolist() == [30.0, 40.5]
    assert s.geometry.y.tolist() == [23.10, 23.11]


def _points_frame(crs="EPSG:4326", prefix=""):
    gdf = gpd.GeoDataFrame(
        {"operator": ["CT", "CU"], "site_id": ["A", "B"], "cell_id": [f"{prefix}A-1", f"{prefix}B-1"], "tech": ["nbiot", "redcap"],
         "height_m": [30.0, 20.0]},
        geometry=[Point(116.40, 39.90), Point(116.50, 39.80)], crs="EPSG:4326",
    )
    return gdf.to_crs(crs)


@pytest.mark.parametrize(("suffix", "driver"), [(".geojson", "GeoJSON"), (".gpkg", "GPKG"), (".shp", None)])
def test_vector_readers(tmp_path, suffix, driver):
    path = tmp_path / f"sites{suffix}"
    _points_frame().to_file(path, driver=driver)
    result = read_submissions(path, outline=CHINA_BOX)
    s = result.sectors
    assert len(s) == 2 and len(result.rejects) == 0
    np.testing.assert_allclose(s.geometry.x, [116.40, 116.50], atol=1e-9)
    assert s["tech"].tolist() == ["nbiot", "redcap"]


def test_gpkg_cgcs2000_and_projected_layers(tmp_path):
    cgcs = tmp_path / "cgcs.gpkg"
    _points_frame("EPSG:4490").to_file(cgcs)
    projected = tmp_path / "albers.gpkg"
    _points_frame("EPSG:3857", prefix="P").to_file(projected)
    result = read_submissions([cgcs, projected], outline=CHINA_BOX, crs="gcj02")
    # CGCS2000 layer: the --crs option still applies (a CRS cannot declare GCJ-02) ...
    np.testing.assert_allclose(result.sectors.geometry.x[:2], [116.40, 116.50], atol=1e-2)
    assert abs(result.sectors.geometry.x[0] - 116.40) > 1e-3
    # ... the projected layer was reprojected to true WGS-84, so gcj02 is not applied
    np.testing.assert_allclose(result.sectors.geometry.x[2:], [116.40, 116.50], atol=1e-9)
    np.testing.assert_allclose(result.sectors.geometry.y[2:], [39.90, 39.80], atol=1e-9)
    assert len(result.rejects) == 0
    assert any("reprojected from EPSG:3857" in w for w in result.warnings)
    assert any("gcj02 not applied" in w for w in result.warnings)
    same = read_submissions([cgcs, projected], outline=CHINA_BOX)
    np.testing.assert_allclose(same.sectors.geometry.x, [116.40, 116.50, 116.40, 116.50], atol=1e-9)


def test_same_cell_in_two_files_is_a_duplicate(tmp_path):
    first, second = tmp_path / "a.geojson", tmp_path / "b.gpkg"
    _points_frame().to_file(first, driver="GeoJSON")
    _points_frame().to_file(second)
    result = read_submissions([first, second], outline=CHINA_BOX)
    assert result.sectors["source_file"].tolist() == [str(first)] * 2
    assert result.rejects["source_file"].tolist() == [str(second)] * 2
    assert result.rejects["reason"].str.startswith("duplicate of " + str(first)).all()


def test_vector_non_point_geometry_is_rejected(tmp_path):
    path = tmp_path / "poly.geojson"
    gdf = _points_frame()
    gdf.loc[1, "geometry"] = Polygon([(116, 39), (117, 39), (117, 40)])
    gdf.to_file(path, driver="GeoJSON")
    result = read_submissions(path, outline=CHINA_BOX)
    assert len(result.sectors) == 1
    assert result.rejects["column"].tolist() == ["geometry"]
    assert "not a point" in result.rejects["reason"].iloc[0]


def test_gcj02_per_row_column_and_option(tmp_path):
    result = read_submissions(DATA / "sectors_gcj02.csv", outline=CHINA_BOX)
    s = result.sectors
    # converted back to the published WGS-84 points (BJ, SH, SZ); the WGS84 row untouched
    np.testing.assert_allclose(s.geometry.x, [116.377817, 121.5272106, 113.912316, 113.912316], atol=1e-7)
    np.testing.assert_allclose(s.geometry.y, [39.911954, 31.1774276, 22.543847, 22.543847], atol=1e-7)
    path = tmp_path / "gcj_option.csv"
    _write_csv(path, HEADER[:6], [["CT", "X", "X-1", "nbiot", "116.38404722455657", "39.91334545536069"]])
    s = read_submissions(path, crs="火星坐标", outline=CHINA_BOX).sectors
    assert s.geometry.x.iloc[0] == pytest.approx(116.377817, abs=1e-7)
    s = read_submissions(path, crs="EPSG:4490", outline=CHINA_BOX).sectors
    assert s.geometry.x.iloc[0] == pytest.approx(116.38404722455657, abs=1e-12)


def test_crs_per_file_mapping(tmp_path):
    row = [["CT", "X", "X-1", "nbiot", "116.38404722455657", "39.91334545536069"]]
    gcj, wgs = tmp_path / "gcj.csv", tmp_path / "wgs.csv"
    _write_csv(gcj, HEADER[:6], row)
    _write_csv(wgs, HEADER[:6], [["CM", "Y", "Y-1", "nbiot", row[0][4], row[0][5]]])
    s = read_submissions([gcj, wgs], crs={str(gcj): "gcj02"}, outline=CHINA_BOX).sectors.set_index("operator")
    assert s.geometry.x["CT"] == pytest.approx(116.377817, abs=1e-7)
    assert s.geometry.x["CM"] == pytest.approx(116.38404722455657, abs=1e-12)
    with pytest.raises(ArgumentError, match="gcj.csv"):
        read_submissions([gcj], crs={str(gcj): "EPSG:3857"}, outline=CHINA_BOX)


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("sites.dbf2", b"a,b\n", "unknown format"),
        ("sites.csv", b"name,value\nx,1\n", "no coordinate columns"),
        ("sites.csv", b"\xff\xfe\xfd\x81\x30", "no coordinate columns|cannot decode"),
        ("sites.csv", b"\x81\xff\x00\xff", "cannot decode"),
        ("sites.xlsx", b"not a zip", "not a readable XLSX"),
        ("sites.gpkg", b"not sqlite", "not a readable vector file"),
        ("sites.xls", b"old", "save it as .xlsx"),
    ],
)
def test_unreadable_files_raise_input_read_error(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(InputReadError, match=match) as info:
        read_submissions(path, outline=CHINA_BOX)
    assert name in str(info.value)


def test_missing_file_and_bad_arguments(tmp_path):
    with pytest.raises(InputReadError, match="no such file"):
        read_submissions(tmp_path / "nope.csv", outline=CHINA_BOX)
    with pytest.raises(ArgumentError):
        read_submissions([], outline=CHINA_BOX)
    with pytest.raises(ArgumentError, match="crs"):
        read_submissions(DATA / "sectors_gcj02.csv", crs="EPSG:3857", outline=CHINA_BOX)
    with pytest.raises(ArgumentError, match="operator"):
        read_submissions(DATA / "sectors_gcj02.csv", operator="Vodafone", outline=CHINA_BOX)


def test_read_table_gives_canonical_text_columns():
    table = read_table(DATA / "sectors_gbk.csv")
    assert {"operator", "site_id", "lon", "lat", "band", "height_m", "source_row"} <= set(table.columns)
    assert table["site_id"].tolist()[0] == "0571001"


# ---------------------------------------------------------------- checks


def test_each_check_rejects_its_row():
    result = read_submissions(DATA / "sectors_bad_rows.csv", outline=CHINA_BOX)
    assert result.sectors["site_id"].tolist() == ["OK01", "DUP01"]
    by_row = result.rejects.groupby("source_row")["reason"].apply(" | ".join)
    expected = {
        2: "operator missing", 3: "lon is not a number (abc)", 4: "eirp_dbm is not finite",
        5: "height_m 301 is outside 0–300 m", 6: "azimuth_deg 361 is outside 0–360",
        7: "EIRP 95 dBm is outside 0–90 dBm", 8: "纬度/经度 appear swapped", 9: "outside China's extent",
        10: "not an EARFCN", 11: "unknown operator 'Vodafone'", 12: "unknown technology 'GSM'",
        13: "unknown environment 'ocean'", 15: "duplicate of", 16: "conflicting values", 17: "conflicting values",
        18: "unknown technology '=1+1'",
    }
    for row, text in expected.items():
        assert text in by_row[row], (row, by_row[row])
    assert set(by_row.index) == set(expected)
    # row 18 has three problems: three lines, one rejected row
    assert (result.rejects["source_row"] == 18).sum() == 3
    assert result.total_read == 18 and result.rejected_rows == 16
    summary = result.summary().set_index("operator")
    assert summary.loc["all", ["rows_read", "accepted", "rejected"]].tolist() == [18, 2, 16]
    assert summary.loc["CT", ["rows_read", "accepted", "rejected"]].tolist() == [16, 2, 14]
    assert summary.loc["unknown", "rejected"] == 2
    assert "height_m out of range ×2" in summary.loc["CT", "top_reasons"]


def test_boundary_tolerance_is_in_metres(tmp_path):
    outline = box(110.0, 30.0, 120.0, 40.0)
    # 0.03 deg of longitude at 35N = 2.74 km outside; 0.2 deg = 18.3 km outside
    rows = [["CT", "A", "A-1", "nbiot", "120.03", "35.0"], ["CT", "B", "B-1", "nbiot", "120.2", "35.0"],
            ["CT", "C", "C-1", "nbiot", "115.0", "35.0"]]
    path = _write_csv(tmp_path / "coast.csv", HEADER[:6], rows)
    result = read_submissions(path, outline=outline, boundary_tolerance_km=5.0)
    assert result.sectors["site_id"].tolist() == ["A", "C"]
    assert "outside China's national boundary by more than 5 km" in result.rejects["reason"].iloc[0]
    result = read_submissions(path, outline=outline, boundary_tolerance_km=2.0)
    assert result.sectors["site_id"].tolist() == ["C"]
    result = read_submissions(path, outline=outline, check_boundary=False)
    assert len(result.sectors) == 3


def test_operator_option_fills_blank_and_missing_column(tmp_path):
    path = _write_csv(tmp_path / "noop.csv", HEADER[1:6], [["A", "A-1", "nbiot", "116.4", "39.9"]])
    result = read_submissions(path, operator="中国广电", outline=CHINA_BOX)
    assert result.sectors["operator"].tolist() == ["CBN"]
    result = read_submissions(path, outline=CHINA_BOX)
    assert result.rejects["reason"].tolist() == ["operator missing (运营商 is blank and no --operator given)"]
    mixed = _write_csv(tmp_path / "mixed.csv", HEADER[:6], [["", "A", "A-1", "nbiot", "116.4", "39.9"],
                                                             ["CT", "B", "B-1", "nbiot", "116.5", "39.9"]])
    result = read_submissions(mixed, operator={str(mixed): "CU"}, outline=CHINA_BOX)
    assert result.sectors["operator"].tolist() == ["CU", "CT"]


def test_number_formats_band_tilt_and_crs_column(tmp_path):
    header = ["运营商", "站号", "小区号", "制式", "经度", "纬度", "频段", "挂高", "电下倾", "机械下倾", "坐标系"]
    rows = [
        ["CT", "A", "A-1", "NB-IoT", "116°24'00\"E", "39.9", "800M", "30m", "3", "2", ""],
        ["CT", "B", "B-1", "NB-IoT", "１１６.５", "39.9", "B99", "30", "", "", ""],
        ["CT", "C", "C-1", "NB-IoT", "116.6", "39.9", "", "30", "", "", "EPSG:3857"],
    ]
    path = _write_csv(tmp_path / "formats.csv", header, rows)
    result = read_submissions(path, outline=CHINA_BOX)
    s = result.sectors
    assert s["site_id"].tolist() == ["A"]
    assert s.geometry.x.iloc[0] == pytest.approx(116.4)
    assert (s["freq_mhz"].iloc[0], s["height_m"].iloc[0], s["downtilt_deg"].iloc[0]) == (875.0, 30.0, 5.0)
    reasons = result.rejects.set_index("source_row")["reason"]
    assert "unknown band 'B99' for NB-IoT" in reasons[2]
    assert "unknown coordinate system 'EPSG:3857'" in reasons[3]


def test_malformed_row_with_extra_fields_is_rejected(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text(",".join(HEADER[:6]) + "\nCT,A,A-1,nbiot,116.4,39.9\nCT,B,B-1,nbiot,116.5,39.9,oops,more\n"
                    "CT,C,C-1,nbiot,116.6\n", encoding="utf-8")
    result = read_submissions(path, outline=CHINA_BOX)
    assert result.sectors["site_id"].tolist() == ["A"]
    reasons = result.rejects.set_index("source_row")["reason"]
    assert "row has 8 fields but the header has 6" in reasons[2]
    assert "lat missing" in reasons[3]
    assert result.total_read == 3 and result.rejected_rows == 2


# ---------------------------------------------------------------- nothing lost (property)

CELL_TEXT = st.one_of(
    st.sampled_from(["", " ", "CT", "中国移动", "Vodafone", "NB-IoT", "RedCap", "GSM", "116.4", "39.9", "39.9",
                     "116.4", "abc", "inf", "nan", "-1", "400", "=1+1", "@x", "1", "0", "S1", "S1-1", "城区",
                     "gcj02", "火星坐标", "B8", "n78", "12345.0", "1e400", "，", "\"", "a,b", "x\ny"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=6),
)
COLUMN_SETS = st.lists(
    st.sampled_from(HEADER + ["crs", "environment", "band", "tx_power_dbm", "天线增益", "备注"]),
    min_size=2, max_size=12, unique=True,
).map(lambda cols: [*cols, *(c for c in ("lon", "lat") if c not in cols)])  # each column once


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(columns=COLUMN_SETS, data=st.data())
def test_accepted_plus_rejected_equals_rows_read(tmp_path_factory, columns, data):
    n_rows = data.draw(st.integers(0, 12))
    rows = [[data.draw(CELL_TEXT) for _ in columns] for _ in range(n_rows)]
    path = tmp_path_factory.mktemp("prop") / "t.csv"
    _write_csv(path, columns, rows)
    result = read_submissions(path, outline=CHINA_BOX)
    non_blank = sum(1 for row in rows if any(cell.strip() for cell in row))
    assert result.total_read == non_blank
    assert len(result.sectors) + result.rejected_rows == result.total_read
    assert len(_rows_accounted(result)) == result.total_read
    summary = result.summary().set_index("operator")
    assert summary.loc["all", "rows_read"] == result.total_read
    assert summary.drop(index="all")["rows_read"].sum() == result.total_read
    assert result.rejects["reason"].str.len().min() > 5 if len(result.rejects) else True


# ---------------------------------------------------------------- writers


def test_write_rejects_neutralises_formulas(tmp_path):
    result = read_submissions(DATA / "sectors_bad_rows.csv", outline=CHINA_BOX)
    path = write_rejects(result.rejects, tmp_path / "rejects.csv")
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    back = pd.read_csv(path, encoding="utf-8-sig", dtype=str, keep_default_na=False)
    assert list(back.columns) == ["source_file", "source_row", "column", "value", "reason"]
    values = back.loc[back["source_row"] == "18", "value"].tolist()
    assert values == ["'=1+1", "'-5", "'@SUM(1+1)"]
    assert not back.map(lambda v: str(v).startswith(("=", "+", "-", "@"))).any().any()
    assert neutralise_formulas(pd.DataFrame({"v": ["+86 10", "ok"]}))["v"].tolist() == ["'+86 10", "ok"]


def test_sectors_round_trip_and_no_clobbering(tmp_path):
    sectors = read_submissions(DATA / "sectors_gbk.csv", outline=CHINA_BOX).sectors
    path = write_sectors(sectors, tmp_path / "sectors.parquet")
    back = read_sectors(path)
    assert list(back.columns) == list(SECTOR_COLUMNS) and back.crs.to_epsg() == 4326
    assert back["site_id"].tolist() == sectors["site_id"].tolist()
    assert back["environment"].tolist() == ["dense_urban", "dense_urban", "suburban", "rural"]
    assert np.isnan(back["azimuth_deg"].iloc[2])
    with pytest.raises(FileOverwriteError):
        write_sectors(sectors, path)
    write_sectors(sectors, path, overwrite=True)
    (tmp_path / "manifest.json").write_text("{}")
    write_sectors(sectors, path)  # inside a run directory: the tool owns it
    with pytest.raises(SchemaError, match="lacks columns"):
        write_sectors(sectors.drop(columns=["tech"]), tmp_path / "x.parquet")
    with pytest.raises(InputReadError):
        read_sectors(tmp_path / "missing.parquet")


def test_real_national_outline_with_coastal_tolerance(tmp_path):
    """Against coverage.boundaries.national_outline(): inland, offshore and foreign points."""
    boundaries = pytest.importorskip("coverage.boundaries")
    outline = boundaries.national_outline()
    rows = [
        ["CT", "BJ", "BJ-1", "nbiot", "116.3975", "39.9087"],   # Tiananmen
        ["CT", "HN", "HN-1", "nbiot", "109.50", "18.20"],       # Sanya, Hainan
        ["CT", "TK", "TK-1", "nbiot", "126.50", "37.50"],       # Seoul area: inside the extent, not China
        ["CT", "SEA", "SEA-1", "nbiot", "124.00", "30.00"],     # East China Sea, ~150 km offshore
    ]
    path = _write_csv(tmp_path / "outline.csv", HEADER[:6], rows)
    result = read_submissions(path, outline=outline)
    assert result.sectors["site_id"].tolist() == ["BJ", "HN"]
    assert result.rejects["source_row"].tolist() == [3, 4]
    assert result.rejects["reason"].str.contains("national boundary").all()


def test_bd09_rows_are_converted_to_the_same_point_as_their_wgs84_twin(tmp_path):
    from coverage.chinacrs import wgs84_to_bd09

    blon, blat = wgs84_to_bd09(116.377817, 39.911954)
    path = tmp_path / "bd09.csv"
    _write_csv(path, [*HEADER[:6], "crs"], [
        ["CT", "X", "X-1", "nbiot", repr(float(blon)), repr(float(blat)), "百度坐标"],
        ["CT", "Y", "Y-1", "nbiot", "116.377817", "39.911954", "wgs84"],
    ])
    s = read_submissions(path, outline=CHINA_BOX).sectors
    np.testing.assert_allclose(s.geometry.x, [116.377817, 116.377817], atol=1e-7)
    np.testing.assert_allclose(s.geometry.y, [39.911954, 39.911954], atol=1e-7)
