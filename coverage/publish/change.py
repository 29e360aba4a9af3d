"""The "change since <data date>" pages: per-county change of coverage on a diverging legend.

Written by :func:`coverage.publish.write_site` when it is given the folder of a
comparison (``covmap compare``, or ``RUN/change`` of ``covmap build --previous``)::

    change.html                    every county of the comparison
    provinces/<code>_change.html   one province's counties

Each county is coloured by its change of coverage (or deep coverage) in
percentage points, new run − old run, for the technology and operator chosen;
its tooltip adds the gap area closed and opened (km²). These are figures of whole
counties, derived from the coverage the public edition already shows. The counts
of sites added and removed are in the operator edition only, and only the
operator's own: the public edition shows no site or sector counts anywhere.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from coverage.compare import CHANGE_CLOSED, CHANGE_OPENED, read_comparison
from coverage.errors import InputReadError
from coverage.layout import layer_key
from coverage.publish import layers
from coverage.schema import TECH_IDS

log = logging.getLogger(__name__)

#: Figures per technology × operator in a unit's array: (key, column suffix in change.gpkg).
CHANGE_FIGURES: tuple[tuple[str, str], ...] = (
    ("coverage", "coverage_change_pp"), ("deep", "deep_coverage_change_pp"),
    ("closed", "gap_closed_km2"), ("opened", "gap_opened_km2"),
    ("sites_added", "sites_added"), ("sites_removed", "sites_removed"),
)
#: Figures that only the operator edition carries, for its own operator.
OPERATOR_ONLY_FIGURES = ("sites_added", "sites_removed")
#: Figures a unit can be coloured by (the others are in the tooltip).
COLOUR_FIGURES = ("coverage", "deep")

CHANGE_METRIC_LABELS = {
    "coverage": "覆盖率变化 coverage change", "deep": "深度覆盖率变化 deep coverage change",
    "closed": "缺口消除 gap closed", "opened": "新增缺口 gap opened",
    "sites_added": "新增站点 sites added", "sites_removed": "减少站点 sites removed",
}
CHANGE_METRIC_UNITS = {"coverage": " pp", "deep": " pp", "closed": " km²", "opened": " km²",
                       "sites_added": "", "sites_removed": ""}

#: Upper edges of the change classes, percentage points: a loss of more than 10, 2–10,
#: up to 2; no change (|Δ| < 0.05, which rounds to 0.0 on the page); a gain up to 2, 2–10, more.
CHANGE_BREAKS_PP: tuple[float, ...] = (-10.0, -2.0, -0.05, 0.05, 2.0, 10.0)
#: ColorBrewer RdBu, 7 classes (colour-blind safe diverging scheme; losses red, gains blue).
CHANGE_COLOURS: tuple[str, ...] = ("#b2182b", "#ef8a62", "#fddbc7", "#f7f7f7", "#d1e5f0", "#67a9cf", "#2166ac")
CHANGE_NAMES: tuple[str, ...] = ("≤ −10 pp", "−10 … −2 pp", "−2 … −0.1 pp", "0 无变化 no change",
                                 "+0.1 … +2 pp", "+2 … +10 pp", "≥ +10 pp")

#: RGBA of the county pages' change overlay (RdBu's ends); unchanged cells are transparent.
CHANGE_OVERLAY_RGBA: dict[int, tuple[int, int, int, int]] = {
    CHANGE_OPENED: (178, 24, 43, 200),
    CHANGE_CLOSED: (33, 102, 172, 200),
}
CHANGE_OVERLAY_LABELS = {CHANGE_OPENED: "新增缺口 gap opened", CHANGE_CLOSED: "缺口消除 gap closed"}

NATIONAL_PAGE = "change.html"


def province_page(code: str) -> str:
    """Relative path of a province's change page (from the site's root)."""
    return f"provinces/{code}_change.html"


def change_keys() -> list[str]:
    """Keys of a unit's figures array, in order: ``nbiot_all_coverage`` …

    Examples
    --------
    >>> change_keys()[:3]
    ['nbiot_all_coverage', 'nbiot_all_deep', 'nbiot_all_closed']
    """
    return [f"{tech}_{op}_{key}" for tech in TECH_IDS for op in layers.OPERATOR_KEYS for key, _ in CHANGE_FIGURES]


def read_change_units(change_dir) -> tuple[dict, object]:
    """``compare.json`` and the ``county`` layer of ``change.gpkg`` (EPSG:4326) of a comparison.

    Raises
    ------
    IncompleteRunError
        The folder is not a finished comparison.
    InputReadError
        ``change.gpkg`` cannot be read.
    """
    import geopandas as gpd

    info = read_comparison(change_dir)
    path = Path(change_dir) / "change.gpkg"
    try:
        counties = gpd.read_file(path, layer="county")
    except Exception as exc:  # pyogrio raises several types
        raise InputReadError(f"{path} layer 'county' cannot be read: {exc}") from exc
    for column in ("code", "province_code"):
        counties[column] = counties[column].astype(str)
    return info, counties.to_crs(4326)


def since_label(info: dict) -> str:
    """The previous run's data date (or its id when it has none)."""
    old = info.get("old") or {}
    return str(old.get("data_date") or old.get("run_id") or "the previous run")


def change_geojson(frame, tolerance_deg: float, decimals: int, gcj02: bool, clearance,
                   own_operator: str | None) -> dict:
    """Units with their change figures (properties as :func:`layers.units_geojson`'s).

    ``own_operator`` (a code, operator edition) keeps that operator's site counts;
    every other operator's, and all of them without it, are None.
    """
    geoms = layers.display_geometries(frame.geometry.values, tolerance_deg, decimals, gcj02, clearance)
    own = own_operator.lower() if own_operator else None
    columns = []
    for tech in TECH_IDS:
        for op in layers.OPERATOR_KEYS:
            for key, suffix in CHANGE_FIGURES:
                column = f"{tech}_{op}_{suffix}"
                hidden = key in OPERATOR_ONLY_FIGURES and op != own
                columns.append(column if column in frame.columns and not hidden else None)
    features = []
    for geom, (_, row) in zip(geoms, frame.iterrows(), strict=True):
        if geom is None or geom.is_empty:
            continue
        values = []
        for column in columns:
            value = None if column is None else row[column]
            values.append(None if value is None or (isinstance(value, float) and math.isnan(value))
                          else round(float(value), 1))
        props = {"c": str(row.get("code", "")), "n": str(row.get("name", "") or ""),
                 "p": str(row.get("province", "") or ""), "pc": str(row.get("province_code", "") or ""), "v": values}
        features.append({"type": "Feature", "properties": props, "geometry": _mapping(geom)})
    return {"type": "FeatureCollection", "features": features}


def county_overlay(change_dir, tech: str, geometry, publish_resolution_m: float, gcj02: bool):
    """The gaps closed and opened (all operators) inside one county as an overlay, or None.

    Drawn like the class overlay: the mode of each ``publish_resolution_m`` cell
    (so a change smaller than about half a cell does not show), unchanged cells
    transparent.
    """
    path = Path(change_dir) / "raster" / f"{layer_key(tech)}_change.tif"
    return layers.class_overlay(path, geometry, publish_resolution_m, gcj02, palette=CHANGE_OVERLAY_RGBA)


def overlay_legend_html(since: str) -> str:
    """Legend rows of the county pages' change overlay."""
    import html

    rows = "".join(
        f'<div class="row"><span class="swatch" style="background:rgba({r},{g},{b},{a / 255:.2f})"></span>'
        f"{html.escape(CHANGE_OVERLAY_LABELS[value])}</div>"
        for value, (r, g, b, a) in CHANGE_OVERLAY_RGBA.items())
    return (f'<h2>自{html.escape(since)}起的变化 Change since {html.escape(since)} (全部运营商 all operators)</h2>'
            f'<div class="covmap-legend covmap-change-overlay">{rows}</div>')


def _mapping(geom):
    import shapely.geometry

    return shapely.geometry.mapping(geom)


# ---------------------------------------------------------------- pages


def write_change_pages(opts, change_dir, written: dict[str, int]) -> dict:
    """Write ``change.html`` and every province's change page into ``opts.out``.

    Parameters
    ----------
    opts : coverage.publish.site._Options
        The publication's options (edition, operator, base map, clearance).
    change_dir : path
        A comparison folder (``compare.json``, ``change.gpkg``).
    written : dict
        Relative path -> bytes of the pages written, updated.

    Returns
    -------
    dict
        ``since`` (the previous run's data date), ``counties``, ``provinces``.
    """
    from coverage.publish import site

    info, counties = read_change_units(change_dir)
    since = since_label(info)
    own = opts.operator if opts.edition == "operator" else None
    data = change_geojson(counties, site.NATIONAL_TOLERANCE_DEG, site.NATIONAL_DECIMALS, opts.gcj02,
                          opts.clearance, own)
    title_zh, title_en = f"覆盖变化（自{since}起）", f"Change in coverage since {since}"
    figure, fmap = site._new_page(opts, 0, f"{title_zh} {title_en} · {site.TITLE_ZH}", counties.total_bounds)
    header = _change_header(opts, info, title_zh, title_en,
                            [("全国 National", "index.html"), ("变化 Change", NATIONAL_PAGE)])
    scripts = [f'covmap.units({{map}}, {site.safe_json(data)}, {{"fit": true, "provinceLinks": true, '
               f'"provinceSuffix": "_change", "prefix": ""}});']
    text = site._finish(figure, fmap, opts, header, scripts, config=_js_config(opts, own))
    site._write_page(opts, NATIONAL_PAGE, text, written)
    provinces = counties.groupby("province_code", sort=True)
    for code, group in provinces:
        name = str(group["province"].iloc[0])
        data = change_geojson(group, site.PROVINCE_TOLERANCE_DEG, layers.COORD_DECIMALS, opts.gcj02,
                              opts.clearance, own)
        figure, fmap = site._new_page(opts, 1, f"{name} · {title_zh} {title_en}", group.total_bounds)
        header = _change_header(opts, info, f"{name} {title_zh}", f"{title_en} — province {code}",
                                [("全国 National", "../index.html"), (name, f"{code}.html"),
                                 ("变化 Change", f"{code}_change.html")])
        scripts = [f'covmap.units({{map}}, {site.safe_json(data)}, {{"fit": true, "countyLinks": true, '
                   f'"prefix": "../"}});']
        text = site._finish(figure, fmap, opts, header, scripts, config=_js_config(opts, own))
        site._write_page(opts, province_page(str(code)), text, written)
    log.info("change pages since %s: %d counties, %d provinces", since, len(counties), provinces.ngroups)
    return {"since": since, "counties": int(len(counties)), "provinces": int(provinces.ngroups)}


def _figures(own_operator: str | None) -> list[str]:
    return [key for key, _ in CHANGE_FIGURES if own_operator or key not in OPERATOR_ONLY_FIGURES]


def _js_config(opts, own_operator: str | None) -> dict:
    from coverage.publish import site
    from coverage.schema import TECH_BY_ID

    return {
        "keys": change_keys(),
        "breaks": list(CHANGE_BREAKS_PP),
        "colours": list(CHANGE_COLOURS),
        "noData": layers.NO_DATA_COLOUR,
        "techOrder": list(opts.techs),
        "metricOrder": _figures(own_operator),
        "techLabels": {t: TECH_BY_ID[t].label for t in TECH_IDS},
        "metricLabels": CHANGE_METRIC_LABELS,
        "metricUnits": CHANGE_METRIC_UNITS,
        "signedMetrics": ["coverage", "deep"],
        "opLabels": site._op_labels(),
        "codeLabel": "代码 code",
    }


def _change_header(opts, info: dict, heading_zh: str, heading_en: str, crumbs: list[tuple[str, str]]) -> str:
    from coverage.publish import site
    from coverage.schema import OPERATOR_BY_CODE

    esc = site._esc
    old, new = info.get("old") or {}, info.get("new") or {}
    nav = " › ".join(f'<a href="{esc(href)}">{esc(text)}</a>' for text, href in crumbs)
    options_tech = "".join(f'<option value="{t}">{esc(site.TECH_LABELS[t])}</option>' for t in opts.techs)
    options_metric = "".join(f'<option value="{k}">{esc(CHANGE_METRIC_LABELS[k])}</option>' for k in COLOUR_FIGURES)
    options_op = "".join(f'<option value="{k}">{esc(v)}</option>' for k, v in site._op_labels().items())
    legend = "".join(
        f'<div class="row"><span class="swatch" style="background:{c}"></span>{esc(n)}</div>'
        for c, n in zip(CHANGE_COLOURS, CHANGE_NAMES, strict=True)
    ) + f'<div class="row"><span class="swatch" style="background:{layers.NO_DATA_COLOUR}"></span>无数据 no data</div>'
    sites_note = ("运营商版含本运营商新增与减少的站点数。The operator edition adds its own operator's sites added and "
                  "removed." if opts.edition == "operator" else
                  "公开版不含站点数。The public edition shows no site counts.")
    method = [
        f"覆盖率变化 = 本期覆盖率 − 上期（{old.get('data_date') or '?'}）覆盖率，单位为百分点。"
        "缺口消除：上期未覆盖、本期覆盖的面积；新增缺口：反之（逐像元比较两期覆盖栅格）。",
        f"Change = coverage of this run ({new.get('data_date') or '?'}) − coverage of the previous run "
        f"({old.get('data_date') or '?'}, data version {old.get('run_id') or '?'}), in percentage points of the "
        "county's area. Gap closed: area not covered before and covered now; gap opened: the reverse "
        "(pixel by pixel from both runs' coverage rasters). Predicted, not measured.",
        sites_note,
    ]
    operator = (" · " + OPERATOR_BY_CODE[opts.operator].label) if opts.operator else ""
    return f"""
<div id="covmap-header" class="covmap-change">
  <h1>{esc(heading_zh)}<span class="en">{esc(heading_en)}</span></h1>
  <div class="meta">数据日期 Data date: <span id="covmap-date">{esc(opts.info.data_date)}</span> ·
    对比 Compared with: <span id="covmap-since">{esc(old.get('data_date') or '')}</span>
    ({esc(old.get('run_id') or '')}) · 数据版本 Data version: <span id="covmap-version">{esc(opts.info.data_version)}</span> ·
    {esc(site.EDITION_LABELS[opts.edition])}{esc(operator)}</div>
  <nav>{nav}</nav>
</div>
<div id="covmap-panel">
  <label for="covmap-tech">技术 Technology</label><select id="covmap-tech">{options_tech}</select>
  <label for="covmap-metric">指标 Figure</label><select id="covmap-metric">{options_metric}</select>
  <label for="covmap-op">运营商 Operator</label><select id="covmap-op">{options_op}</select>
  <h2>图例 Legend: <span id="covmap-current"></span></h2>
  <div class="covmap-legend covmap-diverging">{legend}</div>
  <h2>方法说明 Method</h2><div class="covmap-method">{''.join(f'<p>{esc(p)}</p>' for p in method)}</div>
</div>"""
