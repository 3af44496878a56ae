// Inspector review page: walks findings photo by photo, draws boxes, confirms or rejects.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { token: localStorage.getItem("fieldops.token") || "", findings: [], index: 0, photoUrls: {} };
  $("token").value = state.token;

  // ------------------------------------------------------------ one language at a time
  // As on the crew app and the planner dashboard: the language switch's cookie fo_lang (set
  // for every page), else zh-CN. Every API call asks for the same language.
  const MESSAGES = {
    "title": ["巡检缺陷复核", "Inspection review"],
    "token": ["令牌", "Token"],
    "sign_in": ["登录", "Sign in"],
    "signed_in": ["已登录", "Signed in"],
    "sign_in_failed": ["登录失败：{detail}", "Sign-in failed: {detail}"],
    "line": ["线路", "Line"],
    "all": ["全部", "All"],
    "min_severity": ["最低严重度", "Minimum severity"],
    "status": ["状态", "Status"],
    "status.proposed": ["待复核", "To review"],
    "status.confirmed": ["已确认", "Confirmed"],
    "status.corrected": ["已修正", "Corrected"],
    "status.rejected": ["已驳回", "Rejected"],
    "filter": ["筛选", "Filter"],
    "count": ["{n} 条", "{n} findings"],
    "photo_with_boxes": ["照片与检测框", "Photo with boxes"],
    "photo": ["照片 {id}", "Photo {id}"],
    "previous.label": ["上一个 (k)", "Previous (k)"],
    "next.label": ["下一个 (j)", "Next (j)"],
    "confirm": ["确认", "Confirm"],
    "confirm.label": ["确认 (c)", "Confirm (c)"],
    "reject": ["驳回", "Reject"],
    "reject.label": ["驳回 (r)", "Reject (r)"],
    "keys": ["快捷键", "Keys"],
    "keys.move": ["下一个/上一个", "next/previous"],
    "none": ["没有待复核的发现", "No findings to show"],
    "confirmed": ["已确认", "Confirmed"],
    "repair_order": ["已派抢修单 #{id}", "repair order #{id} raised"],
    "rejected": ["已驳回", "Rejected"],
    "failed": ["失败：{detail}", "Failed: {detail}"],
    "field.id": ["编号", "Id"],
    "field.class": ["类别", "Class"],
    "field.severity": ["严重度", "Severity"],
    "field.confidence": ["置信度", "Confidence"],
    "field.asset": ["杆塔", "Asset"],
    "field.line": ["线路", "Line"],
    "field.status": ["状态", "Status"],
    "field.position": ["位置", "Position"],
    "field.progress": ["进度", "Progress"],
    "class.defect": ["缺陷", "Defect"],
    "class.insulator": ["绝缘子", "Insulator"],
    "network_error": ["网络不可用", "No network"],
    "http_error": ["服务器返回错误（{status}）", "The server answered with an error ({status})"],
    "switch": ["English", "中文"],
  };

  function cookieLang() {
    const hit = document.cookie.split(";").map((c) => c.trim()).find((c) => c.indexOf("fo_lang=") === 0);
    return hit ? decodeURIComponent(hit.slice("fo_lang=".length)) : null;
  }
  const LANG = (cookieLang() || "").trim().toLowerCase().indexOf("en") === 0 ? "en" : "zh-CN";
  const OTHER = LANG === "en" ? "zh-CN" : "en";

  function t(key, vars) {
    const pair = MESSAGES[key];
    let text = pair ? pair[LANG === "en" ? 1 : 0] : key;
    if (vars) text = text.replace(/\{(\w+)\}/g, (whole, name) => (vars[name] == null ? whole : String(vars[name])));
    return text;
  }
  function tOr(key, fallback) { return MESSAGES[key] ? t(key) : fallback; }

  function applyLanguage() {
    document.documentElement.lang = LANG;
    document.querySelectorAll("[data-i18n]").forEach((node) => { node.textContent = t(node.dataset.i18n); });
    document.querySelectorAll("[data-i18n-label]").forEach((node) => { node.setAttribute("aria-label", t(node.dataset.i18nLabel)); });
    document.title = t("title");
    const sw = $("lang-switch");
    sw.textContent = t("switch");
    sw.setAttribute("lang", OTHER);
    sw.addEventListener("click", () => {
      document.cookie = "fo_lang=" + OTHER + "; path=/; max-age=" + 365 * 86400 + "; samesite=lax";
      location.reload();
    });
  }
  applyLanguage();

  /** What a person reads of an error answer: the server's message (in the language the request
   *  asked for), else its detail, else a catalogue text. */
  function messageOf(body, status) {
    if (body && typeof body.message === "string" && body.message) return body.message;
    if (body && typeof body.detail === "string" && body.detail) return body.detail;
    return status ? t("http_error", { status: status }) : t("network_error");
  }

  async function api(path, options) {
    let res;
    try {
      res = await fetch(path, Object.assign({}, options || {}, {
        credentials: "same-origin",
        headers: Object.assign({ Authorization: "Bearer " + state.token, "Content-Type": "application/json",
          "Accept-Language": LANG }, (options && options.headers) || {}),
      }));
    } catch (e) { throw new Error(messageOf(null, 0)); }
    if (!res.ok) {
      let body = null;
      try { body = await res.json(); } catch (e) { /* not JSON */ }
      throw new Error(messageOf(body, res.status));
    }
    return res;
  }

  function say(text) { $("status").textContent = text; }

  async function loadLines() {
    const lines = await (await api("/inspections/lines")).json();
    const select = $("line");
    select.length = 1;
    for (const line of lines) {
      const opt = document.createElement("option");
      opt.value = line.id; opt.textContent = line.name ? line.id + " " + line.name : line.id;
      select.appendChild(opt);
    }
  }

  async function loadFindings() {
    const params = new URLSearchParams();
    if ($("line").value) params.set("line_id", $("line").value);
    if ($("severity").value) params.set("min_severity", $("severity").value);
    if ($("status-filter").value) params.set("status", $("status-filter").value);
    const rows = await (await api("/inspections/findings?" + params.toString())).json();
    // photo by photo: keep each photo's findings together
    rows.sort((a, b) => (a.photo_id < b.photo_id ? -1 : a.photo_id > b.photo_id ? 1 : b.severity - a.severity));
    state.findings = rows; state.index = 0;
    $("count").textContent = t("count", { n: rows.length });
    await show();
  }

  async function photoUrl(photoId) {
    if (!state.photoUrls[photoId]) {
      const blob = await (await api("/inspections/photos/" + photoId + "/image")).blob();
      state.photoUrls[photoId] = URL.createObjectURL(blob);
    }
    return state.photoUrls[photoId];
  }

  async function show() {
    const stage = $("stage"); const details = $("details");
    stage.textContent = ""; details.textContent = "";
    const f = state.findings[state.index];
    if (!f) { say(t("none")); return; }
    const siblings = state.findings.filter((x) => x.photo_id === f.photo_id);
    const photo = await (await api("/inspections/photos/" + f.photo_id)).json();
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + photo.width_px + " " + photo.height_px);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", t("photo", { id: f.photo_id.slice(0, 12) }));
    const img = document.createElementNS(ns, "image");
    img.setAttribute("href", await photoUrl(f.photo_id));
    img.setAttribute("width", photo.width_px); img.setAttribute("height", photo.height_px);
    svg.appendChild(img);
    for (const s of siblings) {
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("x", s.x1); r.setAttribute("y", s.y1);
      r.setAttribute("width", s.x2 - s.x1); r.setAttribute("height", s.y2 - s.y1);
      r.setAttribute("class", "box " + (s.id === f.id ? "current" : "other"));
      r.dataset.findingId = s.id;
      svg.appendChild(r);
    }
    stage.appendChild(svg);
    const rows = [["id", f.id], ["class", tOr("class." + f.class_name, f.class_name)], ["severity", f.severity],
      ["confidence", f.confidence.toFixed(2)], ["asset", f.asset_id || "—"],
      ["line", f.line_id || "—"], ["status", tOr("status." + f.status, f.status)],
      ["position", f.ground_lat != null ? f.ground_lat.toFixed(6) + ", " + f.ground_lon.toFixed(6) : "—"],
      ["progress", (state.index + 1) + " / " + state.findings.length]];
    for (const [k, v] of rows) {
      const dt = document.createElement("dt"); dt.textContent = t("field." + k);
      const dd = document.createElement("dd"); dd.textContent = v;
      dd.dataset.field = k;
      details.append(dt, dd);
    }
  }

  async function decide(decision) {
    const f = state.findings[state.index];
    if (!f) return;
    try {
      const res = await api("/inspections/findings/" + f.id + "/review", {
        method: "POST", body: JSON.stringify({ decision: decision }),
        headers: { "Idempotency-Key": "review-" + f.id + "-" + decision },
      });
      const body = await res.json();
      f.status = body.finding.status;
      say(decision === "confirmed" ? t("confirmed") + (body.repair_order ? " · " + t("repair_order", { id: body.repair_order.id }) : "")
        : t("rejected"));
      if (state.index < state.findings.length - 1) state.index += 1;
      await show();
    } catch (e) { say(t("failed", { detail: e.message })); }
  }

  function move(step) {
    const next = state.index + step;
    if (next >= 0 && next < state.findings.length) { state.index = next; show(); }
  }

  $("signin").addEventListener("click", async () => {
    state.token = $("token").value.trim();
    localStorage.setItem("fieldops.token", state.token);
    try { await loadLines(); await loadFindings(); say(t("signed_in")); } catch (e) { say(t("sign_in_failed", { detail: e.message })); }
  });
  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); loadFindings().catch((e) => say(e.message)); });
  $("confirm").addEventListener("click", () => decide("confirmed"));
  $("reject").addEventListener("click", () => decide("rejected"));
  $("next").addEventListener("click", () => move(1));
  $("prev").addEventListener("click", () => move(-1));
  document.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement) return;
    if (ev.key === "c") decide("confirmed");
    else if (ev.key === "r") decide("rejected");
    else if (ev.key === "j" || ev.key === "ArrowRight") move(1);
    else if (ev.key === "k" || ev.key === "ArrowLeft") move(-1);
  });
  if (state.token) { loadLines().then(loadFindings).catch((e) => say(e.message)); }
})();
