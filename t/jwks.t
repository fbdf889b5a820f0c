# Partner JWKS files: parsed at load time into ready keys; every mistake
# fails `nginx -t` with the file, the key and what is wrong.  The keys
# below were made with the openssl command and exported with CryptX.

use lib 't/lib';
use OpenBank::Test;

our $rsa = '{"kty":"RSA","kid":"rsa-1","alg":"PS512","use":"sig","e":"AQAB","n":"0XIfc9c1Pmf9TJWkTQuEGyApIwP8FittKKzbCftLOK8GUYaOpjqUNG_43JivudlMfvTBofvelyrrEJCrGavqXtbGafOV5EopIh5s6IulVMeFWkDDfimg1aNYkesybi1PEFz5T4qCN1og6Kt04NS_0TWHNajmUf23FiHwWuY_Wi2fcBpexiFsiKFaWpOpLpzmQbqsgPVfXnpSghUWlY44GPhcS20r9aUu26dkJ6A__h1UinlX-lwd6dD06QjbQoRwfaQb2wPl_ueqjaCht-SJ0mKDZ2-A9TYVWDuyBDFq0oSNmgghwNfAWnUByAVGzbg-XnYavTMiFjy6SvUNeNgGSQ"}';
our $ec = '{"kty":"EC","crv":"P-256","kid":"ec-1","alg":"ES256","x":"aRiAM3YxK2Bg27wXjLLUozCpOdQ1i02YfRm4H2QfChI","y":"L_7Zp3RoTASkl_AF58Ab6KoOC8SW9_cjXwNnbWzOkFQ"}';
our $ed = '{"kty":"OKP","crv":"Ed25519","kid":"ed-1","x":"DVFpUJMmb_10roTjONYKOMovBewW6h00rL2cSb3n-qo"}';
our $sm2 = '{"kty":"EC","crv":"SM2","kid":"sm2-1","x":"oQ2m2paDHVyC5vwEvZu0dhQc4DN9LdQsmqLVETV1U8k","y":"YMaFoiSyZMv50ResHsaiXTNsdwxYI6MneiPlUUfX4-s"}';
our $rsa1024 = '{"kty":"RSA","kid":"small","e":"AQAB","n":"uK78zjXNim-aoQJJ2GNPm49cWgosoLW3a8XzupL6DhNtrLAivnqAhJrRW0OZUO-0_AGj0eMxWRIkrMFei31md9efU39DlSb59dLis65JlsqTdgxM1-nqZieMxNCJKIjhpzXNrXsPh7MAD54xx3B-Bk_J3B_acjcmi_jj4t-s6f0"}';

our $http = <<'EOT';
openbank_zone openbank 1m;
openbank_plan p { rate 10r/s; quota accounts 100/day; }
openbank_partner acme {
    plan p; scopes accounts;
    api_key sha256:1111111111111111111111111111111111111111111111111111111111111111;
    jwks partners/acme.jwks.json;
}
EOT

# a JWKS file made of these keys (JSON texts)
sub jwks { return [['conf/partners/acme.jwks.json',
                    '{"keys": [' . join(',', @_) . ']}']] }

# one key with a member changed ("name" => undef removes it)
sub key_with {
    my ($key, %set) = @_;
    for my $m (keys %set) {
        $key =~ s/"\Q$m\E":("[^"]*"|\d+|true|null),?//;
        $key =~ s/,\}$/}/;
        $key =~ s/^\{/{"$m":$set{$m},/ if defined $set{$m};
    }
    return $key;
}

our $bad = qr/\[emerg\].*jwks "\S+acme\.jwks\.json": /;

run_tests();

__DATA__

=== TEST 1: RSA, EC P-256, Ed25519 and SM2 keys load, nginx serves
--- http_config eval: $::http
--- user_files eval: ::jwks($::rsa, $::ec, $::ed, $::sm2)
--- config
location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body
ok
--- no_error_log
[error]
[emerg]

=== TEST 2: the demo partner's JWKS loads
--- http_config eval: $::http
--- user_files eval
[['conf/partners/acme.jwks.json', do {
    local $/; open my $f, '<', "$::TEST_NGINX_ROOT/conf/demo/demo.jwks.json"
        or die $!; <$f> }]]
--- config
location = /t { return 200 "ok\n"; }
--- request
GET /t
--- response_body
ok

=== TEST 3: not JSON
--- http_config eval: $::http
--- user_files eval: ::jwks('{"kty": "RSA",')
--- config
--- must_die
--- error_log eval
[qr/${bad}is not JSON: /, qr/in \S+nginx\.conf:\d+/]

=== TEST 4: truncated JSON
--- http_config eval: $::http
--- user_files eval
[['conf/partners/acme.jwks.json', substr('{"keys": [' . $::ec . ']}', 0, 60)]]
--- config
--- must_die
--- error_log eval
qr/${bad}is not JSON/

=== TEST 5: an empty file
--- http_config eval: $::http
--- user_files eval
[['conf/partners/acme.jwks.json', '']]
--- config
--- must_die
--- error_log eval
qr/${bad}is empty/

=== TEST 6: no "keys" array
--- http_config eval: $::http
--- user_files eval
[['conf/partners/acme.jwks.json', '{"key": []}']]
--- config
--- must_die
--- error_log eval
qr/${bad}has no "keys" array with a key/

=== TEST 7: an empty "keys" array
--- http_config eval: $::http
--- user_files eval: ::jwks()
--- config
--- must_die
--- error_log eval
qr/${bad}has no "keys" array with a key/

=== TEST 8: a key that is not an object
--- http_config eval: $::http
--- user_files eval: ::jwks($::ec, '"x"')
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[1\] is not an object/

=== TEST 9: a key without kid
--- http_config eval: $::http
--- user_files eval: ::jwks(::key_with($::ec, kid => undef))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] has no "kid"/

=== TEST 10: a kid that is not a string
--- http_config eval: $::http
--- user_files eval: ::jwks(::key_with($::ec, kid => 7))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] "kid" is not a string/

=== TEST 11: an empty kid
--- http_config eval: $::http
--- user_files eval: ::jwks(::key_with($::ec, kid => '""'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] "kid" must have 1 to 128 characters/

=== TEST 12: a duplicate kid
--- http_config eval: $::http
--- user_files eval: ::jwks($::ec, $::ed, ::key_with($::rsa, kid => '"ec-1"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[2\] \(kid "ec-1"\) "kid" is duplicate \(also keys\[0\]\)/

=== TEST 13: an EC private key ("d") is refused
--- http_config eval: $::http
--- user_files eval
::jwks(::key_with($::ec, d => '"vVmSgtTZbP_jhJmRvuouLNMeWLrbj__xKNW-11M00LY"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "ec-1"\) has the private member "d": a JWKS given to the bank must hold public keys only/

=== TEST 14: an RSA key with a private prime is refused
--- http_config eval: $::http
--- user_files eval: ::jwks(::key_with($::rsa, p => '"AQAB"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "rsa-1"\) has the private member "p"/

=== TEST 15: a symmetric key is refused
--- http_config eval: $::http
--- user_files eval: ::jwks('{"kty":"oct","kid":"s","k":"c2VjcmV0"}')
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "s"\) has the private member "k"/

=== TEST 16: an unknown kty
--- http_config eval: $::http
--- user_files eval: ::jwks(::key_with($::ec, kty => '"DSA"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "ec-1"\) unsupported "kty" "DSA" \(RSA, EC or OKP\)/

=== TEST 17: an unknown EC curve
--- http_config eval: $::http
--- user_files eval: ::jwks(::key_with($::ec, crv => '"P-384"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "ec-1"\) unsupported EC curve "P-384"/

=== TEST 18: an unknown OKP curve
--- http_config eval: $::http
--- user_files eval: ::jwks(::key_with($::ed, crv => '"X25519"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "ed-1"\) unsupported OKP curve "X25519"/

=== TEST 19: x is not base64url (padding)
--- http_config eval: $::http
--- user_files eval
::jwks(::key_with($::ed, x => '"DVFpUJMmb_10roTjONYKOMovBewW6h00rL2cSb3n-qo="'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "ed-1"\) "x" is not base64url/

=== TEST 20: x is not base64url (standard alphabet)
--- http_config eval: $::http
--- user_files eval
::jwks(::key_with($::ed, x => '"DVFpUJMmb/10roTjONYKOMovBewW6h00rL2cSb3n+qo"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "ed-1"\) "x" is not base64url/

=== TEST 21: an Ed25519 x of 31 bytes
--- http_config eval: $::http
--- user_files eval
::jwks(::key_with($::ed, x => '"DVFpUJMmb_10roTjONYKOMovBewW6h00rL2cSb3n-g"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "ed-1"\) "x" must be 32 bytes, not 31/

=== TEST 22: an EC y of 33 bytes
--- http_config eval: $::http
--- user_files eval
::jwks(::key_with($::ec, y => '"L_7Zp3RoTASkl_AF58Ab6KoOC8SW9_cjXwNnbWzOkFQA"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "ec-1"\) "x" and "y" must be 32 bytes each, not 32 and 33/

=== TEST 23: an EC point off the curve
--- http_config eval: $::http
--- user_files eval
::jwks(::key_with($::ec, y => '"L_7Zp3RoTASkl_AF58Ab6KoOC8SW9_cjXwNnbWzOkFA"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "ec-1"\) "x", "y" is not a point of the curve/

=== TEST 24: an SM2 point off the curve
--- http_config eval: $::http
--- user_files eval
::jwks(::key_with($::sm2, y => '"YMaFoiSyZMv50ResHsaiXTNsdwxYI6MneiPlUUfX4-A"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "sm2-1"\) "x", "y" is not a point of the curve/

=== TEST 25: an RSA key of 1024 bits
--- http_config eval: $::http
--- user_files eval: ::jwks($::rsa1024)
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "small"\) RSA key of 1024 bits: 2048 to 8192 are accepted/

=== TEST 26: an RSA key without e
--- http_config eval: $::http
--- user_files eval: ::jwks(::key_with($::rsa, e => undef))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "rsa-1"\) has no "e"/

=== TEST 27: an even RSA exponent
--- http_config eval: $::http
--- user_files eval: ::jwks(::key_with($::rsa, e => '"AQAA"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "rsa-1"\) is not a valid RSA public key/

=== TEST 28: an alg that does not fit the key
--- http_config eval: $::http
--- user_files eval: ::jwks(::key_with($::rsa, alg => '"ES256"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "rsa-1"\) "alg" "ES256" does not fit the key type/

=== TEST 29: HS256 on an RSA key
--- http_config eval: $::http
--- user_files eval: ::jwks(::key_with($::rsa, alg => '"HS256"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "rsa-1"\) "alg" "HS256" does not fit the key type/

=== TEST 30: a key for encryption
--- http_config eval: $::http
--- user_files eval: ::jwks(::key_with($::ec, use => '"enc"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "ec-1"\) "use" is "enc", not "sig"/

=== TEST 31: a file over 1 MiB
--- http_config eval: $::http
--- user_files eval
[['conf/partners/acme.jwks.json',
  '{"keys": [' . $::ec . '], "pad": "' . ('a' x (1024 * 1024)) . '"}']]
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*acme\.jwks\.json" is not a regular file of at most 1048576 bytes/

=== TEST 32: a missing file
--- http_config eval: $::http
--- config
--- must_die
--- error_log eval
qr/\[emerg\].*open\(\) "\S+acme\.jwks\.json" failed/

=== TEST 33: a duplicate member in a key
--- http_config eval: $::http
--- user_files eval: ::jwks('{"kid":"a","kid":"b","kty":"OKP","crv":"Ed25519","x":"DVFpUJMmb_10roTjONYKOMovBewW6h00rL2cSb3n-qo"}')
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] "kid" is duplicate/

=== TEST 34: a NUL inside the file
--- http_config eval: $::http
--- user_files eval
[['conf/partners/acme.jwks.json', '{"keys": [' . $::ec . "]}\0junk"]]
--- config
--- must_die
--- error_log eval
qr/${bad}is empty or holds a NUL/

=== TEST 35: x with bits set after its last byte (a second encoding)
--- http_config eval: $::http
--- user_files eval
::jwks(::key_with($::ed, x => '"DVFpUJMmb_10roTjONYKOMovBewW6h00rL2cSb3n-qp"'))
--- config
--- must_die
--- error_log eval
qr/${bad}keys\[0\] \(kid "ed-1"\) "x" is not base64url/
