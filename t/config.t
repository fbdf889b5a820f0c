# Every value nginx -t must refuse, each with the file, the line and what
# is wrong.

use lib 't/lib';
use OpenBank::Test;

# a valid base the blocks add one mistake to
our $zone = "openbank_zone openbank 1m;\n";
our $base = <<'EOT';
openbank_plan base { rate 10r/s; quota accounts 100/day; }
openbank_partner base { plan base; scopes accounts; api_key sha256:1111111111111111111111111111111111111111111111111111111111111111; }
EOT

run_tests();

__DATA__
=== TEST 1: malformed rate is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rate 10r/x; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid rate "10r\/x".* in \S+nginx\.conf:\d+/

=== TEST 2: zero rate is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rate 0r/s; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid rate "0r\/s".* in \S+nginx\.conf:\d+/

=== TEST 3: rate without unit is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rate 10; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid rate "10".* in \S+nginx\.conf:\d+/

=== TEST 4: negative rate is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rate -5r/s; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid rate "-5r\/s".* in \S+nginx\.conf:\d+/

=== TEST 5: zero burst is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rate 10r/s burst=0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid burst "0".* in \S+nginx\.conf:\d+/

=== TEST 6: malformed burst is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rate 10r/s burst=ten; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid burst "ten".* in \S+nginx\.conf:\d+/

=== TEST 7: unknown rate parameter is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rate 10r/s bursts=3; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid parameter "bursts=3".* in \S+nginx\.conf:\d+/

=== TEST 8: duplicate rate is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rate 10r/s; rate 20r/s; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*"rate" is duplicate.* in \S+nginx\.conf:\d+/

=== TEST 9: plan without rate is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { quota payments 10/day; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*plan "p" has no "rate".* in \S+nginx\.conf:\d+/

=== TEST 10: quota window week is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rate 1r/s; quota payments 10/week; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid quota window "week".* in \S+nginx\.conf:\d+/

=== TEST 11: quota without window is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rate 1r/s; quota payments 10; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid quota "10".* in \S+nginx\.conf:\d+/

=== TEST 12: zero quota is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rate 1r/s; quota payments 0/day; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid quota "0\/day".* in \S+nginx\.conf:\d+/

=== TEST 13: duplicate quota is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rate 1r/s; quota payments 1/day; quota payments 2/month; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*duplicate quota for product "payments".* in \S+nginx\.conf:\d+/

=== TEST 14: duplicate plan is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rate 1r/s; } openbank_plan p { rate 2r/s; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*duplicate plan "p".* in \S+nginx\.conf:\d+/

=== TEST 15: unknown directive in a plan is refused
--- http_config eval
$::zone . $::base . q{openbank_plan p { rates 1r/s; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*unknown directive "rates" in openbank_plan.* in \S+nginx\.conf:\d+/

=== TEST 16: invalid plan name is refused
--- http_config eval
$::zone . $::base . q{openbank_plan "p q" { rate 1r/s; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid plan name "p q".* in \S+nginx\.conf:\d+/

=== TEST 17: unknown plan is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan nosuch; scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*unknown plan "nosuch" of partner "a" in \S+nginx\.conf:\d+/


=== TEST 18: duplicate partner is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; } openbank_partner a { plan base; scopes s; api_key sha256:6febe7c0a8efbbd7420f539317aff55cb3eb074f8ff469d5bfecfc1b2c9deeba; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*duplicate partner "a", first declared in \S+nginx\.conf:\d+/


=== TEST 19: duplicate client_id is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; client_id erp; } openbank_partner b { plan base; scopes s; client_id erp; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*duplicate client_id "erp", already used by partner "a".* in \S+nginx\.conf:\d+/

=== TEST 20: duplicate api key across partners is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; } openbank_partner b { plan base; scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*duplicate api_key, already used by partner "a".* in \S+nginx\.conf:\d+/

=== TEST 21: duplicate api key in one partner is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*duplicate api_key, already used by partner "a".* in \S+nginx\.conf:\d+/

=== TEST 22: duplicate certificate is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; client_id a; certificate sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; } openbank_partner b { plan base; scopes s; client_id b; certificate sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*duplicate certificate, already used by partner "a".* in \S+nginx\.conf:\d+/

=== TEST 23: hash without prefix is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; api_key b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid hash "b24196c6.* in \S+nginx\.conf:\d+/

=== TEST 24: short hash is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; api_key sha256:b24196c617; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid hash "sha256:b24196c617".* in \S+nginx\.conf:\d+/

=== TEST 25: hash with a non-hex digit is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; api_key sha256:z24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid hash "sha256:z2.* in \S+nginx\.conf:\d+/

=== TEST 26: bad client_secret hash is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; client_id a; client_secret secret; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid hash "secret".* in \S+nginx\.conf:\d+/

=== TEST 27: partner without plan is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*partner "a" has no "plan".* in \S+nginx\.conf:\d+/

=== TEST 28: partner without scopes is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*partner "a" has no "scopes".* in \S+nginx\.conf:\d+/

=== TEST 29: partner without credential is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*partner "a" has no credential.* in \S+nginx\.conf:\d+/

=== TEST 30: client_secret without client_id is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; client_secret sha256:6febe7c0a8efbbd7420f539317aff55cb3eb074f8ff469d5bfecfc1b2c9deeba; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*has a "client_secret" or "certificate" but no "client_id".* in \S+nginx\.conf:\d+/

=== TEST 31: duplicate scope is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*duplicate scope "s".* in \S+nginx\.conf:\d+/

=== TEST 32: invalid scope name is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes "pay ments"; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid scope "pay ments".* in \S+nginx\.conf:\d+/

=== TEST 33: invalid client_id is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; client_id "a:b"; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid client_id "a:b".* in \S+nginx\.conf:\d+/

=== TEST 34: unknown directive in a partner is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; apikey sha256:6febe7c0a8efbbd7420f539317aff55cb3eb074f8ff469d5bfecfc1b2c9deeba; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*unknown directive "apikey" in openbank_partner.* in \S+nginx\.conf:\d+/

=== TEST 35: missing hmac_secret file is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; hmac_secret $TEST_NGINX_SERVROOT/conf/nosuch.hmac; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*open\(\) "\S+nosuch\.hmac" failed.* in \S+nginx\.conf:\d+/

=== TEST 36: short hmac_secret is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; hmac_secret short.hmac; }}
--- config
location = /t { return 200; }
--- user_files
>>> conf/short.hmac
0123456789a
--- must_die
--- error_log eval
qr/\[emerg\].*hmac_secret file "\S+short\.hmac" holds 11 bytes, at least 32 are needed.* in \S+nginx\.conf:\d+/

=== TEST 37: missing jwks file is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; jwks nosuch.jwks.json; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*open\(\) "\S+nosuch\.jwks\.json" failed.* in \S+nginx\.conf:\d+/

=== TEST 38: jwks that is not JSON is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; jwks bad.jwks.json; }}
--- config
location = /t { return 200; }
--- user_files
>>> conf/bad.jwks.json
{"keys": [
--- must_die
--- error_log eval
qr/\[emerg\].*jwks "\S+bad\.jwks\.json":? is not JSON.* in \S+nginx\.conf:\d+/

=== TEST 39: jwks without keys is refused
--- http_config eval
$::zone . $::base . q{openbank_partner a { plan base; scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; jwks empty.jwks.json; }}
--- config
location = /t { return 200; }
--- user_files
>>> conf/empty.jwks.json
{"keys": []}
--- must_die
--- error_log eval
qr/\[emerg\].*has no "keys" array with a key.* in \S+nginx\.conf:\d+/

=== TEST 40: partners without a zone is refused
--- http_config eval
q{
openbank_plan base { rate 1r/s; }
openbank_partner a { plan base; scopes s; api_key sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0; }}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*partner "a" in \S+nginx\.conf:\d+ needs an "openbank_zone"/

=== TEST 41: zone too small is refused
--- http_config eval
q{openbank_zone tiny 64k;
}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid zone size "64k": zone "tiny" needs at least 128k in \S+nginx\.conf:\d+/

=== TEST 42: zone with a bad size is refused
--- http_config eval
q{openbank_zone big lots;
}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid zone size "lots".* in \S+nginx\.conf:\d+/

=== TEST 43: duplicate zone is refused
--- http_config eval
$::zone . $::base . q{openbank_zone other 1m;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*"openbank_zone" directive is duplicate.* in \S+nginx\.conf:\d+/

=== TEST 44: bad time zone is refused
--- http_config eval
$::zone . $::base . q{openbank_timezone Asia/Shanghai;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid time zone "Asia\/Shanghai".* in \S+nginx\.conf:\d+/

=== TEST 45: time zone out of range is refused
--- http_config eval
$::zone . $::base . q{openbank_timezone +15:00;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid time zone "\+15:00".* in \S+nginx\.conf:\d+/

=== TEST 46: duplicate state is refused
--- http_config eval
$::zone . $::base . q{openbank_state $TEST_NGINX_SERVROOT/s1; openbank_state $TEST_NGINX_SERVROOT/s2;}
--- config
location = /t { return 200; }
--- must_die
--- error_log eval
qr/\[emerg\].*"openbank_state" directive is duplicate.* in \S+nginx\.conf:\d+/

=== TEST 47: unknown auth method is refused
--- http_config eval
$::zone . $::base . q{}
--- config
location /t { openbank_auth password; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid authentication method "password".* in \S+nginx\.conf:\d+/

=== TEST 48: duplicate auth method is refused
--- http_config eval
$::zone . $::base . q{}
--- config
location /t { openbank_auth api_key api_key; }
--- must_die
--- error_log eval
qr/\[emerg\].*authentication method "api_key" is duplicate.* in \S+nginx\.conf:\d+/

=== TEST 49: scope without auth is refused
--- http_config eval
$::zone . $::base . q{}
--- config
location /t { openbank_scope accounts; }
--- must_die
--- error_log eval
qr/\[emerg\].*requires "openbank_auth" in the same location.* in \S+nginx\.conf:\d+/

=== TEST 50: scope no partner holds is refused
--- http_config eval
$::zone . $::base . q{}
--- config
location /t { openbank_auth api_key; openbank_scope payments; }
--- must_die
--- error_log eval
qr/\[emerg\].*openbank_scope "payments" in \S+nginx\.conf:\d+ is held by no partner/


=== TEST 51: product no partner holds is refused
--- http_config eval
$::zone . $::base . q{}
--- config
location /t { openbank_auth api_key; openbank_scope accounts; openbank_product escrow; }
--- must_die
--- error_log eval
qr/\[emerg\].*openbank_product "escrow" in \S+nginx\.conf:\d+ is held by no partner/


=== TEST 52: invalid scope name in a location is refused
--- http_config eval
$::zone . $::base . q{}
--- config
location /t { openbank_auth api_key; openbank_scope "a b"; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid name "a b".* in \S+nginx\.conf:\d+/

=== TEST 53: sunset date malformed is refused
--- http_config eval
$::zone . $::base . q{}
--- config
location /v0/ { openbank_version_sunset 2027-13-01; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid sunset date "2027-13-01".* in \S+nginx\.conf:\d+/

=== TEST 54: sunset date that does not exist is refused
--- http_config eval
$::zone . $::base . q{}
--- config
location /v0/ { openbank_version_sunset 2027-02-29T00:00:00Z; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid sunset date "2027-02-29T00:00:00Z".* in \S+nginx\.conf:\d+/

=== TEST 55: sunset with an unknown parameter is refused
--- http_config eval
$::zone . $::base . q{}
--- config
location /v0/ { openbank_version_sunset 2027-06-30 next=/v1/; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid parameter "next=\/v1\/".* in \S+nginx\.conf:\d+/

=== TEST 56: deprecated after sunset is refused
--- http_config eval
$::zone . $::base . q{}
--- config
location /v0/ { openbank_version_sunset 2027-06-30 deprecated=2027-07-01; }
--- must_die
--- error_log eval
qr/\[emerg\].*deprecation date "2027-07-01" is after the sunset date.* in \S+nginx\.conf:\d+/

=== TEST 57: empty successor is refused
--- http_config eval
$::zone . $::base . q{}
--- config
location /v0/ { openbank_version_sunset 2027-06-30 successor=; }
--- must_die
--- error_log eval
qr/\[emerg\].*invalid successor "".* in \S+nginx\.conf:\d+/

=== TEST 58: a configuration with every directive is accepted
--- http_config
openbank_zone      openbank 1m;
openbank_state     $TEST_NGINX_SERVROOT/state;
openbank_timezone  +08:00;
openbank_plan gold {
    rate   100r/s burst=200;
    quota  payments      50000/day;
    quota  verification  1000000/month;
}
openbank_partner acme {
    plan           gold;
    scopes         payments verification;
    client_id      acme-erp;
    client_secret  sha256:6febe7c0a8efbbd7420f539317aff55cb3eb074f8ff469d5bfecfc1b2c9deeba;
    api_key        sha256:b24196c617e3c578e7a6d182ae39213f8866d74a25df4fe82d5e28cde121cdf0;
    hmac_secret    acme.hmac;
    certificate    sha256:00112233445566778899aabbccddeeff00112233445566778899AABBCCDDEEFF;
    quota          payments 80000/day;
}
--- user_files
>>> conf/acme.hmac
0123456789abcdef0123456789abcdef
--- config
location /v1/payments {
    openbank_auth     token api_key;
    openbank_scope    payments;
    openbank_product  payments;
    content_by_lua_block { ngx.say("ok") }
}
location /v0/ {
    openbank_version_sunset 2099-06-30T00:00:00Z successor=/v1/ deprecated=2026-01-01;
    openbank_auth api_key;
    content_by_lua_block { ngx.say("ok") }
}
location = /t { openbank_api on; return 204; }
--- request
GET /t
--- error_code: 204
--- no_error_log
[emerg]
[error]
