/* fieldops crew app service worker: keeps the app shell so the app starts without signal.
 * API calls are never cached here (the outbox and the page's own cache handle data). */
"use strict";
var CACHE = "fieldops-shell-__VERSION__";
var SHELL = __SHELL__;

self.addEventListener("install", function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) { return cache.addAll(SHELL); })
    .then(function () { return self.skipWaiting(); }));
});

self.addEventListener("activate", function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (n) { return n.indexOf("fieldops-shell-") === 0 && n !== CACHE; })
      .map(function (n) { return caches.delete(n); }));
  }).then(function () { return self.clients.claim(); }));
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  var isPage = request.mode === "navigate" && url.pathname.indexOf("/app/") === 0 && url.pathname.indexOf("/app/api/") !== 0;
  var isStatic = url.pathname.indexOf("/app/static/") === 0;
  if (!isPage && !isStatic) return;
  // Network first (fresh code when online), the cached shell when the network fails.
  event.respondWith(fetch(request).then(function (response) {
    if (response.ok && isStatic) {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { cache.put(url.pathname, copy); });
    }
    return response;
  }).catch(function () {
    return caches.match(isPage ? "/app/" : url.pathname).then(function (hit) {
      return hit || Response.error();
    });
  }));
});
