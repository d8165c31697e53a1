// Starts Swagger UI on /openapi.json: a file rather than an inline script, so the CSP allows no inline code.
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: root.dataset.openapi, dom_id: "#swagger-ui", deepLinking: true });
})();
