# The token endpoint with client_secret_basic, the JWKS and the metadata;
# issued tokens are verified by Crypt::JWT against the published JWKS.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;

our ($http, $config) = token_config();
our $form = "application/x-www-form-urlencoded";

run_blocks();

# --- procedural: the issued token, seen by an independent verifier ---

start_nginx({ http_config => $http, config => $config });

my $res = http_request('POST', '/oauth2/token',
    { Authorization => basic('acme-erp', 'acme-secret-123'),
      'Content-Type' => $form }, 'grant_type=client_credentials');
is($res->status, 200, 'token issued');
my $answer = json_decode($res->body);
my $token = $answer->{access_token};

my $jwks = http_request('GET', '/.well-known/jwks.json')->body;
my $claims = eval { Crypt::JWT::decode_jwt(token => $token, kid_keys => $jwks,
                                           accepted_alg => 'PS256') };
ok($claims, 'Crypt::JWT verifies the token with the published JWKS')
    or diag($@);
my ($hdr) = jwt_parts($token);
is_deeply(json_decode(Crypt::Misc::decode_b64u($hdr)),
          { alg => 'PS256', typ => 'at+jwt', kid => 'gw-ps' },
          'header: PS256, at+jwt, the first key');
is($claims->{iss}, 'https://gw.test', 'iss');
is($claims->{sub}, 'acme-erp', 'sub');
is($claims->{client_id}, 'acme-erp', 'client_id');
is($claims->{aud}, 'https://gw.test', 'aud');
is($claims->{scope}, 'accounts payments', 'scope: all of the partner\'s');
ok(abs($claims->{iat} - time) < 120, 'iat is now');
is($claims->{exp} - $claims->{iat}, 300, 'exp: iat + openbank_token_ttl');
like($claims->{jti}, qr/^[A-Za-z0-9_-]{22}$/, 'jti: 16 random bytes');
ok(!exists $claims->{cnf}, 'no cnf without a client certificate');

# and by the openssl command: RSA-PSS, SHA-256, salt of 32 bytes
{
    my $tmp = servroot() . '/openssl-check';
    mkdir $tmp;
    my @p = jwt_parts($token);
    open my $f, '>', "$tmp/input" or die; print $f "$p[0].$p[1]"; close $f;
    open $f, '>', "$tmp/sig" or die;
    print $f Crypt::Misc::decode_b64u($p[2]); close $f;
    system("openssl pkey -in $OpenBank::Tokens::KEYS/gw-ps256.pem -pubout"
           . " -out $tmp/pub.pem 2>/dev/null") == 0 or die;
    my $out = `openssl dgst -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -verify $tmp/pub.pem -signature $tmp/sig $tmp/input 2>&1`;
    like($out, qr/Verified OK/, 'openssl dgst verifies the PS256 signature');
}

for my $i (1, 2) {
    $res = http_request('GET', '/v1/accounts',
                        { Authorization => "Bearer $token" });
    is($res->status, 200, "the token opens /v1/accounts ($i)");
    is($res->body, "partner=acme\n", "as partner acme ($i)");
}

# a token for one scope only
$res = http_request('POST', '/oauth2/token',
    { Authorization => basic('acme-erp', 'acme-secret-123'),
      'Content-Type' => $form }, 'grant_type=client_credentials&scope=accounts');
my $narrow = json_decode($res->body)->{access_token};
is(jwt_claims($narrow)->{scope}, 'accounts', 'the scope asked for');
is(http_request('GET', '/v1/accounts',
                { Authorization => "Bearer $narrow" })->status, 200,
   'narrow token: its scope passes');
$res = http_request('GET', '/v1/payments', { Authorization => "Bearer $narrow" });
is($res->status, 403, 'narrow token: another scope is refused');
like($res->body, qr/"code":\s*"insufficient_scope"/, 'insufficient_scope');

# two tokens differ
$res = http_request('POST', '/oauth2/token',
    { Authorization => basic('acme-erp', 'acme-secret-123'),
      'Content-Type' => $form }, 'grant_type=client_credentials');
isnt(json_decode($res->body)->{access_token}, $token, 'a new token each time');

# the client_id and secret are form-encoded inside Basic (RFC 6749 2.3.1)
$res = http_request('POST', '/oauth2/token',
    { Authorization => basic('acme%2Derp', 'acme%2Dsecret%2D123'),
      'Content-Type' => $form }, 'grant_type=client_credentials');
is($res->status, 200, 'Basic credentials are form-decoded');

stop_nginx();
done_testing();

__DATA__

=== TEST 1: the JWKS lists every signing key, the signing one first
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /.well-known/jwks.json
--- response_headers
Content-Type: application/json
--- response_json
{"keys": [
  {"kid": "gw-ps", "kty": "RSA", "alg": "PS256", "use": "sig",
   "e": "AQAB", "n": "~^[A-Za-z0-9_-]{342}$"},
  {"kid": "gw-es", "kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig",
   "x": "~^[A-Za-z0-9_-]{43}$", "y": "~^[A-Za-z0-9_-]{43}$"},
  {"kid": "gw-ed", "kty": "OKP", "crv": "Ed25519", "alg": "EdDSA",
   "use": "sig", "x": "~^[A-Za-z0-9_-]{43}$"}
]}
--- no_error_log
[error]

=== TEST 2: the JWKS has no private member
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /.well-known/jwks.json
--- response_body_unlike
"(d|p|q|dp|dq|qi)"

=== TEST 3: the authorization server metadata (RFC 8414)
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /.well-known/oauth-authorization-server
--- response_json
{"issuer": "https://gw.test",
 "token_endpoint": "https://gw.test/oauth2/token",
 "jwks_uri": "https://gw.test/.well-known/jwks.json",
 "introspection_endpoint": "https://gw.test/oauth2/introspect",
 "revocation_endpoint": "https://gw.test/oauth2/revoke",
 "grant_types_supported": ["client_credentials"],
 "token_endpoint_auth_methods_supported":
     ["client_secret_basic", "private_key_jwt", "tls_client_auth"],
 "tls_client_certificate_bound_access_tokens": true,
 "scopes_supported": ["accounts", "payments"]}

=== TEST 4: POST to the JWKS is not allowed
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /.well-known/jwks.json
x
--- error_code: 405

=== TEST 5: client_secret_basic gets a token
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
grant_type=client_credentials
--- more_headers eval
"Authorization: " . basic('acme-erp', 'acme-secret-123') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- response_headers
Content-Type: application/json
Cache-Control: no-store
Pragma: no-cache
--- response_json
{"access_token": "~^eyJ[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+$",
 "token_type": "Bearer", "expires_in": 300, "scope": "accounts payments"}
--- error_log
token
issued to partner "acme"
--- no_error_log
acme-secret-123

=== TEST 6: a scope the partner holds
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
grant_type=client_credentials&scope=payments
--- more_headers eval
"Authorization: " . basic('acme-erp', 'acme-secret-123') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- response_json
{"token_type": "Bearer", "scope": "payments"}

=== TEST 7: a scope the partner does not hold
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
grant_type=client_credentials&scope=accounts+escrow
--- more_headers eval
"Authorization: " . basic('acme-erp', 'acme-secret-123') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- error_code: 400
--- response_json
{"error": "invalid_scope", "error_description": "~."}

=== TEST 8: another partner's scope
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
grant_type=client_credentials&scope=payments
--- more_headers eval
"Authorization: " . basic('beta-app', 'beta-secret-456') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- error_code: 400
--- response_json
{"error": "invalid_scope"}

=== TEST 9: a wrong secret
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
grant_type=client_credentials
--- more_headers eval
"Authorization: " . basic('acme-erp', 'acme-secret-124') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- error_code: 401
--- response_headers
WWW-Authenticate: Basic realm="openbank"
Cache-Control: no-store
--- response_json
{"error": "invalid_client", "error_description": "~."}
--- error_log
client_secret_basic failed for client_id "acme-erp"
--- no_error_log
acme-secret-124

=== TEST 10: another partner's secret
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
grant_type=client_credentials
--- more_headers eval
"Authorization: " . basic('acme-erp', 'beta-secret-456') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- error_code: 401
--- response_json
{"error": "invalid_client"}

=== TEST 11: an unknown client
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
grant_type=client_credentials
--- more_headers eval
"Authorization: " . basic('nobody', 'acme-secret-123') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- error_code: 401
--- response_json
{"error": "invalid_client"}

=== TEST 12: no client authentication at all
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
grant_type=client_credentials
--- more_headers
Content-Type: application/x-www-form-urlencoded
--- error_code: 401
--- response_json
{"error": "invalid_client"}

=== TEST 13: Basic credentials that are not base64
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
grant_type=client_credentials
--- more_headers
Authorization: Basic !!!!
Content-Type: application/x-www-form-urlencoded
--- error_code: 401
--- response_json
{"error": "invalid_client"}

=== TEST 14: Basic credentials without a colon
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
grant_type=client_credentials
--- more_headers
Authorization: Basic YWNtZS1lcnA=
Content-Type: application/x-www-form-urlencoded
--- error_code: 401
--- response_json
{"error": "invalid_client"}

=== TEST 15: no grant_type
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
scope=accounts
--- more_headers eval
"Authorization: " . basic('acme-erp', 'acme-secret-123') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- error_code: 400
--- response_json
{"error": "invalid_request"}

=== TEST 16: another grant type
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
grant_type=password&username=a&password=b
--- more_headers eval
"Authorization: " . basic('acme-erp', 'acme-secret-123') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- error_code: 400
--- response_json
{"error": "unsupported_grant_type"}

=== TEST 17: a parameter twice
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
grant_type=client_credentials&scope=accounts&scope=payments
--- more_headers eval
"Authorization: " . basic('acme-erp', 'acme-secret-123') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- error_code: 400
--- response_json
{"error": "invalid_request"}

=== TEST 18: a JSON body instead of a form
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
{"grant_type": "client_credentials"}
--- more_headers eval
"Authorization: " . basic('acme-erp', 'acme-secret-123') . "\n"
. "Content-Type: application/json"
--- error_code: 400
--- response_json
{"error": "invalid_request"}

=== TEST 19: GET is not allowed
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /oauth2/token
--- error_code: 405

=== TEST 20: a body over 16 KiB
--- http_config eval: $::http
--- config eval: $::config
--- request eval
"POST /oauth2/token\ngrant_type=client_credentials&x=" . ('a' x 17000)
--- more_headers eval
"Authorization: " . basic('acme-erp', 'acme-secret-123') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- error_code: 413

=== TEST 21: Basic and an assertion together
--- http_config eval: $::http
--- config eval: $::config
--- request eval
"POST /oauth2/token\n" . form_body(grant_type => 'client_credentials',
    client_assertion_type =>
        'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
    client_assertion => assertion())
--- more_headers eval
"Authorization: " . basic('acme-erp', 'acme-secret-123') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- error_code: 400
--- response_json
{"error": "invalid_request"}

=== TEST 22: an empty body
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
--- more_headers eval
"Authorization: " . basic('acme-erp', 'acme-secret-123') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- error_code: 400
--- response_json
{"error": "invalid_request"}

=== TEST 23: a client_id with a newline is not written raw to the log
--- http_config eval: $::http
--- config eval: $::config
--- request
POST /oauth2/token
grant_type=client_credentials
--- more_headers eval
"Authorization: " . basic("evil\n2026/11/23 [emerg] forged", 'x') . "\n"
. "Content-Type: application/x-www-form-urlencoded"
--- error_code: 401
--- error_log
client_secret_basic failed for client_id "(not printable)"
--- no_error_log
[emerg] forged

