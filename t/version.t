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
