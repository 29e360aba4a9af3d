"""A submission naming one column twice is refused, naming the column and the file.

Before, the reader took the first of two `lon` columns (or `lon` and its alias 经度) and
dropped the other without a word: a sheet with GCJ-02 and WGS-84 longitudes side by side
lost one silently.
"""

from __future__ import annotations

import csv

import geopandas as gpd
import pandas as pd
import pytest
from shapely.geometry import Point, box

from cli import main
from coverage.errors import RepeatedColumnError, SchemaError
from coverage.ingest import read_submissions

CHINA_BOX = box(73.0, 3.0, 136.0, 54.0)
ROWS = [["CT", "S1", "S1-1", "NB-IoT", "116.40", "116.41", "39.90"],
        ["CT", "S2", "S2-1", "NB-IoT", "116.50", "116.51", "39.95"]]


def _csv(path, header, rows=ROWS, encoding="utf-8"):
    with open(path, "w", encoding=encoding, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@pytest.mark.parametrize(("header", "named"), [
    (["operator", "site_id", "cell_id", "tech", "lon", "lon", "lat"], "lon given by 'lon' and 'lon'"),
    (["运营商", "站号", "小区ID", "制式", "lon", "经度", "纬度"], "lon given by 'lon' and '经度'"),
    (["运营商", "站号", "小区ID", "制式", "经度", "LONGITUDE", "纬度"], "lon given by '经度' and 'LONGITUDE'"),
])
def test_csv_with_a_repeated_column_is_refused(tmp_path, header, named):
    path = _csv(tmp_path / "ct.csv", header)
    with pytest.raises(RepeatedColumnError, match=named) as raised:
        read_submissions(path, outline=CHINA_BOX)
    assert str(path) in str(raised.value)
    assert isinstance(raised.value, SchemaError)


def test_a_row_longer_than_the_header_takes_the_slow_path_and_is_refused_too(tmp_path):
    rows = [*ROWS, ["CT", "S3", "S3-1", "NB-IoT", "116.6", "116.61", "39.9", "extra field"]]
    path = _csv(tmp_path / "ct.csv", ["operator", "site_id", "cell_id", "tech", "lon", "经度", "lat"], rows)
    with pytest.raises(RepeatedColumnError, match="lon given by 'lon' and '经度'"):
        read_submissions(path, outline=CHINA_BOX)


def test_gbk_csv_names_every_repeated_column(tmp_path):
    header = ["运营商", "站号", "小区ID", "制式", "经度", "经度", "纬度"]
    rows = [[*row[:6], row[6]] for row in ROWS]
    path = _csv(tmp_path / "cm.csv", [*header, "latitude"], [[*r, "39.9"] for r in rows], encoding="gbk")
    with pytest.raises(RepeatedColumnError) as raised:
        read_submissions(path, outline=CHINA_BOX)
    message = str(raised.value)
    assert "lon given by '经度' and '经度'" in message and "lat given by '纬度' and 'latitude'" in message


def test_xlsx_with_a_repeated_column_is_refused(tmp_path):
    path = tmp_path / "cm.xlsx"
    frame = pd.DataFrame(ROWS, columns=["运营商", "站号", "小区ID", "制式", "lon", "经度", "纬度"])
    frame.to_excel(path, index=False, engine="openpyxl")
    with pytest.raises(RepeatedColumnError, match="lon given by 'lon' and '经度'"):
        read_submissions(path, outline=CHINA_BOX)


def test_distinct_columns_are_still_read(tmp_path):
    """The check does not refuse a well-formed file (经度 and 纬度 once each, an unknown 备注 twice)."""
    path = _csv(tmp_path / "ct.csv", ["operator", "site_id", "cell_id", "tech", "lon", "备注", "lat"])
    assert len(read_submissions(path, outline=CHINA_BOX).sectors) == 2


@pytest.mark.parametrize(("suffix", "driver"), [(".geojson", "GeoJSON"), (".gpkg", "GPKG"), (".shp", None)])
def test_vector_layer_with_an_alias_of_a_column_is_refused(tmp_path, suffix, driver):
    """Vector formats cannot repeat a field name, but they can carry a column and its alias."""
    gdf = gpd.GeoDataFrame({"operator": ["CT"], "site_id": ["A"], "cell_id": ["A-1"], "tech": ["nbiot"],
                            "height_m": [30.0], "挂高": [35.0]},
                           geometry=[Point(116.40, 39.90)], crs="EPSG:4326")
    path = tmp_path / f"sites{suffix}"
    gdf.to_file(path, driver=driver)
    with pytest.raises(RepeatedColumnError, match="height_m given by 'height_m' and '挂高'") as raised:
        read_submissions(path, outline=CHINA_BOX)
    assert str(path) in str(raised.value)


def test_geojson_with_a_repeated_property_key_is_refused(tmp_path):
    """GDAL's GeoJSON reader keeps the last of two equal keys silently; covmap reads the text too."""
    path = tmp_path / "sites.geojson"
    path.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", '
                    '"geometry": {"type": "Point", "coordinates": [116.4, 39.9]}, "properties": '
                    '{"operator": "CT", "site_id": "A", "cell_id": "A-1", "tech": "nbiot", '
                    '"height_m": 30, "height_m": 35}}]}', encoding="utf-8")
    with pytest.raises(RepeatedColumnError, match="height_m given by 'height_m' and 'height_m'"):
        read_submissions(path, outline=CHINA_BOX)


def test_cli_validate_exits_2_with_one_line_naming_the_column_and_file(runner, tmp_path):
    path = _csv(tmp_path / "ct.csv", ["operator", "site_id", "cell_id", "tech", "lon", "经度", "lat"])
    out = tmp_path / "run"
    result = runner.invoke(main, ["validate", str(path), "--out", str(out)])
    assert result.exit_code == 2
    assert "lon given by 'lon' and '经度'" in result.output and str(path) in result.output
    assert "Traceback" not in result.output
    assert not (out / "sectors.parquet").exists()
