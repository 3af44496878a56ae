/* The planned-outage budget page: each district's burn-down over the year (its budget against
 * the customer-hours of approved planned outages, cumulative by month), the merge proposals
 * ("one outage, many uses") with the customer-hours each saves, and the customer-hours live-line
 * work avoided beside what planned outages used. Every figure comes from
 * GET /reliability/outage-budget (the page computes nothing of its own); tables beside the
 * charts; the server's CSV exports. Charts: js/charts.js.
 */
(function () {
  "use strict";
  var t = FO.t, el = FO.el, clear = FO.clear, C = FOCharts;

  function num(v, digits) { return v === null || v === undefined ? "—" : v.toFixed(digits); }
  function pct(v) { return v === null || v === undefined ? "—" : (Math.round(v * 1000) / 10) + "%"; }

  var shared = C.panels("outage-budget.csv"), panel = shared.panel, table = shared.table;

  function burnDownView(report) {
    var body = panel("panel-burn", t("budget.burn_down"), "/reliability/outage-budget.csv?year=" + report.year);
    if (!report.districts.length) { body.appendChild(el("p", { class: "hint", text: t("planner.no_data") })); return; }
    var labels = report.districts[0].months.map(function (m) { return report.year + "-" + (m.month < 10 ? "0" : "") + m.month; });
    var series = [];
    report.districts.forEach(function (d) {
      series.push({ name: d.district + " · " + t("budget.used"),
        values: d.months.map(function (m) { return m.cumulative_customer_hours; }) });
    });
    report.districts.forEach(function (d) {
      series.push({ name: d.district + " · " + t("budget.budget"), dashed: true,
        values: labels.map(function () { return d.budget_customer_hours; }) });
    });
    C.hourLines(body, "burn-down", labels, series, { label: t("budget.burn_down"), unit: t("budget.unit") });
    var rows = [];
    report.districts.forEach(function (d) {
      d.months.forEach(function (m, i) {
        rows.push([d.district, labels[i], num(d.budget_customer_hours, 2), num(m.used_customer_hours, 2),
          num(m.cumulative_customer_hours, 2), num(m.left_customer_hours, 2)]);
      });
    });
    body.appendChild(table([t("planner.district"), t("planner.month"), t("budget.budget"), t("budget.month_used"),
      t("budget.used"), t("budget.left")], rows));
  }

  function proposalsView(report) {
    var body = panel("panel-proposals", t("budget.proposals"), "/reliability/merge-proposals.csv?year=" + report.year);
    var found = report.proposals;
    if (!found.length) { body.appendChild(el("p", { class: "hint", text: t("budget.no_proposals") })); return; }
    var names = found.map(function (p) { return p.switch_code + " #" + p.request_ids.join("+"); });
    C.hourBars(body, "proposals", names, [
      { name: t("budget.separate"), values: found.map(function (p) { return p.separate_customer_hours; }) },
      { name: t("budget.merged"), values: found.map(function (p) { return p.merged_customer_hours; }) },
      { name: t("budget.saved"), values: found.map(function (p) { return p.saved_customer_hours; }) }
    ], { label: t("budget.proposals"), unit: t("budget.unit") });
    body.appendChild(table(
      [t("budget.switch"), t("budget.requests"), t("budget.works"), t("budget.window"), t("budget.customers"),
        t("budget.separate"), t("budget.merged"), t("budget.saved")],
      found.map(function (p) {
        return [p.switch_code, p.request_ids.join(", "),
          p.works.map(function (w) { return w.work + "（" + w.requester + "）"; }).join("；"),
          p.start_at_local.replace("T", " ").slice(0, 16) + " – " + p.end_at_local.replace("T", " ").slice(11, 16),
          p.customers, num(p.separate_customer_hours, 2), num(p.merged_customer_hours, 2),
          num(p.saved_customer_hours, 2)];
      })
    ));
  }

  function liveLineView(report) {
    var body = panel("panel-live", t("budget.live_line"), "/reliability/live-line-jobs.csv?year=" + report.year);
    if (!report.districts.length) { body.appendChild(el("p", { class: "hint", text: t("planner.no_data") })); return; }
    var names = report.districts.map(function (d) { return d.district; });
    C.hourBars(body, "live-line", names, [
      { name: t("budget.used"), values: report.districts.map(function (d) { return d.used_customer_hours; }) },
      { name: t("budget.avoided"), values: report.districts.map(function (d) { return d.live_line_customer_hours_avoided; }) }
    ], { label: t("budget.live_line"), unit: t("budget.unit") });
    body.appendChild(table([t("planner.district"), t("budget.used"), t("budget.avoided"), t("budget.share")],
      report.districts.map(function (d) {
        return [d.district, num(d.used_customer_hours, 2), num(d.live_line_customer_hours_avoided, 2),
          pct(d.live_line_share)];
      })));
  }

  function load(year) {
    C.disposeAll();
    var panels = document.getElementById("panels");
    clear(panels);
    panels.removeAttribute("data-loaded");
    return FO.api("GET", "/reliability/outage-budget?year=" + encodeURIComponent(year)).then(function (report) {
      burnDownView(report);
      proposalsView(report);
      liveLineView(report);
      panels.setAttribute("data-loaded", "true");
    }).catch(function (err) {
      if (err.status === 401) { FO.signOut(); start(); return; }
      panels.appendChild(el("p", { class: "notice notice--error", role: "alert", text: t("app.error", { detail: err.detail }) }));
    });
  }

  function start() {
    var me = FO.me();
    var signedIn = !!FO.token();
    document.getElementById("view-signin").hidden = signedIn;
    document.getElementById("view-dashboard").hidden = !signedIn;
    document.getElementById("sign-out").hidden = !signedIn;
    if (!signedIn) { document.getElementById("signin-token").focus(); return; }
    document.getElementById("whoami").textContent = me ? t("signin.signed_in_as", { name: me.name, role: FO.roleName(me.role) }) : "";
    var form = document.getElementById("budget-form");
    var params = new URLSearchParams(location.search);
    form.elements.year.value = params.get("year") || FO.chinaToday().slice(0, 4);
    load(form.elements.year.value);
  }

  document.addEventListener("DOMContentLoaded", function () {
    FO.wireSignIn(function () { start(); });
    document.getElementById("budget-form").addEventListener("submit", function (event) {
      event.preventDefault();
      load(event.target.elements.year.value);
    });
    start();
  });
})();
