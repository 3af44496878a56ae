// Inspector review page: walks findings photo by photo, draws boxes, confirms or rejects.
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  const state = { token: localStorage.getItem("fieldops.token") || "", findings: [], index: 0, photoUrls: {} };
  $("token").value = state.token;

  async function api(path, options) {
    const res = await fetch(path, Object.assign({}, options || {}, {
      headers: Object.assign({ Authorization: "Bearer " + state.token, "Content-Type": "application/json" },
        (options && options.headers) || {}),
    }));
    if (!res.ok) {
      let detail = res.status + "";
      try { const body = await res.json(); detail = body.error + ": " + JSON.stringify(body.detail); } catch (e) { /* not JSON */ }
      throw new Error(detail);
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
    $("count").textContent = rows.length + " 条 findings";
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
    if (!f) { say("没有待复核的发现 No findings to show"); return; }
    const siblings = state.findings.filter((x) => x.photo_id === f.photo_id);
    const photo = await (await api("/inspections/photos/" + f.photo_id)).json();
    const ns = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 " + photo.width_px + " " + photo.height_px);
    svg.setAttribute("role", "img");
    svg.setAttribute("aria-label", "photo " + f.photo_id.slice(0, 12));
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
    const rows = [["编号 Id", f.id], ["类别 Class", f.class_name], ["严重度 Severity", f.severity],
      ["置信度 Confidence", f.confidence.toFixed(2)], ["杆塔 Asset", f.asset_id || "—"],
      ["线路 Line", f.line_id || "—"], ["状态 Status", f.status],
      ["位置 Position", f.ground_lat != null ? f.ground_lat.toFixed(6) + ", " + f.ground_lon.toFixed(6) : "—"],
      ["进度 Progress", (state.index + 1) + " / " + state.findings.length]];
    for (const [k, v] of rows) {
      const dt = document.createElement("dt"); dt.textContent = k;
      const dd = document.createElement("dd"); dd.textContent = v;
      dd.dataset.field = k.split(" ").pop().toLowerCase();
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
      say(decision === "confirmed" ? "已确认 Confirmed" + (body.repair_order ? " · 已派抢修单 repair order #" + body.repair_order.id : "")
        : "已驳回 Rejected");
      if (state.index < state.findings.length - 1) state.index += 1;
      await show();
    } catch (e) { say("失败 Failed: " + e.message); }
  }

  function move(step) {
    const next = state.index + step;
    if (next >= 0 && next < state.findings.length) { state.index = next; show(); }
  }

  $("signin").addEventListener("click", async () => {
    state.token = $("token").value.trim();
    localStorage.setItem("fieldops.token", state.token);
    try { await loadLines(); await loadFindings(); say("已登录 Signed in"); } catch (e) { say("登录失败 " + e.message); }
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
