"""The submission schema: operators, technologies and (below) the column table.

One table serves the validator (``coverage.ingest``) and the README.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Operator:
    """A mobile operator: short code (used in file names), Chinese and English names."""

    code: str
    name_zh: str
    name_en: str
    aliases: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        return f"{self.name_zh} {self.name_en}"


OPERATORS: tuple[Operator, ...] = (
    Operator("CT", "中国电信", "China Telecom", ("电信", "chinatelecom", "telecom", "ctc")),
    Operator("CM", "中国移动", "China Mobile", ("移动", "chinamobile", "mobile", "cmcc")),
    Operator("CU", "中国联通", "China Unicom", ("联通", "chinaunicom", "unicom", "cucc")),
    Operator("CBN", "中国广电", "China Broadnet", ("广电", "chinabroadnet", "broadnet", "cbn")),
)
OPERATOR_BY_CODE = {op.code: op for op in OPERATORS}


@dataclass(frozen=True)
class Technology:
    """A mobile-IoT technology: id (used in file names and ``--tech``) and label."""

    id: str
    label: str
    aliases: tuple[str, ...] = ()


TECHNOLOGIES: tuple[Technology, ...] = (
    Technology("nbiot", "NB-IoT", ("nb", "nbiot", "nb-iot", "nb_iot", "窄带物联网", "lte-nb")),
    Technology("redcap", "5G RedCap", ("redcap", "5gredcap", "nrredcap", "nr-redcap", "轻量化5g", "redcap5g")),
)
TECH_BY_ID = {tech.id: tech for tech in TECHNOLOGIES}
TECH_IDS = tuple(tech.id for tech in TECHNOLOGIES)


def fold_word(value: object) -> str:
    """A word as the tables compare it: lower case, without spaces, underscores, hyphens or dots."""
    return re.sub(r"[\s_\-.]+", "", str(value)).lower()


_OPERATOR_LOOKUP = {
    fold_word(key): op.code
    for op in OPERATORS
    for key in (op.code, op.name_zh, op.name_en, *op.aliases)
}
_TECH_LOOKUP = {fold_word(key): tech.id for tech in TECHNOLOGIES for key in (tech.id, tech.label, *tech.aliases)}


def normalise_operator(value: object) -> str | None:
    """Operator code for any accepted spelling, or None when unknown.

    Examples
    --------
    >>> normalise_operator("中国电信"), normalise_operator("China Mobile"), normalise_operator("cu")
    ('CT', 'CM', 'CU')
    >>> normalise_operator("Vodafone") is None
    True
    """
    return _OPERATOR_LOOKUP.get(fold_word(value))


def normalise_tech(value: object) -> str | None:
    """Technology id (``nbiot`` or ``redcap``) for any accepted spelling, or None.

    Examples
    --------
    >>> normalise_tech("NB-IoT"), normalise_tech("5G RedCap"), normalise_tech("NB")
    ('nbiot', 'redcap', 'nbiot')
    """
    return _TECH_LOOKUP.get(fold_word(value))


# ---------------------------------------------------------------- environments

ENVIRONMENTS: tuple[str, ...] = ("dense_urban", "urban", "suburban", "rural")
_ENVIRONMENT_ALIASES: dict[str, tuple[str, ...]] = {
    "dense_urban": ("dense urban", "denseurban", "du", "密集城区", "密集市区", "密集城市", "密集区", "核心城区", "高密度城区"),
    "urban": ("urban", "u", "一般城区", "城区", "市区", "一般市区", "城市"),
    "suburban": ("suburban", "su", "郊区", "近郊", "城郊", "县城", "乡镇", "城乡结合部"),
    "rural": ("rural", "ru", "农村", "乡村", "远郊", "山区", "偏远地区", "野外"),
}
_ENVIRONMENT_LOOKUP = {
    fold_word(key): env for env, aliases in _ENVIRONMENT_ALIASES.items() for key in (env, *aliases)
}


def normalise_environment(value: object) -> str | None:
    """Environment id (dense_urban, urban, suburban, rural) for any accepted spelling, or None.

    Blank input gives None as well; callers that must tell blank (= inferred later)
    from unknown check for blank first.

    Examples
    --------
    >>> normalise_environment("密集城区"), normalise_environment("郊区"), normalise_environment("Rural")
    ('dense_urban', 'suburban', 'rural')
    >>> normalise_environment("ocean") is None
    True
    """
    return _ENVIRONMENT_LOOKUP.get(fold_word(value))


# ---------------------------------------------------------------- frequency bands

# Frequency ranges (MHz, lowest uplink to highest downlink) accepted for each
# technology: the bands ``coverage.radio.profiles`` has a carrier for. Sources:
# 3GPP TS 36.101 Table 5.5-1 (E-UTRA B5, B8, B3 as used by NB-IoT in China) and
# TS 38.101-1 Table 5.2-1 (NR n28, n1, n41, n78 as allocated to CT/CM/CU/CBN).
TECH_FREQ_RANGES_MHZ: dict[str, tuple[tuple[float, float], ...]] = {
    "nbiot": ((824.0, 960.0), (1710.0, 1880.0)),  # B5 + B8, B3
    "redcap": (
        (703.0, 803.0),     # n28 (CBN/CM 700 MHz)
        (1920.0, 2170.0),   # n1 (CT/CU 2.1 GHz)
        (2496.0, 2690.0),   # n41 (CM 2.6 GHz)
        (3300.0, 3800.0),   # n78 (CT/CU 3.5 GHz)
    ),
}


def freq_ranges_text(tech: str) -> str:
    """The deployable frequency ranges of a technology as text, e.g. ``'703–960, 1710–1880 MHz'``."""
    return ", ".join(f"{lo:g}–{hi:g}" for lo, hi in TECH_FREQ_RANGES_MHZ[tech]) + " MHz"


# ---------------------------------------------------------------- the column table


@dataclass(frozen=True)
class Column:
    """One column of the submission schema.

    Attributes
    ----------
    name : str
        Canonical English name (the name in ``sectors``, with its unit).
    aliases : tuple of str
        Other accepted headers, including the Chinese headers of real 工参表.
        Matching ignores case, spaces, ``_-.`` and a trailing unit in brackets,
        so ``挂高(m)`` and ``天线挂高 （米）`` both match ``height_m``.
    kind : str
        ``'text'``, ``'id'`` (kept as a string: leading zeros survive, Excel's
        ``12345.0`` becomes ``'12345'``) or ``'number'``.
    unit : str
        Unit of the values ('' for text).
    required : str
        ``'yes'``, ``'no'`` or a condition in words.
    valid_min, valid_max : float or None
        Inclusive valid range of a number.
    valid : str
        The valid values in words (for the README).
    default : str
        What a blank or missing value becomes.
    profile_key : str or None
        Key in ``coverage.radio.profiles.sector_defaults(tech)`` giving the default.
    description : str
    """

    name: str
    aliases: tuple[str, ...]
    kind: str
    unit: str
    required: str
    valid: str
    default: str
    description: str
    valid_min: float | None = None
    valid_max: float | None = None
    profile_key: str | None = None


FROM_PROFILE = "from technology profile"

COLUMNS: tuple[Column, ...] = (
    Column(
        "operator", ("运营商", "运营商名称", "所属运营商", "carrier", "operator_name"), "text", "", "yes (or --operator)",
        "中国电信/中国移动/中国联通/中国广电, China Telecom/…, CT/CM/CU/CBN", "the --operator option",
        "Operator owning the cell.",
    ),
    Column(
        "site_id", ("站号", "基站编号", "基站ID", "基站号", "站点编号", "站点ID", "enbid", "enodebid",
                    "gnbid", "gnodebid", "site"),
        "id", "", "yes", "any text", "—", "Site (eNodeB/gNodeB) identifier.",
    ),
    Column(
        "cell_id", ("小区号", "小区编号", "小区ID", "小区标识", "CGI", "小区CGI", "ECGI", "NCGI", "cell", "eci", "nci"),
        "id", "", "yes", "unique per operator",
        "—", "Cell identifier. A bare local cell number 0–255 (unique only within its site) "
        "becomes '<site_id>-<number>'.",
    ),
    Column(
        "tech", ("制式", "网络制式", "网络类型", "technology", "rat", "系统"), "text", "", "yes",
        "NB-IoT (NB, NBIOT, …) or RedCap (5G RedCap, NR-RedCap, …)", "—", "Radio technology.",
    ),
    Column(
        "lon", ("经度", "longitude", "lng", "long", "x经度"), "number", "degree", "yes (or point geometry)",
        "73–136 °E, inside China (coastal tolerance)", "—", "Longitude in the file's coordinate system.",
        73.0, 136.0,
    ),
    Column(
        "lat", ("纬度", "latitude", "y纬度"), "number", "degree", "yes (or point geometry)",
        "3–54 °N, inside China (coastal tolerance)", "—", "Latitude in the file's coordinate system.",
        3.0, 54.0,
    ),
    Column(
        "crs", ("坐标系", "坐标系统", "坐标类型", "datum", "coordinate_system"), "text", "", "no",
        "wgs84 (EPSG:4326), cgcs2000 (EPSG:4490), gcj02 (火星坐标), bd09 (百度坐标)", "the --crs option (wgs84)",
        "Coordinate system of this row's lon/lat. GCJ-02 is converted to WGS-84; CGCS2000 is "
        "taken as WGS-84 (they differ by centimetres).",
    ),
    Column(
        "freq_mhz", ("中心频点", "中心频率", "频率", "频点", "freq", "frequency", "dl_freq", "下行频点"), "number", "MHz",
        "no", "inside the technology's bands (below)", f"from band, else {FROM_PROFILE}",
        "Downlink centre frequency in MHz (not an EARFCN).", profile_key="freq_mhz",
    ),
    Column(
        "band", ("频段", "频带", "工作频段", "band_name"), "text", "", "no", "B5, B8, B3 (NB-IoT); n28, n1, n41, n78 (RedCap); or 800M, 3.5G",
        "—", "Frequency band; used when freq_mhz is blank.",
    ),
    Column(
        "eirp_dbm", ("等效全向辐射功率", "EIRP", "eirp"), "number", "dBm", "no", "0–90 dBm",
        f"tx_power_dbm + antenna_gain_dbi, else {FROM_PROFILE}", "Effective isotropic radiated power of the cell.",
        0.0, 90.0, "eirp_dbm",
    ),
    Column(
        "tx_power_dbm", ("发射功率", "最大发射功率", "小区发射功率", "txpower", "pmax"), "number", "dBm", "no",
        "-20–70 dBm", "—", "Transmit power at the antenna port; with antenna_gain_dbi gives eirp_dbm.",
        -20.0, 70.0,
    ),
    Column(
        "antenna_gain_dbi", ("天线增益", "增益", "gain", "antenna_gain"), "number", "dBi", "no", "-10–30 dBi",
        FROM_PROFILE, "Antenna gain (used only with tx_power_dbm).", -10.0, 30.0, "antenna_gain_dbi",
    ),
    Column(
        "height_m", ("挂高", "天线挂高", "天线高度", "站高", "高度", "height", "antenna_height"), "number", "m", "no",
        "0–300 m", FROM_PROFILE, "Antenna height above ground.", 0.0, 300.0, "height_m",
    ),
    Column(
        "azimuth_deg", ("方位角", "方向角", "天线方位角", "azimuth"), "number", "degree", "no", "0–360",
        "blank = omnidirectional", "Antenna bearing clockwise from north; stored modulo 360.", 0.0, 360.0,
    ),
    Column(
        "beamwidth_deg", ("水平波瓣宽度", "水平半功率角", "水平波束宽度", "半功率角", "水平波宽", "beamwidth", "hbw"),
        "number", "degree", "no", "1–360", FROM_PROFILE, "Horizontal half-power beamwidth.", 1.0, 360.0,
        "beamwidth_deg",
    ),
    Column(
        "downtilt_deg", ("下倾角", "总下倾角", "总下倾", "downtilt", "tilt"), "number", "degree", "no", "-20–90",
        f"electrical + mechanical, else {FROM_PROFILE}", "Total downtilt.", -20.0, 90.0, "downtilt_deg",
    ),
    Column(
        "electrical_downtilt_deg", ("电下倾", "电下倾角", "电子下倾", "电子下倾角", "etilt"), "number", "degree", "no",
        "-20–90", "0 when mechanical is given", "Electrical downtilt; added to mechanical when downtilt_deg is blank.",
        -20.0, 90.0,
    ),
    Column(
        "mechanical_downtilt_deg", ("机械下倾", "机械下倾角", "mtilt"), "number", "degree", "no", "-20–90",
        "0 when electrical is given", "Mechanical downtilt; added to electrical when downtilt_deg is blank.",
        -20.0, 90.0,
    ),
    Column(
        "environment", ("场景", "覆盖场景", "覆盖类型", "区域类型", "场景类型", "env"), "text", "", "no",
        "dense_urban, urban, suburban, rural (密集城区, 一般城区/城区, 郊区, 农村/乡村)",
        "blank = inferred later", "Propagation environment around the site.",
    ),
)
COLUMN_BY_NAME = {col.name: col for col in COLUMNS}
REQUIRED_COLUMNS = ("operator", "site_id", "cell_id", "tech", "lon", "lat")

# Columns of the ``sectors`` table (docs/CONTRACTS.md), in order.
SECTOR_COLUMNS: tuple[str, ...] = (
    "operator", "site_id", "cell_id", "tech", "freq_mhz", "eirp_dbm", "height_m", "azimuth_deg",
    "beamwidth_deg", "downtilt_deg", "environment", "source_file", "source_row", "geometry",
)
# Columns of the ``rejects`` table.
REJECT_COLUMNS: tuple[str, ...] = ("source_file", "source_row", "column", "value", "reason")


def fold_header(header: object) -> tuple[str, str]:
    """Two match keys of a header: folded as is, and folded without a trailing ``(unit)``.

    Examples
    --------
    >>> fold_header(" 天线挂高（m） ")
    ('天线挂高(m)', '天线挂高')
    """
    text = str(header).replace("（", "(").replace("）", ")").replace("【", "[").replace("】", "]")
    folded = fold_word(text)
    stripped = re.sub(r"[(\[][^()\[\]]*[)\]]$", "", folded)
    return folded, stripped


class HeaderIndex:
    """Canonical column names by folded header, for one schema (submissions, measurements, points).

    Built from ``(name, aliases)`` pairs; the first column to claim a folded header keeps it.

    Examples
    --------
    >>> index = HeaderIndex([("lon", ("经度", "Longitude")), ("lat", ("纬度",))])
    >>> index.column_for("LONGITUDE（°）"), index.match(["纬度", "经度", "备注", "Longitude"])
    ('lon', {'lat': '纬度', 'lon': '经度'})
    """

    def __init__(self, names_and_aliases):
        self._lookup: dict[str, str] = {}
        for name, aliases in names_and_aliases:
            for key in (name, *aliases):
                for folded in fold_header(key):
                    self._lookup.setdefault(folded, name)

    def column_for(self, header: object) -> str | None:
        """The column a header names (matched folded, then without a trailing unit), or None."""
        folded, stripped = fold_header(header)
        return self._lookup.get(folded) or self._lookup.get(stripped)

    def match(self, headers) -> dict[str, str]:
        """``{column: the first header naming it}``, in the headers' order."""
        matched: dict[str, str] = {}
        for header in headers:
            name = self.column_for(header)
            if name is not None and name not in matched:
                matched[name] = header
        return matched


_HEADERS = HeaderIndex((col.name, col.aliases) for col in COLUMNS)


def column_for_header(header: object) -> str | None:
    """Canonical column name of a file header, or None when it is not in the schema.

    Examples
    --------
    >>> column_for_header("经度"), column_for_header("挂高(m)"), column_for_header("EIRP (dBm)")
    ('lon', 'height_m', 'eirp_dbm')
    >>> column_for_header("备注") is None
    True
    """
    return _HEADERS.column_for(header)


def match_columns(headers) -> dict[str, str]:
    """Map canonical column names to the first file header that matches each.

    Parameters
    ----------
    headers : iterable of str
        The file's headers, in order.

    Returns
    -------
    dict
        ``{canonical name: header}``; headers matching nothing, or a column already
        matched by an earlier header, are left out.

    Examples
    --------
    >>> match_columns(["运营商", "小区ID", "经度", "纬度", "备注"])
    {'operator': '运营商', 'cell_id': '小区ID', 'lon': '经度', 'lat': '纬度'}
    """
    return _HEADERS.match(headers)


def repeated_columns(headers) -> dict[str, list[str]]:
    """The canonical columns that more than one header names, with those headers in order.

    Examples
    --------
    >>> repeated_columns(["lon", "纬度", "经度", "LAT", "备注"])
    {'lon': ['lon', '经度'], 'lat': ['纬度', 'LAT']}
    >>> repeated_columns(["经度", "纬度"])
    {}
    """
    by_column: dict[str, list[str]] = {}
    for header in headers:
        name = column_for_header(header)
        if name is not None:
            by_column.setdefault(name, []).append(str(header))
    return {name: found for name, found in by_column.items() if len(found) > 1}


def schema_markdown() -> str:
    """The submission schema as a Markdown table (for the README).

    Returns
    -------
    str
        A table with one row per column, then the technology frequency bands.
    """
    lines = [
        "| column | also accepted headers | unit | required | valid | default | meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    for col in COLUMNS:
        aliases = ", ".join(col.aliases)
        lines.append(
            f"| `{col.name}` | {aliases} | {col.unit or '—'} | {col.required} | {col.valid} | "
            f"{col.default} | {col.description} |"
        )
    lines += ["", "| technology | frequencies (freq_mhz) |", "|---|---|"]
    for tech in TECHNOLOGIES:
        lines.append(f"| {tech.label} (`{tech.id}`) | {freq_ranges_text(tech.id)} |")
    return "\n".join(lines) + "\n"
