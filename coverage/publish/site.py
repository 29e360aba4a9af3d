"""The published site: national, province and county pages, written offline-ready.

Layout of ``out_dir``::

    index.html                 national map, every county
    provinces/<code>.html      one province's counties
    counties/<code>.html       one county: townships, class overlay, largest gaps, challenged hexagons
    gaps.html                  operator edition only: the operator's gap table
    targets.html, downloads/   the 2027 targets and the H3 / targets tables (:mod:`.opendata`)
    assets/                    Leaflet, covmap.js/.css (+ markercluster), licences
    site.json                  what was written (marks the folder as a covmap site)

Every page is a folium map whose JS and CSS links point at ``assets/`` by a
relative path, so the site renders from disk or an intranet server without any
network. Strings from submissions and boundary files reach the page only as
HTML-escaped text (titles, tables) or as JSON data that ``covmap.js`` writes with
``textContent``; the JSON is embedded with ``<``, ``>`` and ``&`` escaped, so it
cannot close its ``<script>`` element.
"""

from __future__ import annotations

import html
import json
import logging
import math
import os
import shutil
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import quote

import folium
import numpy as np
import shapely
from branca.element import Element, Figure
from jinja2 import Template

from coverage.errors import FileOverwriteError, PublishError
from coverage.files import atomic_output
from coverage.layout import ALL_OPERATORS, CLASS_LABELS, CLASS_NODATA, RunLayout
from coverage.lookup import COVERAGE_NAMES, class_grid, grid_data, run_layers
from coverage.processes import spawn_pool, worker_count
from coverage.publish import layers, opendata
from coverage.publish.clearance import SiteClearance
from coverage.publish.plan_layer import add_plan_layer, read_checked_plan
from coverage.schema import OPERATOR_BY_CODE, TECH_BY_ID, TECH_IDS, normalise_operator

log = logging.getLogger(__name__)

EDITIONS = ("public", "operator")
BASEMAPS = ("none", "osm", "tianditu", "gaode")

#: coverage_simplify tolerance of the national page, degrees (≈ 800 m east-west, 900 m north-south).
NATIONAL_TOLERANCE_DEG = 0.008
#: Decimal places of the national page's coordinates (1e-4° ≈ 11 m, far below the tolerance).
NATIONAL_DECIMALS = 4
#: Tolerance of province pages, degrees (≈ 200 m).
PROVINCE_TOLERANCE_DEG = 0.002
#: Tolerance of county pages (townships and the county outline), degrees (≈ 30 m).
COUNTY_TOLERANCE_DEG = 0.0003
#: Gaps outlined per county and technology.
GAPS_PER_COUNTY = 10
#: Metres per degree of latitude, to turn a ground distance into a tolerance.
M_PER_DEG = 111_320.0

SITE_MARKER = "site.json"
ASSETS_DIR = Path(__file__).with_name("assets")

TITLE_ZH = "全国NB-IoT与5G RedCap覆盖地图"
TITLE_EN = "China NB-IoT and 5G RedCap coverage map"
TECH_LABELS = {"nbiot": "NB-IoT 窄带物联网", "redcap": "5G RedCap 轻量化5G"}
METRIC_LABELS = {"coverage": "覆盖率 coverage", "deep": "深度覆盖率 deep coverage"}
EDITION_LABELS = {"public": "公开版 public edition", "operator": "运营商版 operator edition"}


def _op_labels() -> dict[str, str]:
    labels = {ALL_OPERATORS: "全部运营商 all operators"}
    labels.update({code.lower(): op.label for code, op in OPERATOR_BY_CODE.items()})
    return labels


def safe_json(value) -> str:
    """JSON that is safe inside an HTML ``<script>`` element.

    Examples
    --------
    >>> safe_json({"n": "</script><script>alert(1)</script>"})
    '{"n":"\\\\u003c/script\\\\u003e\\\\u003cscript\\\\u003ealert(1)\\\\u003c/script\\\\u003e"}'
    """
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026"),
                         ("\u2028", "\\u2028"), ("\u2029", "\\u2029")):
        text = text.replace(raw, escaped)
    return text


class _Html(Element):
    """Text put in the page as it is.

    branca compiles ``Element(text)`` as a Jinja template, and a MacroElement's output
    again: every page's data (names, gap tables) was lexed as template code, and a
    ``{{`` or ``{%`` in a name was evaluated or broke the page.
    """

    _template = Template("{{ this.html }}")

    def __init__(self, html: str):
        super().__init__()
        self.html = html


class _Script(Element):
    """A piece of page script run after the map exists (``{map}`` = the map's variable)."""

    def __init__(self, code: str):
        super().__init__()
        self._name = "CovmapScript"
        self.code = code

    def render(self, **kwargs):
        # a child of the map: the map's own script is in the figure already
        self.get_root().script.add_child(_Html(self.code), name=self.get_name())


# ---------------------------------------------------------------- options


@dataclass
class _Options:
    run: RunLayout
    out: Path
    edition: str
    operator: str | None
    basemap: str
    tianditu_key: str | None
    info: layers.RunInfo
    publish_resolution_m: float
    techs: tuple[str, ...]
    thresholds: dict = field(default_factory=dict)
    clearance: SiteClearance | None = None  # public edition: coordinates kept clear of sites
    change_since: str | None = None  # data date of the previous run, when the site has change pages
    change_dir: Path | None = None  # the comparison folder (its change rasters for the county pages)
    plan: tuple | None = None  # operator edition: coverage.plan.read_plan's proposed sites
    challenges: object = None  # challenged/rebutted hexagons (GeoDataFrame) when the run has challenge/
    measured: dict | None = None  # evaluation/evaluation.json of the run's prediction, None: not measured
    lookup_layers: tuple = ()  # (key, class raster) of every layer the location box answers for

    @property
    def gcj02(self) -> bool:
        return self.basemap == "gaode"

    @property
    def gap_operator(self) -> str:
        return self.operator if self.edition == "operator" else ALL_OPERATORS


def _check_options(edition, operator, basemap, tianditu_key, publish_resolution_m):
    if edition not in EDITIONS:
        raise PublishError(f"edition {edition!r} is not one of {', '.join(EDITIONS)}")
    if basemap not in BASEMAPS:
        raise PublishError(f"basemap {basemap!r} is not one of {', '.join(BASEMAPS)}")
    if basemap == "tianditu" and not tianditu_key:
        raise PublishError("the Tianditu base map needs a key (--tianditu-key)")
    if not publish_resolution_m or float(publish_resolution_m) <= 0:
        raise PublishError(f"publish_resolution_m must be positive, got {publish_resolution_m!r}")
    code = None
    if edition == "operator":
        if not operator:
            raise PublishError("the operator edition needs --operator (e.g. 中国电信)")
        code = normalise_operator(operator)
        if code is None:
            raise PublishError(f"unknown operator {operator!r}")
    elif operator:
        raise PublishError("--operator is only for --edition operator (the public edition shows no sites)")
    return code


def _prepare_out_dir(out: Path, overwrite: bool) -> None:
    if out.exists() and not out.is_dir():
        raise FileOverwriteError(f"{out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / SITE_MARKER).exists() and not overwrite:
        raise FileOverwriteError(f"{out} holds files that covmap did not write; pass overwrite=True (--overwrite)")
    out.mkdir(parents=True, exist_ok=True)


def _read_thresholds(run: RunLayout) -> dict:
    try:
        report = json.loads(run.predict_report.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.warning("%s missing or unreadable; the method note omits thresholds", run.predict_report)
        return {}
    out = {}
    for tech, entry in (report.get("techs") or {}).items():
        thresholds = (entry or {}).get("thresholds_dbm") or {}
        out[tech] = {k: thresholds.get(k) for k in ("outdoor", "deep")}
    out["_resolution_m"] = (report.get("grid") or {}).get("resolution_m")
    out["_terrain"] = report.get("terrain")  # None: flat earth, sectors' own environments
    return out


#: Table names of the land-cover legends, as the method note gives them.
CLASS_TABLE_LABELS = {"igbp": "IGBP", "worldcover": "ESA WorldCover"}


def terrain_note(terrain: dict | None) -> str:
    """The method note's sentence on terrain and land cover, from ``raster/report.json``'s ``terrain``.

    Names the sources (the embedded defaults by name, others by file name, never
    a folder), the DEM's sha256 prefix and ground resolution, and the models that
    use them. It holds nothing about sites.

    Examples
    --------
    >>> terrain_note(None)
    'Terrain: none (flat earth); land cover: none (each pixel takes its serving sector’s environment).'
    """
    from coverage.terrain.data import DEFAULT_DEM, DEFAULT_LANDCOVER

    terrain = terrain or {}
    dem, clutter = terrain.get("dem"), terrain.get("clutter")
    if dem:
        name = "meteva 30″ China DEM" if dem.get("sha256") == DEFAULT_DEM.sha256 else Path(dem["path"]).name
        details = [f"sha256 {str(dem.get('sha256'))[:8]}…"]
        if dem.get("resolution_m"):
            metres = max(float(v) for v in dem["resolution_m"])
            details.append(f"~{metres / 1000:.1f} km" if metres >= 500 else f"~{metres:.0f} m")
        weight = terrain.get("diffraction_weight", 1.0)
        diffraction = ("no diffraction" if weight == 0 else "Bullington diffraction (ITU-R P.526)"
                       + (f" × {weight:g}" if weight not in (None, 1, 1.0) else ""))
        text = f"Terrain: {name} ({', '.join(details)}), {diffraction} and P.1546 effective height"
    else:
        text = "Terrain: none (flat earth)"
    if clutter:
        if clutter.get("sha256") == DEFAULT_LANDCOVER.sha256:
            name = "MODIS MCD12C1 2019"
        else:
            name = Path(clutter["path"]).name
        table = clutter.get("class_table")
        legend = f" ({CLASS_TABLE_LABELS.get(table, table)})" if table else ""
        text += f"; land cover: {name}{legend}, receiver environment per class"
    else:
        text += "; land cover: none (each pixel takes its serving sector’s environment)"
    return text + "."


# ---------------------------------------------------------------- page frame


def _esc(value) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _new_page(opts: _Options, depth: int, title: str, bounds) -> tuple[Figure, folium.Map]:
    """A figure holding a folium map whose assets are local, relative to the page."""
    prefix = "../" * depth + "assets/"
    figure = Figure(title=_esc(title))
    west, south, east, north = bounds
    centre_lon, centre_lat = (west + east) / 2, (south + north) / 2
    if opts.clearance is not None:
        (centre_lon,), (centre_lat,) = opts.clearance.points([centre_lon], [centre_lat])
    fmap = folium.Map(location=[round(centre_lat, 5), round(centre_lon, 5)], zoom_start=5, tiles=None,
                      control_scale=True, zoom_control=True)
    fmap.default_js = [("leaflet", prefix + "leaflet/leaflet.js"), ("covmap", prefix + "covmap.js")]
    fmap.default_css = [("leaflet_css", prefix + "leaflet/leaflet.css"), ("covmap_css", prefix + "covmap.css")]
    figure.add_child(fmap)
    _add_basemap(fmap, opts)
    return figure, fmap


def _clear_bounds(bounds, opts: _Options) -> list[list[float]]:
    """Overlay bounds ``[[south, west], [north, east]]`` with no corner near a site."""
    if opts.clearance is None:
        return bounds
    (south, west), (north, east) = bounds
    west, south, east, north = opts.clearance.bounds(west, south, east, north)
    return [[round(south, 6), round(west, 6)], [round(north, 6), round(east, 6)]]


def _add_basemap(fmap: folium.Map, opts: _Options) -> None:
    if opts.basemap == "osm":
        folium.TileLayer("https://tile.openstreetmap.org/{z}/{x}/{y}.png", name="OpenStreetMap",
                         attr="© OpenStreetMap contributors", max_zoom=19).add_to(fmap)
    elif opts.basemap == "tianditu":
        key = quote(str(opts.tianditu_key), safe="")
        for layer, name in (("vec", "天地图 Tianditu"), ("cva", "天地图注记 Tianditu labels")):
            url = (f"https://t{{s}}.tianditu.gov.cn/{layer}_w/wmts?SERVICE=WMTS&REQUEST=GetTile&VERSION=1.0.0"
                   f"&LAYER={layer}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles&TILEMATRIX={{z}}"
                   f"&TILEROW={{y}}&TILECOL={{x}}&tk={key}")
            folium.TileLayer(url, name=name, attr="© 天地图 Tianditu", subdomains="01234567",
                             max_zoom=18).add_to(fmap)
    elif opts.basemap == "gaode":
        url = "https://webrd0{s}.is.autonavi.com/appmaptile?lang=zh_cn&size=1&scale=1&style=8&x={x}&y={y}&z={z}"
        folium.TileLayer(url, name="高德 Gaode (GCJ-02)", attr="© 高德 AutoNavi (GCJ-02)", subdomains="1234",
                         max_zoom=18).add_to(fmap)


def _method_note(opts: _Options, overlay: bool) -> str:
    parts = [
        "覆盖率：单元面积中预测信号高于室外门限的比例；深度覆盖率另计建筑穿透余量。"
        "预测基于运营商报送的站址与传播模型，非实测。边界为显示而简化。",
        "Coverage %: share of a unit's area where the predicted signal exceeds the outdoor threshold; "
        "deep coverage adds a building-penetration margin. Predicted from operators' submitted sites "
        "with path-loss models, not measured. Boundaries simplified for display.",
    ]
    thresholds = []
    for tech in opts.techs:
        t = opts.thresholds.get(tech) or {}
        if t.get("outdoor") is not None:
            thresholds.append(f"{TECH_BY_ID[tech].label} (urban): 室外 outdoor ≥ {float(t['outdoor']):.1f} dBm"
                              + (f", 深度 deep ≥ {float(t['deep']):.1f} dBm" if t.get("deep") is not None else ""))
    if thresholds:
        parts.append("门限 Thresholds — " + "; ".join(thresholds) + ".")
    if "_terrain" in opts.thresholds:  # the report was read (no report: say nothing rather than "flat")
        parts.append("地形与地物 " + terrain_note(opts.thresholds["_terrain"]))
    if overlay:
        parts.append(f"栅格按 {opts.publish_resolution_m:g} m 众数重采样 Raster overlay: mode of each "
                     f"{opts.publish_resolution_m:g} m cell.")
    parts.append(measured_note(opts.measured, opts.techs))
    if opts.gcj02:
        parts.append("叠加图层已转换为GCJ-02以对齐高德底图 Overlays shifted to GCJ-02 to match the Gaode base map.")
    return "".join(f"<p>{_esc(p)}</p>" for p in parts)


def measured_note(measured: dict | None, techs) -> str:
    """The method note's sentence on how well the map matched measurements (``covmap evaluate``).

    Examples
    --------
    >>> measured_note(None, ("nbiot",))
    '实测检验 Measurements: not measured (the map has not been compared with field tests).'
    >>> measured_note({"by_tech": {"nbiot": {"n_bins": 1200, "mean_error_db": 1.234, "rmse_db": 6.5,
    ...                                      "precision": 88.04, "recall": 91.0}}}, ("nbiot", "redcap"))
    '实测检验 Measurements: NB-IoT 1,200 bins, mean error +1.2 dB (predicted − measured), RMSE 6.5 dB, precision 88.0 %; 5G RedCap not measured.'
    """
    by_tech = (measured or {}).get("by_tech") or {}
    if not by_tech:
        return "实测检验 Measurements: not measured (the map has not been compared with field tests)."
    parts = []
    for tech in techs:
        label = TECH_BY_ID[tech].label if tech in TECH_BY_ID else tech
        h = by_tech.get(tech)
        if not h or not h.get("n_bins"):
            parts.append(f"{label} not measured")
            continue
        text = f"{label} {int(h['n_bins']):,} bins"
        if h.get("mean_error_db") is not None:
            text += f", mean error {float(h['mean_error_db']):+.1f} dB (predicted − measured)"
        if h.get("rmse_db") is not None:
            text += f", RMSE {float(h['rmse_db']):.1f} dB"
        if h.get("precision") is not None:
            text += f", precision {float(h['precision']):.1f} %"
        parts.append(text)
    return "实测检验 Measurements: " + "; ".join(parts) + "."


def _header(opts: _Options, depth: int, heading_zh: str, heading_en: str, crumbs: list[tuple[str, str]],
            overlay: bool = False, challenges_html: str = "", search: bool = False,
            downloads: bool = False) -> str:
    nav = " › ".join(f'<a href="{_esc(href)}">{_esc(text)}</a>' for text, href in crumbs)
    options_tech = "".join(f'<option value="{t}">{_esc(TECH_LABELS[t])}</option>' for t in opts.techs)
    options_metric = "".join(f'<option value="{k}">{_esc(v)}</option>' for k, v in METRIC_LABELS.items())
    options_op = "".join(f'<option value="{k}">{_esc(v)}</option>' for k, v in _op_labels().items())
    legend = "".join(
        f'<div class="row"><span class="swatch" style="background:{c}"></span>{_esc(n)}</div>'
        for c, n in zip(layers.CLASS_COLOURS, layers.CLASS_NAMES, strict=True)
    ) + f'<div class="row"><span class="swatch" style="background:{layers.NO_DATA_COLOUR}"></span>无数据 no data</div>'
    overlay_legend = ""
    if overlay:
        rows = "".join(
            f'<div class="row"><span class="swatch" style="background:rgba({r},{g},{b},{a / 255:.2f})"></span>'
            f"{_esc(CLASS_LABELS[value])}</div>"
            for value, (r, g, b, a) in layers.OVERLAY_RGBA.items()
        )
        overlay_legend = ('<h2>预测信号等级 Predicted signal class</h2><div class="covmap-legend">' + rows +
                          '<div class="row"><span class="swatch" style="border:2px dashed #d01c8b"></span>'
                          "最大覆盖缺口 largest gaps</div></div>")
        if opts.change_dir is not None:
            from coverage.publish.change import overlay_legend_html

            overlay_legend += overlay_legend_html(opts.change_since)
    return f"""
<div id="covmap-header">
  <h1>{_esc(heading_zh)}<span class="en">{_esc(heading_en)}</span></h1>
  <div class="meta">数据日期 Data date: <span id="covmap-date">{_esc(opts.info.data_date)}</span> ·
    数据版本 Data version: <span id="covmap-version">{_esc(opts.info.data_version)}</span> ·
    {_esc(EDITION_LABELS[opts.edition])}{_esc(' · ' + OPERATOR_BY_CODE[opts.operator].label) if opts.operator else ''}</div>
  <nav>{nav}</nav>
</div>
<div id="covmap-panel">
  <label for="covmap-tech">技术 Technology</label><select id="covmap-tech">{options_tech}</select>
  <label for="covmap-metric">指标 Figure</label><select id="covmap-metric">{options_metric}</select>
  <label for="covmap-op">运营商 Operator</label><select id="covmap-op">{options_op}</select>
  <h2>图例 Legend: <span id="covmap-current"></span></h2>
  <div class="covmap-legend">{legend}</div>
  {overlay_legend}
  {_challenge_legend(opts)}{challenges_html}
  {_tools_html(opts, depth, search, downloads)}
  <h2>方法说明 Method</h2><div class="covmap-method">{_method_note(opts, overlay)}</div>
</div>"""


CHALLENGE_NOTE = ("质疑：公众实测（室外或车内、06:00–22:00、一年内、预测覆盖区内）低于服务门限或无服务，"
                  "在H3 8级六边形的7个9级子六边形中至少4个出现、相隔至少4小时、至少5次且比例经单侧二项检验"
                  "（95 %）显著高于10 %时，该六边形受质疑（参照美国FCC规则）。"
                  "Challenged: public tests below the service threshold or without service, outdoors or in "
                  "a vehicle, 06:00–22:00, within a year, inside predicted coverage, in at least 4 of the "
                  "7 res-9 point-hexes of an H3 res-8 hexagon, 4 h apart, at least 5 and significantly more "
                  "than 10 % (one-sided binomial test, 95 %), after the FCC's challenge rules.")
STATUS_LABELS = {"challenged": "受质疑 challenged", "rebutted": "已反驳 rebutted"}


def _challenge_legend(opts: _Options) -> str:
    if opts.challenges is None or opts.challenges.empty:
        return ""
    return ('<div class="covmap-legend"><div class="row"><span class="swatch" style="background:rgba(178,24,43,0.35);'
            'border:2px solid #b2182b"></span>受质疑区域 challenged area (H3)</div></div>'
            f'<div class="covmap-method"><p>{_esc(CHALLENGE_NOTE)}</p></div>')


def _challenge_table_html(opts: _Options, county_code: str) -> str:
    """The county's challenged and rebutted hexagons, listed in the panel."""
    hexes = opts.challenges
    if hexes is None or hexes.empty:
        return ""
    mine = hexes[hexes["county_code"] == county_code]
    rows = "".join(
        f'<tr class="{_esc(row["status"])}" data-h3="{_esc(row["h3_res8"])}"><td>{_esc(row["h3_res8"])}</td>'
        f'<td>{_esc(TECH_BY_ID[row["tech"]].label if row["tech"] in TECH_BY_ID else row["tech"])} · '
        f'{_esc(_op_labels().get(str(row["operator"]).lower(), row["operator"]))}</td>'
        f'<td>{int(row["negative_tests"])}/{int(row["tests"])}</td><td>{int(row["point_hexes"])}/7</td>'
        f'<td>{_esc(STATUS_LABELS.get(row["status"], row["status"]))}</td></tr>'
        for _, row in mine.iterrows())
    head = ("<tr><th>H3 res-8</th><th>技术·运营商 tech · operator</th><th>未达标/测试 negative/tests</th>"
            "<th>子格 point-hexes</th><th>状态 status</th></tr>")
    return (f'<h2>受质疑区域 Challenged areas ({len(mine)})</h2>'
            f'<div id="covmap-challenges"><table class="covmap-challenges">{head}{rows}</table></div>')


def _challenge_scripts(opts: _Options, county_code: str | None = None) -> list[str]:
    hexes = opts.challenges
    if hexes is None or hexes.empty:
        return []
    if county_code is not None:
        hexes = hexes[hexes["county_code"] == county_code]
    scripts = []
    for tech in opts.techs:
        data = layers.challenges_geojson(hexes, tech, layers.COORD_DECIMALS, opts.gcj02, opts.clearance)
        if data["features"]:
            scripts.append(f'covmap.challenges({{map}}, "{tech}", {safe_json(data)});')
    return scripts
#: Public statistics offered as CSV downloads (``downloads/<name>.csv``), from the run's stats.
DOWNLOADS = {"county": "区县统计 county statistics", "township": "乡镇统计 township statistics"}
#: Columns of the downloads (no sector or site counts: they describe the operators' networks).
DOWNLOAD_COLUMNS = ("code", "name", "level", "parent", "parent_name", "province_code", "province", "tech",
                    "operator", "area_km2", "covered_km2", "coverage_pct", "deep_covered_km2",
                    "deep_coverage_pct", "ce0_pct", "ce1_pct", "ce2_pct", "population", "population_covered_pct")


def _tools_html(opts: _Options, depth: int, search: bool, downloads: bool) -> str:
    """The location box (every page with lookup data), the county search and the download links."""
    parts = []
    if opts.lookup_layers:
        datums = "".join(f'<option value="{k}">{_esc(v)}</option>' for k, v in (
            ("wgs84", "WGS-84 (GPS)"), ("gcj02", "GCJ-02 高德/腾讯"), ("bd09", "BD-09 百度")))
        parts.append('<h2>位置查询 Check a location</h2>'
                     '<input type="text" id="covmap-locate-input" placeholder="经度,纬度 lon,lat">'
                     f'<select id="covmap-locate-crs">{datums}</select>'
                     '<button type="button" id="covmap-locate-go">查询 Look up</button> 或点击地图 or click the map'
                     '<div id="covmap-locate-result"></div>')
    if search:
        parts.append('<h2>区县搜索 Find a county</h2>'
                     '<input type="text" id="covmap-search" placeholder="名称或代码 name or code">'
                     '<div id="covmap-search-results"></div>')
    if downloads:
        prefix = "../" * depth + "downloads/"
        links = "".join(f'<a href="{prefix}{name}.csv" download>{_esc(label)} (CSV)</a>'
                        for name, label in DOWNLOADS.items() if (opts.out / "downloads" / f"{name}.csv").exists())
        if links:
            parts.append(f'<h2>下载 Downloads</h2><div class="covmap-downloads">{links}</div>')
    return "".join(parts)


def _js_config(opts: _Options) -> dict:
    return {
        "keys": layers.figure_keys(),
        "breaks": list(layers.CLASS_BREAKS_PCT),
        "colours": list(layers.CLASS_COLOURS),
        "noData": layers.NO_DATA_COLOUR,
        "techOrder": list(opts.techs),
        "metricOrder": list(METRIC_LABELS),
        "techLabels": {t: TECH_BY_ID[t].label for t in TECH_IDS},
        "metricLabels": METRIC_LABELS,
        "opLabels": _op_labels(),
        "codeLabel": "代码 code",
    }


def _finish(figure: Figure, fmap: folium.Map, opts: _Options, header_html: str, scripts: list[str],
            extra_html: str = "", extra_assets: tuple[tuple[str, str], ...] = (), config: dict | None = None,
            depth: int = 0) -> str:
    figure.html.add_child(_Html(header_html + extra_html))
    if opts.lookup_layers:
        scripts = [*scripts, f'covmap.locator({{map}}, {safe_json({"prefix": "../" * depth, "gcj02": opts.gcj02})});']
    name = fmap.get_name()
    for kind, url in extra_assets:  # after Leaflet, which the plugins need
        (fmap.default_js if kind == "js" else fmap.default_css).append((f"covmap_{Path(url).stem}", url))
    code = f"covmap.setup({safe_json(config or _js_config(opts))});\n" + "\n".join(s.replace("{map}", name) for s in scripts)
    fmap.add_child(_Script(code))
    return figure.render()


def _write_page(opts: _Options, relpath: str, text: str, written: dict[str, int]) -> None:
    path = opts.out / relpath
    with atomic_output(path, overwrite=True) as tmp:
        tmp.write_text(text, encoding="utf-8")
    written[relpath] = path.stat().st_size


# ---------------------------------------------------------------- pages


def _national_page(opts: _Options, counties, written: dict[str, int]) -> None:
    data = layers.units_geojson(counties, NATIONAL_TOLERANCE_DEG, NATIONAL_DECIMALS, opts.gcj02, opts.clearance)
    figure, fmap = _new_page(opts, 0, f"{TITLE_ZH} {TITLE_EN}", counties.total_bounds)
    header = _header(opts, 0, TITLE_ZH, TITLE_EN, [("全国 National", "index.html")] +
                     ([("缺口表 Gap table", "gaps.html")] if opts.edition == "operator" else []) +
                     ([("2027年目标 2027 targets", opendata.TARGETS_PAGE)] if opendata.has_targets(opts) else []) +
                     _change_crumb(opts, "change.html"), search=True, downloads=True)
    scripts = [f'covmap.units({{map}}, {safe_json(data)}, {{"fit": true, "provinceLinks": true, '
               f'"countyLinks": true, "prefix": ""}});', *_challenge_scripts(opts), 'covmap.search({"prefix": ""});']
    _write_page(opts, "index.html", _finish(figure, fmap, opts, header, scripts), written)


def _change_crumb(opts: _Options, href: str) -> list[tuple[str, str]]:
    """The link to a page's "change since" view, when the site has one."""
    if opts.change_since is None:
        return []
    return [(f"变化（自{opts.change_since}起） Change since {opts.change_since}", href)]


def _province_page(opts: _Options, code: str, name: str, counties, sites, written: dict[str, int]) -> None:
    data = layers.units_geojson(counties, PROVINCE_TOLERANCE_DEG, layers.COORD_DECIMALS, opts.gcj02,
                                opts.clearance)
    figure, fmap = _new_page(opts, 1, f"{name} · {TITLE_ZH} {TITLE_EN}", counties.total_bounds)
    header = _header(opts, 1, f"{name} {TITLE_ZH}", f"{TITLE_EN} — province {code}",
                     [("全国 National", "../index.html"), (name, f"{code}.html")]
                     + _change_crumb(opts, f"{code}_change.html"))
    scripts = [f'covmap.units({{map}}, {safe_json(data)}, {{"fit": true, "countyLinks": true, "prefix": "../"}});']
    assets = ()
    if sites is not None:
        scripts.append(f"covmap.sites({{map}}, {safe_json(_site_rows(sites, opts))});")
        assets = _cluster_assets(1)
    _write_page(opts, f"provinces/{code}.html", _finish(figure, fmap, opts, header, scripts, extra_assets=assets,
                                                         depth=1), written)


def _county_page(opts: _Options, county, townships, gaps_by_tech, sites, written: dict[str, int]) -> None:
    code, name = str(county["code"]), str(county["name"])
    province, province_code = str(county.get("province", "")), str(county.get("province_code", ""))
    geom = county.geometry
    units = townships if townships is not None and len(townships) else None
    unit_frame = units if units is not None else _one_row_frame(county)
    data = layers.units_geojson(unit_frame, COUNTY_TOLERANCE_DEG, layers.COORD_DECIMALS, opts.gcj02,
                                opts.clearance)
    outline = layers.display_geometries([geom], COUNTY_TOLERANCE_DEG, layers.COORD_DECIMALS, opts.gcj02,
                                         opts.clearance)[0]
    figure, fmap = _new_page(opts, 1, f"{name} · {TITLE_ZH} {TITLE_EN}", geom.bounds)
    header = _header(opts, 1, f"{name} {TITLE_ZH}", f"{TITLE_EN} — county {code}",
                     [("全国 National", "../index.html"), (province, f"../provinces/{province_code}.html"),
                      (name, f"{code}.html")], overlay=True, challenges_html=_challenge_table_html(opts, code),
                     downloads=True)
    scripts = [f'covmap.units({{map}}, {safe_json(data)}, {{"fit": true, "prefix": "../", "fillOpacity": 0.3}});',
               f"covmap.outline({{map}}, {safe_json(shapely.geometry.mapping(outline))});"]
    gap_tolerance = opts.publish_resolution_m / M_PER_DEG
    grids = {key: grid for key, path in opts.lookup_layers
             if (grid := class_grid(path, geom, opts.publish_resolution_m)) is not None}
    if grids:
        too_close = None
        if opts.clearance is not None:
            def too_close(lon, lat):
                return bool(opts.clearance.distance_to_nearest_m([lon], [lat]).min() < opts.clearance.radius_m)
        data = grid_data(grids, too_close)
        _write_page(opts, f"lookup/{code}.js", f"covmap.lookupData({safe_json(code)}, {safe_json(data)});\n",
                    written)
    for tech in opts.techs:
        grid = grids.get(f"{tech}_{ALL_OPERATORS}")
        if grid is None and f"{tech}_{ALL_OPERATORS}" not in dict(opts.lookup_layers):
            grid = class_grid(opts.run.coverage_class(tech), geom, opts.publish_resolution_m)
        overlay = layers.overlay_of_grid(grid, opts.gcj02) if grid is not None else None
        if overlay is not None:
            image = folium.raster_layers.ImageOverlay(
                "data:image/png;base64," + _b64(overlay.png), bounds=_clear_bounds(overlay.bounds, opts), opacity=1.0,
                interactive=False, cross_origin=False, name=f"{tech} class")
            fmap.add_child(image)
            scripts.append(f'covmap.techLayer({{map}}, "{tech}", {image.get_name()});')
        if opts.change_dir is not None:
            scripts += _change_overlay(fmap, opts, tech, geom)
        gaps = layers.gaps_geojson(gaps_by_tech.get(tech), code, opts.gap_operator, GAPS_PER_COUNTY,
                                   gap_tolerance, layers.COORD_DECIMALS, opts.gcj02, opts.clearance)
        if gaps["features"]:
            scripts.append(f'covmap.gaps({{map}}, "{tech}", {safe_json(gaps)});')
    scripts.extend(_challenge_scripts(opts, code))
    extra_html, assets = "", ()
    if sites is not None:
        scripts.append(f"covmap.sites({{map}}, {safe_json(_site_rows(sites, opts))});")
        assets = _cluster_assets(1)
        extra_html = _gap_table_html(gaps_by_tech, opts, county_code=code, element_id="covmap-tables")
    if opts.plan is not None:
        add_plan_layer(fmap, opts.plan, code, opts.gcj02)
    text = _finish(figure, fmap, opts, header, scripts, extra_html=extra_html, extra_assets=assets, depth=1)
    _write_page(opts, f"counties/{code}.html", text, written)


def _change_overlay(fmap: folium.Map, opts: _Options, tech: str, geom) -> list[str]:
    """The county's gaps closed and opened since the previous run, over the class overlay."""
    from coverage.publish.change import county_overlay

    overlay = county_overlay(opts.change_dir, tech, geom, opts.publish_resolution_m, opts.gcj02)
    if overlay is None:
        return []
    image = folium.raster_layers.ImageOverlay(
        "data:image/png;base64," + _b64(overlay.png), bounds=_clear_bounds(overlay.bounds, opts), opacity=1.0,
        interactive=False, cross_origin=False, name=f"{tech} change")
    fmap.add_child(image)
    return [f'covmap.techLayer({{map}}, "{tech}", {image.get_name()});']


def _gaps_page(opts: _Options, gaps_by_tech, written: dict[str, int]) -> None:
    op = OPERATOR_BY_CODE[opts.operator]
    title = f"{op.name_zh}覆盖缺口表 {op.name_en} coverage gaps"
    body = _gap_table_html(gaps_by_tech, opts, county_code=None, element_id="covmap-gap-page")
    text = f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{_esc(title)}</title>
<link rel="stylesheet" href="assets/covmap.css"></head>
<body class="covmap-page"><h1>{_esc(title)}</h1>
<p>数据日期 Data date: {_esc(opts.info.data_date)} · 数据版本 Data version: {_esc(opts.info.data_version)} ·
{_esc(EDITION_LABELS['operator'])} · <a href="index.html">全国地图 National map</a></p>
<p>仅供{_esc(op.name_zh)}内部使用：含到最近扇区的距离。Internal to {_esc(op.name_en)}: includes distances
to the nearest sector.</p>
{body}</body></html>"""
    _write_page(opts, "gaps.html", text, written)


GAP_TABLE_COLUMNS = (
    ("tech", "技术 tech"), ("gap_id", "编号 gap"), ("county_name", "县 county"), ("unit_name", "乡镇 unit"),
    ("area_km2", "面积 area km²"), ("sites_needed_estimate", "需新增站点 sites needed"),
    ("rank_in_county", "县内排名 rank"), ("nearest_sector_km", "最近扇区 nearest sector km"),
    ("centroid_lon", "中心经度 lon"), ("centroid_lat", "中心纬度 lat"),
)


def _gap_table_html(gaps_by_tech, opts: _Options, county_code: str | None, element_id: str) -> str:
    rows = []
    for tech in opts.techs:
        gaps = gaps_by_tech.get(tech)
        if gaps is None or gaps.empty:
            continue
        mine = gaps[gaps["operator"].astype(str).str.lower() == opts.operator.lower()] if "operator" in gaps else gaps
        if county_code is not None:
            mine = mine[mine["county_code"] == county_code]
        for _, row in mine.sort_values("area_km2", ascending=False).iterrows():
            cells = []
            for col, _ in GAP_TABLE_COLUMNS:
                value = row.get(col)
                if isinstance(value, float):
                    value = "" if np.isnan(value) else (f"{value:.5f}" if col.startswith("centroid") else f"{value:.2f}")
                cells.append(f"<td>{_esc(value)}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
    head = "".join(f"<th>{_esc(label)}</th>" for _, label in GAP_TABLE_COLUMNS)
    caption = f"{OPERATOR_BY_CODE[opts.operator].label} 覆盖缺口 coverage gaps ({len(rows)})"
    return (f'<div id="{element_id}"><table class="covmap-table"><caption>{_esc(caption)}</caption>'
            f"<tr>{head}</tr>{''.join(rows)}</table></div>")


def _cluster_assets(depth: int) -> tuple[tuple[str, str], ...]:
    prefix = "../" * depth + "assets/markercluster/"
    return (("css", prefix + "MarkerCluster.css"), ("css", prefix + "MarkerCluster.Default.css"),
            ("js", prefix + "leaflet.markercluster.js"))


def _site_rows(sites, opts: _Options) -> list[list]:
    lon, lat = sites["lon"].to_numpy(float), sites["lat"].to_numpy(float)
    if opts.gcj02:
        from coverage.chinacrs import wgs84_to_gcj02

        lon, lat = wgs84_to_gcj02(lon, lat)
    return [[round(float(y), 6), round(float(x), 6), str(s), str(t), int(c)]
            for x, y, s, t, c in zip(lon, lat, sites["site_id"], sites["techs"], sites["cells"], strict=True)]


def _one_row_frame(county):
    import geopandas as gpd

    return gpd.GeoDataFrame([county.to_dict()], geometry="geometry", crs=4326)


def _b64(data: bytes) -> str:
    import base64

    return base64.b64encode(data).decode("ascii")


def _copy_assets(out: Path, edition: str) -> None:
    target = out / "assets"
    ignore = shutil.ignore_patterns("markercluster") if edition == "public" else None
    shutil.copytree(ASSETS_DIR, target, dirs_exist_ok=True, ignore=ignore)


# ---------------------------------------------------------------- entry point


def _site_clearance(run: RunLayout, gcj02: bool) -> SiteClearance | None:
    """The run's distinct site positions, to keep the public edition's coordinates clear of."""
    if not run.sectors.is_file():
        log.warning("%s is missing: published coordinates are not checked against site positions", run.sectors)
        return None
    import geopandas as gpd

    sites = gpd.read_parquet(run.sectors, columns=["geometry"]).geometry
    xy = np.unique(np.column_stack([sites.x.to_numpy(), sites.y.to_numpy()]), axis=0)
    lon, lat = xy[:, 0], xy[:, 1]
    if gcj02:
        from coverage.chinacrs import wgs84_to_gcj02

        lon, lat = wgs84_to_gcj02(lon, lat)
    return SiteClearance(lon, lat)


def _options_for(run_dir, out_dir, counties=None, edition="public", operator_code=None, basemap="none",
                 tianditu_key=None, data_date=None, data_version=None, publish_resolution_m=500.0) -> _Options:
    """The resolved options of one publication (also used by ``bench/publish.py``)."""
    from coverage.measure.evaluate import read_headline

    run = RunLayout(run_dir)
    if counties is None:
        counties = layers.read_units(run.root, "county")
    columns = set(counties.columns)
    techs = tuple(t for t in TECH_IDS if any(c.startswith(f"{t}_") for c in columns)) or TECH_IDS
    thresholds = _read_thresholds(run)
    grid_res = thresholds.pop("_resolution_m", None) or 0
    return _Options(run=run, out=Path(out_dir), edition=edition, operator=operator_code, basemap=basemap,
                    tianditu_key=tianditu_key, info=layers.read_run_info(run.root, data_date, data_version),
                    publish_resolution_m=max(float(publish_resolution_m), float(grid_res)),
                    techs=techs, thresholds=thresholds, measured=read_headline(run.root))


def write_site(run_dir: str | os.PathLike, out_dir: str | os.PathLike = "maps", edition: str = "public",
               operator: str | None = None, basemap: str = "none", tianditu_key: str | None = None,
               data_date: str | None = None, data_version: str | None = None,
               publish_resolution_m: float | None = None, overwrite: bool = False,
               workers: int | None = None, change_dir: str | os.PathLike | None = None,
               plan_dir: str | os.PathLike | None = None) -> dict:
    """Write the static coverage site of one run.

    Parameters
    ----------
    run_dir : path
        A run directory with ``stats/coverage.gpkg`` (layers ``county``, optional
        ``township``, ``gaps_<tech>``), ``raster/<tech>_class.tif``,
        ``raster/report.json`` and, for the operator edition, ``sectors.parquet``;
        with ``challenge/hexes.gpkg`` (``covmap challenge``) the pages draw the
        challenged H3 hexagons and each county page lists its challenged and
        rebutted ones.
    out_dir : path, default ``"maps"``
        Folder of the site. A folder holding files covmap did not write needs
        ``overwrite``.
    edition : {"public", "operator"}, default "public"
        The public edition holds no site position, no distance to a sector and no
        raster finer than ``publish_resolution_m``. The operator edition adds one
        operator's sites (clustered markers) and gap table.
    operator : str, optional
        Any spelling of the operator (``中国电信``, ``CT``); operator edition only.
    basemap : {"none", "osm", "tianditu", "gaode"}, default "none"
        ``gaode`` is GCJ-02: every overlay is then shifted to GCJ-02.
    tianditu_key : str, optional
        Needed for ``basemap="tianditu"``.
    data_date, data_version : str, optional
        Printed on every page; default from ``manifest.json`` (``data_date`` or
        ``created``; ``version`` or ``run_id``), else today and ``"unversioned"``.
    publish_resolution_m : float, metres, optional
        Default: the configuration's ``[publish] resolution_m`` (500 m).
        Cell size of the class overlay (never finer than the run's raster).
    overwrite : bool, default False
    workers : int, optional
        Processes writing the county pages side by side (default: one per CPU,
        but at most one per :data:`PAGES_PER_WORKER` counties). The pages do not
        depend on it. The processes are spawned, so a script calling this with more
        than one must run it under ``if __name__ == "__main__":``.
    change_dir : path, optional
        A comparison folder (``covmap compare``'s ``--out``, or ``RUN/change`` of
        ``covmap build --previous``): adds ``change.html`` and
        ``provinces/<code>_change.html``, the per-county change of coverage since
        the previous run on a diverging legend (:mod:`coverage.publish.change`),
        linked from the national and province pages.
    plan_dir : path, optional
        A ``covmap plan`` output folder of the same operator: the operator edition's
        county pages show the proposed sites, their gains and what they newly cover.
        Refused for the public edition.

    Returns
    -------
    dict
        ``out_dir``, ``edition``, ``operator``, ``basemap``, ``counties``,
        ``provinces``, ``pages`` (relative path -> bytes), ``downloads`` (the same,
        for :mod:`.opendata`'s files), ``index_bytes``, ``total_bytes``,
        ``change_since`` (the previous run's data date, or None).

    Raises
    ------
    PublishError
        Bad edition, operator, base map or missing Tianditu key.
    InputReadError, SchemaError, EmptyCoverageError
        The run's statistics are missing or malformed.
    FileOverwriteError
        ``out_dir`` holds foreign files and ``overwrite`` is False.

    Examples
    --------
    >>> write_site("runs/2024-06", "maps")  # doctest: +SKIP
    {'out_dir': 'maps', 'edition': 'public', ..., 'index_bytes': 6512345, ...}
    """
    if publish_resolution_m is None:
        from coverage.config import PublishConfig

        publish_resolution_m = PublishConfig().resolution_m
    operator_code = _check_options(edition, operator, basemap, tianditu_key, publish_resolution_m)
    plan = read_checked_plan(plan_dir, edition, operator_code)
    counties = layers.read_units(run_dir, "county")
    townships = layers.read_units(run_dir, "township")
    opts = _options_for(run_dir, out_dir, counties, edition, operator_code, basemap, tianditu_key, data_date,
                        data_version, publish_resolution_m)
    if edition == "public":
        opts = replace(opts, clearance=_site_clearance(opts.run, opts.gcj02))
    if change_dir is not None:
        from coverage.compare import read_comparison
        from coverage.publish.change import since_label

        opts = replace(opts, change_since=since_label(read_comparison(change_dir)), change_dir=Path(change_dir))
    if plan is not None:
        opts = replace(opts, plan=plan)
    opts = replace(opts, challenges=layers.read_challenges(opts.run.root))
    run, out = opts.run, opts.out
    gaps_by_tech = {tech: layers.read_gaps(run.root, tech) for tech in opts.techs}
    if edition == "public":  # the distance to the nearest sector never leaves the run
        gaps_by_tech = {t: (g.drop(columns=["nearest_sector_km"], errors="ignore") if g is not None else None)
                        for t, g in gaps_by_tech.items()}
    site_county = None
    sites = None
    if operator_code:
        sites = layers.read_sites(run.root, operator_code)
        site_county = _sites_in_counties(sites, counties)
    _prepare_out_dir(out, overwrite)
    _copy_assets(out, edition)
    opts = replace(opts, lookup_layers=_lookup_layers(run, opts.techs))
    _write_downloads(opts, written_downloads := {})

    written: dict[str, int] = dict(written_downloads)
    if opts.lookup_layers:
        _lookup_index(opts, counties, written)
    _national_page(opts, counties, written)
    provinces = counties.groupby("province_code", sort=True)
    for code, group in provinces:
        name = str(group["province"].iloc[0])
        own = sites[site_county.isin(set(group["code"]))] if sites is not None else None
        _province_page(opts, str(code), name, group, own, written)
    if change_dir is not None:
        from coverage.publish.change import write_change_pages

        write_change_pages(opts, change_dir, written)
    by_parent = townships.groupby("parent") if townships is not None and len(townships) else None
    parents = set(by_parent.groups) if by_parent is not None else set()
    # split once: filtering a national gaps table per county cost O(gaps) each time
    gaps_by_county = {tech: _by_county(frame) for tech, frame in gaps_by_tech.items()}
    pages = []  # (county, its townships, its gaps per tech, its sites)
    for _, county in counties.iterrows():
        code = str(county["code"])
        towns = by_parent.get_group(code) if code in parents else None
        own = sites[site_county == code] if sites is not None else None
        pages.append((county, towns, {tech: groups.get(code) for tech, groups in gaps_by_county.items()}, own))
    written.update(_county_pages(opts, pages, worker_count(workers, len(pages), PAGES_PER_WORKER)))
    if operator_code:
        _gaps_page(opts, gaps_by_tech, written)
    downloads: dict[str, int] = {}
    opendata.write_downloads(opts, downloads)
    opendata.write_targets_page(opts, written, downloads)

    result = {
        "out_dir": str(out), "edition": edition, "operator": operator_code, "basemap": basemap,
        "data_date": opts.info.data_date, "data_version": opts.info.data_version,
        "counties": int(len(counties)), "provinces": int(provinces.ngroups),
        "pages": written, "downloads": downloads, "index_bytes": written["index.html"],
        "total_bytes": int(sum(written.values()) + sum(downloads.values())), "change_since": opts.change_since,
    }
    with atomic_output(out / SITE_MARKER, overwrite=True) as tmp:
        tmp.write_text(json.dumps(result, ensure_ascii=False, indent=1), encoding="utf-8")
    log.info("published %d pages (%s edition) to %s; national page %.1f MB", len(written), edition, out,
             written["index.html"] / 1e6)
    return result


#: A process for the county pages pays for itself above this many pages (it starts in about a second).
PAGES_PER_WORKER = 50
# Pages per task sent to a process: small enough to balance, big enough to amortise the pickling.
_PAGES_PER_TASK = 25
_worker_opts: _Options | None = None


def _county_pages(opts: _Options, pages: list, workers: int) -> dict[str, int]:
    """Write the county pages, in ``workers`` processes when more than one; relative path -> bytes, in order."""
    if workers == 1:
        return _write_pages(opts, pages)
    tasks = [pages[i:i + _PAGES_PER_TASK] for i in range(0, len(pages), _PAGES_PER_TASK)]
    written = {}
    with spawn_pool(workers, initializer=_set_worker_opts, initargs=(opts,)) as pool:
        for part in pool.map(_write_county_task, tasks):
            written.update(part)
    return written


def _set_worker_opts(opts: _Options) -> None:
    global _worker_opts
    _worker_opts = opts


def _write_county_task(pages: list) -> dict[str, int]:
    return _write_pages(_worker_opts, pages)


def _write_pages(opts: _Options, pages: list) -> dict[str, int]:
    written: dict[str, int] = {}
    for county, towns, gaps, own in pages:
        _county_page(opts, county, towns, gaps, own, written)
    return written


def _by_county(gaps) -> dict:
    """A gaps table split by ``county_code`` (str)."""
    if gaps is None or gaps.empty:
        return {}
    return {str(code): part for code, part in gaps.groupby(gaps["county_code"].astype(str), sort=False)}


def _sites_in_counties(sites, counties):
    """County code of each site (point in polygon), '' outside every county."""
    import pandas as pd

    codes = np.full(len(sites), "", dtype=object)
    if len(sites):
        points = shapely.points(sites["lon"].to_numpy(float), sites["lat"].to_numpy(float))
        tree = shapely.STRtree(counties.geometry.values)
        point_idx, county_idx = tree.query(points, predicate="within")
        codes[point_idx] = counties["code"].to_numpy()[county_idx]
    return pd.Series(codes, index=sites.index)


# ---------------------------------------------------------------- location box data and downloads


def _lookup_layers(run: RunLayout, techs) -> tuple:
    """(``<tech>_<op>``, class raster) of the run's layers of the published technologies."""
    from coverage.errors import EmptyCoverageError

    try:
        found = run_layers(run.root)
    except EmptyCoverageError:
        return ()
    return tuple((f"{lay.tech}_{lay.operator}", lay.class_path) for lay in found if lay.tech in techs)


def _lookup_index(opts: _Options, counties, written: dict[str, int]) -> None:
    """``lookup/index.js``: the counties' boxes (grown clear of sites) for the location box to pick from."""
    units = []
    for _, county in counties.iterrows():
        west, south, east, north = county.geometry.bounds
        if opts.clearance is not None:
            west, south, east, north = opts.clearance.bounds(west, south, east, north)
        units.append([str(county["code"]), str(county["name"]), math.floor(west * 1e4) / 1e4,
                      math.floor(south * 1e4) / 1e4, math.ceil(east * 1e4) / 1e4, math.ceil(north * 1e4) / 1e4])
    operators = [op for op in layers.OPERATOR_KEYS if any(k.endswith(f"_{op}") for k, _ in opts.lookup_layers)]
    data = {"units": units, "operators": operators,
            "classNames": {str(v): COVERAGE_NAMES[v] for v in (0, 1, 2, CLASS_NODATA)},
            "classLabels": {"none": CLASS_LABELS[0], "outdoor": CLASS_LABELS[1], "deep": CLASS_LABELS[2]}}
    _write_page(opts, "lookup/index.js", f"covmap.lookupIndex({safe_json(data)});\n", written)


def _write_downloads(opts: _Options, written: dict[str, int]) -> None:
    """``downloads/county.csv`` and ``township.csv``: the public statistics, rounded for people."""
    import pandas as pd

    from coverage.files import write_csv_bom
    from coverage.row_checks import neutralise_formulas

    for name, path in (("county", opts.run.county_csv), ("township", opts.run.township_csv)):
        if not path.is_file():
            continue
        frame = pd.read_csv(path, encoding="utf-8-sig", dtype={"code": str, "parent": str, "province_code": str})
        frame = frame[[c for c in DOWNLOAD_COLUMNS if c in frame.columns]]
        for col in frame.columns:
            if col.endswith("_km2"):
                frame[col] = frame[col].round(2)
            elif col.endswith("_pct"):
                frame[col] = frame[col].round(1)
        target = opts.out / "downloads" / f"{name}.csv"
        write_csv_bom(neutralise_formulas(frame), target, overwrite=True)
        written[f"downloads/{name}.csv"] = target.stat().st_size
