# Every directive of the module, and every parameter and block line, with a
# bad value: nginx -t refuses it with a message that quotes the value, at
# the line of the directive.

use lib 't/lib';
use OpenBank::Test;

# a valid base the blocks add one mistake to (3 lines: nginx.conf:19-21)
our $http = "openbank_zone openbank 1m;\n"
    . "openbank_plan base { rate 10r/s; quota accounts 100/day; }\n"
    . "openbank_partner base { plan base; scopes accounts; api_key sha256:"
    . ("1" x 64) . "; }\n";

# the whole line nginx -t prints: the message, then the file and the line
sub emerg ($message, $line) {
    $message =~ s/\$TEST_NGINX_CONF_DIR/$::TEST_NGINX_CONF_DIR/g;
    return qr/^nginx: \[emerg\] \Q$message\E in \Q$::TEST_NGINX_CONF_DIR\E\/nginx\.conf:$line$/m;
}

run_tests();

__DATA__

=== TEST 1: openbank_zone: a name that is not one
--- http_config
openbank_zone "a b" 1m;
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid zone name "a b"', 19)

=== TEST 2: openbank_zone: a size that is not one
--- http_config
openbank_zone z lots;
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid zone size "lots"', 19)

=== TEST 3: openbank_zone: a size under the minimum
--- http_config
openbank_zone z 64k;
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid zone size "64k": zone "z" needs at least 128k', 19)

=== TEST 4: openbank_state: an interval that is not a time
--- http_config eval: $::http . q{openbank_state $TEST_NGINX_SERVROOT/state interval=soon;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid interval "soon": expected a time of at least 10ms, such as "1s"', 22)

=== TEST 5: openbank_state: an unknown parameter
--- http_config eval: $::http . q{openbank_state $TEST_NGINX_SERVROOT/state every=1s;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid parameter "every=1s": expected "interval=TIME"', 22)

=== TEST 6: openbank_timezone: a named zone
--- http_config eval: $::http . q{openbank_timezone Asia/Shanghai;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid time zone "Asia/Shanghai": expected "UTC" or an offset such as "+08:00"', 22)

=== TEST 7: openbank_plan: a name that is not one
--- http_config eval: $::http . q{openbank_plan "p q" { rate 1r/s; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid plan name "p q": letters, digits, "-" and "_" only', 22)

=== TEST 8: openbank_plan rate: per hour
--- http_config eval: $::http . q{openbank_plan p { rate 10r/h; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid rate "10r/h": expected requests per second or minute, such as "100r/s" or "600r/m"', 22)

=== TEST 9: openbank_plan rate: a burst below 1
--- http_config eval: $::http . q{openbank_plan p { rate 10r/s burst=-1; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid burst "-1": expected a whole number of requests, at least 1', 22)

=== TEST 10: openbank_plan rate: an unknown parameter
--- http_config eval: $::http . q{openbank_plan p { rate 10r/s delay=1; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid parameter "delay=1": expected "burst=N"', 22)

=== TEST 11: openbank_plan quota: a product name that is not one
--- http_config eval: $::http . q{openbank_plan p { rate 1r/s; quota "pay ments" 1/day; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid product name "pay ments": letters, digits, "-" and "_" only', 22)

=== TEST 12: openbank_plan quota: a limit that is not a number
--- http_config eval: $::http . q{openbank_plan p { rate 1r/s; quota payments lots/day; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid quota "lots/day": the limit must be a whole number from 1 to 4000000000', 22)

=== TEST 13: openbank_plan quota: no window
--- http_config eval: $::http . q{openbank_plan p { rate 1r/s; quota payments 100; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid quota "100": expected "N/day" or "N/month"', 22)

=== TEST 14: openbank_plan quota: a window per year
--- http_config eval: $::http . q{openbank_plan p { rate 1r/s; quota payments 1/year; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid quota window "year": expected "day" or "month"', 22)

=== TEST 15: openbank_plan: an unknown line
--- http_config eval: $::http . q{openbank_plan p { rate 1r/s; burst 5; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('unknown directive "burst" in openbank_plan (expected "rate" or "quota")', 22)

=== TEST 16: openbank_partner: a name that is not one
--- http_config eval: $::http . q{openbank_partner "a b" { plan base; scopes accounts; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid partner name "a b": letters, digits, "-" and "_" only', 22)

=== TEST 17: openbank_partner plan: one never declared
--- http_config eval: $::http . q{openbank_partner a { plan nosuch; scopes accounts; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('unknown plan "nosuch" of partner "a"', 22)

=== TEST 18: openbank_partner scopes: a scope that is not a name
--- http_config eval: $::http . q{openbank_partner a { plan base; scopes "pay ments"; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid scope "pay ments": letters, digits, "-" and "_" only', 22)

=== TEST 19: openbank_partner api_key: not a hash
--- http_config eval: $::http . q{openbank_partner a { plan base; scopes accounts; api_key sha256:xyz; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid hash "sha256:xyz": expected "sha256:" and 64 hexadecimal digits', 22)

=== TEST 20: openbank_partner client_id: with a space
--- http_config eval: $::http . q{openbank_partner a { plan base; scopes accounts; client_id "a b"; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid client_id "a b": 1 to 255 visible ASCII characters, no quote, backslash or colon', 22)

=== TEST 21: openbank_partner client_secret: the secret itself
--- http_config eval: $::http . q{openbank_partner a { plan base; scopes accounts; client_id a; client_secret hunter2; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid hash "hunter2": expected "sha256:" and 64 hexadecimal digits', 22)

=== TEST 22: openbank_partner certificate: another hash
--- http_config eval: $::http . q{openbank_partner a { plan base; scopes accounts; client_id a; certificate md5:0123; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid hash "md5:0123": expected "sha256:" and 64 hexadecimal digits', 22)

=== TEST 23: openbank_partner jwks: a missing file
--- http_config eval: $::http . q{openbank_partner a { plan base; scopes accounts; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; jwks nosuch.jwks.json; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('open() "$TEST_NGINX_CONF_DIR/nosuch.jwks.json" failed (2: No such file or directory)', 22)

=== TEST 24: openbank_partner hmac_secret: a short secret
--- http_config eval: $::http . q{openbank_partner a { plan base; scopes accounts; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; hmac_secret short.hmac; }}
--- user_files
>>> conf/short.hmac
0123456789a
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('hmac_secret file "$TEST_NGINX_CONF_DIR/short.hmac" holds 11 bytes, at least 32 are needed', 22)

=== TEST 25: openbank_partner quota: a window per week
--- http_config eval: $::http . q{openbank_partner a { plan base; scopes accounts; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; quota accounts 1/week; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid quota window "week": expected "day" or "month"', 22)

=== TEST 26: openbank_partner: an unknown line
--- http_config eval: $::http . q{openbank_partner a { plan base; scopes accounts; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; secret x; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('unknown directive "secret" in openbank_partner', 22)

=== TEST 27: openbank_api: neither on nor off
--- http_config eval: $::http
--- config
location = /t { openbank_api maybe; }
--- must_die
--- error_log eval
emerg('invalid value "maybe" in "openbank_api" directive, it must be "on" or "off"', 25)

=== TEST 28: openbank_auth: an unknown method
--- http_config eval: $::http
--- config
location /t { openbank_auth password; }
--- must_die
--- error_log eval
emerg('invalid authentication method "password": expected "token" or "api_key"', 25)

=== TEST 29: openbank_scope: a scope that is not a name
--- http_config eval: $::http
--- config
location /t { openbank_auth api_key; openbank_scope "a b"; }
--- must_die
--- error_log eval
emerg('invalid name "a b": letters, digits, "-" and "_" only', 25)

=== TEST 30: openbank_product: a product that is not a name
--- http_config eval: $::http
--- config
location /t { openbank_auth api_key; openbank_product a/b; }
--- must_die
--- error_log eval
emerg('invalid name "a/b": letters, digits, "-" and "_" only', 25)

=== TEST 31: openbank_version_sunset: a day that does not exist
--- http_config eval: $::http
--- config
location /v0/ { openbank_version_sunset 2027-06-31; }
--- must_die
--- error_log eval
emerg('invalid sunset date "2027-06-31": expected "2027-06-30T00:00:00Z" or "2027-06-30"', 25)

=== TEST 32: openbank_version_sunset successor: with a space
--- http_config eval: $::http
--- config
location /v0/ { openbank_version_sunset 2027-06-30 "successor=/v 1/"; }
--- must_die
--- error_log eval
emerg('invalid successor "/v 1/": expected one URI such as "/v1/"', 25)

=== TEST 33: openbank_version_sunset deprecated: not a date
--- http_config eval: $::http
--- config
location /v0/ { openbank_version_sunset 2027-06-30 deprecated=soon; }
--- must_die
--- error_log eval
emerg('invalid deprecation date "soon"', 25)

=== TEST 34: openbank_version_sunset: an unknown parameter
--- http_config eval: $::http
--- config
location /v0/ { openbank_version_sunset 2027-06-30 next=/v1/; }
--- must_die
--- error_log eval
emerg('invalid parameter "next=/v1/": expected "successor=URI" or "deprecated=DATE"', 25)

=== TEST 35: openbank_status: takes no value
--- http_config eval: $::http
--- config
location /s { openbank_status on; }
--- must_die
--- error_log eval
emerg('invalid number of arguments in "openbank_status" directive', 25)

=== TEST 36: openbank_issuer: not an https URL
--- http_config eval: $::http . q{openbank_issuer ftp://gw.test;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid issuer "ftp://gw.test": an https:// URL is expected', 22)

=== TEST 37: openbank_signing_key kid: longer than 64
--- http_config eval: $::http . q{openbank_signing_key $TEST_NGINX_ROOT/t/keys/gw-es256.pem kid=kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid kid "kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk": 1 to 64 visible ASCII characters without quotes or backslashes', 22)

=== TEST 38: openbank_signing_key kid: empty
--- http_config eval: $::http . q{openbank_signing_key $TEST_NGINX_ROOT/t/keys/gw-es256.pem kid=;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid kid "": 1 to 64 visible ASCII characters without quotes or backslashes', 22)

=== TEST 39: openbank_signing_key: an unknown parameter
--- http_config eval: $::http . q{openbank_signing_key $TEST_NGINX_ROOT/t/keys/gw-es256.pem alg=ES256;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid parameter "alg=ES256"', 22)

=== TEST 40: openbank_signing_key: a missing file
--- http_config eval: $::http . q{openbank_signing_key nosuch.pem kid=k1;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('cannot open signing key "$TEST_NGINX_CONF_DIR/nosuch.pem" (2: No such file or directory)', 22)

=== TEST 41: openbank_signature: an unknown mode
--- http_config eval: $::http
--- config
location /t { openbank_auth api_key; openbank_signature maybe; }
--- must_die
--- error_log eval
emerg('invalid value "maybe", it must be "off", "optional" or "required"', 25)

=== TEST 42: openbank_idempotency: an unknown mode
--- http_config eval: $::http
--- config
location /t { openbank_auth api_key; openbank_idempotency sometimes; }
--- must_die
--- error_log eval
emerg('invalid value "sometimes", it must be "off", "optional" or "required"', 25)

=== TEST 43: openbank_clock_skew: not a time
--- http_config eval: $::http . q{openbank_clock_skew -5q;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid time "-5q": expected 0s to 10m', 22)

=== TEST 44: openbank_clock_skew: over 10 minutes
--- http_config eval: $::http . q{openbank_clock_skew 11m;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid time "11m": expected 0s to 10m', 22)

=== TEST 45: openbank_token_ttl: not a time
--- http_config eval: $::http . q{openbank_token_ttl forever;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid time "forever": expected 1s to 1d', 22)

=== TEST 46: openbank_token_ttl: zero
--- http_config eval: $::http . q{openbank_token_ttl 0;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid time "0": expected 1s to 1d', 22)

=== TEST 47: openbank_token_ttl: over a day
--- http_config eval: $::http . q{openbank_token_ttl 2d;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('invalid time "2d": expected 1s to 1d', 22)

=== TEST 48: openbank_token_ttl: given twice
--- http_config eval
$::http . "openbank_token_ttl 5m;
openbank_token_ttl 6m;"
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
emerg('"openbank_token_ttl" directive is duplicate', 23)

=== TEST 49: openbank_signature: given twice
--- http_config eval: $::http
--- config
location /t { openbank_auth api_key; openbank_signature off; openbank_signature required; }
--- must_die
--- error_log eval
emerg('"openbank_signature" directive is duplicate', 25)

=== TEST 50: control: good values of the same directives are accepted
--- http_config eval
$::http . q{openbank_state $TEST_NGINX_SERVROOT/state interval=1s;
openbank_clock_skew 0s;
openbank_token_ttl 1d;}
--- config
openbank_idempotency optional;
location /t {
    openbank_api on;
    openbank_auth api_key;
    openbank_signature Optional;
    openbank_idempotency Required;
    content_by_lua_block { ngx.say("reached") }
}
--- request
GET /t
--- more_headers
X-API-Key: x
--- error_code: 401
--- no_error_log
[emerg]

