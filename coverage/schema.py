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


def _fold(value: object) -> str:
    return re.sub(r"[\s_\-.]+", "", str(value)).lower()


_OPERATOR_LOOKUP = {
    _fold(key): op.code
    for op in OPERATORS
    for key in (op.code, op.name_zh, op.name_en, *op.aliases)
}
_TECH_LOOKUP = {_fold(key): tech.id for tech in TECHNOLOGIES for key in (tech.id, tech.label, *tech.aliases)}


def normalise_operator(value: object) -> str | None:
    """Operator code for any accepted spelling, or None when unknown.

    Examples
    --------
    >>> normalise_operator("中国电信"), normalise_operator("China Mobile"), normalise_operator("cu")
    ('CT', 'CM', 'CU')
    >>> normalise_operator("Vodafone") is None
    True
    """
    return _OPERATOR_LOOKUP.get(_fold(value))


def normalise_tech(value: object) -> str | None:
    """Technology id (``nbiot`` or ``redcap``) for any accepted spelling, or None.

    Examples
    --------
    >>> normalise_tech("NB-IoT"), normalise_tech("5G RedCap"), normalise_tech("NB")
    ('nbiot', 'redcap', 'nbiot')
    """
    return _TECH_LOOKUP.get(_fold(value))
