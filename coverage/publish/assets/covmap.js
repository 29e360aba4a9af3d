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
  window.covmap = covmap;
})();
