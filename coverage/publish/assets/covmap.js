/* covmap: colours the published coverage maps and switches technology, figure
 * and operator. Every string from the data is written with textContent, never as
 * HTML, so names from submissions or boundary files cannot inject markup. */
(function () {
  "use strict";
  var cfg = null;
  var state = { tech: "nbiot", op: "all", metric: "coverage" };
  var unitLayers = [];
  var techLayers = [];

  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = String(text); }
    if (cls) { node.className = cls; }
    return node;
  }

  function keyIndex(tech, op, metric) {
    return cfg.keys.indexOf(tech + "_" + op + "_" + metric);
  }

  function colour(value) {
    if (value === null || value === undefined) { return cfg.noData; }
    for (var i = 0; i < cfg.breaks.length; i++) {
      if (value < cfg.breaks[i]) { return cfg.colours[i]; }
    }
    return cfg.colours[cfg.colours.length - 1];
  }

  var fillOpacity = 0.85;

  function unitStyle(feature) {
    var v = feature.properties.v[keyIndex(state.tech, state.op, state.metric)];
    return { color: "#ffffff", weight: 0.6, opacity: 0.9, fillColor: colour(v), fillOpacity: fillOpacity };
  }

  /* a figure with its unit: " %" unless the page's config names another (the
   * change pages: " pp" with a sign, km², counts) */
  function pct(value, metric) {
    if (value === null || value === undefined) { return "–"; }
    var units = cfg.metricUnits || {};
    var unit = units[metric] !== undefined ? units[metric] : " %";
    var signed = (cfg.signedMetrics || []).indexOf(metric) >= 0;
    var text = unit === "" ? String(Math.round(value)) : value.toFixed(1);
    return (signed && value > 0 ? "+" : "") + text + unit;
  }

  function unitTooltip(feature) {
    var p = feature.properties;
    var box = el("div", null, "covmap-tip");
    box.appendChild(el("div", p.n, "covmap-tip-name"));
    var sub = (cfg.codeLabel || "代码 code") + " " + p.c + (p.p ? " · " + p.p : "");
    box.appendChild(el("div", sub, "covmap-tip-sub"));
    if (p.s) { box.appendChild(el("div", "合成边界 synthetic boundary", "covmap-tip-synthetic")); }
    var current = p.v[keyIndex(state.tech, state.op, state.metric)];
    box.appendChild(el("div", cfg.techLabels[state.tech] + " · " + cfg.opLabels[state.op] + " · " +
      cfg.metricLabels[state.metric] + ": " + pct(current, state.metric), "covmap-tip-current"));
    var table = el("table");
    var head = el("tr");
    head.appendChild(el("th", cfg.opLabels[state.op]));
    cfg.metricOrder.forEach(function (m) { head.appendChild(el("th", cfg.metricLabels[m])); });
    table.appendChild(head);
    cfg.techOrder.forEach(function (t) {
      var row = el("tr");
      row.appendChild(el("th", cfg.techLabels[t]));
      cfg.metricOrder.forEach(function (m) { row.appendChild(el("td", pct(p.v[keyIndex(t, state.op, m)], m))); });
      table.appendChild(row);
    });
    box.appendChild(table);
    return box;
  }

  function unitPopup(feature, opts) {
    var p = feature.properties;
    var box = el("div", null, "covmap-popup");
    box.appendChild(el("div", p.n + " (" + p.c + ")", "covmap-tip-name"));
    if (opts.provinceLinks && p.pc) {
      var a = el("a", "省级地图 Province map: " + p.p);
      a.setAttribute("href", opts.prefix + "provinces/" + encodeURIComponent(p.pc) + (opts.provinceSuffix || "") +
        ".html");
      box.appendChild(el("div")).appendChild(a);
    }
    if (opts.countyLinks) {
      var b = el("a", "县级地图 County map: " + p.n);
      b.setAttribute("href", opts.prefix + "counties/" + encodeURIComponent(p.c) + ".html");
      box.appendChild(el("div")).appendChild(b);
    }
    return box;
  }

  function restyle() {
    unitLayers.forEach(function (layer) { layer.setStyle(unitStyle); });
    techLayers.forEach(function (entry) {
      var show = entry.tech === state.tech;
      if (show && !entry.map.hasLayer(entry.layer)) { entry.map.addLayer(entry.layer); }
      if (!show && entry.map.hasLayer(entry.layer)) { entry.map.removeLayer(entry.layer); }
    });
    var label = document.getElementById("covmap-current");
    if (label) {
      label.textContent = cfg.techLabels[state.tech] + " · " + cfg.opLabels[state.op] + " · " +
        cfg.metricLabels[state.metric];
    }
    document.body.setAttribute("data-covmap-state", state.tech + "_" + state.op + "_" + state.metric);
  }

  var covmap = {
    setup: function (config) {
      cfg = config;
      state.tech = cfg.techOrder[0];
      [["covmap-tech", "tech"], ["covmap-op", "op"], ["covmap-metric", "metric"]].forEach(function (pair) {
        var select = document.getElementById(pair[0]);
        if (!select) { return; }
        state[pair[1]] = select.value;
        select.addEventListener("change", function () { state[pair[1]] = select.value; restyle(); });
      });
    },
    units: function (map, data, opts) {
      if (opts.fillOpacity !== undefined) { fillOpacity = opts.fillOpacity; }
      var layer = L.geoJSON(data, {
        style: unitStyle,
        onEachFeature: function (feature, item) {
          item.bindTooltip(function () { return unitTooltip(feature); }, { sticky: true });
          if (opts.provinceLinks || opts.countyLinks) {
            item.bindPopup(function () { return unitPopup(feature, opts); });
          }
          item.on("mouseover", function () { item.setStyle({ weight: 2.5, color: "#000000" }); });
          item.on("mouseout", function () { item.setStyle(unitStyle(feature)); });
        }
      }).addTo(map);
      layer.eachLayer(function (item) {  /* a stable hook for styling and tests */
        var node = item.getElement && item.getElement();
        if (node) { node.setAttribute("data-code", item.feature.properties.c); }
      });
      unitLayers.push(layer);
      if (opts.fit && layer.getLayers().length) { map.fitBounds(layer.getBounds()); }
      restyle();
      return layer;
    },
    outline: function (map, data) {
      return L.geoJSON(data, { interactive: false,
        style: { color: "#000000", weight: 2, fill: false, opacity: 0.9 } }).addTo(map);
    },
    gaps: function (map, tech, data) {
      var layer = L.geoJSON(data, {
        style: { color: "#d01c8b", weight: 2, dashArray: "5 4", fill: true, fillOpacity: 0.05 },
        onEachFeature: function (feature, item) {
          item.bindTooltip(function () {
            var p = feature.properties;
            var box = el("div", null, "covmap-tip");
            box.appendChild(el("div", "覆盖缺口 Gap #" + p.r + " (" + cfg.techLabels[tech] + ")", "covmap-tip-name"));
            if (p.u) { box.appendChild(el("div", p.u, "covmap-tip-sub")); }
            box.appendChild(el("div", "面积 area: " + (p.a === null ? "–" : p.a + " km²")));
            box.appendChild(el("div", "估计需新增站点 sites needed ≈ " + (p.n === null ? "–" : p.n)));
            return box;
          }, { sticky: true });
        }
      });
      covmap.techLayer(map, tech, layer);
      return layer;
    },
    challenges: function (map, tech, data) {
      var layer = L.geoJSON(data, {
        style: { color: "#b2182b", weight: 2, fill: true, fillColor: "#b2182b", fillOpacity: 0.35 },
        onEachFeature: function (feature, item) {
          item.bindTooltip(function () {
            var p = feature.properties;
            var box = el("div", null, "covmap-tip");
            box.appendChild(el("div", "受质疑区域 Challenged area (" + cfg.techLabels[tech] + ")", "covmap-tip-name"));
            box.appendChild(el("div", "H3 " + p.h, "covmap-tip-sub"));
            box.appendChild(el("div", cfg.opLabels[p.o.toLowerCase()] || p.o));
            box.appendChild(el("div", "未达标测试 negative tests: " + p.k + " / " + p.n));
            box.appendChild(el("div", "子六边形 point-hexes: " + p.p + " / 7"));
            return box;
          }, { sticky: true });
          item.on("add", function () {
            var node = item.getElement && item.getElement();
            if (node) { node.setAttribute("data-h3", feature.properties.h); }
          });
        }
      });
      covmap.techLayer(map, tech, layer);
      return layer;
    },
    techLayer: function (map, tech, layer) {
      techLayers.push({ tech: tech, layer: layer, map: map });
      restyle();
      return layer;
    },
    sites: function (map, rows) {
      if (!map.options.maxZoom) { map.options.maxZoom = 18; }  /* clustering needs a zoom range */
      var group = L.markerClusterGroup({ chunkedLoading: true });
      rows.forEach(function (r) {
        var marker = L.circleMarker([r[0], r[1]], { radius: 5, color: "#000000", weight: 1,
          fillColor: "#ffffff", fillOpacity: 0.9 });
        marker.bindTooltip(function () {
          var box = el("div", null, "covmap-tip");
          box.appendChild(el("div", "站址 site " + r[2], "covmap-tip-name"));
          box.appendChild(el("div", r[3] + " · " + r[4] + " 小区 cells"));
          return box;
        });
        group.addLayer(marker);
      });
      map.addLayer(group);
      return group;
    }
  };

  /* ---- coordinates: the same formulas as coverage/chinacrs.py (tests compare them in the browser) ---- */
  var GCJ_A_M = 6378245.0, GCJ_EE = 0.00669342162296594323;
  var BD_X_PI = Math.PI * 3000.0 / 180.0, BD_DLON = 0.0065, BD_DLAT = 0.006;
  var INVERSE_TOLERANCE_DEG = 1e-10, INVERSE_MAX_ITERATIONS = 30;

  function inChinaBox(lon, lat) { return lon >= 72.004 && lon <= 137.8347 && lat >= 0.8293 && lat <= 55.8271; }

  function gcjOffset(lon, lat) {
    var x = lon - 105.0, y = lat - 35.0, s = Math.sqrt(Math.abs(x)), PI = Math.PI;
    var dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * s;
    dlat += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    dlat += (20.0 * Math.sin(y * PI) + 40.0 * Math.sin(y / 3.0 * PI)) * 2.0 / 3.0;
    dlat += (160.0 * Math.sin(y / 12.0 * PI) + 320.0 * Math.sin(y * PI / 30.0)) * 2.0 / 3.0;
    var dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * s;
    dlon += (20.0 * Math.sin(6.0 * x * PI) + 20.0 * Math.sin(2.0 * x * PI)) * 2.0 / 3.0;
    dlon += (20.0 * Math.sin(x * PI) + 40.0 * Math.sin(x / 3.0 * PI)) * 2.0 / 3.0;
    dlon += (150.0 * Math.sin(x / 12.0 * PI) + 300.0 * Math.sin(x / 30.0 * PI)) * 2.0 / 3.0;
    var radLat = lat / 180.0 * PI, magic = 1.0 - GCJ_EE * Math.pow(Math.sin(radLat), 2), sm = Math.sqrt(magic);
    dlat = (dlat * 180.0) / ((GCJ_A_M * (1.0 - GCJ_EE)) / (magic * sm) * PI);
    dlon = (dlon * 180.0) / (GCJ_A_M / sm * Math.cos(radLat) * PI);
    return [dlon, dlat];
  }

  function wgs84ToGcj02(lon, lat) {
    if (!inChinaBox(lon, lat)) { return [lon, lat]; }
    var d = gcjOffset(lon, lat);
    return [lon + d[0], lat + d[1]];
  }

  function invert(forward, lon, lat, start) {
    var x = start[0], y = start[1];
    for (var i = 0; i < INVERSE_MAX_ITERATIONS; i++) {
      var f = forward(x, y), ex = f[0] - lon, ey = f[1] - lat;
      x -= ex; y -= ey;
      if (Math.max(Math.abs(ex), Math.abs(ey)) < INVERSE_TOLERANCE_DEG) { break; }
    }
    return [x, y];
  }

  function gcj02ToWgs84(lon, lat) { return invert(wgs84ToGcj02, lon, lat, [lon, lat]); }

  function gcj02ToBd09(lon, lat) {
    var r = Math.sqrt(lon * lon + lat * lat) + 0.00002 * Math.sin(lat * BD_X_PI);
    var a = Math.atan2(lat, lon) + 0.000003 * Math.cos(lon * BD_X_PI);
    return [r * Math.cos(a) + BD_DLON, r * Math.sin(a) + BD_DLAT];
  }

  function bd09ToGcj02(lon, lat) { return invert(gcj02ToBd09, lon, lat, [lon - BD_DLON, lat - BD_DLAT]); }

  function toWgs84(lon, lat, datum) {
    if (datum === "gcj02") { return gcj02ToWgs84(lon, lat); }
    if (datum === "bd09") { var g = bd09ToGcj02(lon, lat); return gcj02ToWgs84(g[0], g[1]); }
    return [lon, lat];
  }

  function toMercator(lon, lat) {
    var R = 6378137.0, clat = Math.max(-85.05112878, Math.min(85.05112878, lat)) * Math.PI / 180.0;
    return [R * lon * Math.PI / 180.0, R * Math.log(Math.tan(Math.PI / 4 + clat / 2))];
  }

  /* ---- the location box: classes at a point from the published grids (lookup/*.js, loaded by <script>) ---- */
  var lookupIndex = null, lookupUnits = {}, lookupWaiting = {}, locator = null;

  function loadScript(src, onload) {
    var node = document.createElement("script");
    node.src = src;
    node.onload = onload;
    node.onerror = onload;
    document.head.appendChild(node);
  }

  function decodeRuns(text, size) {
    var out = new Uint8Array(size).fill(255), pos = 0, codes = { n: 0, o: 1, d: 2, x: 255 };
    var re = /([nodx])(\d*)/g, m;
    while ((m = re.exec(text)) !== null) {
      var count = m[2] ? parseInt(m[2], 10) : 1, value = codes[m[1]];
      out.fill(value, pos, Math.min(pos + count, size));
      pos += count;
    }
    return out;
  }

  function classesAt(unit, lon, lat) {
    var origin = toMercator(unit.lon, unit.lat), p = toMercator(lon, lat);
    var col = Math.floor((p[0] - origin[0]) / unit.cell), row = Math.floor((origin[1] - p[1]) / unit.cell);
    if (row < 0 || col < 0 || row >= unit.h || col >= unit.w) { return null; }
    var found = {}, any = false;
    Object.keys(unit.g).forEach(function (key) {
      if (!unit.decoded) { unit.decoded = {}; }
      if (!unit.decoded[key]) { unit.decoded[key] = decodeRuns(unit.g[key], unit.w * unit.h); }
      var v = unit.decoded[key][row * unit.w + col];
      found[key] = v;
      if (v !== 255) { any = true; }
    });
    return any ? found : null;
  }

  function withUnits(codes, done) {
    var left = codes.length;
    if (!left) { done(); return; }
    codes.forEach(function (code) {
      if (lookupUnits[code] !== undefined) { if (--left === 0) { done(); } return; }
      lookupWaiting[code] = function () { if (--left === 0) { done(); } };
      loadScript(locator.prefix + "lookup/" + encodeURIComponent(code) + ".js", function () {
        if (lookupUnits[code] === undefined) { lookupUnits[code] = null; }
        var cb = lookupWaiting[code];
        delete lookupWaiting[code];
        if (cb) { cb(); }
      });
    });
  }

  function showAnswer(box, wgs, unit, classes) {
    box.textContent = "";
    box.setAttribute("data-state", classes ? "found" : "outside");
    box.appendChild(el("div", "WGS-84: " + wgs[0].toFixed(6) + ", " + wgs[1].toFixed(6), "covmap-tip-sub"));
    if (!classes) {
      box.appendChild(el("div", "不在本图的区县内 outside the counties of this map"));
      return;
    }
    box.appendChild(el("div", unit.name + " (" + unit.code + ")", "covmap-tip-name"));
    box.setAttribute("data-county", unit.code);
    var table = el("table", null, "covmap-locate-table"), head = el("tr");
    head.appendChild(el("th", ""));
    var ops = lookupIndex.operators.filter(function (op) {
      return cfg.techOrder.some(function (t) { return classes[t + "_" + op] !== undefined; });
    });
    ops.forEach(function (op) { head.appendChild(el("th", cfg.opLabels[op] || op)); });
    table.appendChild(head);
    cfg.techOrder.forEach(function (tech) {
      var row = el("tr");
      row.appendChild(el("th", cfg.techLabels[tech]));
      ops.forEach(function (op) {
        var v = classes[tech + "_" + op], name = v === undefined ? "" : (lookupIndex.classNames[v] || "none");
        var cell = el("td", v === undefined ? "–" : lookupIndex.classLabels[name]);
        cell.setAttribute("data-layer", tech + "_" + op);
        cell.setAttribute("data-class", name);
        row.appendChild(cell);
      });
      table.appendChild(row);
    });
    box.appendChild(table);
    box.appendChild(el("div", "按公开分辨率 " + unit.m + " m 网格 at the published " + unit.m + " m cell",
      "covmap-tip-sub"));
  }

  function locate(lon, lat, datum) {
    var box = document.getElementById("covmap-locate-result");
    var wgs = toWgs84(lon, lat, datum);
    var shown = locator.gcj02 ? wgs84ToGcj02(wgs[0], wgs[1]) : wgs;
    if (locator.marker) { locator.map.removeLayer(locator.marker); }
    locator.marker = L.circleMarker([shown[1], shown[0]], { radius: 6, color: "#d01c8b", weight: 2,
      fill: false, interactive: false }).addTo(locator.map);
    box.setAttribute("data-state", "loading");
    var start = function () {
      var codes = lookupIndex.units.filter(function (u) {
        return wgs[0] >= u[2] && wgs[0] <= u[4] && wgs[1] >= u[3] && wgs[1] <= u[5];
      }).map(function (u) { return u[0]; });
      withUnits(codes, function () {
        for (var i = 0; i < codes.length; i++) {
          var unit = lookupUnits[codes[i]];
          var classes = unit ? classesAt(unit, wgs[0], wgs[1]) : null;
          if (classes) { showAnswer(box, wgs, unit, classes); return; }
        }
        showAnswer(box, wgs, null, null);
      });
    };
    if (lookupIndex) { start(); } else {
      loadScript(locator.prefix + "lookup/index.js", function () {
        if (!lookupIndex) { box.textContent = "查询数据缺失 lookup data missing"; return; }
        start();
      });
    }
  }

  function parsePair(text) {
    var parts = String(text).replace(/[，；;\s]+/g, ",").split(",").filter(function (p) { return p !== ""; });
    if (parts.length !== 2) { return null; }
    var lon = parseFloat(parts[0]), lat = parseFloat(parts[1]);
    if (!isFinite(lon) || !isFinite(lat) || Math.abs(lat) > 90 || Math.abs(lon) > 180) { return null; }
    return [lon, lat];
  }

  covmap.locator = function (map, opts) {
    locator = { map: map, prefix: opts.prefix, gcj02: !!opts.gcj02, marker: null };
    var input = document.getElementById("covmap-locate-input");
    var datum = document.getElementById("covmap-locate-crs");
    var button = document.getElementById("covmap-locate-go");
    var box = document.getElementById("covmap-locate-result");
    if (!input || !button) { return; }
    var go = function () {
      var pair = parsePair(input.value);
      if (!pair) {
        box.textContent = "请输入 经度,纬度 enter longitude,latitude (e.g. 118.0894,24.4798)";
        box.setAttribute("data-state", "error");
        return;
      }
      locate(pair[0], pair[1], datum.value);
    };
    button.addEventListener("click", go);
    input.addEventListener("keydown", function (e) { if (e.key === "Enter") { go(); } });
    var clicked = function (e) {
      datum.value = locator.gcj02 ? "gcj02" : "wgs84";
      input.value = e.latlng.lng.toFixed(6) + "," + e.latlng.lat.toFixed(6);
      locate(e.latlng.lng, e.latlng.lat, datum.value);
    };
    map.on("click", clicked);
    /* a click on a unit is the unit's (its popup), not the map's */
    unitLayers.forEach(function (layer) { if (layer._map === map) { layer.on("click", clicked); } });
  };
  covmap.lookupIndex = function (data) { lookupIndex = data; };
  covmap.lookupData = function (code, data) { data.code = code; lookupUnits[code] = data; };
  covmap.crs = { wgs84ToGcj02: wgs84ToGcj02, gcj02ToWgs84: gcj02ToWgs84, gcj02ToBd09: gcj02ToBd09,
                 bd09ToGcj02: bd09ToGcj02, toWgs84: toWgs84 };

  /* ---- county search (national page): by name or code, over the counties already on the page ---- */
  covmap.search = function (opts) {
    var input = document.getElementById("covmap-search");
    var list = document.getElementById("covmap-search-results");
    if (!input || !list) { return; }
    var features = [];
    unitLayers.forEach(function (layer) { layer.eachLayer(function (item) { features.push(item.feature.properties); }); });
    var matches = function () {
      var q = input.value.trim();
      if (!q) { return []; }
      return features.filter(function (p) {
        return String(p.c).indexOf(q) === 0 || String(p.n).indexOf(q) !== -1;
      }).slice(0, 20);
    };
    var href = function (p) { return opts.prefix + "counties/" + encodeURIComponent(p.c) + ".html"; };
    input.addEventListener("input", function () {
      list.textContent = "";
      var found = matches();
      found.forEach(function (p) {
        var a = el("a", p.n + " " + p.c + (p.p ? " · " + p.p : ""));
        a.setAttribute("href", href(p));
        list.appendChild(el("div")).appendChild(a);
      });
      if (input.value.trim() && !found.length) { list.appendChild(el("div", "无匹配 no match")); }
    });
    input.addEventListener("keydown", function (e) {
      var found = matches();
      if (e.key === "Enter" && found.length) { window.location.href = href(found[0]); }
    });
  };
  window.covmap = covmap;
})();
