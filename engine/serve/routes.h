/* routes.h - the pull side of the OCI distribution API over a store view
 * (layout.h): what each request path means and the answer to it.
 *
 *   GET  /v2/                              200 {} (the API check)
 *   GET|HEAD /v2/<name>/manifests/<tag|digest>
 *   GET|HEAD /v2/<name>/blobs/<digest>     (a manifest of the repository is a blob too)
 *   GET  /v2/<name>/tags/list[?n=N&last=T] Link: <...>; rel="next" when cut
 *   GET  /v2/_catalog[?n=N&last=R]
 *   GET  /v2/<name>/referrers/<digest>[?artifactType=T]
 *   anything else with GET or HEAD: 404; any other method: 405 UNSUPPORTED;
 *   more than 64 KiB of request headers: 431
 *
 * The path is taken as the client sent it, before any decoding: a name,
 * tag or digest must match its grammar (names.h) or the request is refused
 * (NAME_INVALID, DIGEST_INVALID, MANIFEST_UNKNOWN), so "..", "%2e%2e" and
 * other tricks never reach the store, and files are only ever named by a
 * digest the view holds. Errors are the spec's JSON bodies
 * ({"errors": [{"code", "message", "detail"}]}); every answer carries
 * Docker-Distribution-API-Version: registry/2.0. With an htpasswd file,
 * every /v2/ request needs Basic credentials it accepts (401 UNAUTHORIZED
 * with WWW-Authenticate: Basic realm="occystrap" otherwise). */
#ifndef OC_SERVE_ROUTES_H
#define OC_SERVE_ROUTES_H

#include <stdint.h>

#include <h2o.h>

#include "engine/serve/htpasswd.h"
#include "engine/serve/layout.h"

typedef struct oc_srv_app {
    oc_srv_layout *layout;
    oc_htpasswd *auth; /* NULL: no authentication */
    int keep_host;
    oc_srv_log_fn log; /* a view that cannot be (re)loaded */
    void *log_opaque;
} oc_srv_app;

/* Answer req (always: h2o's on_req contract, returns 0). */
int oc_srv_route(oc_srv_app *app, h2o_req_t *req);

#endif
