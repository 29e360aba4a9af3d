"""The site's open data: the H3 downloads and the 2027 targets page.

Layout added to ``out_dir``::

    downloads/h3_res8_<tech>.csv, .parquet    both editions: H3 resolution 8, every operator
    downloads/h3_res9_<tech>_<op>.csv, .parquet  operator edition only: resolution 9, that operator
    downloads/targets.csv, targets_summary.csv   the 2027 targets (sums over whole units)
    targets.html                                 national and provincial progress, every unit

Each H3 CSV is there when the run has it (``[h3] csv``) or, for an operator's own rows,
when they fit one spreadsheet sheet; the Parquet files always.

The public edition never carries resolution 9 (≈ 0.1 km², finer than the public
raster's 500 m): the aggregate stage's ``stats/h3_res9_<tech>.*`` stay in the run.
Resolution 8 (≈ 0.74 km²) is coarser than the public raster.
"""

from __future__ import annotations

import html
import shutil
from pathlib import Path

import pandas as pd

from coverage.files import atomic_output
from coverage.h3hex import H3_RESOLUTION, PUBLIC_RESOLUTION, h3_paths, write_operator_rows
from coverage.layout import ALL_OPERATORS
from coverage.publish import layers
from coverage.targets import (
    BUILT_UP_LANDCOVER,
    read_targets,
    read_targets_rules,
    targets_paths,
)

DOWNLOADS = "downloads"
TARGETS_PAGE = "targets.html"


def has_targets(opts) -> bool:
    """Whether the run has targets tables (the national page then links the targets page)."""
    return all(p.exists() for p in targets_paths(opts.run))


def write_downloads(opts, written: dict[str, int]) -> list[str]:
    """Copy the H3 and targets tables of the run into ``downloads/``; the relative paths written."""
    out = opts.out / DOWNLOADS
    names = []
    for tech in opts.techs:
        paths = h3_paths(opts.run, tech)
        for source in (paths.res8_csv, paths.res8_parquet):
            if Path(source).exists():
                names.append(_copy(source, out / Path(source).name))
            else:  # not in this run (``[h3] csv``): no copy of an earlier run's left beside the new files
                (out / Path(source).name).unlink(missing_ok=True)
        if opts.edition == "operator" and opts.operator and Path(paths.res9_parquet).exists():
            names.extend(_own_res9(paths.res9_parquet, out, tech, opts.operator))
    for source in targets_paths(opts.run):
        if source.exists():
            names.append(_copy(source, out / source.name))
    for name in names:
        written[f"{DOWNLOADS}/{name}"] = (out / name).stat().st_size
    return names


def _copy(source, target: Path) -> str:
    with atomic_output(target, overwrite=True) as tmp:
        shutil.copyfile(source, tmp)
    return target.name


def _own_res9(source, out: Path, tech: str, operator: str) -> list[str]:
    """The operator's own resolution-9 rows (never another operator's, nor ``all``), streamed; the
    CSV only when they fit a spreadsheet sheet (``csv="auto"`` of :func:`coverage.h3hex.write_h3`)."""
    stem = f"h3_res{H3_RESOLUTION}_{tech}_{operator.lower()}"
    write_operator_rows(source, out / f"{stem}.parquet", out / f"{stem}.csv", operator)
    return [name for name in (f"{stem}.parquet", f"{stem}.csv") if (out / name).exists()]


# ---------------------------------------------------------------- the targets page

_SUMMARY_HEAD = (
    ("scope_label", "范围 scope"), ("operator_label", "运营商 operator"), ("counties", "县级单元 county-level units"),
    ("counties_at_scale", "规模覆盖 at scale"), ("counties_at_scale_pct", "占比 share %"),
    ("prefectures_at_scale", "地级市规模覆盖 prefectures at scale"), ("built_up_km2", "建成区 built-up km²"),
    ("redcap_built_up_coverage_pct", "RedCap建成区覆盖 % RedCap built-up coverage"),
    ("nbiot_built_up_deep_coverage_pct", "NB-IoT建成区深度覆盖 % NB-IoT deep built-up"),
    ("townships_reached_pct", "RedCap通达乡镇 % townships reached"),
)
_UNIT_HEAD = (
    ("code", "代码 code"), ("name", "名称 name"), ("level_label", "级别 level"), ("province", "省 province"),
    ("built_up_km2", "建成区 built-up km²"),
    ("redcap_built_up_coverage_pct", "RedCap建成区覆盖 % RedCap built-up coverage"),
    ("at_scale_label", "规模覆盖 at scale"),
    ("nbiot_built_up_deep_coverage_pct", "NB-IoT建成区深度覆盖 % NB-IoT deep built-up"),
    ("townships", "乡镇 townships"), ("townships_reached_redcap", "RedCap通达 reached"),
    ("townships_reached_pct", "通达 % reached"),
)
_PCT_CELLS = ("counties_at_scale_pct", "redcap_built_up_coverage_pct", "nbiot_built_up_deep_coverage_pct",
              "townships_reached_pct")


def write_targets_page(opts, written: dict[str, int], downloads: dict[str, int] | None = None) -> bool:
    """Write ``targets.html`` from the run's targets tables; False (nothing written) when it has none."""
    from coverage.publish.site import (
        EDITION_LABELS,
        TITLE_EN,
        TITLE_ZH,
        _esc,
        _method_note,
        _write_page,
    )

    tables = read_targets(opts.run.root)
    if tables is None:
        return False
    units, summary = tables
    rules_used = read_targets_rules(opts.run.root) or {}
    at_scale_pct = rules_used.get("redcap_at_scale_pct")
    township_reached_pct = rules_used.get("township_reached_pct")
    source = str(units["built_up_source"].dropna().iloc[0]) if units["built_up_source"].notna().any() else ""
    if source == BUILT_UP_LANDCOVER:
        built_zh = "建成区取自本次预测所用土地覆盖数据的建设用地类（如 MODIS IGBP 13 城市与建设用地）。"
        built_en = ("Built-up area: the built-up classes of the land cover this run predicted with "
                    "(e.g. MODIS IGBP 13 'Urban and Built-up Lands').")
    else:
        built_zh = "本次预测未用土地覆盖数据：建成区为报送为密集城区/一般城区的扇区周边的像元。"
        built_en = ("This run predicted without a land cover: the built-up area is the pixels near sectors "
                    "submitted as dense urban or urban.")
    rules = []
    if at_scale_pct is not None:
        rules.append(f"规模覆盖：RedCap 覆盖建成区 ≥ {at_scale_pct:g} %。At scale: RedCap covers ≥ {at_scale_pct:g} % "
                     "of the built-up area.")
    if township_reached_pct is not None:
        rules.append(f"乡镇通达：RedCap 覆盖乡镇面积 ≥ {township_reached_pct:g} %。A township is reached when RedCap "
                     f"covers ≥ {township_reached_pct:g} % of its area.")
    legend = "".join(f'<span class="row"><span class="swatch" style="background:{c}"></span>{_esc(n)}</span> '
                     for c, n in zip(layers.CLASS_COLOURS, layers.CLASS_NAMES, strict=True))
    national = summary[summary["scope"] == "national"]
    provinces = summary[(summary["scope"] == "province") & (summary["operator"] == ALL_OPERATORS)]
    unit_rows = units[units["operator"] == ALL_OPERATORS].sort_values(["level", "code"], ascending=[False, True])
    downloads = "".join(f'<li><a href="{DOWNLOADS}/{_esc(name)}">{_esc(name)}</a></li>'
                        for name in sorted(Path(p).name for p in (downloads or {})))
    title = f"2027年目标进展 · {TITLE_ZH} 2027 targets · {TITLE_EN}"
    text = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{_esc(title)}</title>
<link rel="stylesheet" href="assets/covmap.css"></head>
<body class="covmap-page">
<h1>{_esc(TITLE_ZH)} · 2027年目标进展 <span class="en">{_esc(TITLE_EN)} · 2027 targets</span></h1>
<p>数据日期 Data date: {_esc(opts.info.data_date)} · 数据版本 Data version: {_esc(opts.info.data_version)} ·
{_esc(EDITION_LABELS[opts.edition])} · <a href="index.html">全国地图 National map</a></p>
<p>县级及以上城市：每个县级单元（区、县、县级市）及其所属地级市（由其县级单元汇总）。County-level-and-above
cities: every county-level unit (district, county, county-level city) and its prefecture (summed from its
county-level units in this run).</p>
<p>{_esc(built_zh)} {_esc(built_en)}</p>
{''.join(f'<p>{_esc(r)}</p>' for r in rules)}
<h2>全国 National</h2>{_table(national.assign(scope_label="全国 national"), _SUMMARY_HEAD)}
<h2>各省 Provinces</h2>{_table(provinces.assign(scope_label=provinces["province"]), _SUMMARY_HEAD)}
<h2>县级及以上城市 Cities (all operators)</h2>{_table(_unit_labels(unit_rows), _UNIT_HEAD)}
<p class="covmap-legend">百分比单元格颜色 Percentage cell colours: {legend}</p>
<h2>下载 Downloads</h2><ul>{downloads}</ul>
<p>H3 分辨率{PUBLIC_RESOLUTION}（约0.74 km²）六边形：按美国FCC 5G Fund规则，由其分辨率11子六边形中心判定。
H3 resolution-{PUBLIC_RESOLUTION} hexagons (≈ 0.74 km²), by the FCC 5G Fund rule on their resolution-11 centres.</p>
<h2>方法说明 Method</h2><div class="covmap-method">{_method_note(opts, overlay=False)}</div>
</body></html>"""
    _write_page(opts, TARGETS_PAGE, text, written)
    return True


def _unit_labels(frame: pd.DataFrame) -> pd.DataFrame:
    levels = {"county": "县级 county-level", "prefecture": "地级市 prefecture"}
    at_scale = frame["redcap_at_scale"].map({True: "是 yes", False: "否 no", "True": "是 yes", "False": "否 no"})
    return frame.assign(level_label=frame["level"].map(levels).fillna(frame["level"]),
                        at_scale_label=at_scale.fillna("—"))


def _table(frame: pd.DataFrame, head) -> str:
    from coverage.publish.site import _op_labels

    ops = _op_labels()
    frame = frame.assign(operator_label=frame["operator"].map(ops).fillna(frame["operator"])) \
        if "operator" in frame.columns else frame
    rows = []
    for _, row in frame.iterrows():
        cells = []
        for key, _ in head:
            value = row.get(key)
            style = ""
            if key in _PCT_CELLS and pd.notna(value):
                colour = layers.CLASS_COLOURS[layers.class_index(float(value))]
                style = f' style="background:{colour};color:{"#000" if colour in ("#ffea46", "#bcaf6f") else "#fff"}"'
            cells.append(f"<td{style}>{html.escape(_fmt(key, value))}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>")
    header = "".join(f"<th>{html.escape(label)}</th>" for _, label in head)
    return f'<table class="covmap-table"><tr>{header}</tr>{"".join(rows)}</table>'


def _fmt(key: str, value) -> str:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "—"
    if key.endswith("_pct"):
        return f"{float(value):.1f}"
    if key.endswith("_km2"):
        return f"{float(value):,.2f}"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


__all__ = ["DOWNLOADS", "TARGETS_PAGE", "write_downloads", "write_targets_page"]
