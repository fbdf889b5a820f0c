# RFC 9421 request signatures (docs/signing.md): every algorithm signed by an
# independent signer (t/lib/OpenBank/Signer.pm: CryptX, and the openssl
# command for SM2) is accepted, and each rule of the negative list is
# refused with 401 and the reason.  Every block signs a fresh request
# (its own created and nonce), so blocks do not repeat.
#
# The harness evaluates the blocks' sections before it (re)starts nginx,
# and the gateway refuses a signature created before it started (replay
# protection across restarts), so requests are signed "created" 150 s
# ahead, inside a clock skew of 300 s.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Signer;
use File::Temp qw(tempdir);
use Digest::SHA qw(sha256_hex);

our $dir = tempdir(CLEANUP => 1);
our $k = make_keys($dir);
our $secret = 'a-shared-secret-of-more-than-32-bytes!';
our $body = '{"amount":{"value":"12.50","currency":"CNY"}}';

our $http = "openbank_zone openbank 1m;\nopenbank_clock_skew 300s;\n"
    . "openbank_signing_key gw.pem kid=gw-1;\n"
    . "openbank_plan p { rate 1000r/s; quota payments 100000/day; }\n"
    . "openbank_partner acme { plan p; scopes payments; api_key sha256:"
    . sha256_hex('key-acme') . "; jwks partners/acme.jwks.json; "
    . "hmac_secret partners/acme.hmac; }\n"
    . "openbank_partner globex { plan p; scopes payments; api_key sha256:"
    . sha256_hex('key-globex') . "; jwks partners/globex.jwks.json; }\n";

our $config = <<'EOT';
location /v1/ {
    openbank_auth       api_key;
    openbank_scope      payments;
    openbank_signature  required;
    content_by_lua_block {
        ngx.req.read_body()
        ngx.say("ok ", ngx.var.openbank_partner, " ",
                ngx.req.get_body_data() or "")
    }
}
location /opt/ {
    openbank_auth       api_key;
    openbank_signature  optional;
    content_by_lua_block { ngx.say("ok ", ngx.var.openbank_partner) }
}
location /off/ {
    openbank_auth       api_key;
    content_by_lua_block { ngx.say("ok ", ngx.var.openbank_partner) }
}
EOT

our $files = [
    ['conf/gw.pem', slurp($k->{gw}{pem})],
    ['conf/partners/acme.jwks.json', '{"keys": ['
        . join(',', map { $k->{$_}{jwk} } qw(ed ec rsa rs256 rsanone sm2))
        . ']}'],
    ['conf/partners/acme.hmac', "$secret\n"],
    ['conf/partners/globex.jwks.json', '{"keys": [' . $k->{gwec}{jwk} . ']}'],
];

# the headers of a request signed by acme (Host is "localhost")
sub signed {
    my (%a) = @_;
    my $name = delete $a{key_name} // 'ed';
    my %alg = (ed => 'ed25519', ec => 'ecdsa-p256-sha256',
               rsa => 'rsa-pss-sha512', rs256 => 'rsa-v1_5-sha256',
               rsanone => 'rsa-pss-sha512', sm2 => 'sm2-sm3',
               gwec => 'ecdsa-p256-sha256');
    my @h = sign_request(method => 'POST', path => '/v1/pay',
                         authority => 'localhost', body => $body,
                         alg => $alg{$name}, key => $k->{$name}{pem},
                         keyid => $k->{$name}{kid}, created => time + 150,
                         %a);
    return join("\n", 'X-API-Key: ' . (delete $a{api_key} // 'key-acme'),
                @h) . "\n";
}

sub hmac_signed { signed(alg => 'hmac-sha256', key => $secret,
                         keyid => 'hmac', @_) }

run_tests();

__DATA__

=== TEST 1: ed25519
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(key_name => 'ed')
--- error_code: 200
--- response_body eval: "ok acme $::body\n"
--- response_headers_like
Content-Digest: ^sha-256=:[A-Za-z0-9+/]{43}=:$
Signature-Input: ^sig=\("@status" "content-digest" "@method";req "@target-uri";req\);created=\d+;keyid="gw-1"$
Signature: ^sig=:[A-Za-z0-9+/]{86}==:$
--- no_error_log
[error]

=== TEST 2: ecdsa-p256-sha256 (raw r||s)
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(key_name => 'ec')
--- error_code: 200
--- response_body eval: "ok acme $::body\n"

=== TEST 3: rsa-pss-sha512 (JWK alg PS512)
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(key_name => 'rsa')
--- error_code: 200

=== TEST 4: rsa-v1_5-sha256 (JWK alg RS256), with a matching alg parameter
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(key_name => 'rs256', alg_param => 'rsa-v1_5-sha256')
--- error_code: 200

=== TEST 5: an RSA JWK without alg: rsa-pss-sha512 by default
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(key_name => 'rsanone')
--- error_code: 200

=== TEST 6: an RSA JWK without alg: the alg parameter picks rsa-v1_5-sha256
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(key_name => 'rsanone', alg => 'rsa-v1_5-sha256', alg_param => 'rsa-v1_5-sha256')
--- error_code: 200

=== TEST 7: sm2-sm3, signed by the openssl command (distid 1234567812345678)
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(key_name => 'sm2')
--- error_code: 200
--- response_body eval: "ok acme $::body\n"

=== TEST 7b: sm2-sm3 with the signature as raw r||s (64 bytes)
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(key_name => 'sm2', alg => 'sm2-sm3-raw')
--- error_code: 200

=== TEST 7c: an ECDSA signature in DER instead of raw r||s is refused
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(key_name => 'ec', alg => 'ecdsa-p256-sha256-der')
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "the signature does not verify (ecdsa-p256-sha256)"}

=== TEST 8: hmac-sha256 with the partner's secret (keyid "hmac")
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::hmac_signed()
--- error_code: 200

=== TEST 9: @authority, @path and @query instead of @target-uri
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay?x=1&y=%41\n$::body"
--- more_headers eval
::signed(query => 'x=1&y=%41', components => ['"@method"', '"@authority"',
         '"@path"', '"@query"', '"content-digest"', '"content-type"'],
         headers => {'content-type' => 'application/json'})
. "Content-Type: application/json\n"
--- error_code: 200

=== TEST 10: a GET without a body needs no Content-Digest
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request
GET /v1/pay
--- more_headers eval: ::signed(method => 'GET', body => undef)
--- error_code: 200
--- response_body
ok acme 

=== TEST 11: sha-512 Content-Digest
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(digest => 'sha-512')
--- error_code: 200

=== TEST 12: required, no signature: signature_missing
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers
X-API-Key: key-acme
--- error_code: 401
--- response_headers
!WWW-Authenticate
!Signature
Accept-Signature: sig=("@method" "@target-uri" "content-digest");created;nonce
--- response_json
{"code": "signature_missing"}

=== TEST 13: optional, no signature: served, and the response is not signed
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request
GET /opt/x
--- more_headers
X-API-Key: key-acme
--- error_code: 200
--- response_headers
!Signature
!Signature-Input
--- response_body
ok acme

=== TEST 13b: optional, a good signature: verified, and the response is signed
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request
GET /opt/x
--- more_headers eval: ::signed(method => 'GET', path => '/opt/x', body => undef)
--- error_code: 200
--- response_headers_like
Signature-Input: ^sig=\("@status" "content-digest" "@method";req "@target-uri";req\);created=\d+;keyid="gw-1"$
Signature: ^sig=:[A-Za-z0-9+/]{86}==:$
--- response_body
ok acme

=== TEST 13c: off: a signature is ignored, even a bad one, and nothing is signed
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request
GET /off/x
--- more_headers eval: ::signed(method => 'GET', path => '/elsewhere', body => undef)
--- error_code: 200
--- response_headers
!Signature
!Content-Digest

=== TEST 14: optional, a bad signature is still refused
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request
GET /opt/x
--- more_headers eval
my $h = ::signed(method => 'GET', path => '/opt/y', body => undef); $h
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "the signature does not verify (ed25519)"}

=== TEST 15: the body changed after signing
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n{\"amount\":{\"value\":\"99.50\",\"currency\":\"CNY\"}}"
--- more_headers eval: ::signed()
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "the body does not match Content-Digest (sha-256)"}

=== TEST 16: a body without Content-Digest
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(digest => 'none', components => ['"@method"', '"@target-uri"'])
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "~must cover .*content-digest"}

=== TEST 17: "@method" not covered
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(components => ['"@target-uri"', '"content-digest"'])
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "~^the signature must cover"}

=== TEST 18: a query not covered when @path stands for the target
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay?x=1\n$::body"
--- more_headers eval: ::signed(query => 'x=1', components => ['"@method"', '"@authority"', '"@path"', '"content-digest"'])
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "~^the signature must cover"}

=== TEST 19: a covered header that is not sent
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(components => ['"@method"', '"@target-uri"', '"content-digest"', '"x-absent"'], headers => {'x-absent' => 'v'})
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "a covered header field is absent"}

=== TEST 20: created an hour ago
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(created => time - 3600)
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "the signature was created more than 300 seconds ago"}

=== TEST 21: created an hour ahead
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(created => time + 3600)
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "the signature was created in the future: check the clock"}

=== TEST 22: expired
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(expires => time - 3600)
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "the signature has expired"}

=== TEST 23: expires in the future is fine
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(expires => time + 200)
--- error_code: 200

=== TEST 24: an unknown keyid
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(keyid => 'nope-1')
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "keyid \"nope-1\" is not one of the partner's keys"}

=== TEST 25: another partner's kid is not acme's key
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(key_name => 'gwec')
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "keyid \"gwec-1\" is not one of the partner's keys"}

=== TEST 26: hmac for a partner without hmac_secret
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::hmac_signed(api_key => 'key-globex')
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "keyid \"hmac\" is not one of the partner's keys"}

=== TEST 27: alg that contradicts an Ed25519 key
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(alg_param => 'hmac-sha256')
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "alg \"hmac-sha256\" does not match the key \"ed-1\""}

=== TEST 28: downgrade: an HMAC over the base keyed with the public key, alg hmac-sha256
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(alg => 'hmac-sha256', key => $::k->{ed}{jwk}, alg_param => 'hmac-sha256')
--- error_code: 401
--- response_json
{"code": "signature_invalid"}

=== TEST 29: an RS256 key with alg rsa-pss-sha512
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(key_name => 'rs256', alg => 'rsa-pss-sha512', alg_param => 'rsa-pss-sha512')
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "~does not match the key"}

=== TEST 30: an unknown alg
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(alg_param => 'none')
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "~does not match the key"}

=== TEST 31: no nonce
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(nonce => '')
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "the signature needs the parameters created, keyid and nonce"}

=== TEST 32: a label other than sig
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(label => 'sig2')
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "the signature must be the only one and labelled \"sig\""}

=== TEST 33: sig beside another label
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval
my $h = ::signed();
$h =~ s/^(Signature-Input: .*)$/$1, other=("\@method");created=1/m;
$h
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "the signature must be the only one and labelled \"sig\""}

=== TEST 34: Signature-Input without Signature
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval
my $h = ::signed(); $h =~ s/^Signature: .*\n//m; $h
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "Signature-Input and Signature go together"}

=== TEST 35: a signature of the right length that is wrong
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval
my $h = ::signed(); $h =~ s/^Signature: sig=:(.)/"Signature: sig=:" . ($1 eq 'A' ? 'B' : 'A')/me; $h
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "the signature does not verify (ed25519)"}

=== TEST 36: an unknown signature parameter
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(params => ';foo="bar"')
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "unknown signature parameter"}

=== TEST 37: a component covered twice
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(components => ['"@method"', '"@target-uri"', '"content-digest"', '"@method"'])
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "a component is covered twice"}

=== TEST 38: the signature is checked before the API key's partner is trusted with it: globex cannot use acme's key
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(api_key => 'key-globex')
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "keyid \"ed-1\" is not one of the partner's keys"}

=== TEST 38b: a signature base larger than the gateway's first buffer (a covered 3000-byte field): hmac-sha256
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval
::hmac_signed(components => ['"@method"', '"@target-uri"',
              '"content-digest"', '"x-large"'],
              headers => {'x-large' => 'v' x 3000})
. "X-Large: " . ('v' x 3000) . "\n"
--- error_code: 200
--- response_body eval: "ok acme $::body\n"

=== TEST 38c: the same with ed25519
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval
::signed(components => ['"@method"', '"@target-uri"', '"content-digest"',
         '"x-large"'], headers => {'x-large' => 'v' x 3000})
. "X-Large: " . ('v' x 3000) . "\n"
--- error_code: 200
--- response_body eval: "ok acme $::body\n"

=== TEST 38d: the large field changed after signing is refused
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval
::signed(components => ['"@method"', '"@target-uri"', '"content-digest"',
         '"x-large"'], headers => {'x-large' => 'v' x 3000})
. "X-Large: " . ('v' x 2999) . "w\n"
--- error_code: 401
--- response_json
{"code": "signature_invalid", "detail": "the signature does not verify (ed25519)"}

=== TEST 39: openbank_signature needs openbank_auth
--- http_config eval: $::http
--- user_files eval: $::files
--- config
location /v1/ { openbank_signature required; return 200; }
--- must_die
--- error_log
"openbank_signature" requires "openbank_auth"

=== TEST 40: openbank_signature takes off, optional or required
--- http_config eval: $::http
--- user_files eval: $::files
--- config
location /v1/ { openbank_auth api_key; openbank_signature always; }
--- must_die
--- error_log
invalid value "always"
