/* The outbox: every crew action and photo is stored in IndexedDB first, then sent in order.
 *
 * - A JSON action carries an Idempotency-Key generated ONCE when it is queued and reused on every
 *   retry, so the server applies it at most once even when a response is lost on the way back.
 * - A photo carries its client UUID (the media service's idempotency for multipart uploads).
 * - Network failures and 5xx keep the entry for the next try; a 4xx marks it failed (shown to the
 *   crew, who may discard it) and holds back the later entries of the same order, because they
 *   usually depend on it.
 */
(function () {
  "use strict";

  var DB_NAME = "fieldops";
  var STORE = "outbox";
  var dbPromise = null;
  var flushing = null;
  var listeners = [];
  var resolver = null;

  /** The entry's URL with placeholders ({visit}) filled in; null while one is not known yet. */
  function resolveUrl(entry) {
    if (entry.url.indexOf("{") < 0) return entry.url;
    return resolver ? resolver(entry) : null;
  }

  function open() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        var req = indexedDB.open(DB_NAME, 1);
        req.onupgradeneeded = function () {
          var store = req.result.createObjectStore(STORE, { keyPath: "seq", autoIncrement: true });
          store.createIndex("key", "key", { unique: true });
        };
        req.onsuccess = function () { resolve(req.result); };
        req.onerror = function () { reject(req.error); };
      });
    }
    return dbPromise;
  }

  function tx(mode, work) {
    return open().then(function (db) {
      return new Promise(function (resolve, reject) {
        var transaction = db.transaction(STORE, mode);
        var result = work(transaction.objectStore(STORE));
        transaction.oncomplete = function () { resolve(result && result.result !== undefined ? result.result : result); };
        transaction.onerror = function () { reject(transaction.error); };
        transaction.onabort = function () { reject(transaction.error); };
      });
    });
  }

  function all() {
    return tx("readonly", function (store) { return store.getAll(); });
  }

  function notify(event) {
    listeners.forEach(function (fn) {
      try { fn(event); } catch (e) { /* a broken view must not stop the queue */ }
    });
  }

  /**
   * Queue a request. entry: {orderId, label, method, url, json} or {..., form: [[name, value]]}
   * where a value may be a Blob/File. Returns the stored entry (with its key).
   */
  function enqueue(entry) {
    var who = FO.me();
    var stored = Object.assign({
      key: FO.uuid(),
      userId: who ? who.user_id : null,
      status: "pending",
      attempts: 0,
      lastError: null,
      createdAt: new Date().toISOString()
    }, entry);
    if (stored.form) {
      // Files become plain Blobs (+ name): IndexedDB keeps Blobs across restarts.
      stored.form = stored.form.map(function (pair) {
        var value = pair[1];
        if (value instanceof File) return [pair[0], new Blob([value], { type: value.type }), value.name];
        return [pair[0], value, pair[2]];
      });
    }
    return tx("readwrite", function (store) { return store.add(stored); }).then(function (seq) {
      stored.seq = seq;
      notify({ type: "queued", entry: stored });
      if (navigator.onLine) flush();
      return stored;
    });
  }

  function update(entry) {
    return tx("readwrite", function (store) { return store.put(entry); });
  }

  function remove(seq) {
    return tx("readwrite", function (store) { return store.delete(seq); });
  }

  function send(entry, url) {
    var headers = { "Idempotency-Key": entry.key };
    var tok = FO.token();
    if (tok) headers.Authorization = "Bearer " + tok;
    FO.languageHeaders(headers);  // the server's messages in the page's language
    var body;
    if (entry.form) {
      body = new FormData();
      entry.form.forEach(function (pair) {
        if (pair[1] instanceof Blob) body.append(pair[0], pair[1], pair[2] || "file");
        else body.append(pair[0], pair[1]);
      });
    } else if (entry.json !== undefined) {
      headers["Content-Type"] = "application/json";
      body = JSON.stringify(entry.json);
    }
    return fetch(url, { method: entry.method, headers: headers, body: body, cache: "no-store", credentials: "same-origin" });
  }

  function flushOnce() {
    return all().then(function (entries) {
      var blocked = {};
      var chain = Promise.resolve(true);
      entries.sort(function (a, b) { return a.seq - b.seq; }).forEach(function (entry) {
        chain = chain.then(function (goOn) {
          if (!goOn) return false;
          if (entry.status === "failed") { blocked[entry.orderId] = true; return true; }
          if (blocked[entry.orderId]) return true;
          // Only the user who queued an action may send it (a shared phone, another sign-in).
          var who = FO.me();
          if (!who || entry.userId !== who.user_id) return true;
          var url = resolveUrl(entry);
          // An action that needs an earlier answer (the visit id) waits behind it.
          if (!url) { blocked[entry.orderId] = true; return true; }
          entry.attempts += 1;
          return send(entry, url).then(function (response) {
            return response.text().then(function (text) {
              var data = null;
              try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
              if (response.ok) {
                return remove(entry.seq).then(function () {
                  notify({ type: "sent", entry: entry, data: data,
                           replayed: response.headers.get("idempotent-replayed") === "true" });
                  return true;
                });
              }
              var inProgress = response.status === 409 && data && data.error === "IdempotencyConflict" &&
                response.headers.get("retry-after");
              if (response.status >= 500 || response.status === 429 || inProgress) {
                entry.lastError = FO.messageOf(data, response.status);
                return update(entry).then(function () { return false; });
              }
              entry.status = "failed";
              entry.httpStatus = response.status;
              entry.lastError = FO.messageOf(data, response.status);
              entry.response = data;
              blocked[entry.orderId] = true;
              return update(entry).then(function () {
                notify({ type: "failed", entry: entry, data: data });
                return true;
              });
            });
          }, function () {
            // Network down: keep everything as it is and try again later.
            entry.lastError = FO.t("app.network_error");
            return update(entry).then(function () { return false; });
          });
        });
      });
      return chain;
    });
  }

  /** Send what is waiting; one flush at a time (across tabs too, where Web Locks exist). */
  function flush() {
    if (flushing) return flushing;
    var run = function () { return flushOnce(); };
    var locked = navigator.locks && navigator.locks.request
      ? navigator.locks.request("fieldops-outbox", run)
      : run();
    flushing = Promise.resolve(locked).catch(function () { return false; }).then(function (done) {
      flushing = null;
      notify({ type: "flushed" });
      return done;
    });
    return flushing;
  }

  function discard(seq) {
    return remove(seq).then(function () { notify({ type: "discarded", seq: seq }); flush(); });
  }

  window.addEventListener("online", function () { flush(); });
  // A retry now and then covers a network that comes back without an "online" event.
  setInterval(function () { if (navigator.onLine) flush(); }, 15000);

  window.FOOutbox = {
    enqueue: enqueue, flush: flush, all: all, discard: discard,
    on: function (fn) { listeners.push(fn); },
    setResolver: function (fn) { resolver = fn; }
  };
})();
