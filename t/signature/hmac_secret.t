# The hmac_secret file: a secret written as text (openssl rand -hex or
# -base64, an editor) loses its one final newline, LF or CRLF; a binary
# secret (openssl rand 40) is used byte for byte, even when its last random
# byte is 0x0a.  Each block signs a fresh request with t/lib/OpenBank/Signer.pm,
# "created" ahead of nginx's start (see t/signature/verify.t).

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Signer;
use Digest::SHA qw(sha256_hex);

our $body = '{"amount":{"value":"12.50","currency":"CNY"}}';

# 40 random-looking bytes, not text, the last one a newline
our $binary = join('', map { chr(($_ * 97 + 13) % 256) } 1 .. 39) . "\n";
our $text = 'b3f1c2d4e5a6978812345678abcdef0123456789abcdef0123456789abcdef01';

our $http = "openbank_zone openbank 1m;\nopenbank_clock_skew 300s;\n"
    . "openbank_plan p { rate 1000r/s; quota payments 100000/day; }\n"
    . "openbank_partner acme { plan p; scopes payments; api_key sha256:"
    . sha256_hex('key-acme') . "; hmac_secret partners/acme.hmac; }\n";

our $config = <<'EOT';
location /v1/ {
    openbank_auth       api_key;
    openbank_scope      payments;
    openbank_signature  required;
    content_by_lua_block { ngx.say("ok ", ngx.var.openbank_partner) }
}
EOT

sub files { [['conf/partners/acme.hmac', $_[0]]] }

# the headers of a request signed with this HMAC key
sub signed {
    my ($key) = @_;
    my @h = sign_request(method => 'POST', path => '/v1/pay',
                         authority => 'localhost', body => $body,
                         alg => 'hmac-sha256', key => $key, keyid => 'hmac',
                         created => time + 150);
    return join("\n", 'X-API-Key: key-acme', @h) . "\n";
}

run_tests();

__DATA__

=== TEST 1: a binary secret ending in a newline: signed with all its bytes
--- http_config eval: $::http
--- user_files eval: ::files($::binary)
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed($::binary)
--- error_code: 200
--- response_body
ok acme
--- no_error_log
[error]

=== TEST 2: a binary secret: its final newline is part of it
--- http_config eval: $::http
--- user_files eval: ::files($::binary)
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed(substr($::binary, 0, -1))
--- error_code: 401
--- response_json
{"code": "signature_invalid"}

=== TEST 3: a text secret with a final newline (openssl rand -hex 32 > file)
--- http_config eval: $::http
--- user_files eval: ::files("$::text\n")
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed($::text)
--- error_code: 200
--- response_body
ok acme
--- no_error_log
[error]

=== TEST 4: a text secret with a final CRLF (an editor on Windows)
--- http_config eval: $::http
--- user_files eval: ::files("$::text\r\n")
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed($::text)
--- error_code: 200
--- response_body
ok acme
--- no_error_log
[error]

=== TEST 5: a text secret without a newline
--- http_config eval: $::http
--- user_files eval: ::files($::text)
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed($::text)
--- error_code: 200
--- response_body
ok acme
--- no_error_log
[error]

=== TEST 6: a text secret: only one newline is dropped
--- http_config eval: $::http
--- user_files eval: ::files("$::text\n\n")
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed($::text)
--- error_code: 401
--- response_json
{"code": "signature_invalid"}

=== TEST 7: a text secret with a space inside is still text
--- http_config eval: $::http
--- user_files eval: ::files("correct horse battery staple, twice over\n")
--- config eval: $::config
--- request eval: "POST /v1/pay\n$::body"
--- more_headers eval: ::signed("correct horse battery staple, twice over")
--- error_code: 200
--- response_body
ok acme
--- no_error_log
[error]
