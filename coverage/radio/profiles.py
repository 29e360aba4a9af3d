"""Technology profiles: the link budget of NB-IoT and 5G RedCap, with sources.

A :class:`TechProfile` holds every default of one technology, each field with its
unit in its name and its source in a comment. The defaults live here, once;
``coverage.config`` overrides them from a TOML file using the same field names.

The model of a pixel
--------------------
The prediction stage writes the *median* received reference-signal power for an
isotropic (0 dBi) receive antenna at ``ue_height_m``::

    rsrp_dbm = eirp_dbm - rs_offset_db(freq_mhz) - path_loss_db + relative_gain_db

where ``eirp_dbm`` is the sector's total EIRP over the whole carrier,
``rs_offset_db`` spreads it over the carrier's subcarriers (NB-IoT: 12, so the
NRSRP is 10.8 dB below the 180 kHz total), the path loss comes from
:mod:`coverage.radio.pathloss` and the relative antenna gain (≤ 0 dB) from
:mod:`coverage.radio.antenna`. Everything on the receiving side sits in the
threshold instead (:meth:`TechProfile.thresholds_dbm`)::

    outdoor = rsrp_threshold_dbm + device_loss_db + body_loss_db
              - ue_antenna_gain_dbi + z(cell_edge_reliability) * sigma(environment)
    deep    = outdoor + penetration_margin_db

A pixel is covered outdoors when its median RSRP reaches ``outdoor`` and has deep
(indoor / underground) coverage when it reaches ``deep``. NB-IoT pixels are also
given a coverage-enhancement level from :attr:`TechProfile.ce_thresholds_dbm`,
compared with the median RSRP as the device would measure it (no shadowing
margin: the CE level is what a typical device at that spot selects).
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field, fields
from statistics import NormalDist

from coverage.radio import ENVIRONMENTS
from coverage.schema import normalise_tech

# ---------------------------------------------------------------- NB-IoT sources

# TR 45.820 (Cellular system support for ultra-low complexity and low throughput IoT)
# §5 / §7.3: the coverage design target is a maximum coupling loss of 164 dB
# (GPRS 144 dB + 20 dB for deep indoor devices), with a 43 dBm (20 W) base station
# transmitting over the 180 kHz carrier (stand-alone deployment).
NBIOT_MCL_DB = 164.0
NBIOT_BS_POWER_DBM = 43.0
# TS 36.211 §10.2: an NB-IoT carrier is one PRB = 12 subcarriers of 15 kHz.
NBIOT_SUBCARRIERS = 12
# The NRSRP (power per resource element, TS 36.214 §5.1.26) a device receives at the
# 164 dB MCL edge: 43 - 164 - 10 log10(12) = -131.79 dBm.
NBIOT_MCL_NRSRP_DBM = NBIOT_BS_POWER_DBM - NBIOT_MCL_DB - 10.0 * math.log10(NBIOT_SUBCARRIERS)


def _db(x: float) -> float:
    return 10.0 * math.log10(x)


@dataclass(frozen=True)
class TechProfile:
    """The link budget of one technology; every default cites its source.

    Fields are the keys of the ``[nbiot]`` / ``[redcap]`` tables of the TOML
    configuration. Units are in the names. The sector defaults (``eirp_dbm`` …
    ``sla_v_db``) fill columns a submission leaves blank.

    Examples
    --------
    >>> p = NBIOT
    >>> round(p.rs_offset_db(942.5), 2)
    10.79
    >>> round(p.thresholds_dbm("rural")["outdoor"], 2)
    -124.1
    """

    tech: str
    label: str
    # band name -> downlink centre frequency, MHz (see the per-technology tables)
    bands: dict[str, float]
    # band used when a submission gives neither a frequency nor a band
    default_band: str
    # subcarriers of the carrier per band: total power is spread over these REs
    carrier_subcarriers: dict[str, int]
    # --- sector defaults (filled in where a submission leaves a column blank)
    eirp_dbm: float
    antenna_gain_dbi: float
    height_m: float
    beamwidth_deg: float
    downtilt_deg: float
    vertical_beamwidth_deg: float
    front_to_back_db: float
    sla_v_db: float
    # --- the receiving side
    ue_height_m: float
    ue_antenna_gain_dbi: float
    body_loss_db: float
    device_loss_db: float
    rsrp_threshold_dbm: float
    # NB-IoT: coverage-enhancement levels, minimum median NRSRP of each level, dBm
    ce_thresholds_dbm: dict[str, float]
    # --- margins
    penetration_margin_db: float
    cell_edge_reliability: float
    shadow_sigma_db: dict[str, float] = field(default_factory=dict)

    # ------------------------------------------------------------ derived values

    @property
    def freq_mhz(self) -> float:
        """Downlink centre frequency of :attr:`default_band`, MHz."""
        return float(self.bands[self.default_band])

    @property
    def shadow_z(self) -> float:
        """Standard-normal quantile of :attr:`cell_edge_reliability` (0.90 -> 1.2816)."""
        return NormalDist().inv_cdf(self.cell_edge_reliability)

    def shadow_margin_db(self, environment: str) -> float:
        """Log-normal shadow-fading margin z·σ for ``environment``, dB.

        Raises
        ------
        KeyError
            If ``environment`` is not one of ``dense_urban``, ``urban``,
            ``suburban``, ``rural``.
        """
        return self.shadow_z * float(self.shadow_sigma_db[environment])

    def band_of(self, freq_mhz: float) -> str:
        """The band whose centre frequency is nearest to ``freq_mhz``."""
        return min(self.bands, key=lambda b: abs(self.bands[b] - float(freq_mhz)))

    def rs_offset_db(self, freq_mhz: float | None = None) -> float:
        """dB from the total carrier EIRP to the EIRP of one reference-signal RE.

        ``10·log10(subcarriers)`` of the carrier of the band nearest to
        ``freq_mhz`` (NB-IoT: 12 subcarriers -> 10.79 dB; NR n78, 100 MHz at
        30 kHz, 3276 subcarriers -> 35.15 dB). Assumes the power is spread
        evenly over the carrier (no reference-signal boosting).
        """
        band = self.default_band if freq_mhz is None else self.band_of(freq_mhz)
        return _db(self.carrier_subcarriers[band])

    def rs_eirp_dbm(self, eirp_dbm: float, freq_mhz: float | None = None) -> float:
        """Per-RE reference-signal EIRP of a sector of total EIRP ``eirp_dbm``, dBm."""
        return float(eirp_dbm) - self.rs_offset_db(freq_mhz)

    def thresholds_dbm(self, environment: str) -> dict[str, float]:
        """Median RSRP a pixel needs, dBm: ``{"outdoor": x, "deep": y}``.

        ``outdoor`` = threshold + device loss + body loss − UE antenna gain +
        z·σ(environment); ``deep`` = outdoor + penetration margin.
        """
        outdoor = (
            self.rsrp_threshold_dbm
            + self.device_loss_db
            + self.body_loss_db
            - self.ue_antenna_gain_dbi
            + self.shadow_margin_db(environment)
        )
        return {"outdoor": outdoor, "deep": outdoor + self.penetration_margin_db}

    def max_path_loss_db(self, eirp_dbm: float, freq_mhz: float | None, environment: str,
                         deep: bool = False) -> float:
        """Largest path loss at which a boresight pixel is still covered, dB.

        ``rs_eirp_dbm(eirp_dbm, freq_mhz) − thresholds_dbm(environment)[outdoor|deep]``;
        feed it to :func:`coverage.radio.pathloss.max_range_m`. The antenna pattern
        only subtracts, so no pixel beyond that range can be covered.
        """
        key = "deep" if deep else "outdoor"
        return self.rs_eirp_dbm(eirp_dbm, freq_mhz) - self.thresholds_dbm(environment)[key]

    def sector_defaults(self) -> dict[str, float]:
        """Defaults for blank sector columns (see :func:`sector_defaults`)."""
        return {
            "freq_mhz": self.freq_mhz,
            "eirp_dbm": float(self.eirp_dbm),
            "antenna_gain_dbi": float(self.antenna_gain_dbi),
            "height_m": float(self.height_m),
            "beamwidth_deg": float(self.beamwidth_deg),
            "downtilt_deg": float(self.downtilt_deg),
        }

    def as_dict(self) -> dict:
        """All fields as plain JSON-able data."""
        return asdict(self)


def profile_field_names() -> tuple[str, ...]:
    """Names of the :class:`TechProfile` fields (the keys of ``[nbiot]``/``[redcap]``)."""
    return tuple(f.name for f in fields(TechProfile))


# Log-normal shadow-fading standard deviation per environment, dB. Operator planning
# practice for macro cells (cf. TR 38.901 Table 7.4.1-1: σSF 4-8 dB for UMa/RMa; and
# the 8 dB widely used with Okumura-Hata); denser clutter varies more.
_SHADOW_SIGMA_DB = {"dense_urban": 10.0, "urban": 8.0, "suburban": 7.0, "rural": 6.0}


NBIOT = TechProfile(
    tech="nbiot",
    label="NB-IoT",
    # Downlink centre frequencies, MHz (TS 36.101 Table 5.5-1 bands; Chinese
    # allocations): B5 = China Telecom's 800 MHz (DL 870-880), B8 = China Mobile and
    # China Unicom 900 MHz (band DL 925-960), B3 = 1800 MHz (band DL 1805-1880).
    bands={"B5": 875.0, "B8": 942.5, "B3": 1842.5},
    default_band="B8",
    # TS 36.211 §10.2: one PRB, 12 subcarriers, in every band.
    carrier_subcarriers={"B5": NBIOT_SUBCARRIERS, "B8": NBIOT_SUBCARRIERS, "B3": NBIOT_SUBCARRIERS},
    # 43 dBm per carrier (TR 45.820 stand-alone) + 15 dBi panel − 3 dB feeder and
    # jumper losses (operator practice) = 55 dBm total EIRP.
    eirp_dbm=55.0,
    antenna_gain_dbi=15.0,  # 65° sub-GHz panel antenna, operator practice
    height_m=30.0,  # typical macro mast, operator practice (Hata's reference 30 m)
    beamwidth_deg=65.0,  # TR 36.814 Table A.2.1.1-2 / TR 38.901 Table 7.3-1: φ3dB = 65°
    downtilt_deg=6.0,  # total (mechanical + electrical) downtilt, operator practice
    vertical_beamwidth_deg=10.0,  # TR 36.814 Table A.2.1.1-2: θ3dB = 10°
    front_to_back_db=25.0,  # TR 36.814 Table A.2.1.1-2: Am = 25 dB
    sla_v_db=20.0,  # TR 36.814 Table A.2.1.1-2: SLAv = 20 dB
    ue_height_m=1.5,  # TR 45.820 / Hata reference mobile height 1.5 m
    # Isotropic 0 dBi device antenna, operator practice; small embedded antennas can be
    # a few dB worse (set a negative value to account for them).
    ue_antenna_gain_dbi=0.0,
    body_loss_db=0.0,  # meters and sensors are not held: operator practice
    device_loss_db=0.0,  # the MCL already describes an NB-IoT device (TR 45.820)
    # TR 45.820: MCL 164 dB with 43 dBm over 12 subcarriers -> -131.79 dBm NRSRP.
    rsrp_threshold_dbm=round(NBIOT_MCL_NRSRP_DBM, 2),
    # CE levels from the NRSRP thresholds the cell broadcasts (TS 36.331 SIB2-NB
    # rsrp-ThresholdsPrachInfoList); -105/-115 dBm is common Chinese operator
    # practice; CE2 reaches down to the MCL edge.
    ce_thresholds_dbm={"CE0": -105.0, "CE1": -115.0, "CE2": round(NBIOT_MCL_NRSRP_DBM, 2)},
    # TR 45.820: +20 dB of the 164 dB target is for deep indoor / basement devices.
    penetration_margin_db=20.0,
    # FCC mobile coverage rules (FCC 19-79 / 47 CFR §1.7004): 90 % cell-edge probability.
    cell_edge_reliability=0.90,
    shadow_sigma_db=dict(_SHADOW_SIGMA_DB),
)


# NR carrier sizes in China (TS 38.101-1 Table 5.3.2-1, maximum transmission
# bandwidth N_RB): n28 2x30 MHz at 15 kHz = 160 RB; n1 20 MHz at 15 kHz = 106 RB;
# n41 100 MHz at 30 kHz = 273 RB; n78 100 MHz at 30 kHz = 273 RB. 12 subcarriers per RB.
_NR_SUBCARRIERS = {"n28": 160 * 12, "n1": 106 * 12, "n41": 273 * 12, "n78": 273 * 12}

REDCAP = TechProfile(
    tech="redcap",
    label="5G RedCap",
    # Downlink centre frequencies, MHz (TS 38.101-1 Table 5.2-1 bands; Chinese
    # allocations): n28 = China Broadnet / China Mobile 700 MHz (DL 758-788),
    # n1 = China Telecom / China Unicom 2.1 GHz (band DL 2110-2170), n41 = China
    # Mobile 2.6 GHz (DL 2515-2675), n78 = China Telecom / China Unicom shared 3.5 GHz
    # (DL 3400-3600).
    bands={"n28": 773.0, "n1": 2140.0, "n41": 2595.0, "n78": 3500.0},
    default_band="n78",
    carrier_subcarriers=dict(_NR_SUBCARRIERS),  # TS 38.101-1 Table 5.3.2-1 N_RB (see above)
    # 200 W (53 dBm) 64T64R AAU + about 22 dBi SSB-beam gain of the array (8 x 8
    # elements of ~5 dBi, less combining losses): SSB beam EIRP about 75 dBm,
    # operator practice for 2.6/3.5 GHz macro cells (a 2.1 GHz 4T4R RRU gives ~69 dBm).
    eirp_dbm=75.0,
    antenna_gain_dbi=22.0,  # SSB broadcast beam gain of a 64T64R array, operator practice
    height_m=30.0,  # typical macro mast, operator practice
    beamwidth_deg=65.0,  # TR 38.901 Table 7.3-1: φ3dB = 65°
    downtilt_deg=6.0,  # total downtilt, operator practice
    vertical_beamwidth_deg=10.0,  # TR 36.814 Table A.2.1.1-2: θ3dB = 10°
    front_to_back_db=30.0,  # TR 38.901 Table 7.3-1: Am = 30 dB
    sla_v_db=20.0,  # TR 36.814 Table A.2.1.1-2 (38.901 uses 30 dB): SLAv = 20 dB
    ue_height_m=1.5,  # TR 38.901 Table 7.4.1-1 reference UT height 1.5 m
    ue_antenna_gain_dbi=0.0,  # reference isotropic device, operator practice
    body_loss_db=0.0,  # modules / CPE / industrial devices, operator practice
    # TR 38.875 §7 (coverage recovery): one Rx branch instead of two and the smaller
    # device antenna cost a RedCap UE about 3 dB of downlink coverage.
    device_loss_db=3.0,
    # SS-RSRP >= -105 dBm: Chinese operators' 5G coverage criterion (operator practice).
    rsrp_threshold_dbm=-105.0,
    ce_thresholds_dbm={},
    penetration_margin_db=20.0,  # indoor margin, as NB-IoT (TR 45.820: 20 dB), operator practice
    # FCC mobile coverage rules (FCC 19-79 / 47 CFR §1.7004): 90 % cell-edge probability.
    cell_edge_reliability=0.90,
    shadow_sigma_db=dict(_SHADOW_SIGMA_DB),
)

PROFILES: dict[str, TechProfile] = {"nbiot": NBIOT, "redcap": REDCAP}


def get_profile(tech: str) -> TechProfile:
    """The default :class:`TechProfile` of a technology (any accepted spelling).

    Raises
    ------
    KeyError
        If ``tech`` is not a known technology.
    """
    tech_id = normalise_tech(tech)
    if tech_id is None or tech_id not in PROFILES:
        raise KeyError(f"unknown technology {tech!r}; choose from {', '.join(PROFILES)}")
    return PROFILES[tech_id]


def sector_defaults(tech: str) -> dict[str, float]:
    """Default sector values of a technology, for blank submission columns.

    Parameters
    ----------
    tech : str
        ``nbiot`` or ``redcap`` (any spelling :func:`coverage.schema.normalise_tech`
        accepts).

    Returns
    -------
    dict
        ``freq_mhz`` (MHz, centre of the default band), ``eirp_dbm`` (total cell
        EIRP, dBm), ``antenna_gain_dbi``, ``height_m``, ``beamwidth_deg``,
        ``downtilt_deg``.

    Raises
    ------
    KeyError
        If ``tech`` is unknown.

    Examples
    --------
    >>> sector_defaults("NB-IoT")["freq_mhz"], sector_defaults("redcap")["eirp_dbm"]
    (942.5, 63.0)
    """
    return get_profile(tech).sector_defaults()


# Lowest uplink to highest downlink frequency of each band, MHz: TS 36.101
# Table 5.5-1 (E-UTRA bands) and TS 38.101-1 Table 5.2-1 (NR bands).
_BAND_SPAN_MHZ = {
    "nbiot": {"B5": (824.0, 894.0), "B8": (880.0, 960.0), "B3": (1710.0, 1880.0)},
    "redcap": {"n28": (703.0, 803.0), "n1": (1920.0, 2170.0), "n41": (2496.0, 2690.0),
               "n78": (3300.0, 3800.0)},
}

_NUMBER_UNIT = re.compile(r"^(\d+(?:\.\d+)?)(ghz|g|mhz|m)?$")


def _fold_band(value: object) -> str:
    text = re.sub(r"[\s_\-.]+(?=\D)|[\s_\-]+", "", str(value).strip().lower())
    return text.replace("频段", "").replace("band", "")


def band_to_freq_mhz(tech: str, band: object) -> float | None:
    """Downlink centre frequency of a band, MHz, or None when it cannot be told.

    Accepts band names (``B8``, ``b8``, ``Band 8``, ``8``; ``n78``, ``N78``,
    ``band n78``, ``78``) and loose frequencies (``3.5G``, ``3.5 GHz``, ``700M``,
    ``900MHz``, ``2600``), matched to the technology's band whose frequency span
    (uplink to downlink, TS 36.101 / TS 38.101-1) holds them, else comes within 5 %.

    Parameters
    ----------
    tech : str
        Technology (``nbiot``, ``redcap`` or any accepted spelling).
    band : object
        The band as written in a submission.

    Returns
    -------
    float or None
        MHz; None for an unknown technology or a band that fits none.

    Examples
    --------
    >>> band_to_freq_mhz("nbiot", "Band 8"), band_to_freq_mhz("redcap", "3.5G")
    (942.5, 3500.0)
    >>> band_to_freq_mhz("redcap", "B8") is None
    True
    """
    tech_id = normalise_tech(tech)
    if tech_id not in PROFILES or band is None:
        return None
    profile = PROFILES[tech_id]
    text = _fold_band(band)
    if not text:
        return None
    prefix = "b" if tech_id == "nbiot" else "n"
    by_name = {name.lower(): freq for name, freq in profile.bands.items()}
    # A name: "b8" / "n78", or a bare band number "8" / "78".
    if text in by_name:
        return float(by_name[text])
    if text.isdigit() and prefix + text in by_name:
        return float(by_name[prefix + text])
    match = _NUMBER_UNIT.match(text)
    if match is None:
        return None
    number, unit = float(match.group(1)), match.group(2)
    freq = number * 1000.0 if unit in ("g", "ghz") or (unit is None and number < 10) else number
    # A frequency: the band whose uplink-to-downlink span holds it, else the one
    # within 5 % of its span ("800M" is China Telecom's B5, 824-894 MHz).
    for slack in (0.0, 0.05):
        for name, (low_mhz, high_mhz) in _BAND_SPAN_MHZ[tech_id].items():
            if low_mhz * (1 - slack) <= freq <= high_mhz * (1 + slack) and name in profile.bands:
                return float(profile.bands[name])
    return None


__all__ = [
    "ENVIRONMENTS",
    "NBIOT",
    "REDCAP",
    "PROFILES",
    "TechProfile",
    "band_to_freq_mhz",
    "get_profile",
    "profile_field_names",
    "sector_defaults",
]
