# The validation hot path: "Authorization: Bearer".  Tokens are minted by
# Crypt::JWT with the gateway's own keys (the independent side); every
# attack has a positive control beside it.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use Crypt::Misc qw(encode_b64u decode_b64u);

our ($http, $config) = token_config();

sub bearer { return "Authorization: Bearer $_[0]" }

# a token with one byte of part $i (0 header, 1 claims, 2 signature)
# changed, still base64url
sub tamper {
    my ($token, $i, $edit) = @_;
    my @p = jwt_parts($token);
    if ($i < 2) {
        my $json = decode_b64u($p[$i]);
        $json = $edit->($json);
        $p[$i] = encode_b64u($json);
    } else {
        my $sig = decode_b64u($p[2]);
        substr($sig, 10, 1) = chr(ord(substr($sig, 10, 1)) ^ 1);
        $p[2] = encode_b64u($sig);
    }
    return join '.', @p;
}

our $claims = '{"iss":"https://gw.test","sub":"acme-erp",'
    . '"client_id":"acme-erp","aud":"https://gw.test","iat":%d,"exp":%d,'
    . '"jti":"raw-%d","scope":"accounts"%s}';

sub raw_claims { my ($extra) = @_; my $t = time;
                 return sprintf($claims, $t, $t + 300, int(rand(1e9)),
                                $extra // '') }

our $invalid = {
    'WWW-Authenticate' => 'Bearer error="invalid_token"',
};

repeat_each(1);
run_tests();

__DATA__

=== TEST 1: control: a PS256 token of the first key
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint())
--- response_body
partner=acme
--- no_error_log
[error]

=== TEST 2: control: an ES256 token of the second key
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(kid => 'gw-es'))
--- response_body
partner=acme

=== TEST 3: control: an EdDSA token of the third key
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers eval: bearer(mint(kid => 'gw-ed'))
--- response_body
partner=acme

=== TEST 4: control: a raw PS256 token made here
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(sign_raw('{"alg":"PS256","kid":"gw-ps"}', raw_claims()))
--- response_body
partner=acme

=== TEST 5: no credential
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer error="invalid_token"
Content-Type: application/problem+json
--- response_json
{"code": "invalid_token", "status": 401}

=== TEST 6: alg none without a signature
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(encode_b64u('{"alg":"none","kid":"gw-ps"}') . '.'
       . encode_b64u(raw_claims()) . '.')
--- error_code: 401
--- response_headers
WWW-Authenticate: Bearer error="invalid_token"
--- response_json
{"code": "invalid_token"}

=== TEST 7: alg none with a signature
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(encode_b64u('{"alg":"none","kid":"gw-ps"}') . '.'
       . encode_b64u(raw_claims()) . '.' . encode_b64u('x' x 256))
--- error_code: 401
--- error_log
the token's alg is not its key's

=== TEST 8: HS256 signed with the RSA public key as the secret
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(mint(alg => 'HS256', key => public_pem('gw-ps')))
--- error_code: 401
--- error_log
the token's alg is not its key's

=== TEST 9: HS256 signed with the EC public key as the secret
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(mint(kid => 'gw-es', alg => 'HS256', key => public_pem('gw-es')))
--- error_code: 401
--- error_log
the token's alg is not its key's

=== TEST 10: RS256 with the RSA key that is pinned to PS256
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(alg => 'RS256'))
--- error_code: 401
--- error_log
the token's alg is not its key's

=== TEST 11: PS256 header on the EC key's kid
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(kid => 'gw-es', key_of => 'gw-ps'))
--- error_code: 401
--- error_log
the token's alg is not its key's

=== TEST 12: an unknown kid
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(header => { kid => 'gw-nope' }))
--- error_code: 401
--- error_log
the token's kid is not a key of this gateway

=== TEST 13: no kid
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(sign_raw('{"alg":"PS256"}', raw_claims()))
--- error_code: 401
--- error_log
the token's kid is not a key of this gateway

=== TEST 14: a foreign kid: a partner's key signs a token for itself
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(Crypt::JWT::encode_jwt(payload => jwt_claims(mint()), alg => 'ES256',
    key => (partner_key('acme-ec'))[0], extra_headers => { kid => 'acme-ec' }))
--- error_code: 401
--- error_log
the token's kid is not a key of this gateway

=== TEST 15: the key of a kid of ours replaced by a partner's key
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(mint(kid => 'gw-es', key => (partner_key('acme-ec'))[0]))
--- error_code: 401
--- error_log
the token's signature is not valid

=== TEST 16: a key rotated out of the configuration
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(kid => 'gw-old'))
--- error_code: 401
--- error_log
the token's kid is not a key of this gateway

=== TEST 17: a tampered header
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(tamper(mint(), 0, sub { $_[0] =~ s/at\+jwt/JWT/r }))
--- error_code: 401
--- error_log
the token's signature is not valid

=== TEST 18: a tampered payload: more scope
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers eval
bearer(tamper(mint(claims => { scope => 'accounts' }), 1,
              sub { $_[0] =~ s/"accounts"/"accounts payments"/r }))
--- error_code: 401
--- error_log
the token's signature is not valid

=== TEST 19: a tampered payload: another partner
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(tamper(mint(claims => { sub => 'beta-app', client_id => 'beta-app',
                                scope => 'accounts' }), 1,
              sub { $_[0] =~ s/beta-app/acme-erp/gr }))
--- error_code: 401

=== TEST 20: a tampered signature
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(tamper(mint(kid => 'gw-ed'), 2))
--- error_code: 401
--- error_log
the token's signature is not valid

=== TEST 21: a signature cut short
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(substr(mint(kid => 'gw-es'), 0, -4))
--- error_code: 401

=== TEST 22: expired beyond the clock skew
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(mint(claims => { iat => time - 600, exp => time - 120 }))
--- error_code: 401
--- error_log
the token has expired

=== TEST 23: control: expired within the clock skew (60 s)
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(mint(claims => { iat => time - 600, exp => time - 20 }))
--- response_body
partner=acme

=== TEST 24: not valid before a time beyond the skew
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { nbf => time + 300 }))
--- error_code: 401
--- error_log
the token is not valid yet

=== TEST 25: control: nbf within the skew
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { nbf => time + 20 }))
--- response_body
partner=acme

=== TEST 26: issued in the future beyond the skew
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { iat => time + 300 }))
--- error_code: 401

=== TEST 27: no exp
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { exp => undef }))
--- error_code: 401
--- error_log
the token has expired

=== TEST 28: exp as a string
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { exp => '' . (time + 300) }))
--- error_code: 401

=== TEST 29: exp with a fraction
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(sign_raw('{"alg":"PS256","kid":"gw-ps"}',
                raw_claims() =~ s/"exp":(\d+)/"exp":$1.5/r))
--- error_code: 401

=== TEST 30: a wrong iss
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { iss => 'https://evil.test' }))
--- error_code: 401
--- error_log
the token's iss is not this gateway

=== TEST 31: a wrong aud
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { aud => 'https://other.test' }))
--- error_code: 401
--- error_log
the token's aud is not this gateway

=== TEST 32: control: aud as an array holding the issuer
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(mint(claims => { aud => ['https://other.test', 'https://gw.test'] }))
--- response_body
partner=acme

=== TEST 33: no jti
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { jti => undef }))
--- error_code: 401

=== TEST 34: an unknown client
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(mint(claims => { client_id => 'nobody', sub => 'nobody' }))
--- error_code: 401
--- error_log
the token's client is unknown

=== TEST 35: a duplicate claim (two readers could see two scopes)
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers eval
bearer(sign_raw('{"alg":"PS256","kid":"gw-ps"}',
                raw_claims(',"scope":"accounts payments"')))
--- error_code: 401

=== TEST 36: a crit header
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(sign_raw('{"alg":"PS256","kid":"gw-ps","crit":["exp"]}', raw_claims()))
--- error_code: 401

=== TEST 37: base64 padding in a part
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
my @p = jwt_parts(mint()); $p[1] .= '='; bearer(join '.', @p)
--- error_code: 401

=== TEST 38: the standard base64 alphabet
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint() =~ tr/-_/+\//r)
--- error_code: 401

=== TEST 39: claims that are not JSON
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(sign_raw('{"alg":"PS256","kid":"gw-ps"}', '{"iss": "https://gw.test",'))
--- error_code: 401

=== TEST 40: claims that are a JSON array
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(sign_raw('{"alg":"PS256","kid":"gw-ps"}', '[1,2,3]'))
--- error_code: 401

=== TEST 41: a header that is not JSON
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(sign_raw('{"alg":"PS256",kid:gw-ps}', raw_claims()))
--- error_code: 401

=== TEST 42: two parts
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(join '.', (jwt_parts(mint()))[0, 1])
--- error_code: 401

=== TEST 43: four parts
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint() . '.abc')
--- error_code: 401

=== TEST 44: a huge claims part (over 4 KiB decoded)
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(mint(claims => { pad => 'x' x 4200 }))
--- error_code: 401

=== TEST 44b: a token over 8 KiB where nginx lets it through
--- http_config eval: $::http
--- config eval: "large_client_header_buffers 4 64k;\n" . $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(mint(claims => { pad => 'x' x 20000 }))
--- error_code: 401
--- error_log
the access token is empty or too long

=== TEST 45: a token of dots
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers
Authorization: Bearer ..
--- error_code: 401

=== TEST 46: a token with a space inside
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint() =~ s/\./ ./r)
--- error_code: 401

=== TEST 47: Basic on a token location
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
"Authorization: " . basic('acme-erp', 'acme-secret-123')
--- error_code: 401
--- response_json
{"code": "invalid_token"}

=== TEST 48: Bearer without a token
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers
Authorization: Bearer
--- error_code: 401

=== TEST 49: two Authorization headers (nginx itself refuses them)
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(mint()) . "\n" . bearer(mint())
--- error_code: 400

=== TEST 50: control: the scheme is case-insensitive
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: "Authorization: bearer " . mint()
--- response_body
partner=acme

=== TEST 51: a scope the token lacks
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers eval: bearer(mint(claims => { scope => 'accounts' }))
--- error_code: 403
--- response_json
{"code": "insufficient_scope", "status": 403}

=== TEST 52: a scope the token has but its partner no longer holds
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers eval
bearer(mint(claims => { sub => 'beta-app', client_id => 'beta-app' }))
--- error_code: 403
--- response_json
{"code": "insufficient_scope"}

=== TEST 53: control: token or API key, with a token
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/both
--- more_headers eval: bearer(mint(kid => 'gw-es'))
--- response_body
partner=acme

=== TEST 54: control: unknown members, nested, are ignored
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(mint(claims => { ext => { a => [1, { b => undef }], c => \1 },
                        note => 'x' }, header => { x5u => 'https://x' }))
--- response_body
partner=acme

=== TEST 55: a cnf that is not an object
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { cnf => 'x' }))
--- error_code: 401

=== TEST 56: a cnf without x5t#S256
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { cnf => { jkt => 'abc' } }))
--- error_code: 401

=== TEST 57: a cnf x5t#S256 that is not a string
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { cnf => { 'x5t#S256' => [1] } }))
--- error_code: 401

=== TEST 58: a cnf x5t#S256 that is not a SHA-256
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { cnf => { 'x5t#S256' => 'abc' } }))
--- error_code: 401
--- error_log
the token's cnf is malformed

=== TEST 59: an aud that is a number
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { aud => 7 }))
--- error_code: 401

=== TEST 60: an aud array with an array inside
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { aud => ['https://gw.test', ['x']] }))
--- error_code: 401

=== TEST 61: a scope that is not a string
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { scope => ['accounts'] }))
--- error_code: 401

=== TEST 62: JSON nested 20 deep
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval
bearer(sign_raw('{"alg":"PS256","kid":"gw-ps"}',
                raw_claims(',"x":' . ('[' x 20) . (']' x 20))))
--- error_code: 401

=== TEST 63: a negative exp
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/accounts
--- more_headers eval: bearer(mint(claims => { exp => -1 }))
--- error_code: 401
