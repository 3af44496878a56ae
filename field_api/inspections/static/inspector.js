// Inspector review page: walks the review queue one finding at a time (defects first, paged),
// draws the photo's boxes, confirms, rejects or undoes; picks the pole of an unlocated finding;
// assigns unassigned repair orders (planner, admin). Every decision names the finding and the
// version the panel showed, so a stale panel or a mistaken target is refused by the server.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = {
    token: localStorage.getItem("fieldops.token") || "", findings: [], index: 0, photoUrls: {},
    total: 0, nextOffset: null, params: null,
    seq: 0, // each render's number: an older render that finishes late draws nothing
    shown: null, // {id, version} of the finding the panel shows: what a key press decides on
    last: null, // the last decision, for undo: {id, version}
  };
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
    "insulators": ["含绝缘子", "Insulators too"],
    "more": ["加载更多", "Load more"],
    "undo": ["撤销", "Undo"],
    "undo.label": ["撤销上一个决定 (u)", "Undo the last decision (u)"],
    "undo_hint": ["抢修班组开工前可按 u 撤销", "press u to undo until a crew starts the repair"],
    "undone": ["已撤销 {id} 的决定", "Decision on {id} undone"],
    "repair_cancelled": ["抢修单 #{id} 已取消", "repair order #{id} cancelled"],
    "nothing_to_undo": ["没有可撤销的决定", "Nothing to undo"],
    "pole": ["杆塔编号", "Pole id"],
    "set_pole": ["选定杆塔 (p)", "Set pole (p)"],
    "pole_set": ["已选定杆塔 {asset}", "Pole {asset} set"],
    "unassigned": ["待派工抢修单", "Unassigned repair orders"],
    "load_unassigned": ["刷新", "Refresh"],
    "unassigned_count": ["{n} 张待派工", "{n} unassigned"],
    "assign": ["派工", "Assign"],
    "assigned_to": ["抢修单 #{id} 已派工", "Repair order #{id} assigned"],
    "no_position": ["无位置", "no position"],
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
    "keys.more": ["撤销, p 选定杆塔", "undo, p set pole"],
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
    "field.version": ["版本", "Version"],
    "field.model": ["模型", "Model"],
    "field.batch": ["批次", "Batch"],
    "field.photo": ["照片", "Photo"],
    "model_version": ["{model} 第 {version} 版", "{model} version {version}"],
    "truncated": ["JPEG 文件不完整：已识别可解码部分", "Truncated JPEG: the decodable part was searched"],
    "intact": ["完整", "Intact"],
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

  /** Every item of a list endpoint: follows its Link rel="next" pages (RFC 8288) to the end. */
  async function allPages(path) {
    let items = [];
    let url = path;
    while (url) {
      const res = await api(url);
      items = items.concat(await res.json());
      const link = /<([^>]*)>\s*;\s*rel="?next"?/.exec(res.headers.get("link") || "");
      const next = link ? new URL(link[1], window.location.href) : null;
      url = next && next.pathname + next.search !== url ? next.pathname + next.search : null;
    }
    return items;
  }

  function say(text) { $("status").textContent = text; }

  async function loadLines() {
    const lines = await allPages("/inspections/lines");
    const select = $("line");
    select.length = 1;
    for (const line of lines) {
      const opt = document.createElement("option");
      opt.value = line.id; opt.textContent = line.name ? line.id + " " + line.name : line.id;
      select.appendChild(opt);
    }
  }

  const PAGE = 50;

  async function loadFindings() {
    const params = new URLSearchParams();
    if ($("line").value) params.set("line_id", $("line").value);
    if ($("severity").value) params.set("min_severity", $("severity").value);
    if ($("status-filter").value) params.set("status", $("status-filter").value);
    if ($("insulators").checked) params.set("include_insulators", "true");
    state.params = params;
    state.findings = []; state.index = 0; state.nextOffset = 0;
    await loadMore();
    await show();
  }

  /** The next page of the queue (the server's order: most serious first). */
  async function loadMore() {
    if (state.nextOffset == null) return false;
    const params = new URLSearchParams(state.params);
    params.set("limit", String(PAGE));
    params.set("offset", String(state.nextOffset));
    const page = await (await api("/inspections/findings?" + params.toString())).json();
    state.findings = state.findings.concat(page.items);
    state.total = page.total; state.nextOffset = page.next_offset;
    $("count").textContent = t("count", { n: page.total });
    $("more").hidden = page.next_offset == null;
    return page.items.length > 0;
  }

  async function photoUrl(photoId) {
    if (!state.photoUrls[photoId]) {
      const blob = await (await api("/inspections/photos/" + photoId + "/image")).blob();
      state.photoUrls[photoId] = URL.createObjectURL(blob);
    }
    return state.photoUrls[photoId];
  }

  async function show() {
    const seq = ++state.seq;
    const stage = $("stage"); const details = $("details");
    const f = state.findings[state.index];
    if (!f) {
      state.shown = null; stage.replaceChildren(); details.replaceChildren(); say(t("none")); return;
    }
    const siblings = state.findings.filter((x) => x.photo_id === f.photo_id);
    const photo = await (await api("/inspections/photos/" + f.photo_id)).json();
    const href = await photoUrl(f.photo_id);
    if (seq !== state.seq) return; // a newer move is being drawn: this one is dropped
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + photo.width_px + " " + photo.height_px);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", t("photo", { id: f.photo_id.slice(0, 12) }));
    const img = document.createElementNS(ns, "image");
    img.setAttribute("href", href);
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
    const rows = [["id", f.id], ["class", tOr("class." + f.class_name, f.class_name)], ["severity", f.severity],
      ["confidence", f.confidence.toFixed(2)], ["asset", f.asset_id || "—"],
      ["line", f.line_id || "—"], ["status", tOr("status." + f.status, f.status)],
      ["position", f.ground_lat != null ? f.ground_lat.toFixed(6) + ", " + f.ground_lon.toFixed(6)
        : (f.asset_id ? "—" : t("no_position"))],
      ["version", f.version],
      ["model", f.model ? t("model_version", { model: f.model, version: f.model_version || "?" }) : "—"],
      ["batch", f.batch_id],
      ["photo", photo.truncated ? t("truncated") : t("intact")],
      ["progress", (state.index + 1) + " / " + state.total]];
    const items = [];
    for (const [k, v] of rows) {
      const dt = document.createElement("dt"); dt.textContent = t("field." + k);
      const dd = document.createElement("dd"); dd.textContent = v;
      dd.dataset.field = k;
      items.push(dt, dd);
    }
    // one finding at a time: the panel is replaced, never added to
    stage.replaceChildren(svg);
    details.replaceChildren(...items);
    details.dataset.findingId = f.id;
    state.shown = { id: f.id, version: f.version };
    $("pole").value = f.asset_id || "";
  }

  function findingById(id) { return state.findings.find((x) => x.id === id) || null; }
  function update(finding) {
    const i = state.findings.findIndex((x) => x.id === finding.id);
    if (i >= 0) state.findings[i] = finding;
  }

  async function decide(decision) {
    const shown = state.shown; // what the panel shows, not where the index has moved since
    if (!shown) return;
    try {
      const res = await api("/inspections/findings/" + encodeURIComponent(shown.id) + "/review", {
        method: "POST", body: JSON.stringify({ decision: decision, finding_id: shown.id, version: shown.version }),
        headers: { "Idempotency-Key": "review-" + shown.id + "-" + shown.version + "-" + decision },
      });
      const body = await res.json();
      update(body.finding);
      state.last = { id: body.finding.id, version: body.finding.version };
      if (state.index < state.findings.length - 1) state.index += 1;
      await show(); // the next finding is on the panel before the page reports the decision
      say((decision === "confirmed" ? t("confirmed") + (body.repair_order ? " · " + t("repair_order", { id: body.repair_order.id }) : "")
        : t("rejected")) + " · " + t("undo_hint"));
    } catch (e) { say(t("failed", { detail: e.message })); }
  }

  async function undo() {
    const last = state.last;
    if (!last) { say(t("nothing_to_undo")); return; }
    try {
      const res = await api("/inspections/findings/" + encodeURIComponent(last.id) + "/undo", {
        method: "POST", body: JSON.stringify({ finding_id: last.id, version: last.version }),
        headers: { "Idempotency-Key": "undo-" + last.id + "-" + last.version },
      });
      const body = await res.json();
      update(body.finding);
      state.last = null;
      const i = state.findings.findIndex((x) => x.id === body.finding.id);
      if (i >= 0) state.index = i;
      await show();
      say(t("undone", { id: body.finding.id }) + (body.repair_order ? " · " + t("repair_cancelled", { id: body.repair_order.id }) : ""));
    } catch (e) { say(t("failed", { detail: e.message })); } // e.g. the crew has started: the server says so
  }

  async function setPole() {
    const shown = state.shown; const asset = $("pole").value.trim();
    if (!shown || !asset) return;
    try {
      const res = await api("/inspections/findings/" + encodeURIComponent(shown.id) + "/asset", {
        method: "PUT", body: JSON.stringify({ asset_id: asset, finding_id: shown.id, version: shown.version }),
      });
      const body = await res.json();
      update(body.finding);
      await show();
      say(t("pole_set", { asset: asset }));
    } catch (e) { say(t("failed", { detail: e.message })); }
  }

  // Keys and buttons act in the order pressed, one at a time: j pressed quickly walks one
  // finding per press, each drawn alone, and a decision waits for the moves before it.
  let chain = Promise.resolve();
  function enqueue(action) {
    chain = chain.then(action).catch((e) => say(e.message));
    return chain;
  }

  async function step(by) {
    const next = state.index + by;
    if (next >= state.findings.length && state.nextOffset != null) await loadMore();
    if (next >= 0 && next < state.findings.length) { state.index = next; await show(); }
  }
  function move(by) { enqueue(() => step(by)); }

  async function loadUnassigned() {
    const box = $("unassigned-list");
    let page; let crews;
    try {
      page = await (await api("/repair-orders/unassigned?limit=100")).json();
      crews = (await allPages("/crews")).filter((c) => c.handles_repairs);
    } catch (e) { $("dispatch").hidden = true; return; } // not this role's work
    $("dispatch").hidden = false;
    $("unassigned-count").textContent = t("unassigned_count", { n: page.total });
    const rows = [];
    for (const order of page.items) {
      const li = document.createElement("li");
      const label = document.createElement("span");
      label.textContent = "#" + order.id + " · " + (order.asset_id || t("no_position")) + " · " + (order.line_id || "—") + " ";
      const select = document.createElement("select");
      select.setAttribute("aria-label", t("assign") + " #" + order.id);
      for (const c of crews) {
        const opt = document.createElement("option"); opt.value = String(c.id); opt.textContent = c.code + " " + c.name;
        select.appendChild(opt);
      }
      const button = document.createElement("button");
      button.type = "button"; button.className = "nav"; button.textContent = t("assign");
      button.addEventListener("click", async () => {
        try {
          await api("/repair-orders/" + order.id + "/assign", {
            method: "POST", body: JSON.stringify({ crew_id: Number(select.value) }),
          });
          say(t("assigned_to", { id: order.id }));
          await loadUnassigned();
        } catch (e) { say(t("failed", { detail: e.message })); }
      });
      li.append(label, select, button);
      rows.push(li);
    }
    box.replaceChildren(...rows);
  }

  $("signin").addEventListener("click", async () => {
    state.token = $("token").value.trim();
    localStorage.setItem("fieldops.token", state.token);
    try { await loadLines(); await loadFindings(); say(t("signed_in")); loadUnassigned(); } catch (e) { say(t("sign_in_failed", { detail: e.message })); }
  });
  $("filters").addEventListener("submit", (ev) => { ev.preventDefault(); enqueue(loadFindings); });
  $("confirm").addEventListener("click", () => enqueue(() => decide("confirmed")));
  $("reject").addEventListener("click", () => enqueue(() => decide("rejected")));
  $("next").addEventListener("click", () => move(1));
  $("undo").addEventListener("click", () => enqueue(undo));
  $("set-pole").addEventListener("click", () => enqueue(setPole));
  $("pole").addEventListener("keydown", (ev) => { if (ev.key === "Enter") { ev.preventDefault(); enqueue(setPole); } });
  $("more").addEventListener("click", () => enqueue(loadMore));
  $("load-unassigned").addEventListener("click", () => loadUnassigned());
  $("prev").addEventListener("click", () => move(-1));
  document.addEventListener("keydown", (ev) => {
    if (ev.target instanceof HTMLInputElement || ev.target instanceof HTMLSelectElement) return;
    if (ev.key === "c") enqueue(() => decide("confirmed"));
    else if (ev.key === "r") enqueue(() => decide("rejected"));
    else if (ev.key === "u") enqueue(undo);
    else if (ev.key === "p") { ev.preventDefault(); $("pole").focus(); }
    else if (ev.key === "j" || ev.key === "ArrowRight") move(1);
    else if (ev.key === "k" || ev.key === "ArrowLeft") move(-1);
  });
  if (state.token) { loadLines().then(loadFindings).then(loadUnassigned).catch((e) => say(e.message)); }
})();
