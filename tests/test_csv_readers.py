"""The CSV readers agree: Arrow's (the fast path), pandas' and the csv module's give the same text.

``coverage.tables._read_csv`` tries Arrow's reader first, then pandas' C parser, then
the csv module (which reports rows with extra fields). Every file below is read by
each reader that takes it, in every encoding the intake accepts; all must give the
same columns, values, dtypes and row numbers as the csv-module reader, the
reference.
"""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import logging

import pandas as pd
import pytest

from coverage import tables
from coverage.lookup import match_point_columns

CASES = {
    "plain": "经度,纬度,名称\n118.1,24.5,a\n118.2,24.6,b\n",
    "crlf": "经度,纬度,名称\r\n118.1,24.5,a\r\n118.2,24.6,b\r\n",
    "cr only": "经度,纬度,名称\r118.1,24.5,a\r118.2,24.6,b\r",
    "quoted separators and quotes": '经度,纬度,名称\n118.1,24.5,"a,b"\n118.2,24.6,"say ""hi"""\n',
    "quotes inside a field": '经度,纬度,名称\n118.1,24.5,ab"c\n118.2,24.6,"ab"cd\n',
    "spaces kept": '经度,纬度,名称\n 118.1 , 24.5 , a \n118.2,24.6,  "q" \n',
    "quoted line break": '经度,纬度,名称\n118.1,24.5,"line1\nline2"\n118.2,24.6,b\n',
    "row of blank fields": "经度,纬度,名称\n118.1,24.5,a\n,,\n118.2,24.6,b\n",
    "row of blanks and tabs": "经度,纬度,名称\n118.1,24.5,a\n , ,\t\n118.2,24.6,b\n",
    "empty line": "经度,纬度,名称\n118.1,24.5,a\n\n118.2,24.6,b\n",
    "empty line crlf": "经度,纬度,名称\r\n118.1,24.5,a\r\n\r\n\r\n118.2,24.6,b\r\n",
    "empty lines at the end": "经度,纬度,名称\n118.1,24.5,a\n118.2,24.6,b\n\n\n",
    "no final line break": "经度,纬度,名称\n118.1,24.5,a\n118.2,24.6,b",
    "title rows": "报表\n日期,2024\n\n经度,纬度,名称\n118.1,24.5,a\n",
    "empty cells": "经度,纬度,名称,备注\n118.1,,a,\n,24.6,,\n",
    "tabs": "经度\t纬度\t名称\n118.1\t24.5\ta b\n",
    "semicolons": "经度;纬度;名称\n118,1;24,5;a\n",
    "quoted header": '"经度","纬度","名称"\n118.1,24.5,a\n',
    "unicode spaces": "经度,纬度,名称\n118.1,24.5,\u3000x\u3000\n\u3000,\u00a0,\u2003\n",
    "line of spaces": "经度,纬度,名称\n118.1,24.5,a\n   \n118.2,24.6,b\n",
    "short row": "经度,纬度,名称\n118.1,24.5\n118.2,24.6,b\n",
    "trailing separator": "经度,纬度,名称\n118.1,24.5,a,\n118.2,24.6,b\n",
    "header only": "经度,纬度,名称\n",
}
ENCODINGS = ("utf-8", "utf-8-sig", "gb18030", "utf-16")


def _encoded(text: str, encoding: str) -> bytes:
    return codecs.BOM_UTF8 + text.encode("utf-8") if encoding == "utf-8-sig" else text.encode(encoding)


def _inputs(raw: bytes):
    text, encoding = tables._decode_with_encoding(raw, "points.csv")
    sep = tables._sniff_delimiter(text)
    head = list(itertools.islice(csv.reader(io.StringIO(text[:200_000], newline=""), delimiter=sep), 10))
    return text, encoding, sep, head, tables._find_header(head, "points.csv", match_point_columns)


def _reference(text: str, sep: str) -> tables.RawTable:
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=sep))
    return tables._table_from_rows(rows, "points.csv", match_point_columns)


def _same(table: tables.RawTable, reference: tables.RawTable) -> None:
    assert table.headers == reference.headers
    assert list(table.frame.columns) == list(reference.frame.columns)
    assert table.frame["source_row"].tolist() == reference.frame["source_row"].tolist()
    for col in reference.frame.columns.drop("source_row"):
        assert table.frame[col].astype(object).tolist() == reference.frame[col].astype(object).tolist(), col
    assert table.problems == reference.problems


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("case", list(CASES))
def test_each_reader_gives_the_csv_module_text(case, encoding):
    raw = _encoded(CASES[case], encoding)
    text, codec, sep, head, h = _inputs(raw)
    reference = _reference(text, sep)
    arrow = tables._arrow_csv(raw, text, codec, sep, h, head, "points.csv", match_point_columns)
    pandas = tables._fast_csv(text, sep, h, head[h], "points.csv", match_point_columns)
    for table in (arrow, pandas):
        if table is not None:
            _same(table, reference)
    if arrow is not None and pandas is not None:  # the two fast readers give the same dtypes too
        assert list(arrow.frame.dtypes) == list(pandas.frame.dtypes)


@pytest.mark.parametrize("case", ["plain", "crlf", "quoted line break", "empty line", "title rows"])
def test_regular_files_take_the_arrow_reader(case, tmp_path, caplog):
    path = tmp_path / "points.csv"
    path.write_bytes(_encoded(CASES[case], "utf-8"))
    with caplog.at_level(logging.DEBUG, logger="coverage.tables"):
        table = tables.read_raw_table(path, match_point_columns)
    assert "Arrow reader" in caplog.text
    assert pd.api.types.is_string_dtype(table.frame["lon"])


def test_empty_lines_keep_the_row_numbers_after_them(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("经度,纬度,名称\r\n118.1,24.5,a\r\n\r\n\r\n118.2,24.6,b\r\n", encoding="gbk")
    table = tables.read_raw_table(path, match_point_columns)
    assert table.frame["source_row"].tolist() == [1, 4]
    assert table.frame["name"].tolist() == ["a", "b"]


def test_a_row_with_extra_fields_is_still_reported(tmp_path):
    path = tmp_path / "points.csv"
    path.write_text("经度,纬度,名称\n118.1,24.5,a,extra\n118.2,24.6,b\n", encoding="utf-8")
    table = tables.read_raw_table(path, match_point_columns)
    assert table.frame["source_row"].tolist() == [1, 2]
    assert [p[1:4] for p in table.problems] == [("(row)", "extra", "row has 4 fields but the header has 3")]
