# The access-phase pipeline (docs/architecture.md, "One request"): a
# location runs only the checks that apply to it, in their order, each
# logged at debug level as "openbank check <name>: <rc>" (-5 is
# NGX_DECLINED, the request goes on; -4 NGX_DONE, it waits for its body;
# else the status it is refused with); the others are skipped, unlogged.
# The body is read once, for every check that needs it, when the first
# asks for it.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Signer;
use Digest::SHA qw(sha256_hex);

our $secret = 'a-shared-secret-of-more-than-32-bytes!';
our $body = '{"amount":{"value":"12.50","currency":"CNY"}}';
our $big = '{"reference":"' . ('b' x 100_000) . '"}';

our $http = <<"EOT";
openbank_zone        openbank 1m;
openbank_state       \$TEST_NGINX_SERVROOT/state;
openbank_clock_skew  300s;
openbank_plan p { rate 1000r/s; quota payments 100000/day; }
openbank_partner acme {
    plan         p;
    scopes       payments;
    api_key      sha256:@{[ sha256_hex('key-acme') ]};
    hmac_secret  partners/acme.hmac;
}
EOT

our $config = <<'EOT';
openbank_idempotency optional;

location /keyed/ {
    openbank_auth         api_key;
    openbank_scope        payments;
    openbank_idempotency  off;
    content_by_lua_block { ngx.say("keyed") }
}
location /both/ {
    openbank_auth         api_key token;
    openbank_idempotency  off;
    content_by_lua_block { ngx.say("both") }
}
location /sunset/ {
    openbank_version_sunset 2099-06-30T00:00:00Z deprecated=2026-01-01;
    content_by_lua_block { ngx.say("sunset ", ngx.var.request_method) }
}
location /signed/ {
    openbank_auth         api_key;
    openbank_product      payments;
    openbank_signature    required;
    openbank_idempotency  required;
    content_by_lua_block {
        ngx.req.read_body()
        local file = ngx.req.get_body_file()
        ngx.say("signed ", file and "in a file" or ngx.req.get_body_data())
    }
}
EOT

our $files = [['conf/partners/acme.hmac', "$secret\n"]];

# a request signed by acme, "created" ahead inside the clock skew (the
# harness signs before nginx starts, which refuses older signatures)
sub signed {
    my ($body, $key) = @_;
    my @h = sign_request(method => 'POST', path => '/signed/pay',
                         authority => 'localhost', body => $body,
                         alg => 'hmac-sha256', key => $secret,
                         keyid => 'hmac', created => time + 150);
    return join("\n", 'X-API-Key: key-acme', "Idempotency-Key: $key", @h)
           . "\n";
}

repeat_each(2);
run_tests();

__DATA__

=== TEST 1: an API-key location with a scope runs identify, rate and scope only
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request
GET /keyed/accounts
--- more_headers
X-API-Key: key-acme
--- error_code: 200
--- response_body
keyed
--- error_log
openbank check identify: -5
openbank check rate: -5
openbank check scope: -5
--- no_error_log
openbank check version:
openbank check binding:
openbank check signature:
openbank check idempotency:
openbank check quota:
[error]


=== TEST 2: a refusal ends the pipeline: no check runs after it
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request
GET /keyed/accounts
--- more_headers
X-API-Key: not-a-key
--- error_code: 401
--- response_json
{"code": "invalid_token"}
--- error_log
openbank check identify: 401
--- no_error_log
openbank check rate:
openbank check scope:
[error]


=== TEST 3: where access tokens are accepted the binding check runs too
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request
GET /both/accounts
--- more_headers
X-API-Key: key-acme
--- error_code: 200
--- error_log
openbank check identify: -5
openbank check rate: -5
openbank check binding: -5
--- no_error_log
openbank check scope:
openbank check quota:
[error]


=== TEST 4: a sunset-only location runs the version check alone, even for a POST under a server-level idempotency
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request
POST /sunset/accounts
{}
--- error_code: 200
--- response_headers
Deprecation: @1767225600
Sunset: Tue, 30 Jun 2099 00:00:00 GMT
!RateLimit
--- response_body
sunset POST
--- error_log
openbank check version: -5
--- no_error_log
openbank check identify:
openbank check rate:
openbank check idempotency:
openbank check quota:
[error]


=== TEST 5: signature and idempotency share one read of the body
--- no_repeat
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /signed/pay\n$::body"
--- more_headers eval: ::signed($::body, 'pipe-1')
--- error_code: 200
--- response_body eval: "signed $::body\n"
--- error_log
openbank check identify: -5
openbank check rate: -5
openbank reads the body for check signature
openbank check signature: -5
openbank check idempotency: -5
openbank check quota: -5
--- no_error_log
openbank check version:
openbank check scope:
openbank check binding:
openbank reads the body for check idempotency
[error]


=== TEST 6: a body in a temporary file too, which keeps its name
--- no_repeat
--- http_config eval: $::http
--- user_files eval: $::files
--- config eval: $::config
--- request eval: "POST /signed/pay\n$::big"
--- more_headers eval: ::signed($::big, 'pipe-2')
--- error_code: 200
--- response_body
signed in a file
--- error_log
openbank reads the body for check signature
openbank check signature: -5
openbank check idempotency: -5
openbank check quota: -5
--- no_error_log
openbank reads the body for check idempotency
[error]
