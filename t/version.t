# Sunset versions: Deprecation, Sunset and Link while they live, 410
# version_retired after, without reaching the bank.

use lib 't/lib';
use OpenBank::Test;
use Digest::SHA qw(sha256_hex);

our $http = "openbank_zone openbank 1m;\n"
    . "openbank_plan p { rate 100r/s; quota accounts 100/day; }\n"
    . "openbank_partner a { plan p; scopes accounts; api_key sha256:"
    . sha256_hex('key-a') . "; }\n";

our $config = <<'EOT';
location /v0/ {
    openbank_version_sunset 2099-06-30T00:00:00Z successor=/v1/ deprecated=2026-01-01;
    openbank_auth api_key;
    content_by_lua_block { ngx.say("reached v0") }
}
location /vold/ {
    openbank_version_sunset 2020-01-01 successor=/v1/;
    openbank_auth api_key;
    content_by_lua_block { ngx.log(ngx.ERR, "the bank was reached"); ngx.say("reached") }
}
location /vgone/ {
    openbank_version_sunset 2020-01-01;
    content_by_lua_block { ngx.say("reached") }
}
location /vsoon/ {
    openbank_version_sunset 2099-01-01;
    openbank_auth api_key;
    content_by_lua_block { ngx.say("reached") }
}
location /v0-docs/ {
    openbank_version_sunset 2099-06-30T00:00:00Z successor=/v1/ deprecated=2026-01-01;
    proxy_set_header X-OpenBank-Partner $openbank_partner;
    proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/bank/;
}
location /v0-old-docs/ {
    openbank_version_sunset 2020-01-01 successor=/v1/;
    proxy_pass http://127.0.0.1:$TEST_NGINX_SERVER_PORT/bank/;
}
EOT

# the bank behind the sunset-only locations: says what it got
our $bank = <<'EOT';
location /bank/ {
    content_by_lua_block {
        ngx.log(ngx.WARN, "bank reached: ", ngx.var.uri)
        ngx.say("bank: ", ngx.var.uri, " partner=",
                ngx.var.http_x_openbank_partner or "")
    }
}
EOT

repeat_each(2);
run_tests();

__DATA__

=== TEST 1: a deprecated version answers with Deprecation, Sunset and Link
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v0/accounts
--- more_headers
X-API-Key: key-a
--- error_code: 200
--- response_headers
Deprecation: @1767225600
Sunset: Tue, 30 Jun 2099 00:00:00 GMT
Link: </v1/>; rel="successor-version"
--- response_body
reached v0


=== TEST 2: errors of a deprecated version carry the headers too
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v0/accounts
--- error_code: 401
--- response_headers
Deprecation: @1767225600
Sunset: Tue, 30 Jun 2099 00:00:00 GMT


=== TEST 3: without deprecated=, Deprecation is the time the config was loaded
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /vsoon/x
--- more_headers
X-API-Key: key-a
--- error_code: 200
--- response_headers
!Link
Sunset: Thu, 01 Jan 2099 00:00:00 GMT
--- response_headers_like
Deprecation: ^@\d{10}$


=== TEST 4: past its sunset, a version is gone, before any credential check
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /vold/accounts
--- error_code: 410
--- response_headers
Content-Type: application/problem+json
Sunset: Wed, 01 Jan 2020 00:00:00 GMT
Link: </v1/>; rel="successor-version"
--- response_json
{"type": "urn:openbank:problem:version_retired", "code": "version_retired",
 "status": 410,
 "detail": "this API version was retired on Wed, 01 Jan 2020 00:00:00 GMT; use /v1/"}
--- no_error_log
the bank was reached


=== TEST 5: a retired version without successor says so
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /vgone/x
--- error_code: 410
--- response_json
{"code": "version_retired",
 "detail": "this API version was retired on Wed, 01 Jan 2020 00:00:00 GMT"}


=== TEST 6: a location with only a sunset version asks for no credential
--- http_config eval: $::http
--- config eval: $::config . $::bank
--- request
GET /v0-docs/accounts
--- error_code: 200
--- response_body
bank: /bank/accounts partner=
--- response_headers
Deprecation: @1767225600
Sunset: Tue, 30 Jun 2099 00:00:00 GMT
Link: </v1/>; rel="successor-version"
!WWW-Authenticate
!RateLimit-Policy
!RateLimit
--- no_error_log
[error]


=== TEST 7: a valid API key there names no partner and counts no rate
--- http_config eval: $::http
--- config eval: $::config . $::bank
--- request
GET /v0-docs/accounts
--- more_headers
X-API-Key: key-a
--- error_code: 200
--- response_body
bank: /bank/accounts partner=
--- response_headers
Sunset: Tue, 30 Jun 2099 00:00:00 GMT
!RateLimit-Policy
!RateLimit
--- no_error_log
[error]


=== TEST 8: a wrong API key there is not looked at either
--- http_config eval: $::http
--- config eval: $::config . $::bank
--- request
GET /v0-docs/accounts
--- more_headers
X-API-Key: no-such-key
--- error_code: 200
--- response_body
bank: /bank/accounts partner=
--- no_error_log
[error]
unknown API key


=== TEST 9: a sunset-only location past its date is gone, the bank not reached
--- http_config eval: $::http
--- config eval: $::config . $::bank
--- request
GET /v0-old-docs/accounts
--- error_code: 410
--- response_headers
Content-Type: application/problem+json
Sunset: Wed, 01 Jan 2020 00:00:00 GMT
Link: </v1/>; rel="successor-version"
--- response_json
{"code": "version_retired",
 "detail": "this API version was retired on Wed, 01 Jan 2020 00:00:00 GMT; use /v1/"}
--- no_error_log
bank reached


=== TEST 10: the server's openbank_idempotency does not apply without a partner
--- http_config eval
$::http . "openbank_state \$TEST_NGINX_SERVROOT/state;\n"
--- config eval
"openbank_idempotency required;\n" . $::config . $::bank
--- request
POST /v0-docs/payments
{"amount": "1.00"}
--- more_headers
Content-Type: application/json
--- error_code: 200
--- response_body
bank: /bank/payments partner=
--- no_error_log
[error]


=== TEST 11: nginx -t refuses a product where no partner is identified
--- http_config eval: $::http
--- config
location /v0-docs/ {
    openbank_version_sunset 2099-06-30;
    openbank_product accounts;
    return 200;
}
--- must_die
--- error_log
"openbank_scope" or "openbank_product" requires "openbank_auth" in the same location


=== TEST 12: nginx -t refuses a signature where no partner is identified
--- http_config eval: $::http
--- config
location /v0-docs/ {
    openbank_version_sunset 2099-06-30;
    openbank_signature optional;
    return 200;
}
--- must_die
--- error_log
"openbank_signature" requires "openbank_auth"


=== TEST 13: a sunset-only location that passes a request on opens no other
--- http_config eval: $::http
--- config eval
$::config . $::bank . q{
location /v0-moved/ {
    openbank_version_sunset 2099-06-30;
    try_files /nonexistent @v1;
}
location @v1 {
    openbank_auth api_key;
    content_by_lua_block { ngx.log(ngx.WARN, "bank reached: v1"); ngx.say("v1") }
}}
--- request
GET /v0-moved/accounts
--- error_code: 401
--- response_json
{"code": "invalid_token"}
--- no_error_log
bank reached


=== TEST 14: ... and with the partner's key, the location it moves to lets it through
--- http_config eval: $::http
--- config eval
$::config . $::bank . q{
location /v0-moved/ {
    openbank_version_sunset 2099-06-30;
    try_files /nonexistent @v1;
}
location @v1 {
    openbank_auth api_key;
    content_by_lua_block { ngx.log(ngx.WARN, "bank reached: v1"); ngx.say("v1 ", ngx.var.openbank_partner) }
}}
--- request
GET /v0-moved/accounts
--- more_headers
X-API-Key: key-a
--- error_code: 200
--- response_body
v1 a
--- response_headers
RateLimit-Policy: "rate";q=100;w=1
