/* Small SVG charts for the planner dashboard (bars, lines over time, Pareto), no library needed.
 * Every mark carries data-label / data-value and a <title>, so the figures are readable by
 * screen readers and by tests; each chart also gets a plain table beside it.
 */
(function () {
  "use strict";
  var NS = "http://www.w3.org/2000/svg";

  function s(tag, attrs, text) {
    var node = document.createElementNS(NS, tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function pct(v) { return v === null || v === undefined ? "—" : (Math.round(v * 1000) / 10) + "%"; }

  function svg(width, height, label) {
    return s("svg", { viewBox: "0 0 " + width + " " + height, class: "chart", role: "img", "aria-label": label,
                      preserveAspectRatio: "xMidYMid meet" });
  }

  function truncate(text, n) { text = String(text); return text.length > n ? text.slice(0, n - 1) + "…" : text; }

  /**
   * Horizontal bars of rates (0..1): rows [{label, value, note}]. Horizontal bars keep long
   * crew and district names readable on a 360 px phone.
   */
  function rateBars(rows, opts) {
    opts = opts || {};
    var rowH = 26, left = 118, right = 52, width = 360, top = 6;
    var height = top + rows.length * rowH + 18;
    var root = svg(width, height, opts.label || "");
    var span = width - left - right;
    [0, 0.5, 1].forEach(function (g) {
      var x = left + g * span;
      root.appendChild(s("line", { x1: x, x2: x, y1: top, y2: height - 16, class: "grid" }));
      root.appendChild(s("text", { x: x, y: height - 4, "text-anchor": "middle" }, pct(g)));
    });
    rows.forEach(function (r, i) {
      var y = top + i * rowH;
      var w = r.value === null || r.value === undefined ? 0 : Math.max(0, Math.min(1, r.value)) * span;
      root.appendChild(s("text", { x: left - 6, y: y + rowH / 2 + 4, "text-anchor": "end" }, truncate(r.label, 14)));
      var bar = s("rect", { x: left, y: y + 4, width: w, height: rowH - 8, rx: 2,
                            class: "bar" + (opts.target !== undefined && r.value !== null && r.value < opts.target ? " bar--low" : ""),
                            "data-label": r.label, "data-value": r.value === null ? "" : r.value });
      bar.appendChild(s("title", {}, r.label + ": " + pct(r.value) + (r.note ? " (" + r.note + ")" : "")));
      root.appendChild(bar);
      root.appendChild(s("text", { x: left + w + 4, y: y + rowH / 2 + 4 }, pct(r.value)));
    });
    return root;
  }

  /** Lines over time: labels [x...], series [{name, values: [0..1 | null]}]. */
  function rateLines(labels, series, opts) {
    opts = opts || {};
    var width = 360, height = 190, left = 40, right = 10, top = 10, bottom = 34;
    var root = svg(width, height, opts.label || "");
    var spanX = width - left - right, spanY = height - top - bottom;
    var xAt = function (i) { return left + (labels.length > 1 ? (i * spanX) / (labels.length - 1) : spanX / 2); };
    var yAt = function (v) { return top + (1 - v) * spanY; };
    [0, 0.25, 0.5, 0.75, 1].forEach(function (g) {
      root.appendChild(s("line", { x1: left, x2: width - right, y1: yAt(g), y2: yAt(g), class: "grid" }));
      root.appendChild(s("text", { x: left - 4, y: yAt(g) + 4, "text-anchor": "end" }, pct(g)));
    });
    labels.forEach(function (l, i) {
      root.appendChild(s("text", { x: xAt(i), y: height - bottom + 16, "text-anchor": "middle" }, l.length > 7 ? l.slice(2) : l));
    });
    series.forEach(function (ser, k) {
      var d = "", pen = false;
      ser.values.forEach(function (v, i) {
        if (v === null || v === undefined) { pen = false; return; }
        d += (pen ? "L" : "M") + xAt(i).toFixed(1) + " " + yAt(v).toFixed(1) + " ";
        pen = true;
      });
      if (d) root.appendChild(s("path", { d: d, class: "series-" + k }));
      ser.values.forEach(function (v, i) {
        if (v === null || v === undefined) return;
        var dot = s("circle", { cx: xAt(i), cy: yAt(v), r: 3.5, class: "series-" + k, "data-series": ser.name,
                                "data-label": labels[i], "data-value": v });
        dot.appendChild(s("title", {}, ser.name + " " + labels[i] + ": " + pct(v)));
        root.appendChild(dot);
      });
    });
    return root;
  }

  /** Pareto: rows [{label, count, cumulative}] sorted by count, bars plus the cumulative line. */
  function pareto(rows, opts) {
    opts = opts || {};
    var width = 360, height = 220, left = 30, right = 36, top = 10, bottom = 72;
    var root = svg(width, height, opts.label || "");
    var max = rows.reduce(function (m, r) { return Math.max(m, r.count); }, 1);
    var spanX = width - left - right, spanY = height - top - bottom;
    var bw = spanX / Math.max(rows.length, 1);
    root.appendChild(s("line", { x1: left, x2: left + spanX, y1: top + spanY, y2: top + spanY, class: "axis" }));
    [0, 0.5, 1].forEach(function (g) {
      root.appendChild(s("text", { x: width - right + 4, y: top + (1 - g) * spanY + 4 }, pct(g)));
      root.appendChild(s("text", { x: left - 4, y: top + (1 - g) * spanY + 4, "text-anchor": "end" }, String(Math.round(g * max))));
    });
    var d = "";
    rows.forEach(function (r, i) {
      var h = (r.count / max) * spanY, x = left + i * bw;
      var bar = s("rect", { x: x + bw * 0.15, y: top + spanY - h, width: bw * 0.7, height: h, class: "bar",
                            "data-label": r.label, "data-value": r.count });
      bar.appendChild(s("title", {}, r.label + ": " + r.count + " · " + pct(r.cumulative)));
      root.appendChild(bar);
      var lx = x + bw / 2, ly = top + (1 - r.cumulative) * spanY;
      d += (i ? "L" : "M") + lx.toFixed(1) + " " + ly.toFixed(1) + " ";
      root.appendChild(s("circle", { cx: lx, cy: ly, r: 3, class: "dot", "data-cumulative": r.cumulative }));
      var label = s("text", { x: lx, y: top + spanY + 12, "text-anchor": "end",
                              transform: "rotate(-35 " + lx + " " + (top + spanY + 12) + ")" }, truncate(r.label, 7));
      root.appendChild(label);
    });
    if (d) root.appendChild(s("path", { d: d, class: "line" }));
    return root;
  }

  window.FOCharts = { rateBars: rateBars, rateLines: rateLines, pareto: pareto, pct: pct };
})();
