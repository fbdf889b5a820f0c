/* The try-it console: Swagger UI (swagger-ui-dist from the npm registry)
 * on the portal's copy of docs/openapi.yaml, whose server is the gateway
 * that serves the portal.  The key typed in Authorize stays in the page:
 * it is not stored (persistAuthorization off). */
(function () {
    'use strict';
    var el = document.getElementById('swagger-ui');
    if (!el || !window.SwaggerUIBundle) {
        return;
    }
    window.portalSwagger = window.SwaggerUIBundle({
        url: el.getAttribute('data-spec'),
        domNode: el,
        deepLinking: false,
        tryItOutEnabled: true,
        persistAuthorization: false,
        displayRequestDuration: true,
        validatorUrl: null,
        presets: [window.SwaggerUIBundle.presets.apis],
        layout: 'BaseLayout'
    });
}());
