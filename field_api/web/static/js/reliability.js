/* The reliability page: SAIDI per month for urban and rural customers against the targets
 * (the year to date through each month against 2.38 h / 8.52 h a year; each month's own SAIDI
 * in the table), and each district's area year to date
 * with its year-end projection and the projection's method; SAIFI, CAIDI, ASAI and short
 * interruptions in the tables beside; the server's CSV export; compensation for interruptions
 * per district and customer category (GET /reliability/compensation, its billing CSV). All
 * figures come from the API (the page computes nothing of its own). Charts: js/charts.js.
 */
(function () {
  "use strict";
  var t = FO.t, el = FO.el, clear = FO.clear, C = FOCharts;

  function qs(params) {
    return Object.keys(params).map(function (k) {
      return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]);
    }).join("&");
  }

  function areaName(a) { return a ? t("reliability." + a) : t("reliability.all"); }
  function scopeName(s) { return (s.district ? s.district + " " : "") + areaName(s.area); }
  function num(v, digits) { return v === null || v === undefined ? "—" : v.toFixed(digits); }

  var shared = C.panels("reliability.csv"), panel = shared.panel, table = shared.table;

  function monthsView(report, csvUrl) {
    var body = panel("panel-months", t("reliability.by_month"), csvUrl);
    var areas = report.scopes.filter(function (s) { return s.scope === "area"; });
    if (!areas.length) { body.appendChild(el("p", { class: "hint", text: t("planner.no_data") })); return; }
    var labels = areas[0].months.map(function (m) { return m.period; });
    var series = [];
    areas.forEach(function (s) {
      series.push({ name: areaName(s.area), values: s.months.map(function (m) { return m.ytd_saidi_h; }) });
    });
    areas.forEach(function (s) {
      series.push({ name: t("reliability.target") + " · " + areaName(s.area), dashed: true,
        values: labels.map(function () { return s.target_h; }) });
    });
    C.hourLines(body, "saidi", labels, series, { label: t("reliability.by_month") });
    var header = [t("planner.month"), t("reliability.scope"), "SAIDI (h)", t("reliability.ytd"), t("reliability.saifi"),
      t("reliability.caidi"), t("reliability.asai"), t("reliability.short"), t("reliability.served")];
    var rows = [];
    areas.forEach(function (s) {
      s.months.concat([s.ytd]).forEach(function (m) {
        rows.push([m.period === "ytd" ? t("reliability.ytd") : m.period, areaName(s.area),
          num(m.saidi_h, 3), num(m.ytd_saidi_h, 3), num(m.saifi, 3), num(m.caidi_h, 3), num(m.asai, 6),
          num(m.short_frequency, 3), num(m.served, 0)]);
      });
    });
    body.appendChild(table(header, rows));
  }

  function districtsView(report, csvUrl) {
    var body = panel("panel-districts", t("reliability.by_district"), csvUrl);
    var scopes = report.scopes.filter(function (s) {
      return (s.scope === "district" || s.scope === "area") && s.ytd.served > 0;
    });
    if (!scopes.length) { body.appendChild(el("p", { class: "hint", text: t("planner.no_data") })); return; }
    var names = scopes.map(scopeName);
    C.hourBars(body, "districts", names, [
      { name: t("reliability.ytd"), values: scopes.map(function (s) { return s.ytd.saidi_h; }) },
      { name: t("reliability.projection"), values: scopes.map(function (s) { return s.projection.saidi_h; }) },
      { name: t("reliability.target"), values: scopes.map(function (s) { return s.target_h; }) }
    ], { label: t("reliability.by_district") });
    body.appendChild(table(
      [t("reliability.scope"), t("reliability.ytd"), t("reliability.projection"), t("reliability.method"), t("reliability.target")],
      scopes.map(function (s) {
        return [scopeName(s), num(s.ytd.saidi_h, 3), num(s.projection.saidi_h, 3),
          t("reliability.method." + s.projection.method), num(s.target_h, 2)];
      })
    ));
  }

  function showMed(report) {
    var p = document.getElementById("med");
    p.hidden = !report.med;
    if (!report.med) return;
    p.textContent = t("reliability.med", {
      method: t("reliability.med." + report.med.method),
      threshold: report.med.threshold_min === null ? "—" : report.med.threshold_min.toFixed(1) + " min",
      count: report.med.days.length
    });
  }

  /* Compensation for interruptions: GET /reliability/compensation for the chosen year (to
   * today), totals per district stacked by customer category, the table beside, the billing
   * CSV; a missing or invalid policy is said in the panel, never drawn as zeros. */
  function categoryName(c) { return c ? t("reliability.comp.category." + c) : t("reliability.comp.all"); }

  function compensationPeriod(year) {
    var today = FO.chinaToday();
    var end = year + "-12-31";
    return { start: year + "-01-01", end: end < today ? end : today };
  }

  function policyLines(policy) {
    return policy.categories.map(function (r) {
      var parts = [];
      if (r.long_hours !== null) parts.push(t("reliability.comp.rule_long", { hours: r.long_hours, credit: r.long_credit }));
      if (r.yearly_count !== null) parts.push(t("reliability.comp.rule_beyond", { count: r.yearly_count, credit: r.beyond_credit }));
      return categoryName(r.category) + " · " + (parts.join(" · ") || t("reliability.comp.no_rule"));
    });
  }

  function compensationView(report, body) {
    var hints = [t("reliability.comp.period", { start: report.start, end: report.end })].concat(policyLines(report.policy));
    if (report.policy.source === "development_default") {
      body.appendChild(el("p", { class: "notice", id: "comp-dev-policy", text: t("reliability.comp.dev_policy") }));
    }
    hints.forEach(function (h) { body.appendChild(el("p", { class: "hint", text: h })); });
    if (report.uncovered_categories.length) {
      body.appendChild(el("p", { class: "hint", id: "comp-uncovered", text: t("reliability.comp.uncovered", {
        categories: report.uncovered_categories.map(categoryName).join("、") }) }));
    }
    if (report.open_interruptions || report.unattributed_interruptions) {
      body.appendChild(el("p", { class: "hint", text: t("reliability.comp.apart", {
        open: report.open_interruptions, unattributed: report.unattributed_interruptions }) }));
    }
    if (!report.totals.length) { body.appendChild(el("p", { class: "hint", text: t("planner.no_data") })); return; }
    var districts = [], categories = [];
    report.totals.forEach(function (r) {
      if (districts.indexOf(r.district) < 0) districts.push(r.district);
      if (categories.indexOf(r.category) < 0) categories.push(r.category);
    });
    C.stackedBars(body, "compensation", districts, categories.map(function (c) {
      return { name: categoryName(c), values: districts.map(function (d) {
        var row = report.totals.filter(function (r) { return r.district === d && r.category === c; })[0];
        return row ? Number(row.total) : 0;
      }) };
    }), { label: t("reliability.comp.title") });
    var rows = report.totals.concat([report.overall]).map(function (r) {
      return [r.district || t("reliability.comp.all"), categoryName(r.category), r.supply_points, r.owed_supply_points,
        r.interruptions, r.long_credit, r.beyond_credit, r.total];
    });
    body.appendChild(table([t("reliability.comp.district"), t("reliability.comp.category"), t("reliability.comp.points"),
      t("reliability.comp.owed_points"), t("reliability.comp.interruptions"), t("reliability.comp.long"),
      t("reliability.comp.beyond"), t("reliability.comp.total")], rows));
  }

  function loadCompensation(year) {
    var params = qs(compensationPeriod(year));
    var body = panel("panel-compensation", t("reliability.comp.title"), "/reliability/compensation.csv?" + params);
    var root = document.getElementById("panel-compensation");
    return FO.api("GET", "/reliability/compensation?" + params).then(function (report) {
      compensationView(report, body);
      root.setAttribute("data-state", "loaded");
    }).catch(function (err) {
      if (err.status === 401) throw err;
      document.getElementById("panel-compensation-csv").remove();  // nothing to bill
      var missing = err.code === "reliability.compensation_policy_missing";
      body.appendChild(el("p", { class: "notice notice--error", role: "alert", id: "comp-problem",
        text: missing ? t("reliability.comp.missing") : t("app.error", { detail: err.detail || err.status }) }));
      root.setAttribute("data-state", missing ? "missing" : "error");
    });
  }

  function load(query) {
    C.disposeAll();
    var panels = document.getElementById("panels");
    clear(panels);
    panels.removeAttribute("data-loaded");
    var params = qs(query);
    return FO.api("GET", "/reliability/indices?" + params).then(function (report) {
      showMed(report);
      var csvUrl = "/reliability/indices.csv?" + params;
      monthsView(report, csvUrl);
      districtsView(report, csvUrl);
      return loadCompensation(query.year);
    }).then(function () {
      panels.setAttribute("data-loaded", "true");
    }).catch(function (err) {
      if (err.status === 401) { FO.signOut(); start(); return; }
      panels.appendChild(el("p", { class: "notice notice--error", role: "alert", text: t("app.error", { detail: err.detail }) }));
    });
  }

  function formQuery(form) {
    return { year: form.elements.year.value, definition: form.elements.definition.value,
      variant: form.elements.variant.value };
  }

  function start() {
    var me = FO.me();
    var signedIn = !!FO.token();
    document.getElementById("view-signin").hidden = signedIn;
    document.getElementById("view-dashboard").hidden = !signedIn;
    document.getElementById("sign-out").hidden = !signedIn;
    if (!signedIn) { document.getElementById("signin-token").focus(); return; }
    document.getElementById("whoami").textContent = me ? t("signin.signed_in_as", { name: me.name, role: FO.roleName(me.role) }) : "";
    var form = document.getElementById("indices-form");
    var params = new URLSearchParams(location.search);
    form.elements.year.value = params.get("year") || FO.chinaToday().slice(0, 4);
    form.elements.definition.value = params.get("definition") || "dlt836";
    form.elements.variant.value = params.get("variant") || "all";
    load(formQuery(form));
  }

  document.addEventListener("DOMContentLoaded", function () {
    FO.wireSignIn(function () { start(); });
    document.getElementById("indices-form").addEventListener("submit", function (event) {
      event.preventDefault();
      load(formQuery(event.target));
    });
    start();
  });
})();
