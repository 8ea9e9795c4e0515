// Swagger UI for the generated OpenAPI document (no inline script, so the CSP stays strict).
(function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({ url: root.dataset.specUrl, dom_id: "#swagger-ui", deepLinking: true,
    validatorUrl: null });  // no badge from validator.swagger.io: nothing leaves the box
})();
