/* The planner dashboard: rates over time and by crew/district (each keyed by code and name),
 * the Pareto of failing items, the defect backlog, inspection coverage, repair lead times,
 * overdue and at-risk orders, evidence and off-system flags; each view downloads the server's
 * CSV export (China time, the page's language). Charts: js/charts.js.
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

  var NONE = { code: "", name: "" };
  function crewOf(id) { return crews[id] || NONE; }
  function districtOf(id) { return districts[id] || NONE; }
  function unitName(u) { return u.code ? u.code + " " + u.name : "—"; }

  function panel(id, title, wide) {
    var head = el("div", { class: "panel__head" }, [el("h2", { id: id + "-title", text: title })]);
    var body = el("div", { class: "panel__body" }, [el("p", { class: "hint", text: t("app.loading") })]);
    var root = el("section", { class: "panel" + (wide ? " panel--wide" : ""), id: id, "aria-labelledby": id + "-title" }, [head, body]);
    document.getElementById("panels").appendChild(root);
    var buttons = el("div", { class: "panel__csv" });
    head.appendChild(buttons);
    function button(suffix, text, onclick) {
      buttons.appendChild(el("button", { type: "button", class: "btn btn--ghost", id: id + "-csv" + suffix, text: text, onclick: onclick }));
    }
    return {
      body: body,
      /** The server's CSV export (China time, the page's language): url, or [suffix, text, url]s. */
      serverCsv: function (choices) {
        if (typeof choices === "string") choices = [["", t("planner.csv"), choices]];
        choices.forEach(function (c) { button(c[0], c[1], function () { downloadFrom(c[2]); }); });
      },
      fail: function (err) {
        clear(body);
        body.appendChild(el("p", { class: "notice notice--" + (err ? "error" : "warn"), text: err ? t("app.error", { detail: err.detail }) : t("app.unavailable") }));
      }
    };
  }

  /** Download a CSV export of the API (signed in with the token, so not a plain link). */
  function downloadFrom(url) {
    return FO.api("GET", url, { raw: true }).then(function (response) {
      var disposition = response.headers.get("content-disposition") || "";
      var match = /filename="([^"]+)"/.exec(disposition);
      return response.blob().then(function (blob) {
        var a = el("a", { href: URL.createObjectURL(blob), download: match ? match[1] : "report.csv" });
        document.body.appendChild(a);
        a.click();
        setTimeout(function () { URL.revokeObjectURL(a.href); a.remove(); }, 1000);
      });
    }).catch(function (err) {
      window.alert(t("app.error", { detail: err.detail || err.status }));
    });
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

  /** The plain table beside a chart, folded on a phone. */
  function dataTable(header, rows) {
    return el("details", { class: "data-table", open: window.innerWidth >= 900 }, [
      el("summary", { text: t("planner.table") }), table(header, rows)
    ]);
  }

  function unit(r) { return r.code + " " + r.name; }

  // --------------------------------------------------------------- data fetching

  function firstPass(range, groupBy) {
    return FO.api("GET", "/planner/first-pass?" + qs({ from: range.from, to: range.to, group_by: groupBy }));
  }

  /** Compliance of the end-to-end clock per crew or district (code, name). */
  function compliance(range, groupBy) {
    return FO.api("GET", "/deadlines/compliance?" + qs({ from: range.from, to: range.to, group_by: groupBy }))
      .then(function (res) { return res.groups.filter(function (g) { return g.clock === "end_to_end"; }); });
  }
  function oneVisit(range, groupBy) {
    var path = pick(ONE_VISIT);
    if (!path) return Promise.resolve(null);
    return FO.api("GET", path + "?" + qs({ from: range.from, to: range.to, group_by: groupBy || "crew" }));
  }
  function csvUrl(path, range, extra) {
    return path + "?" + qs(Object.assign({ from: range.from, to: range.to }, extra || {}));
  }
  function byGroup(path, range) {
    return [
      ["", t("planner.csv_crew"), csvUrl(path, range, { group_by: "crew" })],
      ["-district", t("planner.csv_district"), csvUrl(path, range, { group_by: "district" })]
    ];
  }

  // --------------------------------------------------------------- views

  function overTime(range) {
    var p = panel("panel-trend", t("planner.over_time") + " · " + [t("planner.first_pass"), t("planner.one_visit"), t("planner.compliance")].join(" / "), true);
    p.serverCsv(csvUrl("/planner/trend.csv", range));
    return FO.api("GET", csvUrl("/planner/trend", range)).then(function (months) {
      clear(p.body);
      var series = [
        { name: t("planner.first_pass"), values: months.map(function (m) { return m.first_pass_rate; }) },
        { name: t("planner.one_visit"), values: months.map(function (m) { return m.one_visit_rate; }) },
        { name: t("planner.compliance"), values: months.map(function (m) { return m.compliance_rate; }) }
      ];
      var labels = months.map(function (m) { return m.month; });
      C.rateLines(p.body, "trend", labels, series, { label: t("planner.over_time") });
      var header = [t("planner.month")].concat(series.map(function (x) { return x.name; }));
      p.body.appendChild(dataTable(header, labels.map(function (l, i) {
        return [l].concat(series.map(function (x) { return C.pct(x.values[i]); }));
      })));
    }).catch(function (err) { p.fail(err.status === 404 ? null : err); });
  }

  /** A heading, the bars of ``rows`` ({code, name, rate, n, d}) and their table. */
  function barsBlock(body, name, title, rows, counts) {
    body.appendChild(el("h3", { text: title }));
    if (!rows.length) { body.appendChild(el("p", { class: "hint", text: t("planner.no_data") })); return; }
    C.rateBars(body, name, rows.map(function (r) {
      return { label: unit(r), value: r.rate, note: r.n + "/" + r.d };
    }), { label: title });
    body.appendChild(dataTable([t("planner.code"), t("planner.name"), counts[0], counts[1], t("planner.rate")],
      rows.map(function (r) { return [r.code, r.name, r.n, r.d, C.pct(r.rate)]; })));
  }

  function firstPassView(range) {
    var p = panel("panel-first-pass", t("planner.first_pass"));
    p.serverCsv(byGroup("/planner/first-pass.csv", range));
    return Promise.all([firstPass(range, "crew"), firstPass(range, "district")]).then(function (res) {
      clear(p.body);
      var rows = function (list) { return list.map(function (r) { return { code: r.code, name: r.name, rate: r.rate, n: r.passed_first, d: r.checked }; }); };
      var counts = [t("planner.passed_first"), t("planner.checked")];
      barsBlock(p.body, "crew", t("planner.by_crew"), rows(res[0]), counts);
      barsBlock(p.body, "district", t("planner.by_district"), rows(res[1]), counts);
    }).catch(function (err) { p.fail(err.status === 404 ? null : err); });
  }

  function oneVisitView(range) {
    var p = panel("panel-one-visit", t("planner.one_visit"));
    if (!pick(ONE_VISIT)) { p.fail(null); return Promise.resolve(); }
    p.serverCsv(byGroup("/planner/one-visit.csv", range).concat([
      ["-orders", t("planner.csv_orders"), csvUrl("/planner/one-visit.csv", range)]
    ]));
    return Promise.all([oneVisit(range, "crew"), oneVisit(range, "district")]).then(function (res) {
      clear(p.body);
      var rows = function (list) {
        return list.filter(function (r) { return r.code !== "all"; }).map(function (r) {
          return { code: r.code, name: r.name, rate: r.rate, n: r.one_visit, d: r.energised };
        });
      };
      var counts = [t("planner.one_visit_count"), t("planner.energised")];
      barsBlock(p.body, "crew", t("planner.by_crew"), rows(res[0]), counts);
      barsBlock(p.body, "district", t("planner.by_district"), rows(res[1]), counts);
    }).catch(p.fail);
  }

  function complianceView(range) {
    var p = panel("panel-compliance", t("planner.compliance") + " · " + t("clock.end_to_end"));
    p.serverCsv(byGroup("/deadlines/compliance.csv", range));
    return Promise.all([compliance(range, "crew"), compliance(range, "district")]).then(function (res) {
      clear(p.body);
      var rows = function (list) { return list.map(function (g) { return { code: g.code, name: g.name, rate: g.rate, n: g.met, d: g.finished }; }); };
      var counts = [t("planner.met"), t("planner.finished")];
      barsBlock(p.body, "crew", t("planner.by_crew"), rows(res[0]), counts);
      barsBlock(p.body, "district", t("planner.by_district"), rows(res[1]), counts);
    }).catch(p.fail);
  }

  function paretoView(range) {
    var p = panel("panel-pareto", t("planner.pareto"), true);
    p.serverCsv(csvUrl("/planner/failing-items.csv", range));
    return FO.api("GET", "/planner/failing-items?" + qs({ from: range.from, to: range.to })).then(function (rows) {
      clear(p.body);
      if (!rows.length) { p.body.appendChild(el("p", { class: "hint", text: t("planner.no_data") })); return; }
      C.pareto(p.body, "pareto", rows.map(function (r) { return { label: r.label, count: r.failures, cumulative: r.cumulative_share }; }),
        { label: t("planner.pareto"), countName: t("planner.failures"), cumulativeName: t("planner.cumulative") });
      p.body.appendChild(dataTable([t("planner.item"), t("planner.failures"), t("planner.cumulative")], rows.map(function (r) {
        return [r.label, r.failures, C.pct(r.cumulative_share)];
      })));
    }).catch(function (err) { p.fail(err.status === 404 ? null : err); });
  }

  function lineName(id) { return id === null || id === undefined || id === "-" ? "—" : String(id); }

  function backlogView() {
    var p = panel("panel-backlog", t("planner.backlog"), true);
    p.serverCsv("/planner/defect-backlog?format=csv");
    return FO.api("GET", "/planner/defect-backlog").then(function (rows) {
      clear(p.body);
      if (!rows.length) { p.body.appendChild(el("p", { class: "hint", text: t("planner.none") })); return; }
      var lines = [], severities = [];
      rows.forEach(function (r) {
        var line = lineName(r.line_id);
        if (lines.indexOf(line) < 0) lines.push(line);
        if (severities.indexOf(r.severity) < 0) severities.push(r.severity);
      });
      severities.sort(function (a, b) { return b - a; });
      C.stackedBars(p.body, "backlog", lines, severities.map(function (sev) {
        return {
          name: t("planner.severity", { n: sev }),
          values: lines.map(function (line) {
            return rows.filter(function (r) { return lineName(r.line_id) === line && r.severity === sev; })
              .reduce(function (n, r) { return n + r.open_findings; }, 0);
          })
        };
      }), { label: t("planner.backlog") });
      p.body.appendChild(dataTable(
        [t("planner.line"), t("planner.defect_class"), t("planner.severity_col"), t("planner.open"), t("planner.oldest"), t("planner.mean_age")],
        rows.map(function (r) { return [lineName(r.line_id), FO.tOr("defect_class." + r.class_name, r.class_name), r.severity, r.open_findings, r.oldest_age_days, r.mean_age_days]; })));
    }).catch(function (err) { p.fail(err.status === 404 ? null : err); });
  }

  var COVERAGE_DAYS = 90;

  function coverageView() {
    var p = panel("panel-coverage", t("planner.coverage", { days: COVERAGE_DAYS }));
    // A pole is seen when it lies in a photo's footprint; the planner dates that by the flight
    // (photo capture) or by the import of its batch.
    p.serverCsv(["flight", "import"].map(function (basis) {
      return [basis === "flight" ? "" : "-" + basis, t("planner.csv_basis_" + basis),
        "/planner/inspection-coverage?" + qs({ days: COVERAGE_DAYS, basis: basis, format: "csv" })];
    }));
    var choice = el("select", { id: "coverage-basis", onchange: function () { load(choice.value); } },
      ["flight", "import"].map(function (basis) {
        return el("option", { value: basis, text: t("planner.basis_" + basis) });
      }));
    p.body.parentNode.insertBefore(el("div", { class: "field" }, [
      el("label", { for: "coverage-basis", text: t("planner.coverage_basis") }), choice]), p.body);
    return load("flight");

    function load(basis) {
      return FO.api("GET", "/planner/inspection-coverage?" + qs({ days: COVERAGE_DAYS, basis: basis })).then(function (rows) {
        clear(p.body);
        if (!rows.length) { p.body.appendChild(el("p", { class: "hint", text: t("planner.none") })); return; }
        C.rateBars(p.body, "coverage", rows.map(function (r) {
          return { label: lineName(r.line_id), value: r.coverage, note: r.seen + "/" + r.assets };
        }), { label: t("planner.coverage", { days: COVERAGE_DAYS }) });
        p.body.appendChild(dataTable([t("planner.line"), t("planner.seen"), t("planner.assets"), t("planner.coverage_rate")],
          rows.map(function (r) { return [lineName(r.line_id), r.seen, r.assets, C.pct(r.coverage)]; })));
      }).catch(function (err) { p.fail(err.status === 404 ? null : err); });
    }
  }

  function leadTimesView() {
    var p = panel("panel-lead-times", t("planner.lead_times"));
    p.serverCsv("/planner/repair-lead-times?format=csv");
    return FO.api("GET", "/planner/repair-lead-times").then(function (rows) {
      clear(p.body);
      if (!rows.length) { p.body.appendChild(el("p", { class: "hint", text: t("planner.none") })); return; }
      p.body.appendChild(table(
        [t("planner.repair"), t("planner.status"), t("planner.to_on_site"), t("planner.to_repaired"), t("planner.to_verified")],
        rows.map(function (r) {
          return ["#" + r.repair_id, FO.tOr("repair_stage." + r.stage, r.stage), r.days_to_on_site, r.days_to_repaired, r.days_to_verified];
        })));
    }).catch(function (err) { p.fail(err.status === 404 ? null : err); });
  }

  function orderLink(id) { return el("a", { href: "/app/#/order/" + id, text: "#" + id }); }

  /** Every page of the attention list (its body pages: items, next_offset). */
  function attentionPages(offset, gathered) {
    return FO.api("GET", "/deadlines/attention?offset=" + offset).then(function (res) {
      var items = gathered.concat(res.items);
      if (res.next_offset === null || res.next_offset === undefined || res.next_offset <= offset) {
        return { items: items };
      }
      return attentionPages(res.next_offset, items);
    });
  }

  function attentionView() {
    var p = panel("panel-attention", t("planner.attention"), true);
    p.serverCsv("/deadlines/attention.csv");
    return attentionPages(0, []).then(function (res) {
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
            el("p", { class: "flag__reason hint", text: unitName(crewOf(i.crew_id)) + " · " + unitName(districtOf(i.district_id)) + " · " + t("stage." + i.stage) })
          ]);
        })));
      }
    }).catch(p.fail);
  }

  /** Flags as one shape: evidence flags nest theirs ({flag, kind, stage}), review flags do not. */
  function flatFlag(r) {
    var f = r.flag || r;
    return {
      order_id: f.order_id, code: f.code || f.kind, reason: f.message || f.reason,
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
    p.serverCsv(path + ".csv?limit=500");
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
    C.disposeAll();
    clear(document.getElementById("panels"));
    return Promise.all([
      FO.api("GET", "/openapi.json"), FO.api("GET", "/crews"), FO.api("GET", "/districts")
    ]).then(function (res) {
      paths = res[0].paths || {};
      crews = {}; districts = {};
      res[1].forEach(function (c) { crews[c.id] = { code: c.code, name: c.name }; });
      res[2].forEach(function (d) { districts[d.id] = { code: d.code, name: d.name }; });
      return Promise.all([
        overTime(range), firstPassView(range), oneVisitView(range), complianceView(range),
        paretoView(range), backlogView(), coverageView(), leadTimesView(), attentionView(),
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
    document.getElementById("whoami").textContent = me ? t("signin.signed_in_as", { name: me.name, role: FO.roleName(me.role) }) : "";
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
