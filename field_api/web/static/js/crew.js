/* The crew app: sign in, today's orders, and the one-visit connection flow step by step.
 *
 * Reads come straight from the API (and are cached for offline use); every write that can wait
 * goes through the outbox (outbox.js), so it survives a dropped network and is applied once.
 * Contract signing is the exception: the customer's one-time code must be checked while the
 * customer is still there, so it needs the network.
 */
(function () {
  "use strict";

  var t = FO.t, el = FO.el, clear = FO.clear;
  var FLOW = ["accepted", "surveyed", "scheme_answered", "contract_signed", "installed",
              "inspected", "energised", "called_back", "closed"];
  var OPEN_STAGES = ["accepted", "surveyed", "scheme_answered", "contract_signed", "installed", "inspected"];
  var STEPS = [
    { key: "survey", doneAt: "surveyed" },
    { key: "scheme", doneAt: "scheme_answered" },
    { key: "contract", doneAt: "contract_signed" },
    { key: "install", doneAt: "installed" },
    { key: "checklist", doneAt: "energised" },
    { key: "result", doneAt: null }
  ];
  var DEFAULT_PHOTO_KINDS = ["site", "meter_before", "meter_after", "meter_box", "seal", "wiring", "barcode"];
  // The one meter-code rule (field_api/meters.py METER_CODE_INPUT_PATTERN, kept equal by a test):
  // 22 digits once the spaces and hyphens between digit groups are dropped; the server applies
  // the configured check digit (off by default) on upload and at kit issue alike.
  var METER_CODE_PATTERN = "[0-9]{22}";
  var METER_CODE_RE = new RegExp("^" + METER_CODE_PATTERN + "$");
  function normalizeMeterCode(text) { return String(text || "").replace(/[\s-]/g, ""); }

  var state = { me: null, order: null, card: null, openapi: null };

  // ------------------------------------------------------------------ small utilities

  function cacheGet(key) {
    try { return JSON.parse(localStorage.getItem("fo_cache:" + key) || "null"); } catch (e) { return null; }
  }
  function cacheSet(key, value) {
    try { localStorage.setItem("fo_cache:" + key, JSON.stringify(value)); } catch (e) { /* quota: the cache is optional */ }
  }
  function stageIndex(stage) { return FLOW.indexOf(stage); }
  function nowIso() { return new Date().toISOString(); }

  /** The device position, or null after a short wait (a denied prompt must not block work). */
  function where() {
    if (!navigator.geolocation) return Promise.resolve(null);
    return new Promise(function (resolve) {
      var done = false;
      var finish = function (value) { if (!done) { done = true; resolve(value); } };
      setTimeout(function () { finish(null); }, 4000);
      navigator.geolocation.getCurrentPosition(function (pos) {
        finish({ lat: pos.coords.latitude, lon: pos.coords.longitude, accuracy: pos.coords.accuracy });
      }, function () { finish(null); }, { enableHighAccuracy: true, timeout: 4000, maximumAge: 60000 });
    });
  }

  /** Which API operations the server offers (from its OpenAPI document), cached per session. */
  function capabilities() {
    if (state.openapi) return Promise.resolve(state.openapi);
    return FO.api("GET", "/openapi.json").then(function (doc) {
      state.openapi = doc.paths || {};
      cacheSet("openapi", state.openapi);
      return state.openapi;
    }).catch(function () {
      state.openapi = cacheGet("openapi") || {};
      return state.openapi;
    });
  }
  function offers(method, path) {
    var ops = (state.openapi || {})[path];
    return !!(ops && ops[method.toLowerCase()]);
  }

  /** Back to the order's own page: its next open step becomes the active one. */
  function goOrder(order) {
    var target = "#/order/" + order.id;
    if (location.hash === target) route_();
    else location.hash = target;
  }

  function show(id) {
    ["view-signin", "view-orders", "view-order"].forEach(function (v) {
      document.getElementById(v).hidden = v !== id;
    });
    document.getElementById("sign-out").hidden = id === "view-signin";
  }

  function notice(container, text, kind) {
    container.appendChild(el("p", { class: "notice notice--" + (kind || "info"), role: kind === "error" ? "alert" : "status", text: text }));
  }

  // ------------------------------------------------------------------ orders list

  function governing(deadlines) {
    if (!deadlines || !deadlines.clocks) return null;
    var open = deadlines.clocks.filter(function (c) { return c.governing; });
    return open[0] || null;
  }

  function renderOrders() {
    show("view-orders");
    var me = FO.me();
    var whoami = clear(document.getElementById("whoami"));
    whoami.textContent = me ? t("signin.signed_in_as", { name: me.name, role: FO.roleName(me.role) }) : "";
    if (me && (me.role === "planner" || me.role === "admin")) {
      whoami.appendChild(document.createTextNode(" · "));
      whoami.appendChild(el("a", { href: "/app/planner", text: t("app.to_planner") }));
    }
    var list = clear(document.getElementById("orders-list"));
    list.appendChild(el("li", { class: "hint", text: t("app.loading") }));
    var stale = document.getElementById("orders-stale");
    loadOrders().then(function (result) {
      stale.hidden = !result.cachedAt;
      if (result.cachedAt) stale.textContent = t("orders.stale", { time: FO.chinaDateTime(result.cachedAt) });
      clear(list);
      if (!result.orders.length) list.appendChild(el("li", { class: "hint", text: t("orders.none") }));
      result.orders.forEach(function (row) { list.appendChild(orderItem(row)); });
    }).catch(function (err) {
      clear(list);
      if (err.status === 401) { FO.signOut(); route(); return; }
      notice(list, t("app.error", { detail: err.detail }), "error");
    });
  }

  function loadOrders() {
    return FO.api("GET", "/work-orders?limit=200").then(function (orders) {
      var open = orders.filter(function (o) { return OPEN_STAGES.indexOf(o.stage) >= 0; });
      return Promise.all(open.map(function (o) {
        return Promise.all([
          FO.api("GET", "/work-orders/" + o.id + "/deadlines").catch(function () { return null; }),
          FO.api("GET", "/work-orders/" + o.id + "/appointments").catch(function () { return []; })
        ]);
      })).then(function (parts) {
        var rows = open.map(function (o, i) {
          return { order: o, clock: governing(parts[i][0]), booked: bookedToday(parts[i][1]) };
        });
        rows.sort(function (a, b) {
          // Visits booked with the customer for today first, then by deadline.
          if (!!a.booked !== !!b.booked) return a.booked ? -1 : 1;
          var da = a.clock && a.clock.due_on ? a.clock.due_on : "9999";
          var db = b.clock && b.clock.due_on ? b.clock.due_on : "9999";
          return da < db ? -1 : da > db ? 1 : a.order.id - b.order.id;
        });
        cacheSet("orders", { rows: rows, at: Date.now() });
        return { orders: rows, cachedAt: null };
      });
    }).catch(function (err) {
      var cached = cacheGet("orders");
      if (err.status === 0 && cached) return { orders: cached.rows, cachedAt: cached.at };
      throw err;
    });
  }

  /** The visit booked with the customer for today (China time), if any. */
  function bookedToday(visits) {
    var today = FO.chinaToday();
    var hit = (visits || []).filter(function (v) {
      return !v.cancelled_at && FO.chinaDate(v.window_start) === today;
    })[0];
    return hit ? FO.chinaTime(hit.window_start) + "–" + FO.chinaTime(hit.window_end) : null;
  }

  function riskOf(clock) {
    if (!clock || !clock.status) return null;
    if (clock.status === "overdue" || clock.status === "missed") return "overdue";
    if (clock.status === "at_risk") return "at_risk";
    return null;
  }

  /** A clock as people read it: a finished one as met or finished late (with its day),
   *  a running one by its due day. */
  function clockText(clock) {
    if (clock && clock.finished_on && (clock.status === "met" || clock.status === "missed")) {
      return t("orders." + clock.status, { date: clock.finished_on });
    }
    return clock && clock.due_on ? t("orders.due", { date: clock.due_on }) : t("orders.no_due");
  }

  /** The pill of a running clock in danger (a finished one is said by its text). */
  function riskPill(clock, risk) {
    if (!risk || (clock && clock.finished_on)) return null;
    return el("span", { class: "pill pill--" + risk, text: t("orders." + risk) });
  }

  function orderItem(row) {
    var o = row.order, clock = row.clock, risk = riskOf(clock);
    var due = clockText(clock);
    return el("li", { class: "order" + (risk ? " order--" + risk : ""), "data-order-id": o.id }, [
      el("a", { href: "#/order/" + o.id, class: "order__link" }, [
        el("span", { class: "order__top" }, [
          el("strong", { text: t("order.title", { id: o.id }) }),
          el("span", { class: "pill pill--stage", text: t("stage." + o.stage) })
        ]),
        el("span", { class: "order__addr", text: o.customer_name + " · " + o.address }),
        el("span", { class: "order__due" + (risk ? " due--" + risk : "") }, [
          due, riskPill(clock, risk),
          row.booked ? el("span", { class: "pill pill--booked", text: t("orders.booked", { window: row.booked }) }) : null
        ])
      ])
    ]);
  }

  // ------------------------------------------------------------------ one order

  function pendingFor(orderId) {
    return FOOutbox.all().then(function (entries) {
      return entries.filter(function (e) { return e.orderId === orderId; });
    });
  }

  /** The stage as the crew sees it: the server's, moved on by transitions still in the outbox. */
  function effectiveStage(order, pending) {
    var stage = order.stage;
    pending.forEach(function (e) {
      if (e.status === "pending" && e.kind === "transition" && stageIndex(e.json.to) > stageIndex(stage)) {
        stage = e.json.to;
      }
    });
    return stage;
  }

  function loadOrder(id) {
    return Promise.all([
      FO.api("GET", "/work-orders/" + id),
      FO.api("GET", "/work-orders/" + id + "/deadlines").catch(function () { return null; })
    ]).then(function (parts) {
      var data = { order: parts[0], deadlines: parts[1] };
      cacheSet("order:" + id, data);
      return data;
    }).catch(function (err) {
      var cached = cacheGet("order:" + id);
      if (err.status === 0 && cached) return cached;
      throw err;
    });
  }

  function renderOrder(id, stepKey) {
    show("view-order");
    document.getElementById("order-title").textContent = t("order.title", { id: id });
    var panel = clear(document.getElementById("order-step"));
    panel.appendChild(el("p", { class: "hint", text: t("app.loading") }));
    // Renders overlap (a queued action answers while the page is drawing): only the latest
    // one may draw, or a slower, older read would show a stage the order has already left.
    var seq = state.renderSeq = (state.renderSeq || 0) + 1;
    Promise.all([loadOrder(id), pendingFor(id), capabilities()]).then(function (parts) {
      var data = parts[0], pending = parts[1];
      if (seq !== state.renderSeq) return null;
      state.order = data.order;
      return loadVisit(data.order).then(function (visit) {
        if (seq !== state.renderSeq) return;
        renderFacts(data.order, data.deadlines);
        renderFlags(data.order, seq);
        renderOutbox(pending);
        var stage = effectiveStage(data.order, pending);
        var steps = renderSteps(id, stage, stepKey);
        renderStep(steps.active, data.order, stage, visit);
      });
    }).catch(function (err) {
      clear(panel);
      if (err.status === 401) { FO.signOut(); route(); return; }
      notice(panel, t("app.error", { detail: err.detail }), "error");
    });
  }

  function renderFacts(order, deadlines) {
    var facts = clear(document.getElementById("order-facts"));
    [["order.customer", order.customer_name], ["order.phone", order.customer_phone],
     ["order.address", order.address], ["order.capacity", order.capacity_kw + " kW · " + order.phases + "φ"],
     ["order.stage", t("stage." + order.stage)]].forEach(function (pair) {
      facts.appendChild(el("dt", { text: t(pair[0]) }));
      facts.appendChild(el("dd", { text: pair[1] }));
    });
    var box = clear(document.getElementById("order-deadlines"));
    if (!deadlines) return;
    box.appendChild(el("h3", { text: t("order.deadlines") }));
    var list = el("ul", { class: "clocks" });
    deadlines.clocks.forEach(function (c) {
      var risk = riskOf(c);
      var done = c.status === "met" ? " clock--met" : "";
      list.appendChild(el("li", { class: "clock" + (risk ? " due--" + risk : "") + done + (c.governing ? " clock--governing" : "") }, [
        el("span", { text: FO.tOr("clock." + c.clock, c.clock) }),
        el("span", { class: "clock__when", text: clockText(c) }),
        riskPill(c, risk)
      ]));
    });
    box.appendChild(list);
  }

  /** The evidence flags of the order's photos: what to retake while still on site. Named
   *  through the catalogue; the server's message (in the page's language) adds the specifics. */
  function renderFlags(order, seq) {
    var box = clear(document.getElementById("order-flags"));
    box.hidden = true;
    FO.api("GET", "/work-orders/" + order.id + "/media").then(function (items) {
      if (seq !== state.renderSeq) return;
      var rows = [];
      (items || []).forEach(function (item) {
        (item.flags || []).forEach(function (f) { rows.push({ kind: item.kind, flag: f }); });
      });
      if (!rows.length) return;
      box.appendChild(el("h3", { text: t("order.flags") }));
      box.appendChild(el("ul", { class: "flags" }, rows.map(function (r) {
        var message = typeof r.flag.message === "string" ? r.flag.message : "";
        return el("li", { class: "notice notice--warn", "data-code": r.flag.code }, [
          el("strong", { text: FO.tOr("photo." + r.kind, r.kind) + " · " + FO.tOr("flag." + r.flag.code, r.flag.code) }),
          message ? el("span", { class: "hint", text: " — " + message }) : null
        ]);
      })));
      box.hidden = false;
    }).catch(function () { /* offline: flags come with the next online view */ });
  }

  function renderOutbox(pending) {
    var waiting = pending.filter(function (e) { return e.status === "pending"; });
    var pill = document.getElementById("order-outbox");
    pill.hidden = !waiting.length;
    pill.textContent = t("order.queued", { n: waiting.length });
    var failed = clear(document.getElementById("order-failed"));
    pending.filter(function (e) { return e.status === "failed"; }).forEach(function (e) {
      failed.appendChild(el("li", { class: "notice notice--error" }, [
        el("span", { text: e.label + " — " + t("order.failed", { detail: e.lastError }) }),
        el("button", { type: "button", class: "btn btn--ghost", text: t("order.discard"),
                       onclick: function () { FOOutbox.discard(e.seq); } })
      ]));
    });
  }

  function stepDone(step, stage) {
    return step.doneAt !== null && stageIndex(stage) >= stageIndex(step.doneAt);
  }

  function renderSteps(id, stage, wanted) {
    var list = clear(document.getElementById("order-steps"));
    var active = null;
    STEPS.forEach(function (step) {
      if (!active && !stepDone(step, stage)) active = step.key;
    });
    if (stage === "whitelisted" || stage === "cancelled") active = "result";
    if (wanted && STEPS.some(function (s) { return s.key === wanted; })) active = wanted;
    STEPS.forEach(function (step, i) {
      var done = stepDone(step, stage);
      list.appendChild(el("li", { class: "step" + (done ? " step--done" : "") + (step.key === active ? " step--active" : "") }, [
        el("a", { href: "#/order/" + id + "/" + step.key, "aria-current": step.key === active ? "step" : null }, [
          el("span", { class: "step__n", text: String(i + 1) }),
          el("span", { text: t("step." + step.key) }),
          el("span", { class: "visually-hidden", text: " " + (done ? t("step.done") : t("step.todo")) })
        ])
      ]));
    });
    return { active: active || "result" };
  }

  function renderStep(key, order, stage, visit) {
    var panel = clear(document.getElementById("order-step"));
    panel.appendChild(el("h3", { text: t("step." + key) }));
    if (OPEN_STAGES.indexOf(stage) >= 0 || visit) visitBar(panel, order, visit);
    var renderers = { survey: stepSurvey, scheme: stepScheme, contract: stepContract,
                      install: stepInstall, checklist: stepChecklist, result: stepResult };
    renderers[key](panel, order, stage, visit);
  }

  /** Queue a stage change with the device's time and place. */
  function queueTransition(order, to, label, data, reason, expectedOn) {
    return where().then(function (pos) {
      var body = { to: to, device_time: nowIso(), data: data || null };
      if (reason) body.reason = reason;
      if (expectedOn) body.expected_on = expectedOn;
      if (pos) { body.device_lat = pos.lat; body.device_lon = pos.lon; }
      return FOOutbox.enqueue({
        orderId: order.id, kind: "transition", label: label, method: "POST",
        url: "/work-orders/" + order.id + "/transitions", json: body
      });
    });
  }

  function field(id, label, control, help) {
    control.id = id;
    var parts = [el("label", { for: id, text: label }), control];
    if (help) {
      control.setAttribute("aria-describedby", id + "-help");
      parts.push(el("p", { id: id + "-help", class: "hint", text: help }));
    }
    return el("div", { class: "field" }, parts);
  }

  // ------------------------------------------------------------------ the visit on site

  function visitOf(orderId) { return cacheGet("visit:" + orderId); }

  /** The open visit from the server (online), else what this device last knew. */
  function loadVisit(order) {
    return FO.api("GET", "/work-orders/" + order.id + "/visits/on-site").then(function (visits) {
      var open = visits.filter(function (v) { return v.outcome === "open"; }).pop() || null;
      var known = visitOf(order.id);
      if (open) cacheSet("visit:" + order.id, open);
      else if (!(known && known.pending)) localStorage.removeItem("fo_cache:visit:" + order.id);
      return visitOf(order.id);
    }).catch(function () { return visitOf(order.id); });
  }

  function visitBar(panel, order, visit) {
    var bar = el("div", { class: "visit", id: "visit-bar" });
    var error = el("p", { class: "error", role: "alert", hidden: true });
    if (visit && visit.pending) {
      bar.appendChild(el("p", { class: "pill", text: t("visit.waiting") }));
    } else if (visit) {
      bar.appendChild(el("p", { class: "hint", id: "visit-state", text: t("visit.on_site", {
        time: FO.chinaTime(visit.arrived_at), distance: Math.round(visit.arrival_distance_m) }) }));
    } else {
      bar.appendChild(el("button", { type: "button", class: "btn btn--primary", id: "visit-arrive", text: t("visit.arrive"), onclick: function () {
        where().then(function (pos) {
          if (!pos) { error.textContent = t("visit.need_position"); error.hidden = false; return null; }
          cacheSet("visit:" + order.id, { pending: true });
          return FOOutbox.enqueue({
            orderId: order.id, kind: "arrival", label: t("visit.arrive"), method: "POST",
            url: "/work-orders/" + order.id + "/visits/arrival",
            json: { lat: pos.lat, lon: pos.lon, accuracy_m: pos.accuracy, device_time: nowIso() }
          }).then(route_);
        });
      } }));
    }
    bar.appendChild(error);
    panel.appendChild(bar);
  }

  /** Queue the visit's completion call: the server moves the order through every stage whose
   *  evidence is present and names what is missing. Sent after the arrival (its id). */
  function queueCompletion(order, label) {
    return where().then(function (pos) {
      var body = { device_time: nowIso() };
      if (pos) { body.lat = pos.lat; body.lon = pos.lon; }
      return FOOutbox.enqueue({
        orderId: order.id, kind: "completion", label: label, method: "POST",
        url: "/work-orders/" + order.id + "/visits/{visit}/complete", json: body
      });
    });
  }

  // The server's message names the specifics (distances, barcodes, failing items) in the
  // request's language; without one, the catalogue's name of the gap (its English detail is
  // for logs, not for the crew).
  function gapText(gap) {
    if (typeof gap.message === "string" && gap.message) return gap.message;
    var base = String(gap.code || "").split(".")[0];
    return FO.tOr("gap." + base, gap.detail || gap.code);
  }

  /** What the last completion call did, while the order is still where it left it. */
  function completionNote(panel, order, stage) {
    var done = cacheGet("completion:" + order.id);
    if (!done || done.order_stage !== stage) return;
    var box = el("div", { class: "completion", id: "completion" });
    if (done.moved_through.length) {
      box.appendChild(el("p", { class: "notice", text: t("visit.moved", { stages: done.moved_through.map(function (s) { return t("stage." + s); }).join(" → ") }) }));
    }
    if (done.complete) box.appendChild(el("p", { class: "notice", text: t("visit.completed") }));
    if (done.missing.length) {
      box.appendChild(el("p", { class: "notice notice--warn", text: t("visit.missing") }));
      box.appendChild(el("ul", { class: "missing" }, done.missing.map(function (g) {
        return el("li", { "data-code": g.code, text: t("stage." + g.stage) + " · " + gapText(g) });
      })));
    }
    panel.appendChild(box);
  }

  function needsVisit(panel, visit) {
    if (visit) return false;
    notice(panel, t("visit.need_arrival"), "warn");
    return true;
  }

  // ------------------------------------------------------------------ step: survey

  function stepSurvey(panel, order, stage, visit) {
    var saved = (cacheGet("survey:" + order.id) || {});
    if (stageIndex(stage) >= stageIndex("surveyed")) {
      notice(panel, t("step.done"));
      return;
    }
    completionNote(panel, order, stage);
    if (needsVisit(panel, visit)) return;
    photoList(panel, order, true, ["site"]);
    var laying = el("select", { name: "laying_method", required: true }, ["D1", "E"].map(function (v) {
      return el("option", { value: v, text: t("survey.laying." + v), selected: saved.laying_method === v });
    }));
    var form = el("form", { id: "survey-form", novalidate: true }, [
      field("survey-laying", t("survey.laying_method"), laying),
      field("survey-cable", t("survey.preferred_cable"), el("input", { name: "preferred_cable", type: "text", maxlength: "32", value: saved.preferred_cable })),
      field("survey-note", t("survey.note"), el("textarea", { name: "note", rows: "3", maxlength: "2000" }, [saved.note || ""])),
      el("button", { type: "submit", class: "btn btn--primary", text: t("visit.complete") })
    ]);
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var survey = {
        laying_method: form.elements.laying_method.value,
        preferred_cable: form.elements.preferred_cable.value.trim() || null,
        note: form.elements.note.value.trim() || null
      };
      // Kept on the device for the scheme request (the scheme engine takes these).
      cacheSet("survey:" + order.id, survey);
      queueCompletion(order, t("step.survey")).then(function () { goOrder(order); });
    });
    panel.appendChild(form);
  }

  // ------------------------------------------------------------------ step: scheme

  function schemeView(box, answer) {
    clear(box);
    if (!answer) return;
    box.appendChild(el("p", { class: "notice" + (answer.status === "refused" ? " notice--error" : ""), id: "scheme-status",
      text: t("scheme.status." + answer.status) + (answer.status === "refused" ? " " + answer.failures.map(function (f) { return f.message || f.detail; }).join("；") : "") }));
    var s = answer.scheme;
    if (s) {
      var facts = el("dl", { class: "facts", id: "scheme-facts" });
      [["scheme.kit", s.kit_code], ["scheme.transformer", s.transformer_id],
       ["scheme.route", s.route_length_m.toFixed(0) + " m"],
       ["scheme.cable", s.cable.code + " (" + s.cable.section_mm2 + " mm²)"],
       ["scheme.breaker", s.breaker_code + " · " + s.breaker_rating_a + " A"],
       ["scheme.meter", s.meter_code], ["scheme.metering", FO.tOr("metering." + s.metering, s.metering) + (s.ct_code ? " · " + s.ct_code : "")],
       ["scheme.voltage_drop", s.cable.voltage_drop_pct.toFixed(2) + " % / " + s.voltage_drop_budget_pct + " %"],
       ["scheme.terminal_voltage", s.terminal_voltage_v.toFixed(1) + " V"]].forEach(function (pair) {
        facts.appendChild(el("dt", { text: t(pair[0]) }));
        facts.appendChild(el("dd", { text: pair[1] }));
      });
      box.appendChild(facts);
    }
    // proposals as messages in the reader's language (proposal_messages); older answers: the texts
    var proposals = (answer.proposal_messages && answer.proposal_messages.length)
      ? answer.proposal_messages.map(function (p) { return p.message; }) : (answer.proposals || []);
    if (proposals.length) {
      box.appendChild(el("h4", { text: t("scheme.proposals") }));
      box.appendChild(el("ul", { id: "scheme-proposals" }, proposals.map(function (p) { return el("li", { text: p }); })));
    }
    if (answer.white_list) {
      box.appendChild(el("p", { class: "notice", id: "scheme-whitelist-proposal",
        text: answer.white_list.message || answer.white_list.detail }));
    }
  }

  function stepScheme(panel, order, stage, visit) {
    if (stageIndex(stage) >= stageIndex("scheme_answered")) {
      var done = el("div", { id: "scheme-answer" });
      panel.appendChild(done);
      FO.api("GET", "/work-orders/" + order.id + "/scheme").then(function (a) { schemeView(done, a); })
        .catch(function () { schemeView(done, cacheGet("scheme:" + order.id)); });
      return;
    }
    if (stage !== "surveyed") { notice(panel, t("step.todo")); return; }
    var out = el("div", { id: "scheme-answer" });
    var last = cacheGet("scheme:" + order.id);
    panel.appendChild(el("button", { type: "button", class: "btn btn--primary", id: "scheme-request", text: t("scheme.request"), onclick: function () {
      var survey = cacheGet("survey:" + order.id) || {};
      where().then(function (pos) {
        var body = { laying_method: survey.laying_method || null, preferred_cable: survey.preferred_cable || null, accept: true };
        if (pos) { body.lat = pos.lat; body.lon = pos.lon; }
        return FOOutbox.enqueue({
          orderId: order.id, kind: "scheme", label: t("scheme.request"), method: "POST",
          url: "/work-orders/" + order.id + "/schemes", json: body
        });
      }).then(function () { goOrder(order); });
    } }));
    panel.appendChild(out);
    schemeView(out, last);
    if (last && last.status === "refused" && last.white_list) {
      var expected = el("input", { type: "date", required: true, min: FO.chinaToday() });
      panel.appendChild(field("whitelist-expected", t("scheme.whitelist_expected"), expected));
      panel.appendChild(el("button", { type: "button", class: "btn", id: "scheme-whitelist", text: t("scheme.whitelist"), onclick: function () {
        if (!expected.value) { expected.setAttribute("aria-invalid", "true"); return; }
        queueTransition(order, "whitelisted", t("scheme.whitelist"), null,
                        last.white_list.reason + ": " + (last.white_list.message || last.white_list.detail), expected.value).then(route_);
      } }));
    }
  }

  // ------------------------------------------------------------------ step: contract

  function stepContract(panel, order, stage) {
    if (stageIndex(stage) >= stageIndex("contract_signed")) {
      FO.api("GET", "/work-orders/" + order.id + "/contract").then(function (c) {
        notice(panel, t("contract.signed", { no: c.contract_no }));
        panel.appendChild(pdfButton(order));
      }).catch(function () { notice(panel, t("step.done")); });
      return;
    }
    if (stage !== "scheme_answered") { notice(panel, t("step.todo")); return; }
    var box = el("div", { id: "contract-box" });
    panel.appendChild(box);
    FO.api("GET", "/work-orders/" + order.id + "/contract").then(function (c) {
      contractForm(box, order, c);
    }).catch(function (err) {
      if (err.status !== 404) { notice(box, t("app.error", { detail: err.detail }), "error"); return; }
      box.appendChild(el("button", { type: "button", class: "btn btn--primary", id: "contract-generate", text: t("contract.generate"), onclick: function () {
        FO.api("POST", "/work-orders/" + order.id + "/contract", { headers: { "Idempotency-Key": FO.uuid() } }).then(function (c) {
          clear(box);
          contractForm(box, order, c);
        }).catch(function (e) { notice(box, t("app.error", { detail: e.detail }), "error"); });
      } }));
    });
  }

  /** A value of the contract's scheme as people read it (enumerations through the catalogue). */
  function schemeValue(key, value) {
    if (key === "category") return FO.tOr("category." + value, String(value));
    if (key === "metering") return FO.tOr("metering." + value, String(value));
    return String(value);
  }

  function pdfButton(order) {
    return el("button", { type: "button", class: "btn", id: "contract-preview", text: t("contract.preview"), onclick: function () {
      // The PDF needs the bearer token, so fetch it and show it from a local object URL.
      FO.api("GET", "/work-orders/" + order.id + "/contract/pdf", { raw: true }).then(function (r) { return r.blob(); }).then(function (blob) {
        window.open(URL.createObjectURL(blob), "_blank", "noopener");
      }).catch(function (err) { alert(t("app.error", { detail: err.detail })); });
    } });
  }

  function contractForm(box, order, contract) {
    var facts = el("dl", { class: "facts" });
    [["contract.no", contract.contract_no], ["order.customer", contract.customer.name]].concat(
      Object.keys(contract.scheme).filter(function (k) { return contract.scheme[k] !== null; }).map(function (k) {
        return ["contract.field." + k, schemeValue(k, contract.scheme[k])];
      })).forEach(function (pair) {
      facts.appendChild(el("dt", { text: FO.tOr(pair[0], pair[0].replace("contract.field.", "")) }));
      facts.appendChild(el("dd", { text: pair[1] }));
    });
    box.appendChild(facts);
    box.appendChild(pdfButton(order));
    var status = el("p", { id: "contract-status", role: "status" });
    box.appendChild(el("button", { type: "button", class: "btn", id: "contract-send-code", text: t("contract.send_code"), onclick: function () {
      FO.api("POST", "/work-orders/" + order.id + "/contract/otp", { headers: { "Idempotency-Key": FO.uuid() } }).then(function (otp) {
        status.textContent = t("contract.code_sent", { phone: otp.sent_to });
        showDevCode(contract, devCode, 20);
      }).catch(function (err) { status.textContent = t("app.error", { detail: err.detail }); });
    } }));
    box.appendChild(status);
    var code = el("input", { name: "code", type: "text", inputmode: "numeric", autocomplete: "one-time-code", pattern: "[0-9]{4,12}", required: true, maxlength: "12" });
    box.appendChild(field("contract-code", t("contract.code"), code));
    var devCode = el("p", { class: "hint", id: "contract-dev-code", role: "status", hidden: true });
    box.appendChild(devCode);
    showDevCode(contract, devCode);
    var pad = signaturePad();
    var error = el("p", { class: "error", id: "contract-error", role: "alert", hidden: true });
    pad.canvas.addEventListener("pointerdown", function () { error.hidden = true; });
    box.appendChild(el("div", { class: "field" }, [
      el("label", { for: "signature-pad", text: t("contract.signature") }), pad.canvas,
      el("button", { type: "button", class: "btn btn--ghost", text: t("contract.clear"), onclick: pad.clear })
    ]));
    box.appendChild(error);
    box.appendChild(el("button", { type: "button", class: "btn btn--primary", id: "contract-sign", text: t("contract.sign"), onclick: function () {
      error.hidden = true;
      if (!navigator.onLine) { error.textContent = t("contract.need_online"); error.hidden = false; return; }
      if (!pad.drawn()) { error.textContent = t("contract.need_signature"); error.hidden = false; return; }
      if (!code.checkValidity()) { code.setAttribute("aria-invalid", "true"); error.textContent = t("contract.code") + ": " + code.validationMessage; error.hidden = false; return; }
      Promise.all([pad.blob(), where()]).then(function (parts) {
        var form = new FormData();
        form.append("signature", parts[0], "signature.png");
        form.append("code", code.value.trim());
        form.append("device_time", nowIso());
        if (parts[1]) {
          form.append("lat", parts[1].lat); form.append("lon", parts[1].lon);
          form.append("gps_accuracy_m", parts[1].accuracy);
        }
        return FO.api("POST", "/work-orders/" + order.id + "/contract/signature", { body: form });
      }).then(function (signed) {
        notice(box, t("contract.signed", { no: signed.contract_no }));
        goOrder(order);
      }).catch(function (err) {
        error.textContent = t("app.error", { detail: err.detail }) +
          (err.body && err.body.attempts_left !== undefined ? " · " + t("contract.attempts_left", { n: err.body.attempts_left }) : "");
        error.hidden = false;
      });
    } }));
  }

  /**
   * Development only: the latest code for this contract from the server's SMS outbox, shown
   * beside the code field. The outbox route exists only outside production (its presence in the
   * server's OpenAPI document is how the page knows); logs never show the code. A code is queued
   * with the answer and sent by the job worker moments later: after a request (``tries``) the
   * page asks again, half a second apart, until the message is there.
   */
  function showDevCode(contract, target, tries) {
    if (!offers("GET", "/dev/sms")) return;
    FO.api("GET", "/dev/sms").then(function (messages) {
      var found = null;
      (messages || []).some(function (m) {  // newest first
        var hit = m.text.indexOf(contract.contract_no) >= 0 && /验证码[：:]\s*(\d{4,12})/.exec(m.text);
        if (hit) found = hit[1];
        return !!hit;
      });
      if (!found) {
        if (tries > 1) setTimeout(function () { showDevCode(contract, target, tries - 1); }, 500);
        return;
      }
      target.textContent = t("contract.dev_code", { code: found });
      target.hidden = false;
    }).catch(function () { /* no outbox: nothing to show */ });
  }

  /** A canvas the customer signs on with finger, pen or mouse (pointer events). */
  function signaturePad() {
    var canvas = el("canvas", { id: "signature-pad", class: "signature", width: "640", height: "240", role: "img", "aria-label": t("contract.signature"), tabindex: "0" });
    var ctx = canvas.getContext("2d");
    var strokes = 0, last = null;
    function reset() {
      ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, canvas.width, canvas.height);
      ctx.strokeStyle = "#0a1f44"; ctx.lineWidth = 4; ctx.lineCap = "round"; ctx.lineJoin = "round";
      strokes = 0;
    }
    function point(e) {
      var r = canvas.getBoundingClientRect();
      return { x: (e.clientX - r.left) * canvas.width / r.width, y: (e.clientY - r.top) * canvas.height / r.height };
    }
    canvas.addEventListener("pointerdown", function (e) { canvas.setPointerCapture(e.pointerId); last = point(e); e.preventDefault(); });
    canvas.addEventListener("pointermove", function (e) {
      if (!last) return;
      var p = point(e);
      ctx.beginPath(); ctx.moveTo(last.x, last.y); ctx.lineTo(p.x, p.y); ctx.stroke();
      last = p; strokes += 1;
    });
    ["pointerup", "pointercancel", "pointerleave"].forEach(function (name) {
      canvas.addEventListener(name, function () { last = null; });
    });
    reset();
    return {
      canvas: canvas, clear: reset,
      drawn: function () { return strokes > 2; },
      blob: function () { return new Promise(function (resolve) { canvas.toBlob(resolve, "image/png"); }); }
    };
  }

  // ------------------------------------------------------------------ step: meter and photos

  function photoLog(orderId) { return cacheGet("photos:" + orderId) || {}; }
  function setPhotoLog(orderId, log) { cacheSet("photos:" + orderId, log); }

  function mediaPath() {
    var candidates = ["/work-orders/{order_id}/media", "/work-orders/{order_id}/photos"];
    for (var i = 0; i < candidates.length; i++) if (offers("POST", candidates[i])) return candidates[i];
    return null;
  }

  /** Queue a photo upload; its client UUID makes a retried upload land once (media service). */
  function queuePhoto(order, kind, file, scannedValue) {
    var path = mediaPath();
    var clientId = FO.uuid();
    var log = photoLog(order.id);
    (log[kind] = log[kind] || []).push({ clientId: clientId, name: file.name, status: path ? "queued" : "kept" });
    setPhotoLog(order.id, log);
    if (!path) return Promise.resolve(null);
    // GPS and capture time travel inside the photo's EXIF, which the server reads itself.
    var form = [["client_id", clientId], ["kind", kind]];
    if (scannedValue) form.push(["scanned_value", scannedValue]);
    form.push(["file", file]);
    return FOOutbox.enqueue({
      orderId: order.id, kind: "photo", photoKind: kind, clientId: clientId,
      label: t("photos.take", { kind: t("photo." + kind) }), method: "POST",
      url: path.replace("{order_id}", order.id), form: form
    });
  }

  function requiredPhotoKinds(orderId) {
    var card = cacheGet("card:" + orderId);
    if (!card) return DEFAULT_PHOTO_KINDS;
    var kinds = [];
    card.card.items.forEach(function (item) {
      if (item.type === "photo" && kinds.indexOf(item.kind) < 0) kinds.push(item.kind);
    });
    if (kinds.indexOf("barcode") < 0) kinds.push("barcode");
    return kinds;
  }

  function stepInstall(panel, order, stage, visit) {
    if (stageIndex(stage) >= stageIndex("installed")) { notice(panel, t("step.done")); photoList(panel, order, false); return; }
    if (stage !== "contract_signed") { notice(panel, t("step.todo")); return; }
    completionNote(panel, order, stage);
    if (needsVisit(panel, visit)) return;
    if (!mediaPath()) notice(panel, t("photos.title") + ": " + t("app.unavailable"), "warn");
    photoList(panel, order, true);
    barcodeBlock(panel, order);
    var error = el("p", { class: "error", id: "install-error", role: "alert", hidden: true });
    panel.appendChild(error);
    panel.appendChild(el("button", { type: "button", class: "btn btn--primary", id: "mark-installed", text: t("install.mark_installed"), onclick: function () {
      var meter = cacheGet("meter:" + order.id);
      if (!meter || !meter.value) {
        error.textContent = t("barcode.title") + ": " + t("barcode.not_found"); error.hidden = false; return;
      }
      queueCompletion(order, t("install.mark_installed")).then(function () { goOrder(order); });
    } }));
  }

  function photoList(panel, order, editable, only) {
    var log = photoLog(order.id);
    var list = el("ul", { class: "photos", id: "photo-list" });
    (only || requiredPhotoKinds(order.id).filter(function (k) { return k !== "barcode" && k !== "site"; })).forEach(function (kind) {
      var taken = log[kind] || [];
      var id = "photo-" + kind;
      var input = el("input", { id: id, type: "file", accept: "image/*", capture: "environment", class: "visually-hidden", "data-kind": kind });
      input.addEventListener("change", function () {
        var files = Array.prototype.slice.call(input.files || []);
        // Update this row in place: redrawing the step would reset whatever else is in progress.
        Promise.all(files.map(function (f) { return queuePhoto(order, kind, f); })).then(function () {
          showPhotoState(order.id, kind);
        });
      });
      list.appendChild(el("li", { class: "photo" + (taken.length ? " photo--taken" : "") }, [
        editable ? input : null,
        editable ? el("label", { for: id, class: "btn", text: t("photos.take", { kind: t("photo." + kind) }) }) : el("span", { text: t("photo." + kind) }),
        el("span", { class: "photo__state", "data-kind": kind, text: taken.length ? "✓ " + taken.length + " · " + photoState(taken) : "" })
      ]));
    });
    panel.appendChild(el("h4", { text: t("photos.title") }));
    panel.appendChild(list);
  }

  function showPhotoState(orderId, kind) {
    var span = document.querySelector('.photo__state[data-kind="' + kind + '"]');
    var taken = photoLog(orderId)[kind] || [];
    if (!span || !taken.length) return;
    span.textContent = "✓ " + taken.length + " · " + photoState(taken);
    span.closest(".photo").classList.add("photo--taken");
  }

  function photoState(taken) {
    return taken.every(function (p) { return p.status === "sent"; }) ? t("photos.sent") : t("photos.queued");
  }

  function barcodeBlock(panel, order) {
    var saved = cacheGet("meter:" + order.id) || {};
    var status = el("p", { id: "barcode-status", role: "status" });
    var value = el("input", { type: "text", readonly: true, value: saved.source === "scanned" ? saved.value : "" });
    var manual = el("input", { type: "text", inputmode: "numeric", pattern: METER_CODE_PATTERN, maxlength: "40", autocomplete: "off", value: saved.source === "typed" ? saved.value : "" });
    var capture = el("input", { id: "barcode-photo", type: "file", accept: "image/*", capture: "environment", class: "visually-hidden" });
    capture.addEventListener("change", function () {
      var file = capture.files && capture.files[0];
      if (!file) return;
      status.textContent = t("app.loading");
      FOBarcode.decode(file).then(function (found) {
        if (!found) {
          status.textContent = t("barcode.not_found");
          var typed = cacheGet("meter:" + order.id);
          return queuePhoto(order, "barcode", file, typed && typed.value);
        }
        value.value = found.value;
        cacheSet("meter:" + order.id, { value: found.value, source: "scanned" });
        status.textContent = t("barcode.decoded", { value: found.value }) + " · " + t("barcode.engine", { engine: found.engine });
        return queuePhoto(order, "barcode", file, found.value);
      }).catch(function () { status.textContent = t("barcode.not_found"); });
    });
    manual.addEventListener("input", function () {
      var cleaned = normalizeMeterCode(manual.value);
      if (cleaned !== manual.value) manual.value = cleaned;
      if (manual.value && METER_CODE_RE.test(manual.value) && manual.checkValidity()) {
        cacheSet("meter:" + order.id, { value: manual.value, source: "typed" });
        manual.removeAttribute("aria-invalid");
      } else if (manual.value) {
        manual.setAttribute("aria-invalid", "true");
      }
    });
    panel.appendChild(el("h4", { text: t("barcode.title") }));
    panel.appendChild(el("div", { class: "field" }, [capture, el("label", { for: "barcode-photo", class: "btn btn--primary", text: t("barcode.scan") })]));
    panel.appendChild(status);
    panel.appendChild(field("barcode-value", t("barcode.value"), value));
    panel.appendChild(el("details", { class: "manual" }, [
      el("summary", { text: t("barcode.manual") }),
      field("barcode-manual", t("barcode.manual_value"), manual)
    ]));
  }

  // ------------------------------------------------------------------ step: checklist card

  function loadCard(order) {
    return FO.api("GET", "/app/api/work-orders/" + order.id + "/checklist-card").then(function (card) {
      cacheSet("card:" + order.id, card);
      return card;
    }).catch(function (err) {
      var cached = cacheGet("card:" + order.id);
      if (err.status === 0 && cached) return cached;
      throw err;
    });
  }

  /** Photos per kind the server holds for the order (null offline). */
  function serverPhotoCounts(order) {
    return FO.api("GET", "/work-orders/" + order.id + "/media").then(function (items) {
      var counts = {};
      items.forEach(function (m) { counts[m.kind] = (counts[m.kind] || 0) + 1; });
      return counts;
    }).catch(function () { return null; });
  }

  function num(x) { return x === null || x === undefined ? null : Number(x); }

  /** The override that applies for the transformer size (as the server's rule picks it). */
  function overrideFor(item, kva) {
    if (kva === null || kva === undefined) return null;
    var fitting = (item.overrides || []).filter(function (o) { return kva <= o.transformer_kva_at_most; });
    fitting.sort(function (a, b) { return a.transformer_kva_at_most - b.transformer_kva_at_most; });
    return fitting[0] || null;
  }

  /** The limits of a measurement item for display and inline checking. */
  function limitsOf(item, schemeValues) {
    if (item.reference) {
      var ref = schemeValues[item.reference];
      return { lower: num(ref), upper: num(ref), text: t("checklist.limit_reference") + (ref !== null && ref !== undefined ? " (" + ref + " " + item.unit + ")" : "") };
    }
    var lower = num(item.lower), upper = num(item.upper), note = "";
    var override = overrideFor(item, schemeValues.transformer_rated_kva);
    if (override) {
      lower = num(override.lower); upper = num(override.upper);
      note = " (≤" + override.transformer_kva_at_most + " kVA)";
    }
    var text = lower !== null && upper !== null ? t("checklist.limit_range", { lower: lower, upper: upper, unit: item.unit })
      : lower !== null ? t("checklist.limit_lower", { lower: lower, unit: item.unit })
      : t("checklist.limit_upper", { upper: upper, unit: item.unit });
    return { lower: lower, upper: upper, text: text + note };
  }

  function itemLabel(item) { return FO.lang === "en" ? item.label.en : item.label.zh; }

  function checkItemInput(item, control, message, limits) {
    var bad = false, text = "";
    if (item.type === "measurement" && control.value !== "") {
      var v = Number(control.value);
      bad = isNaN(v) || (limits.lower !== null && v < limits.lower - 1e-9) || (limits.upper !== null && v > limits.upper + 1e-9);
      text = bad ? t("checklist.out_of_range") + " — " + limits.text : "";
    } else if (item.type === "text" && item.pattern && control.value !== "") {
      bad = !(new RegExp(item.pattern)).test(control.value);
      text = bad ? t("checklist.pattern") : "";
    } else if (item.type === "choice" && control.value !== "") {
      bad = item.pass_options.indexOf(control.value) < 0;
      text = bad ? t("result.failed") : "";
    } else if (item.type === "yes_no" && control.value !== "") {
      bad = (control.value === "true") !== (item.expected !== false);
      text = bad ? t("result.failed") : "";
    }
    if (bad) control.setAttribute("aria-invalid", "true"); else control.removeAttribute("aria-invalid");
    message.textContent = text;
    message.hidden = !bad;
    control.closest(".item").classList.toggle("item--fail", bad);
  }

  function stepChecklist(panel, order, stage) {
    var phase = stage === "installed" ? "before_energising" : stage === "inspected" ? "supply_on" : null;
    if (stageIndex(stage) >= stageIndex("energised")) { notice(panel, t("step.done")); return; }
    if (!phase) { notice(panel, t("step.todo")); return; }
    var box = el("div", { id: "checklist-box" }, [el("p", { class: "hint", text: t("app.loading") })]);
    panel.appendChild(box);
    Promise.all([loadCard(order), serverPhotoCounts(order)]).then(function (parts) {
      var data = parts[0], onServer = parts[1];
      // Photos on the server plus those still waiting in this phone's outbox.
      var takenAtStart = {}, log0 = photoLog(order.id);
      Object.keys(log0).forEach(function (k) {
        takenAtStart[k] = log0[k].filter(function (p) { return p.status === "sent"; }).length;
      });
      var photoCount = function (kind) {
        var local = photoLog(order.id)[kind] || [];
        if (!onServer) return local.length;
        // Server count when drawn, plus what this phone took (or still holds) since.
        return (onServer[kind] || 0) + local.length - (takenAtStart[kind] || 0);
      };
      clear(box);
      box.appendChild(el("h4", { text: (FO.lang === "en" ? data.card.title.en : data.card.title.zh) + " · " + t("checklist.phase." + phase) }));
      var form = el("form", { id: "checklist-form", novalidate: true });
      var controls = {};
      data.card.items.filter(function (i) { return i.phase === phase; }).forEach(function (item) {
        var id = "item-" + item.code;
        var message = el("p", { class: "error item__error", id: id + "-error", role: "alert", hidden: true });
        var wrap = el("div", { class: "item item--" + item.type, "data-item": item.code });
        var tags = item.critical ? el("span", { class: "pill pill--critical", text: t("checklist.critical") }) : null;
        if (item.type === "photo" || item.type === "barcode_match") {
          var count = photoCount(item.kind);
          wrap.appendChild(el("p", {}, [el("strong", { text: itemLabel(item) }), " ", tags]));
          var evidenceHint = el("p", { class: "hint", "data-evidence": item.code, text: t("checklist.evidence") + (item.type === "photo" ? " · " + count + "/" + (item.min_count || 1) : "") });
          wrap.appendChild(evidenceHint);
          if (item.type === "photo" && item.kind !== "barcode") {
            // The card names the photos it needs: take any that are missing right here.
            var capture = el("input", { id: id, type: "file", accept: "image/*", capture: "environment", class: "visually-hidden" });
            capture.addEventListener("change", function () {
              Promise.all(Array.prototype.slice.call(capture.files || []).map(function (f) {
                return queuePhoto(order, item.kind, f);
              })).then(function () {
                // Update in place: a re-render would throw away the values typed so far.
                var n = photoCount(item.kind);
                evidenceHint.textContent = t("checklist.evidence") + " · " + n + "/" + (item.min_count || 1);
              });
            });
            wrap.appendChild(capture);
            wrap.appendChild(el("label", { for: id, class: "btn", text: t("photos.take", { kind: t("photo." + item.kind) }) }));
          }
          form.appendChild(wrap);
          return;
        }
        var control, limits = null;
        if (item.type === "measurement") {
          limits = limitsOf(item, data.scheme_values || {});
          control = el("input", { type: "number", step: "any", inputmode: "decimal", required: true, "aria-describedby": id + "-limit " + id + "-error" });
        } else if (item.type === "yes_no") {
          control = el("select", { required: true, "aria-describedby": id + "-error" }, [
            el("option", { value: "", text: "—" }),
            el("option", { value: "true", text: t("checklist.yes") }),
            el("option", { value: "false", text: t("checklist.no") })
          ]);
        } else if (item.type === "choice") {
          control = el("select", { required: true, "aria-describedby": id + "-error" },
            [el("option", { value: "", text: "—" })].concat(item.options.map(function (o) { return el("option", { value: o, text: o }); })));
        } else {
          control = el("input", { type: "text", maxlength: "500", required: true, "aria-describedby": id + "-error" });
        }
        control.id = id;
        control.name = item.code;
        wrap.appendChild(el("label", { for: id }, [itemLabel(item) + (item.unit ? " (" + item.unit + ")" : ""), " ", tags]));
        wrap.appendChild(control);
        if (limits) wrap.appendChild(el("p", { class: "hint item__limit", id: id + "-limit", text: limits.text }));
        wrap.appendChild(message);
        ["input", "change"].forEach(function (name) {
          control.addEventListener(name, function () { checkItemInput(item, control, message, limits); });
        });
        controls[item.code] = { item: item, control: control };
        form.appendChild(wrap);
      });
      var error = el("p", { class: "error", id: "checklist-error", role: "alert", hidden: true });
      form.appendChild(error);
      form.appendChild(el("button", { type: "submit", class: "btn btn--primary", text: t("checklist.submit") }));
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        var values = {}, missing = [];
        Object.keys(controls).forEach(function (code) {
          var c = controls[code], raw = c.control.value;
          if (raw === "") { missing.push(itemLabel(c.item)); c.control.setAttribute("aria-invalid", "true"); return; }
          values[code] = c.item.type === "measurement" ? Number(raw) : c.item.type === "yes_no" ? raw === "true" : raw;
        });
        if (missing.length) { error.textContent = missing.join("、"); error.hidden = false; return; }
        error.hidden = true;
        FOOutbox.enqueue({
          orderId: order.id, kind: "checklist", phase: phase, label: t("checklist.submit") + " · " + t("checklist.phase." + phase),
          method: "POST", url: "/work-orders/" + order.id + "/checklists/" + phase,
          json: { values: values, device_time: nowIso() }
        }).then(function () { location.hash = "#/order/" + order.id + "/result"; route_(); });
      });
      box.appendChild(form);
    }).catch(function (err) {
      clear(box);
      notice(box, err.status === 404 ? t("app.unavailable") : t("app.error", { detail: err.detail }), err.status === 404 ? "warn" : "error");
    });
  }

  // ------------------------------------------------------------------ step: result

  function stepResult(panel, order, stage, visit) {
    panel.appendChild(el("p", {}, [t("order.stage") + ": ", el("strong", { id: "result-stage", text: t("stage." + stage) })]));
    completionNote(panel, order, stage);
    if (visit && !visit.pending && stage === "energised" && visit.outcome === "open") {
      // Energised by the last check: one more completion call closes the visit as complete.
      panel.appendChild(el("button", { type: "button", class: "btn btn--primary", id: "visit-finish", text: t("visit.complete"), onclick: function () {
        queueCompletion(order, t("visit.complete")).then(route_);
      } }));
    }
    if (visit && !visit.pending) {
      panel.appendChild(el("button", { type: "button", class: "btn", id: "visit-depart", text: t("visit.depart"), onclick: function () {
        where().then(function (pos) {
          if (!pos) { alert(t("visit.need_position")); return null; }
          return FOOutbox.enqueue({
            orderId: order.id, kind: "depart", label: t("visit.depart"), method: "POST",
            url: "/work-orders/" + order.id + "/visits/{visit}/depart",
            json: { lat: pos.lat, lon: pos.lon, device_time: nowIso() }
          }).then(route_);
        });
      } }));
    }
    var box = el("div", { id: "result-box" });
    panel.appendChild(box);
    FO.api("GET", "/work-orders/" + order.id + "/checklists").then(function (subs) {
      subs.forEach(function (s) {
        var item = el("section", { class: "result result--" + s.status, "data-phase": s.phase }, [
          el("h4", { text: t("checklist.phase." + s.phase) + " #" + s.attempt + " · " + t("result." + s.status) })
        ]);
        if (s.failed_items.length) {
          item.appendChild(el("ul", {}, s.failed_items.map(function (f) {
            return el("li", { text: f.label + ": " + (f.message || f.reason || "") });
          })));
        }
        box.appendChild(item);
      });
    }).catch(function () { /* offline: the stage above is what we know */ });
  }

  // ------------------------------------------------------------------ routing

  function route_() {
    if (!FO.token()) {
      show("view-signin");
      document.getElementById("signin-token").focus();
      return;
    }
    var parts = location.hash.replace(/^#\/?/, "").split("/");
    if (parts[0] === "order" && /^\d+$/.test(parts[1] || "")) renderOrder(Number(parts[1]), parts[2]);
    else renderOrders();
  }
  var route = route_;

  FOOutbox.setResolver(function (entry) {
    var visit = visitOf(entry.orderId);
    return visit && visit.id ? entry.url.replace("{visit}", visit.id) : null;
  });

  FOOutbox.on(function (event) {
    var kind = event.entry && event.entry.kind, orderId = event.entry && event.entry.orderId;
    if (event.type === "sent" && (kind === "arrival" || kind === "depart")) {
      if (kind === "arrival") cacheSet("visit:" + orderId, event.data);
      else localStorage.removeItem("fo_cache:visit:" + orderId);
    }
    if (event.type === "failed" && kind === "arrival") localStorage.removeItem("fo_cache:visit:" + orderId);
    if (event.type === "sent" && kind === "completion") {
      cacheSet("completion:" + orderId, event.data);
      cacheSet("visit:" + orderId, event.data.visit);
    }
    if ((event.type === "sent" || event.type === "failed") && kind === "scheme") {
      cacheSet("scheme:" + orderId, event.type === "sent" ? event.data : null);
    }
    if (event.type === "sent" && kind === "photo") {
      var log = photoLog(event.entry.orderId);
      (log[event.entry.photoKind] || []).forEach(function (p) {
        if (p.clientId === event.entry.clientId) p.status = "sent";
      });
      setPhotoLog(event.entry.orderId, log);
      showPhotoState(event.entry.orderId, event.entry.photoKind);
    }
    if (event.type === "sent" && state.order && state.order.id === orderId && kind !== "photo") {
      state.rerender = true; // the order moved on: show its new state once the queue settles
    }
    if (event.type === "flushed" || event.type === "failed" || event.type === "discarded") {
      if (state.order && location.hash.indexOf("#/order/" + state.order.id) === 0) {
        if (state.rerender) { state.rerender = false; route_(); }
        else pendingFor(state.order.id).then(renderOutbox);
      }
    }
  });

  document.addEventListener("DOMContentLoaded", function () {
    FO.wireSignIn(function () { location.hash = "#/orders"; route_(); });
    document.getElementById("orders-refresh").addEventListener("click", renderOrders);
    window.addEventListener("hashchange", route_);
    route_();
    FOOutbox.flush();
    if ("serviceWorker" in navigator) {
      navigator.serviceWorker.register("/app/sw.js", { scope: "/app/" }).catch(function () { /* the app works without it */ });
    }
  });
})();
