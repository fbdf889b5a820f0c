# On API locations nginx's own error pages become problem+json; elsewhere
# they stay as they are; the bank's answers pass untouched; every response
# has a request id.  A method a resource does not take is 405
# method_not_allowed with Allow, on API locations and on the module's own
# endpoints (token, JWKS, status, metrics...); a failure is 500
# internal_error.

use lib 't/lib';
use OpenBank::Test;

our $http = <<'EOT';
openbank_zone openbank 1m;
upstream closed {
    # nothing listens on port 1
    server 127.0.0.1:1;
}
EOT

our $config = <<'EOT';
location /v1/ {
    openbank_api on;
    client_max_body_size 16;
    proxy_read_timeout 1s;
    proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/bank/;
}
location /v1/down/ {
    openbank_api on;
    proxy_pass http://closed;
}
location /v1/static/ {
    openbank_api on;
    root html;
}
location /bank/ {
    content_by_lua_block {
        local uri = ngx.var.uri
        if uri == "/bank/slow" then
            ngx.sleep(3)
        elseif uri == "/bank/missing" then
            ngx.status = 404
            ngx.header["Content-Type"] = "application/problem+json"
            ngx.print('{"code":"not_found","detail":"no payment p-1"}')
            return
        elseif uri == "/bank/id" then
            ngx.header["X-Request-ID"] = "bank-side-id"
        end
        ngx.print("bank: ", uri, " id=", ngx.var.http_x_request_id)
    }
}
location /plain/ {
    return 404;
}
location /api404/ {
    openbank_api on;
    return 404;
}
location /api500/ {
    openbank_api on;
    return 500;
}
location /api405/ {
    openbank_api on;
    content_by_lua_block {
        ngx.header["Allow"] = "GET, PUT"
        ngx.exit(405)
    }
}
EOT

# the module's own endpoints
our $ep_http = <<'EOT';
openbank_zone openbank 1m;
openbank_state $TEST_NGINX_SERVROOT/state;
openbank_issuer https://gw.test;
openbank_signing_key $TEST_NGINX_ROOT/t/keys/gw-es256.pem kid=gw-es;
EOT

our $ep_config = <<'EOT';
location = /oauth2/token { openbank_token_endpoint; }
location = /oauth2/introspect { openbank_introspection_endpoint; }
location = /oauth2/revoke { openbank_revocation_endpoint; }
location = /.well-known/jwks.json { openbank_jwks_endpoint; }
location = /.well-known/oauth-authorization-server {
    openbank_metadata_endpoint;
}
location = /openbank/status { openbank_status; }
location = /metrics { openbank_metrics; }
EOT

repeat_each(2);
run_tests();

__DATA__

=== TEST 1: an unknown path on an API location is a not_found problem
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /api404/anything?x=1
--- error_code: 404
--- response_headers
Content-Type: application/problem+json
--- response_json
{"type": "urn:openbank:problem:not_found", "title": "Not found",
 "status": 404, "code": "not_found", "detail": "no resource at /api404/anything",
 "request_id": "~^[0-9a-f-]{36}$"}
--- no_error_log
[error]


=== TEST 2: a location that is not an API keeps nginx's page
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /plain/x
--- error_code: 404
--- response_headers
Content-Type: text/html
--- response_body_like: <title>404 Not Found</title>


=== TEST 3: a body over client_max_body_size is payload_too_large
--- http_config eval: $::http
--- config eval: $::config
--- request eval
"POST /v1/payments\n" . ("x" x 100)
--- error_code: 413
--- response_json
{"code": "payload_too_large", "status": 413,
 "detail": "the request body is larger than 16 bytes"}


=== TEST 4: a method nginx does not allow is method_not_allowed with Allow
--- http_config eval: $::http
--- config eval: $::config
--- user_files
>>> html/v1/static/a.txt
hello
--- request
POST /v1/static/a.txt
--- error_code: 405
--- response_headers
Content-Type: application/problem+json
Allow: GET, HEAD
--- response_json
{"type": "urn:openbank:problem:method_not_allowed",
 "title": "Method not allowed", "code": "method_not_allowed", "status": 405,
 "detail": "method POST is not allowed on /v1/static/a.txt",
 "request_id": "~^[0-9a-f-]{36}$"}
--- no_error_log
[error]


=== TEST 5: a bank that refuses connections is upstream_unavailable (502)
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/down/x
--- error_code: 502
--- response_json
{"code": "upstream_unavailable", "status": 502,
 "detail": "the bank core is unavailable"}
--- error_log
connect() failed


=== TEST 6: a bank that does not answer in time is upstream_unavailable (504)
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/slow
--- error_code: 504
--- response_json
{"code": "upstream_unavailable", "status": 504,
 "detail": "the bank core did not answer in time"}
--- error_log
upstream timed out


=== TEST 7: the bank's own errors pass untouched
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/missing
--- error_code: 404
--- response_body: {"code":"not_found","detail":"no payment p-1"}


=== TEST 8: the caller's request id is echoed, in the header and to the bank
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/hello
--- more_headers
X-Request-ID: erp-batch-7/line:42
--- error_code: 200
--- response_headers
X-Request-ID: erp-batch-7/line:42
--- response_body: bank: /bank/hello id=erp-batch-7/line:42


=== TEST 9: the caller's id is in the problem too
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /api404/x
--- more_headers
X-Request-ID: erp-batch-7
--- error_code: 404
--- response_headers
X-Request-ID: erp-batch-7
--- response_json
{"request_id": "erp-batch-7"}


=== TEST 10: an id with unsafe characters is replaced by a new UUID
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /api404/x
--- more_headers
X-Request-ID: "><script>
--- error_code: 404
--- response_headers_like
X-Request-ID: ^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$
--- response_json
{"request_id": "~^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"}


=== TEST 11: an id over 128 characters is replaced
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /api404/x
--- more_headers eval
"X-Request-ID: " . ("a" x 129)
--- error_code: 404
--- response_headers_like
X-Request-ID: ^[0-9a-f]{8}-[0-9a-f]{4}-4


=== TEST 12: a response that is not an API's carries a request id too
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /plain/x
--- error_code: 404
--- response_headers_like
X-Request-ID: ^[0-9a-f]{8}-[0-9a-f]{4}-4


=== TEST 13: the bank's X-Request-ID does not make a second one
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/id
--- more_headers
X-Request-ID: mine
--- error_code: 200
--- response_headers
X-Request-ID: mine


=== TEST 14: HEAD gets the problem's headers and no body
--- http_config eval: $::http
--- config eval: $::config
--- request
HEAD /api404/x
--- error_code: 404
--- response_headers
Content-Type: application/problem+json
--- response_body:


=== TEST 15: a 405 with its own Allow keeps it
--- http_config eval: $::http
--- config eval: $::config
--- request
DELETE /api405/x
--- error_code: 405
--- response_headers
Content-Type: application/problem+json
Allow: GET, PUT
--- response_json
{"code": "method_not_allowed", "title": "Method not allowed"}


=== TEST 16: a failure of the gateway is internal_error (500)
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /api500/x
--- error_code: 500
--- response_headers
Content-Type: application/problem+json
--- response_json
{"type": "urn:openbank:problem:internal_error", "title": "Internal error",
 "status": 500, "code": "internal_error",
 "detail": "the gateway failed to handle the request",
 "request_id": "~^[0-9a-f-]{36}$"}


=== TEST 17: GET /oauth2/token: 405 method_not_allowed, Allow: POST
--- http_config eval: $::ep_http
--- config eval: $::ep_config
--- request
GET /oauth2/token
--- error_code: 405
--- response_headers
Content-Type: application/problem+json
Allow: POST
X-Request-ID: ep-17
--- more_headers
X-Request-ID: ep-17
--- response_json
{"type": "urn:openbank:problem:method_not_allowed",
 "title": "Method not allowed", "status": 405, "code": "method_not_allowed",
 "detail": "method GET is not allowed on /oauth2/token; allowed: POST",
 "request_id": "ep-17"}
--- no_error_log
[error]


=== TEST 18: PUT /oauth2/token: 405 method_not_allowed, Allow: POST
--- http_config eval: $::ep_http
--- config eval: $::ep_config
--- request
PUT /oauth2/token
x
--- error_code: 405
--- response_headers
Content-Type: application/problem+json
Allow: POST
X-Request-ID: ep-18
--- more_headers
X-Request-ID: ep-18
--- response_json
{"type": "urn:openbank:problem:method_not_allowed",
 "title": "Method not allowed", "status": 405, "code": "method_not_allowed",
 "detail": "method PUT is not allowed on /oauth2/token; allowed: POST",
 "request_id": "ep-18"}
--- no_error_log
[error]


=== TEST 19: GET /oauth2/introspect: 405 method_not_allowed, Allow: POST
--- http_config eval: $::ep_http
--- config eval: $::ep_config
--- request
GET /oauth2/introspect
--- error_code: 405
--- response_headers
Content-Type: application/problem+json
Allow: POST
X-Request-ID: ep-19
--- more_headers
X-Request-ID: ep-19
--- response_json
{"type": "urn:openbank:problem:method_not_allowed",
 "title": "Method not allowed", "status": 405, "code": "method_not_allowed",
 "detail": "method GET is not allowed on /oauth2/introspect; allowed: POST",
 "request_id": "ep-19"}
--- no_error_log
[error]


=== TEST 20: GET /oauth2/revoke: 405 method_not_allowed, Allow: POST
--- http_config eval: $::ep_http
--- config eval: $::ep_config
--- request
GET /oauth2/revoke
--- error_code: 405
--- response_headers
Content-Type: application/problem+json
Allow: POST
X-Request-ID: ep-20
--- more_headers
X-Request-ID: ep-20
--- response_json
{"type": "urn:openbank:problem:method_not_allowed",
 "title": "Method not allowed", "status": 405, "code": "method_not_allowed",
 "detail": "method GET is not allowed on /oauth2/revoke; allowed: POST",
 "request_id": "ep-20"}
--- no_error_log
[error]


=== TEST 21: POST /.well-known/jwks.json: 405 method_not_allowed, Allow: GET, HEAD
--- http_config eval: $::ep_http
--- config eval: $::ep_config
--- request
POST /.well-known/jwks.json
x
--- error_code: 405
--- response_headers
Content-Type: application/problem+json
Allow: GET, HEAD
X-Request-ID: ep-21
--- more_headers
X-Request-ID: ep-21
--- response_json
{"type": "urn:openbank:problem:method_not_allowed",
 "title": "Method not allowed", "status": 405, "code": "method_not_allowed",
 "detail": "method POST is not allowed on /.well-known/jwks.json; allowed: GET, HEAD",
 "request_id": "ep-21"}
--- no_error_log
[error]


=== TEST 22: DELETE /.well-known/oauth-authorization-server: 405 method_not_allowed, Allow: GET, HEAD
--- http_config eval: $::ep_http
--- config eval: $::ep_config
--- request
DELETE /.well-known/oauth-authorization-server
--- error_code: 405
--- response_headers
Content-Type: application/problem+json
Allow: GET, HEAD
X-Request-ID: ep-22
--- more_headers
X-Request-ID: ep-22
--- response_json
{"type": "urn:openbank:problem:method_not_allowed",
 "title": "Method not allowed", "status": 405, "code": "method_not_allowed",
 "detail": "method DELETE is not allowed on /.well-known/oauth-authorization-server; allowed: GET, HEAD",
 "request_id": "ep-22"}
--- no_error_log
[error]


=== TEST 23: POST /openbank/status: 405 method_not_allowed, Allow: GET, HEAD
--- http_config eval: $::ep_http
--- config eval: $::ep_config
--- request
POST /openbank/status
x
--- error_code: 405
--- response_headers
Content-Type: application/problem+json
Allow: GET, HEAD
X-Request-ID: ep-23
--- more_headers
X-Request-ID: ep-23
--- response_json
{"type": "urn:openbank:problem:method_not_allowed",
 "title": "Method not allowed", "status": 405, "code": "method_not_allowed",
 "detail": "method POST is not allowed on /openbank/status; allowed: GET, HEAD",
 "request_id": "ep-23"}
--- no_error_log
[error]


=== TEST 24: POST /metrics: 405 method_not_allowed, Allow: GET, HEAD
--- http_config eval: $::ep_http
--- config eval: $::ep_config
--- request
POST /metrics
x
--- error_code: 405
--- response_headers
Content-Type: application/problem+json
Allow: GET, HEAD
X-Request-ID: ep-24
--- more_headers
X-Request-ID: ep-24
--- response_json
{"type": "urn:openbank:problem:method_not_allowed",
 "title": "Method not allowed", "status": 405, "code": "method_not_allowed",
 "detail": "method POST is not allowed on /metrics; allowed: GET, HEAD",
 "request_id": "ep-24"}
--- no_error_log
[error]


=== TEST 25: the endpoints' methods still answer
--- http_config eval: $::ep_http
--- config eval: $::ep_config
--- request
HEAD /.well-known/jwks.json
--- error_code: 200
--- response_headers
Content-Type: application/json
!Allow
