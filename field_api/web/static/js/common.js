/* fieldops pages: shared helpers (messages, token, API calls, DOM building). No build step. */
(function () {
  "use strict";

  var MESSAGES = JSON.parse(document.getElementById("fo-messages").textContent);
  var TOKEN_KEY = "fo_token";
  var ME_KEY = "fo_me";

  /** A message of the page's language, with {name} placeholders filled in. */
  function t(key, vars) {
    var text = Object.prototype.hasOwnProperty.call(MESSAGES, key) ? MESSAGES[key] : key;
    if (vars) {
      text = text.replace(/\{(\w+)\}/g, function (whole, name) {
        return vars[name] === undefined || vars[name] === null ? whole : String(vars[name]);
      });
    }
    return text;
  }

  /** A message when the catalogue has it, else ``fallback`` (names from configuration files). */
  function tOr(key, fallback) {
    return Object.prototype.hasOwnProperty.call(MESSAGES, key) ? MESSAGES[key] : fallback;
  }

  /** Build an element: el("p", {class: "x", text: "..."}, [children]). Text is never parsed as HTML. */
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (name) {
      var value = attrs[name];
      if (value === undefined || value === null || value === false) return;
      if (name === "text") node.textContent = value;
      else if (name.slice(0, 2) === "on" && typeof value === "function") {
        node.addEventListener(name.slice(2), value);
      } else if (value === true) node.setAttribute(name, "");
      else node.setAttribute(name, String(value));
    });
    (children || []).forEach(function (child) {
      if (child === null || child === undefined || child === false) return;
      node.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
    });
    return node;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
    return node;
  }

  /** A random UUID v4 (crypto.randomUUID needs a secure context; fall back to getRandomValues). */
  function uuid() {
    if (window.crypto && typeof window.crypto.randomUUID === "function") {
      return window.crypto.randomUUID();
    }
    var b = new Uint8Array(16);
    window.crypto.getRandomValues(b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 0x100).toString(16).slice(1); });
    return h.slice(0, 4).join("") + "-" + h.slice(4, 6).join("") + "-" + h.slice(6, 8).join("") +
      "-" + h.slice(8, 10).join("") + "-" + h.slice(10).join("");
  }

  function token() { return localStorage.getItem(TOKEN_KEY); }
  function me() {
    try { return JSON.parse(localStorage.getItem(ME_KEY) || "null"); } catch (e) { return null; }
  }

  /** An error the API answered with ({"error", "code", "params", "detail"}) or a network
   * failure (status 0). ``detail`` is what a person reads: the server's text in the page's
   * language (the request carries it), never an English name of the error class. */
  function ApiError(status, body) {
    this.status = status;
    this.body = body && typeof body === "object" ? body : {};
    this.error = this.body.error || (status === 0 ? "NetworkError" : "HTTPError");
    this.code = this.body.code || null;
    this.detail = messageOf(this.body, status);
    this.message = this.error + ": " + this.detail;
  }
  ApiError.prototype = Object.create(Error.prototype);

  /** The text of an answer a person reads: the server's ``message`` (rendered in the request's
   * language), else its ``detail``; a field-error list names the fields; else a catalogue text. */
  function messageOf(body, status) {
    body = body && typeof body === "object" ? body : {};
    if (typeof body.message === "string" && body.message) return body.message;
    if (typeof body.detail === "string" && body.detail) return body.detail;
    if (Array.isArray(body.detail)) return describe(body.detail);
    if (!status) return t("app.network_error");
    return t("app.http_error", { status: status });
  }

  /** A ``detail`` as text: a list of field errors names the fields (their messages are the
   * framework's English), anything else is shown as it came. */
  function describe(detail) {
    if (Array.isArray(detail)) {
      return t("app.invalid_input", { fields: detail.map(function (d) {
        var loc = (d && d.loc) || [];
        var last = loc.filter(function (x) { return x !== "body" && x !== "query" && x !== "path"; });
        return last.length ? last.join(".") : "?";
      }).join("、") });
    }
    if (detail && typeof detail === "object" && typeof detail.message === "string") return detail.message;
    return typeof detail === "string" ? detail : JSON.stringify(detail);
  }

  /** A role as people read it, in the page's language. */
  function roleName(role) { return tOr("role." + role, role); }

  /** Headers every API call carries: the page's language, so the server's texts match it. */
  function languageHeaders(headers) {
    if (!headers["Accept-Language"] && document.documentElement.lang) {
      headers["Accept-Language"] = document.documentElement.lang;
    }
    return headers;
  }

  /** The path and query of a response's RFC 8288 ``Link: <url>; rel="next"`` (null on the last
   * page), on this page's origin whatever host a proxy showed the server. */
  function nextLink(response) {
    var header = response.headers.get("link") || "";
    var parts = header.split(",");
    for (var i = 0; i < parts.length; i++) {
      var m = /<([^>]*)>\s*;\s*rel="?([^";]+)"?/.exec(parts[i]);
      if (m && m[2].split(/\s+/).indexOf("next") >= 0) {
        var u = new URL(m[1], window.location.href);
        return u.pathname + u.search;
      }
    }
    return null;
  }

  /** Call the API with the stored token; resolves to parsed JSON (or the Response for raw).
   * A GET answering a list follows its rel="next" links and resolves to every page's items
   * (options.onePage: only the first page), so no list stops silently at the server's limit. */
  function api(method, url, options) {
    options = options || {};
    var headers = Object.assign({}, options.headers || {});
    var tok = options.token || token();
    if (tok) headers.Authorization = "Bearer " + tok;
    // Answers (messages, CSV) in the page's language, not the browser's default one; the
    // language switch's cookie (fo_lang) goes along too (same-origin credentials).
    languageHeaders(headers);
    var body = options.body;
    if (options.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(options.json);
    }
    return fetch(url, { method: method, headers: headers, body: body, cache: "no-store", credentials: "same-origin" })
      .catch(function () { throw new ApiError(0, null); })
      .then(function (response) {
        if (options.raw && response.ok) return response;
        var type = response.headers.get("content-type") || "";
        var parsed = type.indexOf("json") >= 0 ? response.json() : response.text();
        return parsed.catch(function () { return null; }).then(function (data) {
          if (!response.ok) throw new ApiError(response.status, typeof data === "object" ? data : null);
          var next = method === "GET" && Array.isArray(data) && !options.onePage ? nextLink(response) : null;
          if (!next || next === url) return data;
          return api(method, next, options).then(function (rest) { return data.concat(rest); });
        });
      });
  }

  /** Check a token with GET /me and keep it (and who it is) on this device. */
  function signIn(tok) {
    return api("GET", "/me", { token: tok }).then(function (who) {
      localStorage.setItem(TOKEN_KEY, tok);
      localStorage.setItem(ME_KEY, JSON.stringify(who));
      return who;
    });
  }

  function signOut() {
    localStorage.removeItem(TOKEN_KEY);
    localStorage.removeItem(ME_KEY);
  }

  // The server reads the language switch's cookie before Accept-Language: a page opened in
  // another language (/app/?lang=en) keeps the cookie in step, so its API calls answer in it.
  (function keepLanguageCookie() {
    var lang = document.documentElement.lang;
    var hit = /(?:^|;\s*)fo_lang=([^;]*)/.exec(document.cookie);
    if (!lang || !hit) return;
    var cookieEn = decodeURIComponent(hit[1]).trim().toLowerCase().indexOf("en") === 0;
    if (cookieEn !== (lang === "en")) {
      document.cookie = "fo_lang=" + lang + "; path=/; max-age=" + 365 * 86400 + "; samesite=lax";
    }
  })();

  function showNetState() {
    var banner = document.getElementById("net-banner");
    if (banner) banner.hidden = navigator.onLine;
  }
  window.addEventListener("online", showNetState);
  window.addEventListener("offline", showNetState);
  document.addEventListener("DOMContentLoaded", showNetState);

  /** Wire the shared sign-in form; ``done(me)`` runs after a good token. */
  function wireSignIn(done) {
    var form = document.getElementById("signin-form");
    var error = document.getElementById("signin-error");
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var input = document.getElementById("signin-token");
      var value = input.value.trim();
      error.hidden = true;
      input.removeAttribute("aria-invalid");
      signIn(value).then(done).catch(function (err) {
        error.textContent = err.status === 401 ? t("signin.bad_token") : t("app.error", { detail: err.detail });
        error.hidden = false;
        input.setAttribute("aria-invalid", "true");
      });
    });
    var out = document.getElementById("sign-out");
    out.addEventListener("click", function () {
      var pending = window.FOOutbox ? FOOutbox.all() : Promise.resolve([]);
      pending.then(function (entries) {
        var mine = entries.filter(function (e) { var who = me(); return who && e.userId === who.user_id; });
        // Unsent work stays on the phone, but only this user can send it: say so first.
        if (mine.length && !window.confirm(t("app.sign_out_pending", { n: mine.length }))) return;
        signOut(); location.hash = ""; location.reload();
      });
    });
  }

  // ------------------------------------------------------------ China time
  // Every time a person reads is Asia/Shanghai: UTC+8 all year (no daylight saving since
  // 1991), whatever the device's zone. The API sends UTC (ISO 8601); these helpers are the one
  // place the pages turn it into China time, as the server does (field_api.common.clock.to_china).
  var CHINA_OFFSET_MS = 8 * 3600 * 1000;
  var ZONELESS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/;

  /** China wall-clock time of a moment (ISO text, Date or epoch ms) as "YYYY-MM-DDTHH:MM:SS". */
  function chinaWall(moment) {
    var ms;
    if (moment instanceof Date) ms = moment.getTime();
    else if (typeof moment === "number") ms = moment;
    else if (typeof moment === "string" && moment) {
      // The API's times are UTC: a time without a zone is UTC too, never the device's zone.
      ms = Date.parse(ZONELESS.test(moment) ? moment + "Z" : moment);
    }
    if (ms === undefined || isNaN(ms)) return null;
    return new Date(ms + CHINA_OFFSET_MS).toISOString().slice(0, 19);
  }

  /** The China date of a moment, "YYYY-MM-DD" ("" when there is none). */
  function chinaDate(moment) { var w = chinaWall(moment); return w ? w.slice(0, 10) : ""; }
  /** The China time of day of a moment, "HH:MM". */
  function chinaTime(moment) { var w = chinaWall(moment); return w ? w.slice(11, 16) : ""; }
  /** A moment as people read it: "YYYY-MM-DD HH:MM" in China time. */
  function chinaDateTime(moment) { var w = chinaWall(moment); return w ? w.slice(0, 10) + " " + w.slice(11, 16) : ""; }
  /** A moment as ISO 8601 in China time with its offset, "YYYY-MM-DDTHH:MM:SS+08:00" (CSV). */
  function chinaIso(moment) { var w = chinaWall(moment); return w ? w + "+08:00" : ""; }
  /** Today's date in China, as YYYY-MM-DD. */
  function chinaToday() { return chinaDate(Date.now()); }

  /** A <time> element showing a moment in China time, with the exact moment for machines. */
  function timeEl(moment, attrs) {
    var text = chinaDateTime(moment);
    return el("time", Object.assign({ datetime: text ? chinaIso(moment) : null, text: text }, attrs || {}));
  }

  window.FO = {
    t: t, tOr: tOr, el: el, clear: clear, uuid: uuid, api: api, ApiError: ApiError, describe: describe,
    messageOf: messageOf, roleName: roleName, languageHeaders: languageHeaders,
    nextLink: nextLink, token: token, me: me, signIn: signIn, signOut: signOut, wireSignIn: wireSignIn,
    chinaToday: chinaToday, chinaDate: chinaDate, chinaTime: chinaTime, chinaDateTime: chinaDateTime,
    chinaIso: chinaIso, timeEl: timeEl,
    lang: document.documentElement.lang
  };
})();
