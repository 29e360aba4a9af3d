"""The submission schema: one column table, header matching, normalisers, Markdown."""

from __future__ import annotations

from collections import Counter

import pytest

from coverage.radio.profiles import band_to_freq_mhz, sector_defaults
from coverage.schema import (
    COLUMN_BY_NAME,
    COLUMNS,
    REQUIRED_COLUMNS,
    SECTOR_COLUMNS,
    TECH_FREQ_RANGES_MHZ,
    column_for_header,
    fold_header,
    match_columns,
    normalise_environment,
    normalise_operator,
    normalise_tech,
    schema_markdown,
)


def test_no_header_matches_two_columns():
    keys = Counter(k for col in COLUMNS for k in {f for key in (col.name, *col.aliases) for f in fold_header(key)})
    assert [k for k, n in keys.items() if n > 1] == []


@pytest.mark.parametrize(
    ("header", "name"),
    [
        ("运营商", "operator"), ("站号", "site_id"), ("基站编号", "site_id"), ("基站ID", "site_id"),
        ("小区号", "cell_id"), ("小区编号", "cell_id"), ("CGI", "cell_id"), ("制式", "tech"), ("网络制式", "tech"),
        ("经度", "lon"), ("纬度", "lat"), ("Longitude", "lon"), ("频段", "band"), ("频点", "freq_mhz"),
        ("中心频点(MHz)", "freq_mhz"), ("挂高", "height_m"), ("天线挂高（m）", "height_m"), ("方位角", "azimuth_deg"),
        ("下倾角", "downtilt_deg"), ("总下倾角", "downtilt_deg"), ("电下倾", "electrical_downtilt_deg"),
        ("机械下倾", "mechanical_downtilt_deg"), ("发射功率(dBm)", "tx_power_dbm"), ("天线增益", "antenna_gain_dbi"),
        ("EIRP", "eirp_dbm"), ("等效全向辐射功率", "eirp_dbm"), ("水平半功率角", "beamwidth_deg"),
        ("水平波瓣宽度", "beamwidth_deg"), ("场景", "environment"), ("覆盖场景", "environment"), ("坐标系", "crs"),
        (" height_m ", "height_m"), ("备注", None),
    ],
)
def test_real_gongcan_headers(header, name):
    assert column_for_header(header) == name


def test_match_columns_keeps_first_and_drops_unknown():
    assert match_columns(["小区ID", "CGI", "经度", "备注"]) == {"cell_id": "小区ID", "lon": "经度"}


def test_existing_normalisers_unchanged():
    assert [normalise_operator(v) for v in ("中国电信", "China Mobile", "cu", "广电", "x")] == ["CT", "CM", "CU", "CBN",
                                                                                              None]
    assert [normalise_tech(v) for v in ("NB", "NBIOT", "5G RedCap", "redcap", "LTE")] == ["nbiot", "nbiot", "redcap",
                                                                                         "redcap", None]


@pytest.mark.parametrize(
    ("value", "env"),
    [("密集城区", "dense_urban"), ("一般城区", "urban"), ("城区", "urban"), ("郊区", "suburban"), ("农村", "rural"),
     ("乡村", "rural"), ("Dense Urban", "dense_urban"), ("ocean", None)],
)
def test_normalise_environment(value, env):
    assert normalise_environment(value) == env


def test_table_is_complete_and_consistent():
    names = [c.name for c in COLUMNS]
    assert len(names) == len(set(names))
    assert set(REQUIRED_COLUMNS) <= set(names)
    for col in COLUMNS:
        assert col.kind in ("text", "id", "number") and col.description
        if col.valid_min is not None:
            assert col.valid_min < col.valid_max
        if col.profile_key is not None:  # every profile default exists for both technologies
            assert all(col.profile_key in sector_defaults(t) for t in ("nbiot", "redcap"))
    assert (COLUMN_BY_NAME["height_m"].valid_min, COLUMN_BY_NAME["height_m"].valid_max) == (0.0, 300.0)
    assert set(SECTOR_COLUMNS) - set(names) == {"source_file", "source_row", "geometry"}


def test_profile_bands_fall_inside_schema_ranges():
    for tech, ranges in TECH_FREQ_RANGES_MHZ.items():
        freq = sector_defaults(tech)["freq_mhz"]
        assert any(lo <= freq <= hi for lo, hi in ranges)
    for tech, band in (("nbiot", "B5"), ("nbiot", "B8"), ("nbiot", "B3"), ("redcap", "n28"), ("redcap", "n1"),
                       ("redcap", "n41"), ("redcap", "n78")):
        freq = band_to_freq_mhz(tech, band)
        assert any(lo <= freq <= hi for lo, hi in TECH_FREQ_RANGES_MHZ[tech]), (tech, band)


def test_schema_markdown():
    text = schema_markdown()
    lines = text.splitlines()
    assert lines[0].startswith("| column |")
    assert sum(line.startswith("| `") for line in lines) == len(COLUMNS)
    assert "挂高" in text and "0–300 m" in text and "824–960, 1710–1880 MHz" in text
