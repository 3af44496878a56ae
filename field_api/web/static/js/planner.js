/* The planner dashboard: rates over time and by crew/district, the Pareto of failing items,
 * overdue and at-risk orders, evidence and off-system flags; each view downloadable as CSV.
 * All figures come from the service's planner endpoints; a view whose endpoint the server
 * does not offer says so instead of showing anything made up.
 */
(function () {
  "use strict";
  var t = FO.t, el = FO.el, clear = FO.clear, C = FOCharts;

  // Endpoints other parts of fieldops provide (first match in the OpenAPI document is used).
  var ONE_VISIT = ["/planner/one-visit"];
  var EVIDENCE_FLAGS = ["/media/flags"];
  var OFFSYSTEM_FLAGS = ["/review-flags"];

  var paths = {}, crews = {}, districts = {};

  function pick(candidates) {
    for (var i = 0; i < candidates.length; i++) if (paths[candidates[i]] && paths[candidates[i]].get) return candidates[i];
    return null;
  }

  function qs(params) {
    return Object.keys(params).filter(function (k) { return params[k] !== null && params[k] !== undefined; })
      .map(function (k) { return encodeURIComponent(k) + "=" + encodeURIComponent(params[k]); }).join("&");
  }

  function months(from, to) {
    var out = [], y = Number(from.slice(0, 4)), m = Number(from.slice(5, 7));
    while (true) {
      var label = y + "-" + (m < 10 ? "0" : "") + m;
      if (label > to.slice(0, 7)) break;
      var last = new Date(Date.UTC(y, m, 0)).toISOString().slice(0, 10);
      out.push({ label: label, from: label + "-01" < from ? from : label + "-01", to: last > to ? to : last });
      m += 1; if (m > 12) { m = 1; y += 1; }
      if (out.length > 36) break; // a dashboard of three years is already unreadable
    }
    return out;
  }

  function crewName(id) { return id === null || id === undefined ? "—" : crews[id] || String(id); }
  function districtName(id) { return districts[id] || String(id); }

  function panel(id, title, wide) {
    var csvButton = el("button", { type: "button", class: "btn btn--ghost", id: id + "-csv", text: t("planner.csv"), disabled: true });
    var body = el("div", { class: "panel__body" }, [el("p", { class: "hint", text: t("app.loading") })]);
    var root = el("section", { class: "panel" + (wide ? " panel--wide" : ""), id: id, "aria-labelledby": id + "-title" }, [
      el("div", { class: "panel__head" }, [el("h2", { id: id + "-title", text: title }), csvButton]), body
    ]);
    document.getElementById("panels").appendChild(root);
    return {
      body: body,
      csv: function (filename, header, rows) {
        csvButton.disabled = false;
        csvButton.onclick = function () { FO.downloadCsv(filename, header, rows); };
      },
      fail: function (err) {
        clear(body);
        body.appendChild(el("p", { class: "notice notice--" + (err ? "error" : "warn"), text: err ? t("app.error", { detail: err.detail }) : t("app.unavailable") }));
      }
    };
  }

  function table(header, rows, rowClass) {
    return el("div", { class: "table-wrap" }, [el("table", {}, [
      el("thead", {}, [el("tr", {}, header.map(function (h) { return el("th", { scope: "col", text: h }); }))]),
      el("tbody", {}, rows.map(function (r, i) {
        return el("tr", { class: rowClass ? rowClass(i) : null }, r.map(function (c) {
          return c instanceof Node ? el("td", {}, [c]) : el("td", { class: typeof c === "number" ? "num" : null, text: c === null ? "—" : String(c) });
        }));
      }))
    ])]);
  }

  function legend(names) {
    return el("p", { class: "legend" }, names.map(function (n, i) {
      return el("span", {}, [el("i", { class: "legend-" + i }), n]);
    }));
  }

  // --------------------------------------------------------------- data fetching

  function firstPass(range, groupBy) {
    return FO.api("GET", "/planner/first-pass?" + qs({ from: range.from, to: range.to, group_by: groupBy }));
  }
  function sumRate(rows, num, den) {
    var n = 0, d = 0;
    rows.forEach(function (r) { n += r[num]; d += r[den]; });
    return { rate: d ? n / d : null, n: n, d: d };
  }
  function compliance(range, extra) {
    return FO.api("GET", "/deadlines/compliance?" + qs(Object.assign({ from: range.from, to: range.to }, extra || {})))
      .then(function (res) {
        var row = res.rows.filter(function (r) { return r.clock === "end_to_end"; })[0];
        return row ? { rate: row.rate, met: row.met, missed: row.missed, finished: row.finished }
                   : { rate: null, met: 0, missed: 0, finished: 0 };
      });
  }
  function oneVisit(range, groupBy) {
    var path = pick(ONE_VISIT);
    if (!path) return Promise.resolve(null);
    return FO.api("GET", path + "?" + qs({ from: range.from, to: range.to, group_by: groupBy || "crew" }));
  }

  // --------------------------------------------------------------- views

  function overTime(range) {
    var p = panel("panel-trend", t("planner.over_time") + " · " + [t("planner.first_pass"), t("planner.one_visit"), t("planner.compliance")].join(" / "), true);
    var ms = months(range.from, range.to);
    return Promise.all(ms.map(function (m) {
      return Promise.all([
        firstPass(m, "crew").then(function (rows) { return sumRate(rows, "passed_first", "checked"); }).catch(function () { return null; }),
        oneVisit(m).then(function (rows) { return rows ? rows.filter(function (r) { return r.key === "all"; })[0] || null : null; }).catch(function () { return null; }),
        compliance(m).catch(function () { return null; })
      ]);
    })).then(function (results) {
      clear(p.body);
      var series = [
        { name: t("planner.first_pass"), values: results.map(function (r) { return r[0] ? r[0].rate : null; }) },
        { name: t("planner.one_visit"), values: results.map(function (r) { return r[1] ? r[1].rate : null; }) },
        { name: t("planner.compliance"), values: results.map(function (r) { return r[2] ? r[2].rate : null; }) }
      ];
      var labels = ms.map(function (m) { return m.label; });
      p.body.appendChild(legend(series.map(function (x) { return x.name; })));
      p.body.appendChild(C.rateLines(labels, series, { label: t("planner.over_time") }));
      var header = [t("planner.month")].concat(series.map(function (x) { return x.name; }));
      var rows = labels.map(function (l, i) { return [l].concat(series.map(function (x) { return C.pct(x.values[i]); })); });
      p.body.appendChild(el("details", {}, [el("summary", { text: t("planner.month") }), table(header, rows)]));
      p.csv("trend-" + range.from + "-" + range.to + ".csv", header, labels.map(function (l, i) {
        return [l].concat(series.map(function (x) { return x.values[i] === null ? "" : x.values[i]; }));
      }));
    }).catch(p.fail);
  }

  function barsBlock(body, title, rows, target) {
    body.appendChild(el("h3", { text: title }));
    if (!rows.length) { body.appendChild(el("p", { class: "hint", text: t("planner.no_data") })); return; }
    body.appendChild(C.rateBars(rows, { label: title, target: target }));
  }

  function firstPassView(range) {
    var p = panel("panel-first-pass", t("planner.first_pass"));
    return Promise.all([firstPass(range, "crew"), firstPass(range, "district")]).then(function (res) {
      clear(p.body);
      var toBars = function (rows) { return rows.map(function (r) { return { label: r.label, value: r.rate, note: r.passed_first + "/" + r.checked }; }); };
      barsBlock(p.body, t("planner.by_crew"), toBars(res[0]));
      barsBlock(p.body, t("planner.by_district"), toBars(res[1]));
      var header = ["group", "key", "label", "checked", "passed_first", "rate"];
      var rows = [];
      [["crew", res[0]], ["district", res[1]]].forEach(function (g) {
        g[1].forEach(function (r) { rows.push([g[0], r.key, r.label, r.checked, r.passed_first, r.rate === null ? "" : r.rate]); });
      });
      p.csv("first-pass-" + range.from + "-" + range.to + ".csv", header, rows);
    }).catch(function (err) { p.fail(err.status === 404 ? null : err); });
  }

  function oneVisitView(range) {
    var p = panel("panel-one-visit", t("planner.one_visit"));
    if (!pick(ONE_VISIT)) { p.fail(null); return Promise.resolve(); }
    return Promise.all([oneVisit(range, "crew"), oneVisit(range, "district")]).then(function (res) {
      clear(p.body);
      var toBars = function (rows) {
        return rows.filter(function (r) { return r.key !== "all"; }).map(function (r) {
          return { label: r.label, value: r.rate, note: r.one_visit + "/" + r.energised };
        });
      };
      barsBlock(p.body, t("planner.by_crew"), toBars(res[0]));
      barsBlock(p.body, t("planner.by_district"), toBars(res[1]));
      var header = ["group", "key", "label", "energised", "one_visit", "rate"];
      var rows = [];
      [["crew", res[0]], ["district", res[1]]].forEach(function (g) {
        g[1].forEach(function (r) {
          if (g[0] === "district" && r.key === "all") return;  // listed once, with the crews
          rows.push([r.key === "all" ? "all" : g[0], r.key, r.label, r.energised, r.one_visit, r.rate === null ? "" : r.rate]);
        });
      });
      p.csv("one-visit-" + range.from + "-" + range.to + ".csv", header, rows);
    }).catch(p.fail);
  }

  function complianceView(range) {
    var p = panel("panel-compliance", t("planner.compliance"));
    var crewIds = Object.keys(crews), districtIds = Object.keys(districts);
    return Promise.all([
      Promise.all(crewIds.map(function (id) { return compliance(range, { crew_id: id }); })),
      Promise.all(districtIds.map(function (id) { return compliance(range, { district_id: id }); }))
    ]).then(function (res) {
      clear(p.body);
      var crewRows = crewIds.map(function (id, i) { return { id: id, name: crews[id], c: res[0][i] }; }).filter(function (r) { return r.c.finished; });
      var districtRows = districtIds.map(function (id, i) { return { id: id, name: districts[id], c: res[1][i] }; }).filter(function (r) { return r.c.finished; });
      var toBars = function (rows) { return rows.map(function (r) { return { label: r.name, value: r.c.rate, note: r.c.met + "/" + r.c.finished }; }); };
      barsBlock(p.body, t("planner.by_crew"), toBars(crewRows));
      barsBlock(p.body, t("planner.by_district"), toBars(districtRows));
      var rows = [];
      [["crew", crewRows], ["district", districtRows]].forEach(function (g) {
        g[1].forEach(function (r) { rows.push([g[0], r.id, r.name, r.c.met, r.c.missed, r.c.finished, r.c.rate === null ? "" : r.c.rate]); });
      });
      p.csv("compliance-" + range.from + "-" + range.to + ".csv", ["group", "id", "name", "met", "missed", "finished", "rate"], rows);
    }).catch(p.fail);
  }

  function paretoView(range) {
    var p = panel("panel-pareto", t("planner.pareto"), true);
    return FO.api("GET", "/planner/failing-items?" + qs({ from: range.from, to: range.to })).then(function (rows) {
      clear(p.body);
      if (!rows.length) { p.body.appendChild(el("p", { class: "hint", text: t("planner.no_data") })); }
      else {
        p.body.appendChild(C.pareto(rows.map(function (r) { return { label: r.label, count: r.failures, cumulative: r.cumulative_share }; }), { label: t("planner.pareto") }));
        p.body.appendChild(table([t("checklist.title"), t("planner.count"), t("planner.cumulative")], rows.map(function (r) {
          return [r.label, r.failures, C.pct(r.cumulative_share)];
        })));
      }
      p.csv("failing-items-" + range.from + "-" + range.to + ".csv", ["item_code", "label", "failures", "share", "cumulative_share"],
        rows.map(function (r) { return [r.item_code, r.label, r.failures, r.share, r.cumulative_share]; }));
    }).catch(function (err) { p.fail(err.status === 404 ? null : err); });
  }

  function orderLink(id) { return el("a", { href: "/app/#/order/" + id, text: "#" + id }); }

  function attentionView() {
    var p = panel("panel-attention", t("planner.attention"), true);
    return FO.api("GET", "/deadlines/attention").then(function (res) {
      clear(p.body);
      var items = res.items.slice().sort(function (a, b) { return a.due_on < b.due_on ? -1 : a.due_on > b.due_on ? 1 : 0; });
      if (!items.length) p.body.appendChild(el("p", { class: "hint", text: t("planner.no_data") }));
      else {
        // One line per order clock, as a list: a six-column table does not fit a phone.
        p.body.appendChild(el("ul", { class: "flags" }, items.map(function (i) {
          var status = i.status === "overdue" ? "overdue" : i.status === "at_risk" ? "at_risk" : null;
          return el("li", { class: "flag row--" + i.status }, [
            el("div", { class: "flag__head" }, [
              orderLink(i.order_id),
              status ? el("span", { class: "pill pill--" + status, text: t("orders." + status) }) : null,
              el("span", { text: FO.tOr("clock." + i.clock, i.clock) }),
              el("strong", { text: t("orders.due", { date: i.due_on }) })
            ]),
            el("p", { class: "flag__reason hint", text: crewName(i.crew_id) + " · " + districtName(i.district_id) + " · " + t("stage." + i.stage) })
          ]);
        })));
      }
      p.csv("attention-" + res.as_of + ".csv", ["order_id", "crew", "district", "stage", "clock", "due_on", "status", "provisional"],
        items.map(function (i) { return [i.order_id, crewName(i.crew_id), districtName(i.district_id), i.stage, i.clock, i.due_on, i.status, i.provisional]; }));
    }).catch(p.fail);
  }

  /** Flags as one shape: evidence flags nest theirs ({flag, kind, stage}), review flags do not. */
  function flatFlag(r) {
    var f = r.flag || r;
    return {
      order_id: f.order_id, code: f.code || f.kind, reason: f.reason,
      at: f.created_at || f.detected_at, evidence: r.flag ? r.kind : "", stage: r.stage || f.stage || ""
    };
  }

  function flagName(code) {
    var key = "flag." + code, text = t(key);
    return text === key ? code : text;
  }

  /** Open flags from another part of fieldops, each linked to its order. */
  function flagsView(id, title, candidates) {
    var p = panel(id, title, true);
    var path = pick(candidates);
    if (!path) { p.fail(null); return Promise.resolve(); }
    return FO.api("GET", path + "?limit=500").then(function (raw) {
      var rows = (Array.isArray(raw) ? raw : []).map(flatFlag);
      clear(p.body);
      if (!rows.length) { p.body.appendChild(el("p", { class: "hint", text: t("planner.no_data") })); }
      else {
        // A list, not a table: the reasons are sentences, unreadable in narrow columns.
        p.body.appendChild(el("ul", { class: "flags" }, rows.map(function (r) {
          return el("li", { class: "flag" }, [
            el("div", { class: "flag__head" }, [
              orderLink(r.order_id),
              el("span", { class: "pill pill--at_risk", "data-code": r.code, text: flagName(r.code) + (r.evidence ? " · " + t("photo." + r.evidence) : "") }),
              FO.timeEl(r.at, { class: "hint" })
            ]),
            el("p", { class: "flag__reason", text: r.reason })
          ]);
        })));
      }
      var header = ["order_id", "code", "evidence_kind", "stage", "reason", "at"];
      p.csv(id.replace("panel-", "") + "-" + FO.chinaToday() + ".csv", header, rows.map(function (r) {
        return [r.order_id, r.code, r.evidence, r.stage, r.reason, r.at];
      }));
    }).catch(p.fail);
  }

  // --------------------------------------------------------------- page

  function defaultRange() {
    var to = FO.chinaToday();
    var y = Number(to.slice(0, 4)), m = Number(to.slice(5, 7)) - 5;
    while (m < 1) { m += 12; y -= 1; }
    return { from: y + "-" + (m < 10 ? "0" : "") + m + "-01", to: to };
  }

  function load(range) {
    clear(document.getElementById("panels"));
    return Promise.all([
      FO.api("GET", "/openapi.json"), FO.api("GET", "/crews"), FO.api("GET", "/districts")
    ]).then(function (res) {
      paths = res[0].paths || {};
      crews = {}; districts = {};
      res[1].forEach(function (c) { crews[c.id] = c.code + " " + c.name; });
      res[2].forEach(function (d) { districts[d.id] = d.name; });
      return Promise.all([
        overTime(range), firstPassView(range), oneVisitView(range), complianceView(range),
        paretoView(range), attentionView(),
        flagsView("panel-evidence", t("planner.evidence_flags"), EVIDENCE_FLAGS),
        flagsView("panel-offsystem", t("planner.offsystem_flags"), OFFSYSTEM_FLAGS)
      ]);
    }).then(function () {
      document.getElementById("panels").setAttribute("data-loaded", "true");
    }).catch(function (err) {
      if (err.status === 401) { FO.signOut(); start(); return; }
      document.getElementById("panels").appendChild(el("p", { class: "notice notice--error", role: "alert", text: t("app.error", { detail: err.detail }) }));
    });
  }

  function start() {
    var me = FO.me();
    var signedIn = !!FO.token();
    document.getElementById("view-signin").hidden = signedIn;
    document.getElementById("view-dashboard").hidden = !signedIn;
    document.getElementById("sign-out").hidden = !signedIn;
    if (!signedIn) { document.getElementById("signin-token").focus(); return; }
    document.getElementById("whoami").textContent = me ? t("signin.signed_in_as", { name: me.name, role: me.role }) : "";
    if (me && me.role !== "planner" && me.role !== "admin") {
      document.getElementById("panels").appendChild(el("p", { class: "notice notice--warn", text: t("planner.needs_planner") }));
    }
    var form = document.getElementById("period-form");
    var params = new URLSearchParams(location.search);
    var range = defaultRange();
    form.elements.from.value = params.get("from") || range.from;
    form.elements.to.value = params.get("to") || range.to;
    load({ from: form.elements.from.value, to: form.elements.to.value });
  }

  document.addEventListener("DOMContentLoaded", function () {
    FO.wireSignIn(function () { start(); });
    document.getElementById("period-form").addEventListener("submit", function (event) {
      event.preventDefault();
      var f = event.target;
      if (!f.elements.from.value || !f.elements.to.value || f.elements.to.value < f.elements.from.value) {
        f.elements.to.setAttribute("aria-invalid", "true");
        return;
      }
      f.elements.to.removeAttribute("aria-invalid");
      load({ from: f.elements.from.value, to: f.elements.to.value });
    });
    start();
  });
})();
