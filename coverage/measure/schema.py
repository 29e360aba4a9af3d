"""The measurement schema: the column table and the words of drive tests, MR and handsets.

One table (:data:`COLUMNS`) serves the intake (``coverage.measure.intake``) and the
README, as ``coverage.schema`` does for submissions. The accepted ``measurements``
table has the columns :data:`MEASUREMENT_COLUMNS`, in that order.
"""

from __future__ import annotations

import re

from coverage.schema import (
    Column,
    HeaderIndex,
    fold_word,
    normalise_operator,
    normalise_tech,
)

# ---------------------------------------------------------------- value ranges

RSRP_MIN_DBM = -156.0
RSRP_MAX_DBM = -31.0
"""Valid signal range: the SS-RSRP reporting range of 3GPP TS 38.133 §10.1.6.1 (−156…−31 dBm),
which also holds NB-IoT's extended NRSRP range of TS 36.133 §9.1.22 (−156…−44 dBm)."""

SINR_MIN_DB = -30.0
SINR_MAX_DB = 50.0
"""SINR outside this is a logging error: SS-SINR reports span −23…40 dB (TS 38.133 §10.1.16.1)."""

MAX_POSITION_ACCURACY_M = 50.0
"""Rows whose reported position accuracy is worse than half a 100 m pixel are rejected."""

EARLIEST_TIME = "2016-06-01"
"""Nothing measured NB-IoT or RedCap before 3GPP froze NB-IoT (Release 13, June 2016)."""

IN_VEHICLE_SPEED_KMH = 15.0
"""A row without a setting but with a speed at or above this (faster than running) is in-vehicle."""

DEFAULT_TIMEZONE = "Asia/Shanghai"

# ---------------------------------------------------------------- words

SOURCE_KINDS: tuple[str, ...] = ("scanner", "handset", "mr", "mdt")
SETTINGS: tuple[str, ...] = ("outdoor", "in-vehicle", "indoor")

_SOURCE_KIND_ALIASES: dict[str, tuple[str, ...]] = {
    "scanner": ("scanner", "scan", "扫频", "扫频仪", "扫频测试", "扫频数据"),
    "handset": ("handset", "phone", "ue", "terminal", "device", "dt", "drive test", "drivetest", "crowdsourced",
                "crowd", "app", "手机", "终端", "路测", "拨测", "众包", "测试终端", "模组"),
    "mr": ("mr", "mro", "measurement report", "测量报告", "mr数据"),
    "mdt": ("mdt", "最小化路测", "minimization of drive tests"),
}
_SETTING_ALIASES: dict[str, tuple[str, ...]] = {
    "outdoor": ("outdoor", "outside", "outdoors", "stationary", "outdoor stationary", "walk", "walking",
                "pedestrian", "室外", "户外", "步测", "定点", "室外定点"),
    "in-vehicle": ("in-vehicle", "invehicle", "vehicle", "car", "drive", "driving", "in vehicle", "mobile",
                   "车内", "车载", "驾车", "路测", "驱车"),
    "indoor": ("indoor", "inside", "indoors", "室内", "楼内", "建筑内", "室内定点"),
}

# MCC-MNC of China's operators (ITU-T E.212 list of mobile network codes for MCC 460).
PLMN_OPERATOR: dict[str, str] = {
    "46000": "CM", "46002": "CM", "46004": "CM", "46007": "CM", "46008": "CM",
    "46001": "CU", "46006": "CU", "46009": "CU",
    "46003": "CT", "46005": "CT", "46011": "CT",
    "46015": "CBN",
}
# Spellings handsets and drive-test tools write (G-NetTrack shows the network name of the SIM).
_OPERATOR_EXTRA = {
    "chnct": "CT", "chntelecom": "CT", "chinanet": "CT", "ctcc": "CT", "chinatelecom4g": "CT",
    "chinamobile": "CM", "chncmcc": "CM", "chinamobile4g": "CM", "cmcc": "CM", "chnmobile": "CM",
    "chnunicom": "CU", "chncu": "CU", "cucc": "CU", "chinaunicom4g": "CU", "unicom": "CU",
    "chncbn": "CBN", "cbn": "CBN", "chinabroadnet": "CBN", "中国广电5g": "CBN",
}
# 5G NR words: an NR measurement's SS-RSRP is what a RedCap device sees of the same cell.
NR_WORDS: tuple[str, ...] = ("nr", "5g", "5gnr", "nrsa", "sa", "5gsa", "nr5g", "5g(nr)", "nrnsa", "5gnsa")
# Technologies a row may name that are neither NB-IoT nor NR (rejected with a clear reason).
OTHER_TECH_WORDS: tuple[str, ...] = ("lte", "4g", "lte-a", "emtc", "cat1", "cat.1", "catm", "umts", "wcdma", "3g",
                                      "gsm", "2g", "cdma", "evdo", "tdscdma", "hspa")
NO_SERVICE_WORDS: tuple[str, ...] = ("无服务", "无信号", "脱网", "noservice", "no service", "nosignal", "no signal",
                                     "outofservice", "out of service", "oos", "limited service")


_SOURCE_KIND_LOOKUP = {fold_word(k): kind for kind, keys in _SOURCE_KIND_ALIASES.items() for k in (kind, *keys)}
_SETTING_LOOKUP = {fold_word(k): s for s, keys in _SETTING_ALIASES.items() for k in (s, *keys)}
_NR_LOOKUP = {fold_word(w) for w in NR_WORDS}
_OTHER_TECH_LOOKUP = {fold_word(w) for w in OTHER_TECH_WORDS}
NO_SERVICE_LOOKUP = frozenset(fold_word(w) for w in NO_SERVICE_WORDS)
_TRUE_WORDS = {"1", "true", "yes", "y", "t", "是", "有", "外接", "外置"}
_FALSE_WORDS = {"0", "false", "no", "n", "f", "否", "无", "内置", "无外接"}


def normalise_source_kind(value: object) -> str | None:
    """``'scanner' | 'handset' | 'mr' | 'mdt'`` for any accepted spelling, or None.

    Examples
    --------
    >>> normalise_source_kind("扫频仪"), normalise_source_kind("手机"), normalise_source_kind("MRO")
    ('scanner', 'handset', 'mr')
    """
    return _SOURCE_KIND_LOOKUP.get(fold_word(value))


def normalise_setting(value: object) -> str | None:
    """``'outdoor' | 'in-vehicle' | 'indoor'`` for any accepted spelling (室外/车内/室内 …), or None.

    Examples
    --------
    >>> normalise_setting("室外"), normalise_setting("车内"), normalise_setting("Indoor")
    ('outdoor', 'in-vehicle', 'indoor')
    """
    return _SETTING_LOOKUP.get(fold_word(value))


def normalise_bool(value: object) -> bool | None:
    """True/False for 是/否, yes/no, 1/0, true/false (外接/内置 for an antenna), or None.

    Examples
    --------
    >>> normalise_bool("是"), normalise_bool("no"), normalise_bool("maybe") is None
    (True, False, True)
    """
    folded = fold_word(value)
    if folded in _TRUE_WORDS:
        return True
    if folded in _FALSE_WORDS:
        return False
    return None


def operator_of_plmn(value: object) -> str | None:
    """Operator code of an MCC-MNC (``'460-00'``, ``'46000'``, ``'460 11'``, ``'460/015'``), or None.

    Examples
    --------
    >>> operator_of_plmn("460-00"), operator_of_plmn("46001"), operator_of_plmn("460 11"), operator_of_plmn("460-15")
    ('CM', 'CU', 'CT', 'CBN')
    >>> operator_of_plmn("310-260") is None
    True
    """
    match = re.fullmatch(r"\s*460\s*[-_/ ,.]?\s*0?(\d{2})\s*", str(value))
    return PLMN_OPERATOR.get("460" + match.group(1)) if match else None


def normalise_measurement_operator(value: object) -> str | None:
    """Operator code (CT, CM, CU, CBN) from a name, a code or an MCC-MNC; None when unknown.

    Extends :func:`coverage.schema.normalise_operator` with MCC-MNC
    (460-00/02/04/07/08 CM, 460-01/06/09 CU, 460-03/05/11 CT, 460-15 CBN) and the
    network names handsets show (``CHN-CT``, ``CMCC``, ``CHN-UNICOM`` …).

    Examples
    --------
    >>> normalise_measurement_operator("中国移动"), normalise_measurement_operator("46011")
    ('CM', 'CT')
    >>> normalise_measurement_operator("CHN-UNICOM"), normalise_measurement_operator("China Broadnet")
    ('CU', 'CBN')
    """
    return normalise_operator(value) or operator_of_plmn(value) or _OPERATOR_EXTRA.get(fold_word(value))


def normalise_measurement_tech(value: object) -> str | None:
    """``'nbiot'`` or ``'redcap'``; 5G NR words (NR, 5G, SA …) give ``'redcap'``; None otherwise.

    An NR row's SS-RSRP is the signal of the cell a RedCap device would camp on, so
    5G handset and scanner logs measure the RedCap map.

    Examples
    --------
    >>> normalise_measurement_tech("NB-IoT"), normalise_measurement_tech("NR"), normalise_measurement_tech("5G")
    ('nbiot', 'redcap', 'redcap')
    >>> normalise_measurement_tech("LTE") is None
    True
    """
    tech = normalise_tech(value)
    if tech is not None:
        return tech
    return "redcap" if fold_word(value) in _NR_LOOKUP else None


def is_other_technology(value: object) -> bool:
    """True for technologies that are neither NB-IoT nor NR (LTE, 4G, eMTC, GSM …)."""
    return fold_word(value) in _OTHER_TECH_LOOKUP


# ---------------------------------------------------------------- the column table

COLUMNS: tuple[Column, ...] = (
    Column(
        "time", ("测试时间", "时间", "采样时间", "采集时间", "日期时间", "timestamp", "datetime", "date_time",
                 "测量时间", "time_local"),
        "text", "", "yes",
        "a date and time from 2016-06 on, not in the future: 2024-05-01 10:00:00, 2024/5/1 10:00, "
        "2024-05-01T10:00:00+08:00, G-NetTrack's 2024.05.01_10.00.00",
        f"local time {DEFAULT_TIMEZONE} unless the value has an offset (Z, +08:00)",
        "When the sample was taken.",
    ),
    Column(
        "lon", ("经度", "longitude", "lng", "long", "x经度", "gps经度"), "number", "degree", "yes",
        "73–136 °E, inside China (coastal tolerance)", "—", "Longitude in the row's coordinate system.", 73.0, 136.0,
    ),
    Column(
        "lat", ("纬度", "latitude", "y纬度", "gps纬度"), "number", "degree", "yes",
        "3–54 °N, inside China (coastal tolerance)", "—", "Latitude in the row's coordinate system.", 3.0, 54.0,
    ),
    Column(
        "crs", ("坐标系", "坐标系统", "坐标类型", "datum", "coordinate_system"), "text", "", "no",
        "wgs84, cgcs2000, gcj02 (火星坐标), bd09 (百度坐标)", "the crs option, else WGS-84 (with a warning)",
        "Coordinate system of lon/lat; GCJ-02 and BD-09 are converted to WGS-84.",
    ),
    Column(
        "operator", ("运营商", "运营商名称", "operatorname", "operator_name", "carrier", "provider"),
        "text", "", "yes (or plmn)",
        "中国电信/中国移动/中国联通/中国广电, CT/CM/CU/CBN, network names (CHN-CT, CMCC) or an MCC-MNC",
        "from plmn", "Operator whose network was measured.",
    ),
    Column(
        "plmn", ("mccmnc", "mcc_mnc", "mcc-mnc", "plmnid", "plmn_id", "网络编码"), "text", "", "no",
        "460-00/02/04/07/08 (CM), 460-01/06/09 (CU), 460-03/05/11 (CT), 460-15 (CBN)", "—",
        "MCC-MNC of the serving network; gives the operator when that column is blank.",
    ),
    Column(
        "tech", ("制式", "网络制式", "网络类型", "technology", "networktech", "rat", "tech_type"), "text", "", "yes",
        "NB-IoT (NB, NBIOT …), RedCap (5G RedCap …) or 5G NR (NR, 5G, SA: taken as RedCap)", "—",
        "Radio technology of the serving cell.",
    ),
    Column(
        "rsrp_dbm", ("RSRP", "NRSRP", "SS-RSRP", "ssrsrp", "nr_rsrp", "nb_rsrp", "参考信号接收功率", "level",
                     "rsrp_dbm", "serving_rsrp", "信号强度"),
        "number", "dBm", "yes", f"{RSRP_MIN_DBM:g}…{RSRP_MAX_DBM:g} dBm, or 无服务/no service",
        "— (no service words give NaN: no service recorded)",
        "Serving-cell signal: NRSRP for NB-IoT, SS-RSRP for RedCap/NR.", RSRP_MIN_DBM, RSRP_MAX_DBM,
    ),
    Column(
        "sinr_db", ("SINR", "SNR", "SS-SINR", "sssinr", "nsinr", "cinr", "信噪比", "信干噪比", "rssnr"), "number",
        "dB", "no", f"{SINR_MIN_DB:g}…{SINR_MAX_DB:g} dB", "NaN", "Downlink SINR of the serving cell.",
        SINR_MIN_DB, SINR_MAX_DB,
    ),
    Column(
        "pci", ("物理小区标识", "物理小区ID", "PCI", "psc", "pci_id"), "number", "", "no", "0–1007 (NR), 0–503 (NB-IoT)",
        "<NA>", "Physical cell id of the serving cell.", 0.0, 1007.0,
    ),
    Column(
        "cell_id", ("小区ID", "小区号", "小区编号", "小区标识", "CellID", "cell", "cgi", "ecgi", "ncgi", "eci", "nci"),
        "id", "", "no", "any text", "''", "Serving cell identifier, as the tool wrote it.",
    ),
    Column(
        "band", ("频段", "频带", "工作频段", "band_name"), "text", "", "no", "B5, B8, n28, n78 …", "''",
        "Frequency band, as given.",
    ),
    Column(
        "earfcn", ("频点", "EARFCN", "ARFCN", "NARFCN", "nrarfcn", "下行频点号", "dl_earfcn", "ssb_arfcn"), "number", "",
        "no", "0–3279165 (an (NR-)ARFCN channel number, not MHz)", "<NA>", "Downlink channel number.",
        0.0, 3279165.0,
    ),
    Column(
        "source_kind", ("数据来源", "来源", "数据类型", "测试类型", "source", "source_type", "kind"), "text", "", "no",
        "scanner (扫频仪), handset (手机/终端), mr (测量报告), mdt", "handset (MRO files: mr)",
        "What took the sample: a scanner sees the best server, a handset only its serving cell.",
    ),
    Column(
        "setting", ("场景", "测试场景", "测试环境", "setting", "location_type", "位置类型", "室内外"), "text", "", "no",
        "outdoor (室外), in-vehicle (车内/车载), indoor (室内)",
        f"in-vehicle at ≥ {IN_VEHICLE_SPEED_KMH:g} km/h, else outdoor (MRO files: indoor)",
        "Where the receiver was; the challenge counts only outdoor and in-vehicle tests.",
    ),
    Column(
        "external_antenna", ("外接天线", "external_antenna", "ext_antenna", "外置天线", "车顶天线"), "text", "", "no",
        "是/否, yes/no, true/false, 1/0", "false",
        "In-vehicle tests with a roof antenna do not suffer the 5–8 dB vehicle loss.",
    ),
    Column(
        "position_accuracy_m", ("定位精度", "位置精度", "accuracy", "gps_accuracy", "horizontal_accuracy",
                                "hacc", "accuracy_m"),
        "number", "m", "no", f"0–{MAX_POSITION_ACCURACY_M:g} m", "NaN (unknown)",
        "Reported horizontal position accuracy.", 0.0, None,
    ),
    Column(
        "speed_kmh", ("速度", "车速", "speed", "speed_kmh", "gps_speed"), "number", "km/h", "no", "≥ 0", "—",
        "Only used to tell in-vehicle from outdoor when the setting is blank.", 0.0, None,
    ),
)
COLUMN_BY_NAME = {col.name: col for col in COLUMNS}

MEASUREMENT_COLUMNS: tuple[str, ...] = (
    "time", "operator", "tech", "rsrp_dbm", "sinr_db", "pci", "cell_id", "band", "earfcn", "source_kind",
    "setting", "external_antenna", "position_accuracy_m", "source_file", "source_row", "geometry",
)
"""Columns of the accepted ``measurements`` table, in order (the measurement contract)."""

_HEADERS = HeaderIndex((col.name, col.aliases) for col in COLUMNS)


def column_for_header(header: object) -> str | None:
    """Canonical measurement column of a file header, or None.

    Examples
    --------
    >>> column_for_header("经度"), column_for_header("RSRP(dBm)"), column_for_header("测试时间")
    ('lon', 'rsrp_dbm', 'time')
    >>> column_for_header("SS-RSRP"), column_for_header("频点"), column_for_header("场景")
    ('rsrp_dbm', 'earfcn', 'setting')
    """
    return _HEADERS.column_for(header)


def match_columns(headers) -> dict[str, str]:
    """Map canonical measurement columns to the first file header matching each.

    Examples
    --------
    >>> match_columns(["测试时间", "经度", "纬度", "RSRP", "备注"])
    {'time': '测试时间', 'lon': '经度', 'lat': '纬度', 'rsrp_dbm': 'RSRP'}
    """
    headers = list(headers)
    matched = _HEADERS.match(headers)
    folded = {fold_word(h): h for h in headers}
    if "operatorname" in folded and "operator" in folded and "plmn" not in matched:
        matched["plmn"] = folded["operator"]  # G-NetTrack: Operatorname is the name, Operator the MCC-MNC
    return matched


def schema_markdown() -> str:
    """The measurement schema as a Markdown table (for the README)."""
    lines = [
        "| column | also accepted headers | unit | required | valid | default | meaning |",
        "|---|---|---|---|---|---|---|",
    ]
    for col in COLUMNS:
        lines.append(f"| `{col.name}` | {', '.join(col.aliases)} | {col.unit or '—'} | {col.required} | "
                     f"{col.valid} | {col.default} | {col.description} |")
    return "\n".join(lines) + "\n"
