// The API's interactive documentation: Swagger UI (from its registry package, served locally)
// on the service's own OpenAPI schema. No inline script: the pages' CSP forbids it.
window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
