# The token directives at load time: every mistake fails nginx -t with the
# file, the line and what is wrong.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;

our $k = $OpenBank::Tokens::KEYS;
our $base = "openbank_zone openbank 1m;\nopenbank_state \$TEST_NGINX_SERVROOT/state;\n"
    . "openbank_plan p { rate 10r/s; quota accounts 100/day; }\n"
    . "openbank_partner a { plan p; scopes accounts; client_id a; }\n";
our $iss = "openbank_issuer https://gw.test;\n";
our $key = "openbank_signing_key $k/gw-es256.pem kid=k1;\n";
our $at = qr/ in \S+nginx\.conf:\d+/;

run_tests();

__DATA__

=== TEST 1: control: issuer, keys, endpoints, ttl and skew
--- http_config eval
$::base . $::iss . $::key
. "openbank_signing_key $::k/gw-ps256.pem kid=k2;\n"
. "openbank_token_ttl 10m;\nopenbank_clock_skew 30s;\n"
--- config
location = /oauth2/token { openbank_token_endpoint; }
location = /oauth2/revoke { openbank_revocation_endpoint; }
location = /jwks { openbank_jwks_endpoint; }
--- request
GET /jwks
--- response_json
{"keys": [{"kid": "k1"}, {"kid": "k2"}]}

=== TEST 2: a signing key without kid
--- http_config eval
$::base . $::iss . "openbank_signing_key $::k/gw-es256.pem x=1;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*invalid parameter "x=1"$::at/

=== TEST 3: a signing key with one argument only
--- http_config eval
$::base . $::iss . "openbank_signing_key $::k/gw-es256.pem;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*invalid number of arguments in "openbank_signing_key"/

=== TEST 4: a missing signing key file
--- http_config eval
$::base . $::iss . "openbank_signing_key $::k/nope.pem kid=a;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*cannot open signing key "\S+nope\.pem" \(2: No such file or directory\)$::at/

=== TEST 5: a public key is not a signing key
--- http_config eval
$::base . $::iss . "openbank_signing_key $::k/acme.crt kid=a;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*signing key "\S+acme\.crt" is not a PEM private key \(without a passphrase\)$::at/

=== TEST 6: an RSA key of 1024 bits
--- http_config eval
$::base . $::iss . "openbank_signing_key $::k/rsa1024.pem kid=a;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*is RSA of 1024 bits: at least 2048 are needed$::at/

=== TEST 7: an EC P-384 key
--- http_config eval
$::base . $::iss . "openbank_signing_key $::k/ec384.pem kid=a;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*is neither EC P-256, RSA nor Ed25519$::at/

=== TEST 8: a duplicate kid
--- http_config eval
$::base . $::iss . $::key . "openbank_signing_key $::k/gw-eddsa.pem kid=k1;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*signing key kid "k1" is duplicate$::at/

=== TEST 9: an issuer that is not a URL
--- http_config eval
$::base . "openbank_issuer gw.test;\n" . $::key
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*invalid issuer "gw\.test": an https:\/\/ URL is expected$::at/

=== TEST 10: an issuer with a query
--- http_config eval
$::base . "openbank_issuer https://gw.test/?a=1;\n" . $::key
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*invalid issuer "https:\/\/gw\.test\/\?a=1": no query/

=== TEST 11: a token endpoint without an issuer
--- http_config eval: $::base . $::key
--- config
location = /oauth2/token { openbank_token_endpoint; }
--- must_die
--- error_log eval
qr/\[emerg\].*OAuth endpoints need "openbank_issuer"/

=== TEST 11b: control: a signing key without an issuer (response signatures)
--- http_config eval: $::base . $::key
--- config
location /v1/ {
    openbank_auth token;
    openbank_scope accounts;
    content_by_lua_block { ngx.say("reached") }
}
--- request
GET /v1/a
--- more_headers eval: "Authorization: Bearer " . mint(kid => 'k1', key_of => 'gw-es')
--- error_code: 401
--- error_log
this gateway issues no tokens

=== TEST 12: a token endpoint without a signing key
--- http_config eval: $::base . $::iss
--- config
location = /oauth2/token { openbank_token_endpoint; }
--- must_die
--- error_log eval
qr/\[emerg\].*OAuth endpoints need an "openbank_signing_key"/

=== TEST 13: a revocation endpoint without openbank_state
--- http_config eval
"openbank_zone openbank 1m;\n" . $::iss . $::key
--- config
location = /oauth2/revoke { openbank_revocation_endpoint; }
--- must_die
--- error_log eval
qr/\[emerg\].*"openbank_revocation_endpoint" needs "openbank_state"/

=== TEST 14: tokens without a zone
--- http_config eval: $::iss . $::key
--- config
location = /oauth2/token { openbank_token_endpoint; }
--- must_die
--- error_log eval
qr/\[emerg\].*tokens need an "openbank_zone"/

=== TEST 15: a token ttl of zero
--- http_config eval: $::base . $::iss . $::key . "openbank_token_ttl 0;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*invalid time "0": expected 1s to 1d$::at/

=== TEST 16: a token ttl that is not a time
--- http_config eval: $::base . $::iss . $::key . "openbank_token_ttl soon;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*invalid time "soon": expected 1s to 1d$::at/

=== TEST 17: a clock skew over 10 minutes
--- http_config eval: $::base . $::iss . $::key . "openbank_clock_skew 11m;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*invalid time "11m": expected 0s to 10m$::at/

=== TEST 18: one endpoint at two paths
--- http_config eval: $::base . $::iss . $::key
--- config
location = /oauth2/token { openbank_token_endpoint; }
location = /token { openbank_token_endpoint; }
--- must_die
--- error_log eval
qr/\[emerg\].*"openbank_token_endpoint" is already at "\/oauth2\/token": an endpoint has one path in every server/

=== TEST 19: an endpoint in a regex location
--- http_config eval: $::base . $::iss . $::key
--- config
location ~ ^/oauth2/token$ { openbank_token_endpoint; }
--- must_die
--- error_log eval
qr/\[emerg\].*must be in a location with a plain path$::at/

=== TEST 20: control: an assertion lifetime of an hour
--- http_config eval
$::base . $::iss . $::key . "openbank_assertion_lifetime 1h;\n"
--- config
location = /oauth2/token { openbank_token_endpoint; }
location = /jwks { openbank_jwks_endpoint; }
--- request
GET /jwks
--- response_json
{"keys": [{"kid": "k1"}]}

=== TEST 21: an assertion lifetime over an hour
--- http_config eval
$::base . $::iss . $::key . "openbank_assertion_lifetime 61m;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*invalid time "61m": expected 1s to 1h$::at/

=== TEST 22: an assertion lifetime of zero
--- http_config eval
$::base . $::iss . $::key . "openbank_assertion_lifetime 0;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*invalid time "0": expected 1s to 1h/

=== TEST 23: an assertion lifetime that is not a time
--- http_config eval
$::base . $::iss . $::key . "openbank_assertion_lifetime 5minutes;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*invalid time "5minutes": expected 1s to 1h$::at/

=== TEST 24: an assertion lifetime twice
--- http_config eval
$::base . $::iss . $::key
. "openbank_assertion_lifetime 5m;\nopenbank_assertion_lifetime 10m;\n"
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*"openbank_assertion_lifetime" directive is duplicate$::at/
