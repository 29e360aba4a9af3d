"""The operator edition's layer of proposed sites (``covmap plan``): markers with their gains, and what they cover.

Proposed sites are positions of future sites of one operator: the public edition never
shows them (:func:`coverage.publish.write_site` refuses a plan there).
"""

from __future__ import annotations

import html

import folium
import numpy as np
import shapely

from coverage.errors import PublishError

PLAN_COLOUR = "#7b2cbf"


def read_checked_plan(plan_dir, edition: str, operator_code: str | None):
    """:func:`coverage.plan.read_plan` of ``plan_dir`` (None: None), checked against the edition and operator."""
    if plan_dir is None:
        return None
    if edition != "operator":
        raise PublishError("proposed sites are for the operator edition only (--edition operator --operator …)")
    from coverage.plan import read_plan

    plan = read_plan(plan_dir)
    summary = plan[0]
    if summary.get("operator") != operator_code:
        raise PublishError(f"the plan is {summary.get('operator')}'s, not {operator_code}'s")
    return plan


def add_plan_layer(fmap: folium.Map, plan, county_code: str, gcj02: bool) -> bool:
    """Add the plan's sites in ``county_code`` and their newly covered areas to ``fmap``; False if none."""
    summary, sites, new_coverage = plan
    if county_code not in {str(c) for c in summary.get("counties", [])} or sites.empty:
        return False
    inside = sites[sites["county_code"].astype(str) == county_code]
    if inside.empty:
        return False
    group = folium.FeatureGroup(name=f"规划站点 proposed sites ({summary['tech']})", show=True)
    areas = new_coverage[new_coverage["site_id"].isin(set(inside["site_id"]))]
    lon, lat = inside["lon"].to_numpy(float), inside["lat"].to_numpy(float)
    if gcj02:
        from coverage.chinacrs import wgs84_to_gcj02

        lon, lat = wgs84_to_gcj02(lon, lat)
        areas = areas.set_geometry(areas.geometry.apply(_to_gcj02))
    if len(areas):
        folium.GeoJson(areas[["order", "site_id", "geometry"]].to_json(), name="新增覆盖 new coverage",
                       style_function=lambda _: {"color": PLAN_COLOUR, "weight": 1, "fillOpacity": 0.35},
                       tooltip=folium.GeoJsonTooltip(["order", "site_id"])).add_to(group)
    for x, y, row in zip(lon, lat, inside.itertuples(index=False), strict=True):
        lines = [f"<b>#{int(row.order)} {html.escape(str(row.site_id))}</b>",
                 f"新增覆盖 gain {row.gain_km2:,.2f} km²"]
        if np.isfinite(row.gain_built_up_km2):
            lines.append(f"建成区 built-up {row.gain_built_up_km2:,.2f} km²")
        if np.isfinite(row.gain_people):
            lines.append(f"人口 people {row.gain_people:,.0f}")
        lines.append(f"累计 cumulative {row.coverage_pct:.1f} %")
        folium.CircleMarker([float(y), float(x)], radius=7, color=PLAN_COLOUR, fill=True, fill_opacity=0.9,
                            popup=folium.Popup("<br>".join(lines), max_width=260),
                            tooltip=f"规划 proposed #{int(row.order)}").add_to(group)
    group.add_to(fmap)
    return True


def _to_gcj02(geom):
    from coverage.chinacrs import wgs84_to_gcj02

    def shift(xy):
        lon, lat = wgs84_to_gcj02(xy[:, 0], xy[:, 1])
        return np.column_stack([lon, lat])

    return shapely.transform(geom, shift)
