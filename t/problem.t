# On API locations nginx's own error pages become problem+json; elsewhere
# they stay as they are; the bank's answers pass untouched; every response
# has a request id.

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


=== TEST 4: a method nginx does not allow is invalid_request with 405
--- http_config eval: $::http
--- config eval: $::config
--- user_files
>>> html/v1/static/a.txt
hello
--- request
POST /v1/static/a.txt
--- error_code: 405
--- response_json
{"code": "invalid_request", "status": 405,
 "detail": "method POST is not allowed on /v1/static/a.txt"}


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
