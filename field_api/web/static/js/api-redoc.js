// Start ReDoc (vendored in /app/static/vendor/redoc) on this server's OpenAPI document: a file
// of its own, so the page runs under the strict Content-Security-Policy. ReDoc writes its styles
// into <style> elements; the page's policy admits those carrying the nonce the server made for
// this response, read here from the container and handed to ReDoc (which gives it to them).
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  var container = document.getElementById("redoc");
  window.Redoc.init(
    container.getAttribute("data-spec-url"),
    {
      nonce: container.getAttribute("data-style-nonce"),
      expandResponses: "200,201",
      hideDownloadButton: false,
    },
    container
  );
});
