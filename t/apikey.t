# API keys name the partner; the location's scope must be among the
# partner's; the variables say who called and what the gateway decided.

use lib 't/lib';
use OpenBank::Test;

# The keys are stated in clear here and hashed as an operator would
# (`printf %s KEY | sha256sum`): the config holds only their SHA-256.
# globex lacks the payments scope.
use Digest::SHA qw(sha256_hex);

my ($acme1, $acme2, $globex) =
    map { sha256_hex($_) } qw(key-acme-1 key-acme-2 key-globex);

our $http = <<"EOT";
openbank_zone openbank 1m;
openbank_plan basic { rate 100r/s; quota payments 1000/day; quota accounts 1000/day; }
openbank_partner acme {
    plan     basic;
    scopes   accounts payments;
    api_key  sha256:$acme1;
    api_key  sha256:$acme2;
}
openbank_partner globex {
    plan     basic;
    scopes   accounts;
    api_key  sha256:$globex;
}
EOT

our $config = <<'EOT';
location /v1/payments {
    openbank_auth     api_key;
    openbank_scope    payments;
    openbank_product  payments;
    content_by_lua_block {
        ngx.say("partner=", ngx.var.openbank_partner,
                " product=", ngx.var.openbank_product,
                " result=", ngx.var.openbank_result)
    }
    log_by_lua_block {
        ngx.log(ngx.WARN, "logged partner=", ngx.var.openbank_partner,
                " result=", ngx.var.openbank_result)
    }
}
location /v1/accounts {
    openbank_auth     api_key;
    openbank_scope    accounts;
    content_by_lua_block { ngx.say("accounts of ", ngx.var.openbank_partner) }
}
EOT

repeat_each(2);
run_tests();

__DATA__

=== TEST 1: a valid API key names its partner
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers
X-API-Key: key-acme-1
--- error_code: 200
--- response_body
partner=acme product=payments result=ok
--- error_log
logged partner=acme result=ok
--- no_error_log
[error]


=== TEST 2: the second key of a partner (rotation) works as well
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers
X-API-Key: key-acme-2
--- error_code: 200
--- response_body
partner=acme product=payments result=ok


=== TEST 3: no credential is 401 invalid_token with WWW-Authenticate
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- error_code: 401
--- response_headers
Content-Type: application/problem+json
WWW-Authenticate: Bearer error="invalid_token"
--- response_json
{"type": "urn:openbank:problem:invalid_token", "title": "Invalid credential",
 "status": 401, "code": "invalid_token",
 "detail": "no credential: send the partner's API key in X-API-Key",
 "request_id": "~^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"}
--- error_log
logged partner=nil result=invalid_token
--- no_error_log
[error]


=== TEST 4: an unknown key is refused, and is not logged
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers
X-API-Key: key-acme-3
--- error_code: 401
--- response_json
{"code": "invalid_token", "detail": "the API key is not valid"}
--- error_log
openbank: unknown API key
--- no_error_log eval
# nginx's own debug level echoes every header; no other level may hold it
[qr/\[(?:info|notice|warn|error|crit|alert|emerg)\][^\n]*key-acme-3/]


=== TEST 5: a key that differs in case is another key
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers
X-API-Key: KEY-ACME-1
--- error_code: 401
--- response_json
{"code": "invalid_token"}


=== TEST 6: the key sent twice is refused, not guessed at
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers
X-API-Key: key-acme-1
X-API-Key: key-globex
--- error_code: 401
--- response_json
{"code": "invalid_token", "detail": "X-API-Key is sent more than once"}


=== TEST 7: an empty key is refused
--- http_config eval: $::http
--- config eval: $::config
--- raw_request eval
"GET /v1/payments HTTP/1.1\r\nHost: localhost\r\nX-API-Key:\r\nConnection: close\r\n\r\n"
--- error_code: 401
--- response_json
{"code": "invalid_token", "detail": "X-API-Key must be 1 to 256 characters"}


=== TEST 8: a huge key is refused with 401, not 5xx
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers eval
"X-API-Key: " . ("k" x 4000)
--- error_code: 401
--- response_json
{"code": "invalid_token", "detail": "X-API-Key must be 1 to 256 characters"}


=== TEST 9: a key with hostile bytes is just a wrong key
--- http_config eval: $::http
--- config eval: $::config
--- raw_request eval
"GET /v1/payments HTTP/1.1\r\nHost: localhost\r\nX-API-Key: key-acme-1\"}\x01\xff%00\r\nConnection: close\r\n\r\n"
--- error_code: 401
--- response_json
{"code": "invalid_token"}


=== TEST 10: a partner without the location's scope gets 403
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers
X-API-Key: key-globex
--- error_code: 403
--- response_headers
Content-Type: application/problem+json
!WWW-Authenticate
--- response_json
{"type": "urn:openbank:problem:insufficient_scope", "status": 403,
 "code": "insufficient_scope",
 "detail": "this endpoint needs the scope \"payments\""}
--- error_log
logged partner=globex result=insufficient_scope


=== TEST 11: the same partner reaches a location of a scope it holds
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers
X-API-Key: key-globex
--- error_code: 200
--- response_body
accounts of globex

