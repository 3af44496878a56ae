// Start Swagger UI (vendored in /app/static/vendor/swagger-ui) on this server's OpenAPI
// document: a file of its own, so the page runs under the strict Content-Security-Policy.
"use strict";
window.addEventListener("DOMContentLoaded", function () {
  window.ui = window.SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: false,
  });
});
