/* The planner dashboard's charts, drawn by Apache ECharts (vendor/echarts, no CDN).
 *
 * Each chart lives in a <div class="chart" data-chart="..."> whose ECharts instance a test
 * reads with echarts.getInstanceByDom(div).getOption(); the page keeps a plain table beside
 * each chart for people who do not see it. Canvas renderer, no HTML tooltips (rich text), so
 * nothing sets an inline style attribute the Content-Security-Policy would refuse: ECharts
 * styles its elements from script (CSSOM), which the policy allows.
 * Sizes follow the container: every chart is resized when the window is.
 */
(function () {
  "use strict";
  var COLORS = ["#0b5cab", "#e07000", "#1a7f37", "#8250df", "#cf222e", "#6e7781"];
  // Points of several series at the same value (100 % say) stay visible: each series has its
  // own shape and size (largest drawn first) and a small sideways offset.
  var SYMBOLS = [
    { symbol: "circle", size: 13, offset: -4 },
    { symbol: "rect", size: 9, offset: 0 },
    { symbol: "triangle", size: 9, offset: 4 }
  ];
  var instances = [];

  function pct(v) { return v === null || v === undefined ? "—" : (Math.round(v * 1000) / 10) + "%"; }

  function narrow() { return window.innerWidth < 600; }

  /**
   * Create a chart box in ``parent`` (already in the page) and draw ``option`` in it.
   * ``fit()`` gives what depends on the screen's width ({height, option}); it is applied again
   * whenever the window is resized (a phone turned sideways, a desktop window narrowed).
   */
  function mount(parent, name, label, fit, option) {
    var box = FO.el("div", { class: "chart", "data-chart": name, role: "img", "aria-label": label });
    parent.appendChild(box);
    var sized = fit();
    box.style.height = sized.height + "px";  // CSSOM, allowed by the policy (no style attribute)
    var chart = echarts.init(box, null, { renderer: "canvas" });
    chart.setOption(Object.assign({
      animation: false,
      color: COLORS,
      textStyle: { fontSize: 12 },
      tooltip: { renderMode: "richText", confine: true }
    }, option));
    chart.setOption(sized.option);
    instances.push({ chart: chart, box: box, fit: fit });
    return box;
  }

  function labelWidth() { return narrow() ? 110 : 170; }

  /**
   * Horizontal bars of rates (0..1), one per row {label, value, note}: long crew and district
   * names stay readable on a phone (truncated with an ellipsis, the full name in the table).
   */
  function rateBars(parent, name, rows, opts) {
    opts = opts || {};
    var labels = rows.map(function (r) { return r.label; });
    var fit = function () {
      return { height: 48 + rows.length * 34, option: { yAxis: { axisLabel: { width: labelWidth() } } } };
    };
    return mount(parent, name, opts.label || "", fit, {
      grid: { left: 8, right: 52, top: 8, bottom: 24, containLabel: true },
      tooltip: { renderMode: "richText", confine: true, trigger: "item",
        formatter: function (p) { var r = rows[p.dataIndex]; return r.label + ": " + pct(r.value) + (r.note ? " (" + r.note + ")" : ""); } },
      xAxis: { type: "value", min: 0, max: 1, interval: 0.5, axisLabel: { formatter: pct, fontSize: 11 } },
      yAxis: { type: "category", data: labels, inverse: true,
        axisLabel: { overflow: "truncate", fontSize: 12 } },
      series: [{
        type: "bar", name: opts.label || "", barMaxWidth: 22,
        data: rows.map(function (r) { return r.value; }),
        label: { show: true, position: "right", fontSize: 11, formatter: function (p) { return pct(p.value); } }
      }]
    });
  }

  /** Lines of rates over months: labels ["YYYY-MM"...], series [{name, values: [0..1 | null]}]. */
  function rateLines(parent, name, labels, series, opts) {
    opts = opts || {};
    var fit = function () {
      // The legend takes two lines on a phone.
      return { height: narrow() ? 280 : 320, option: { grid: { top: narrow() ? 56 : 40 } } };
    };
    return mount(parent, name, opts.label || "", fit, {
      legend: { top: 0, left: 0, itemGap: 12, textStyle: { fontSize: 12 } },
      grid: { left: 8, right: 16, bottom: 8, containLabel: true },
      tooltip: { renderMode: "richText", confine: true, trigger: "axis",
        valueFormatter: function (v) { return pct(v); } },
      xAxis: { type: "category", data: labels, boundaryGap: false,
        axisLabel: { fontSize: 11, hideOverlap: true,
          // "2026-07" in full on a desktop; "26-07" on a phone so no label is cut.
          formatter: function (v) { return narrow() ? v.slice(2) : v; } } },
      yAxis: { type: "value", min: 0, max: 1, interval: 0.25,
        axisLabel: { formatter: pct, fontSize: 11 } },
      series: series.map(function (s, i) {
        var look = SYMBOLS[i % SYMBOLS.length];
        return {
          type: "line", name: s.name, data: s.values, connectNulls: false, clip: false,
          symbol: look.symbol, symbolSize: look.size, symbolOffset: [look.offset, 0],
          showAllSymbol: true, z: 2 + i, lineStyle: { width: 2.5 }
        };
      })
    });
  }

  /** Pareto: rows [{label, count, cumulative}] most frequent first; bars and cumulative line. */
  function pareto(parent, name, rows, opts) {
    opts = opts || {};
    // Item names are long ("Protective earthing resistance"): with room (a desktop) each gets
    // its column's width and wraps at spaces, never cut; on a phone they slant and are cut
    // (the full name is in the table beside the chart).
    var fit = function () {
      if (narrow()) {
        return { height: 320, option: { xAxis: { axisLabel: {
          rotate: 35, width: 96, overflow: "truncate", lineHeight: 14 } } } };
      }
      var slot = Math.floor((parent.clientWidth || window.innerWidth) / Math.max(rows.length, 1));
      return { height: 340, option: { xAxis: { axisLabel: {
        rotate: 0, width: Math.max(slot - 12, 56), overflow: "break", lineHeight: 14 } } } };
    };
    return mount(parent, name, opts.label || "", fit, {
      legend: { top: 0, left: 0, textStyle: { fontSize: 12 } },
      grid: { left: 8, right: 8, top: 36, bottom: 8, containLabel: true },
      tooltip: { renderMode: "richText", confine: true, trigger: "axis" },
      xAxis: { type: "category", data: rows.map(function (r) { return r.label; }),
        axisLabel: { interval: 0, fontSize: 11 } },
      yAxis: [
        { type: "value", minInterval: 1, axisLabel: { fontSize: 11 } },
        { type: "value", min: 0, max: 1, interval: 0.5, axisLabel: { formatter: pct, fontSize: 11 },
          splitLine: { show: false } }
      ],
      series: [
        { type: "bar", name: opts.countName || "", data: rows.map(function (r) { return r.count; }), barMaxWidth: 36 },
        { type: "line", name: opts.cumulativeName || "", yAxisIndex: 1, clip: false,
          data: rows.map(function (r) { return r.cumulative; }), symbol: "circle", symbolSize: 7 }
      ]
    });
  }

  /** Stacked horizontal bars of counts: categories [...], series [{name, values}]. */
  function stackedBars(parent, name, categories, series, opts) {
    opts = opts || {};
    var fit = function () {
      return { height: 72 + categories.length * 34, option: { yAxis: { axisLabel: { width: labelWidth() } } } };
    };
    return mount(parent, name, opts.label || "", fit, {
      legend: { top: 0, left: 0, textStyle: { fontSize: 12 } },
      grid: { left: 8, right: 24, top: 32, bottom: 8, containLabel: true },
      tooltip: { renderMode: "richText", confine: true, trigger: "axis" },
      xAxis: { type: "value", minInterval: 1, axisLabel: { fontSize: 11 } },
      yAxis: { type: "category", data: categories, inverse: true,
        axisLabel: { overflow: "truncate", fontSize: 12 } },
      series: series.map(function (s) {
        return { type: "bar", name: s.name, stack: "total", data: s.values, barMaxWidth: 22,
                 label: { show: true, fontSize: 11, formatter: function (p) { return p.value ? String(p.value) : ""; } } };
      })
    });
  }

  function hours(v) { return v === null || v === undefined ? "—" : (Math.round(v * 1000) / 1000) + " h"; }

  /** Hours, or a value in ``unit`` (opts.unit of the charts below: customer-hours, say). */
  function valueOf(v, unit) {
    if (!unit) return hours(v);
    return v === null || v === undefined ? "—" : (Math.round(v * 100) / 100) + " " + unit;
  }

  /**
   * Lines of hours over months (the reliability page): labels ["YYYY-MM"...], series
   * [{name, values, dashed}] (a dashed series is a target, drawn without symbols);
   * ``opts.unit`` names another unit (customer-hours on the budget page).
   */
  function hourLines(parent, name, labels, series, opts) {
    opts = opts || {};
    var fit = function () {
      return { height: narrow() ? 280 : 320, option: { grid: { top: narrow() ? 56 : 40 } } };
    };
    return mount(parent, name, opts.label || "", fit, {
      legend: { top: 0, left: 0, itemGap: 12, textStyle: { fontSize: 12 } },
      grid: { left: 8, right: 16, bottom: 8, containLabel: true },
      tooltip: { renderMode: "richText", confine: true, trigger: "axis",
        valueFormatter: function (v) { return valueOf(v, opts.unit); } },
      xAxis: { type: "category", data: labels, boundaryGap: false,
        axisLabel: { fontSize: 11, hideOverlap: true,
          formatter: function (v) { return narrow() ? v.slice(2) : v; } } },
      yAxis: { type: "value", min: 0, axisLabel: { fontSize: 11 } },
      series: series.map(function (s, i) {
        var look = SYMBOLS[i % SYMBOLS.length];
        return s.dashed ? {
          type: "line", name: s.name, data: s.values, symbol: "none", z: 1,
          lineStyle: { width: 1.5, type: "dashed" }
        } : {
          type: "line", name: s.name, data: s.values, clip: false, symbol: look.symbol,
          symbolSize: look.size, showAllSymbol: true, z: 2 + i, lineStyle: { width: 2.5 }
        };
      })
    });
  }

  /** Grouped horizontal bars of hours: categories [...], series [{name, values}]. */
  function hourBars(parent, name, categories, series, opts) {
    opts = opts || {};
    var fit = function () {
      return { height: 72 + categories.length * 22 * Math.max(series.length, 1),
        option: { yAxis: { axisLabel: { width: labelWidth() } } } };
    };
    return mount(parent, name, opts.label || "", fit, {
      legend: { top: 0, left: 0, textStyle: { fontSize: 12 } },
      grid: { left: 8, right: 48, top: 32, bottom: 8, containLabel: true },
      tooltip: { renderMode: "richText", confine: true, trigger: "axis",
        valueFormatter: function (v) { return valueOf(v, opts.unit); } },
      xAxis: { type: "value", min: 0, axisLabel: { fontSize: 11 } },
      yAxis: { type: "category", data: categories, inverse: true,
        axisLabel: { overflow: "truncate", fontSize: 12 } },
      series: series.map(function (s) {
        return { type: "bar", name: s.name, data: s.values, barMaxWidth: 16,
          label: { show: true, position: "right", fontSize: 10,
            formatter: function (p) { return p.value === null ? "" : String(Math.round(p.value * 100) / 100); } } };
      })
    });
  }

  /** Forget the charts of a page section about to be cleared. */
  function disposeAll() {
    instances.forEach(function (i) { if (!i.chart.isDisposed()) i.chart.dispose(); });
    instances = [];
  }

  var pending = null;
  window.addEventListener("resize", function () {
    if (pending) clearTimeout(pending);
    pending = setTimeout(function () {
      pending = null;
      instances.forEach(function (i) {
        if (i.chart.isDisposed()) return;
        var sized = i.fit();
        i.box.style.height = sized.height + "px";
        i.chart.setOption(sized.option);
        i.chart.resize();
      });
    }, 100);
  });

  /**
   * A planner page's panels: ``panel(id, title, csvUrl)`` adds a titled section with a CSV
   * button (the server's export, saved under its own file name, else ``fallbackName``) to
   * #panels and returns its body; ``table(header, rows)`` is the plain table kept beside a chart.
   */
  function panels(fallbackName) {
    var t = FO.t, el = FO.el;
    function panel(id, title, csvUrl) {
      var head = el("div", { class: "panel__head" }, [el("h2", { id: id + "-title", text: title })]);
      var body = el("div", { class: "panel__body" });
      var root = el("section", { class: "panel panel--wide", id: id, "aria-labelledby": id + "-title" }, [head, body]);
      document.getElementById("panels").appendChild(root);
      var buttons = el("div", { class: "panel__csv" });
      head.appendChild(buttons);
      buttons.appendChild(el("button", { type: "button", class: "btn btn--ghost", id: id + "-csv",
        text: t("planner.csv"), onclick: function () { download(csvUrl); } }));
      return body;
    }

    function download(url) {
      return FO.api("GET", url, { raw: true }).then(function (response) {
        var disposition = response.headers.get("content-disposition") || "";
        var match = /filename="([^"]+)"/.exec(disposition);
        return response.blob().then(function (blob) {
          var a = el("a", { href: URL.createObjectURL(blob), download: match ? match[1] : fallbackName });
          document.body.appendChild(a);
          a.click();
          setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
        });
      }).catch(function (err) { window.alert(t("app.error", { detail: err.detail || err.status })); });
    }

    function table(header, rows) {
      return el("details", { class: "data-table", open: window.innerWidth >= 900 }, [
        el("summary", { text: t("planner.table") }),
        el("div", { class: "table-wrap" }, [el("table", {}, [
          el("thead", {}, [el("tr", {}, header.map(function (h) { return el("th", { scope: "col", text: h }); }))]),
          el("tbody", {}, rows.map(function (r) {
            return el("tr", {}, r.map(function (c) { return el("td", { text: String(c) }); }));
          }))
        ])])
      ]);
    }
    return { panel: panel, download: download, table: table };
  }

  window.FOCharts = {
    rateBars: rateBars, rateLines: rateLines, pareto: pareto, stackedBars: stackedBars,
    hourLines: hourLines, hourBars: hourBars, disposeAll: disposeAll, pct: pct, hours: hours,
    panels: panels
  };
})();
