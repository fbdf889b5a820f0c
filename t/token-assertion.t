# private_key_jwt (RFC 7523): client assertions minted by Crypt::JWT with
# the partner's keys; every attack beside a positive control.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;

our ($http, $config) = token_config();
our $type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

sub grant {
    my ($assertion, @more) = @_;
    return "POST /oauth2/token\n"
        . form_body(grant_type => 'client_credentials',
                    client_assertion_type => $type,
                    client_assertion => $assertion, @more);
}

our $form = "Content-Type: application/x-www-form-urlencoded";
our $ok = { token_type => 'Bearer', scope => 'accounts payments',
            access_token => qr/^eyJ/ };
our $bad = { error => 'invalid_client', error_description => qr/./ };

run_blocks();

# --- procedural: replay across workers, the token verifies elsewhere ---

start_nginx({ http_config => $http, config => $config, workers => 2 });

my $a = assertion(kid => 'acme-ed');
my $body = form_body(grant_type => 'client_credentials',
                     client_assertion_type => $type, client_assertion => $a);
my %h = ('Content-Type' => 'application/x-www-form-urlencoded');

my $res = http_request('POST', '/oauth2/token', \%h, $body);
is($res->status, 200, 'an EdDSA assertion gets a token');
my $token = json_decode($res->body)->{access_token};
my $jwks = http_request('GET', '/.well-known/jwks.json')->body;
ok(eval { Crypt::JWT::decode_jwt(token => $token, kid_keys => $jwks) },
   'the token verifies with Crypt::JWT') or diag $@;
is(jwt_claims($token)->{sub}, 'acme-erp', 'issued to acme');

my @replays;
for my $i (1 .. 6) {
    $res = http_request('POST', '/oauth2/token', \%h, $body);
    push @replays, $res->status;
}
is("@replays", '401 401 401 401 401 401',
   'the same assertion is refused by every worker afterwards');
like($res->body, qr/"error":"invalid_client"/, 'as invalid_client');
like(error_log_since(0), qr/replayed client assertion of "acme-erp"/,
     'and logged');

# the same jti of another client is another assertion
my $jti = 'shared-jti-' . time;
is(http_request('POST', '/oauth2/token', \%h,
        form_body(grant_type => 'client_credentials',
                  client_assertion_type => $type,
                  client_assertion => assertion(kid => 'acme-ec',
                                                claims => { jti => $jti })))
       ->status, 200, 'acme uses a jti');
is(http_request('POST', '/oauth2/token', \%h,
        form_body(grant_type => 'client_credentials',
                  client_assertion_type => $type,
                  client_assertion => assertion(kid => 'beta-ed',
                                                client_id => 'beta-app',
                                                claims => { jti => $jti })))
       ->status, 200, 'beta may use the same jti');

stop_nginx();
done_testing();

__DATA__

=== TEST 1: control: ES256 assertion
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(kid => 'acme-ec'))
--- more_headers eval: $::form
--- response_json eval: $::ok
--- no_error_log
[error]

=== TEST 2: control: PS256 assertion
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(kid => 'acme-rsa'))
--- more_headers eval: $::form
--- response_json eval: $::ok

=== TEST 3: control: RS256 assertion
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(kid => 'acme-rsa', alg => 'RS256'))
--- more_headers eval: $::form
--- response_json eval: $::ok

=== TEST 4: control: EdDSA assertion with a narrower scope
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(kid => 'acme-ed'), scope => 'payments')
--- more_headers eval: $::form
--- response_json
{"token_type": "Bearer", "scope": "payments"}

=== TEST 5: control: aud is the issuer
--- http_config eval: $::http
--- config eval: $::config
--- request eval
grant(assertion(claims => { aud => 'https://gw.test' }))
--- more_headers eval: $::form
--- response_json eval: $::ok

=== TEST 6: control: client_id sent as well, the same
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(), client_id => 'acme-erp')
--- more_headers eval: $::form
--- response_json eval: $::ok

=== TEST 7: aud is someone else
--- http_config eval: $::http
--- config eval: $::config
--- request eval
grant(assertion(claims => { aud => 'https://evil.test/oauth2/token' }))
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 8: no aud
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(claims => { aud => undef }))
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 9: sub differs from iss
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(claims => { sub => 'beta-app' }))
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 10: client_id differs from iss
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(), client_id => 'beta-app')
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 11: an unknown client
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(client_id => 'nobody'))
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 12: exp more than 5 minutes ahead: the refusal says the bound
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(claims => { exp => time + 900 }))
--- more_headers eval: $::form
--- error_code: 401
--- response_json
{"error": "invalid_client",
 "error_description": "the assertion's exp is more than 300 s ahead (openbank_assertion_lifetime)"}

=== TEST 13: control: exp just under 5 minutes ahead
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(claims => { exp => time + 290 }))
--- more_headers eval: $::form
--- response_json eval: $::ok

=== TEST 14: an expired assertion
--- http_config eval: $::http
--- config eval: $::config
--- request eval
grant(assertion(claims => { iat => time - 600, exp => time - 300 }))
--- more_headers eval: $::form
--- error_code: 401
--- response_json
{"error": "invalid_client",
 "error_description": "the assertion has expired or has no exp"}

=== TEST 15: no exp
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(claims => { exp => undef }))
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 16: no jti
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(claims => { jti => undef }))
--- more_headers eval: $::form
--- error_code: 401
--- response_json
{"error": "invalid_client", "error_description": "the assertion needs a jti"}

=== TEST 17: not valid yet
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(claims => { nbf => time + 200 }))
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 18: another partner's key under acme's kid
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(kid => 'acme-ed', key_of => 'beta-ed'))
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad
--- error_log
has a bad signature or alg

=== TEST 19: a kid of another partner's JWKS
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(kid => 'beta-ed'))
--- more_headers eval: $::form
--- error_code: 401
--- response_json
{"error": "invalid_client",
 "error_description": "the assertion's kid is not in the client's JWKS"}

=== TEST 20: alg none
--- http_config eval: $::http
--- config eval: $::config
--- request eval
my @p = jwt_parts(assertion());
grant(b64u('{"alg":"none","kid":"acme-ec"}') . ".$p[1].")
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 21: HS256 with the partner's public key as the secret
--- http_config eval: $::http
--- config eval: $::config
--- request eval
grant(assertion(kid => 'acme-rsa', alg => 'HS256',
                key => (partner_key('acme-rsa'))[0]->export_key_pem('public')))
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 22: ES256 claimed for the RSA key
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(kid => 'acme-rsa', key_of => 'acme-ec'))
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 23: a tampered assertion
--- http_config eval: $::http
--- config eval: $::config
--- request eval
my @p = jwt_parts(assertion(client_id => 'beta-app', kid => 'beta-ed'));
my $c = Crypt::Misc::decode_b64u($p[1]) =~ s/beta-app/acme-erp/gr;
grant("$p[0]." . b64u($c) . ".$p[2]")
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 24: a wrong assertion type
--- http_config eval: $::http
--- config eval: $::config
--- request eval
"POST /oauth2/token\n" . form_body(grant_type => 'client_credentials',
    client_assertion_type => 'urn:ietf:params:oauth:client-assertion-type:saml2-bearer',
    client_assertion => assertion())
--- more_headers eval: $::form
--- error_code: 400
--- response_json
{"error": "invalid_request"}

=== TEST 25: an assertion that is not a JWT
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant('not-a-jwt')
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 26: an assertion with claims that are not JSON
--- http_config eval: $::http
--- config eval: $::config
--- request eval
my @p = jwt_parts(assertion()); grant("$p[0]." . b64u('{"iss":') . ".$p[2]")
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 27: a huge assertion
--- http_config eval: $::http
--- config eval: $::config
--- request eval: grant(assertion(claims => { pad => 'x' x 9000 }))
--- more_headers eval: $::form
--- error_code: 401
--- response_json eval: $::bad

=== TEST 28: openbank_assertion_lifetime 1h: exp 59 minutes ahead
--- http_config eval: $::http . "openbank_assertion_lifetime 1h;\n"
--- config eval: $::config
--- request eval: grant(assertion(claims => { exp => time + 3540 }))
--- more_headers eval: $::form
--- response_json eval: $::ok
--- no_error_log
[error]

=== TEST 29: openbank_assertion_lifetime 1h: more than an hour ahead
--- http_config eval: $::http . "openbank_assertion_lifetime 1h;\n"
--- config eval: $::config
--- request eval: grant(assertion(claims => { exp => time + 3700 }))
--- more_headers eval: $::form
--- error_code: 401
--- response_json
{"error": "invalid_client",
 "error_description": "the assertion's exp is more than 3600 s ahead (openbank_assertion_lifetime)"}

=== TEST 30: openbank_assertion_lifetime 30s: exp 2 minutes ahead is refused
--- http_config eval: $::http . "openbank_assertion_lifetime 30s;\n"
--- config eval: $::config
--- request eval: grant(assertion(claims => { exp => time + 120 }))
--- more_headers eval: $::form
--- error_code: 401
--- response_json
{"error": "invalid_client",
 "error_description": "the assertion's exp is more than 30 s ahead (openbank_assertion_lifetime)"}

