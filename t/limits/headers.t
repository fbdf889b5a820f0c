# RateLimit-Policy and RateLimit (docs/limits.md) on every API response once
# the partner is known, 429s and other refusals included; 429 with
# Retry-After for the rate and for the quota.

use lib 't/lib';
use OpenBank::Test;
use Digest::SHA qw(sha256_hex);

# The expected window of a month quota: the current month's length in
# +08:00, computed here independently of the module (POSIX, not its code).
use POSIX qw(floor);
sub month_seconds {
    my @t = gmtime(time + 8 * 3600);
    my ($y, $m) = ($t[5] + 1900, $t[4] + 1);
    my @days = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31);
    my $d = $days[$m - 1];
    $d = 29 if $m == 2 && (($y % 4 == 0 && $y % 100 != 0) || $y % 400 == 0);
    return $d * 86400;
}
sub to_midnight {    # seconds to the next midnight in +08:00
    my $local = time + 8 * 3600;
    return 86400 - $local % 86400;
}
our $month = month_seconds();

my ($acme, $slow, $nosc, $slower) =
    map { sha256_hex($_) } qw(key-acme key-slow key-nosc key-slower);

our $http = <<"EOT";
openbank_zone      openbank 1m;
openbank_timezone  +08:00;
openbank_plan gold {
    rate   100r/s burst=200;
    quota  payments      50000/day;
    quota  verification  1000000/month;
}
openbank_plan slow {
    rate   5r/m burst=2;
    quota  payments  100/day;
}
openbank_partner acme {
    plan     gold;
    scopes   payments verification;
    api_key  sha256:$acme;
}
openbank_partner slowco {
    plan     slow;
    scopes   payments;
    api_key  sha256:$slow;
    quota    payments 80000/day;
}
openbank_plan slower {
    rate   1r/m;
    quota  payments  100/day;
}
openbank_partner slower {
    plan     slower;
    scopes   payments;
    api_key  sha256:$slower;
}
openbank_partner nosc {
    plan     gold;
    scopes   verification;
    api_key  sha256:$nosc;
}
EOT

our $config = <<'EOT';
location /v1/payments {
    openbank_auth     api_key;
    openbank_scope    payments;
    openbank_product  payments;
    content_by_lua_block { ngx.say("paid") }
}
location /v1/account-verifications {
    openbank_auth     api_key;
    openbank_scope    verification;
    openbank_product  verification;
    content_by_lua_block { ngx.say("verified") }
}
location /v1/ping {
    openbank_auth     api_key;
    content_by_lua_block { ngx.say("pong") }
}
EOT

repeat_each(2);
run_tests();

__DATA__

=== TEST 1: the contract's example: a rate item and a day quota item
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers
X-API-Key: key-acme
--- error_code: 200
--- response_headers
RateLimit-Policy: "rate";q=100;w=1, "payments-day";q=50000;w=86400
!Retry-After
--- response_headers_like
RateLimit: ^"rate";r=19[89];t=1, "payments-day";r=4999[89];t=\d+$
--- response_body
paid
--- no_error_log
[error]


=== TEST 2: a month quota: w is the length of the current month in +08:00
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/account-verifications
--- more_headers
X-API-Key: key-acme
--- error_code: 200
--- response_headers eval
qq{RateLimit-Policy: "rate";q=100;w=1, "verification-month";q=1000000;w=$::month\n}
--- response_headers_like
RateLimit: ^"rate";r=\d+;t=1, "verification-month";r=99999[89];t=\d+$
--- no_error_log
[error]


=== TEST 3: the partner's own quota line wins over its plan's; w=60 for r/m
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers
X-API-Key: key-slow
--- error_code: 200
--- response_headers
RateLimit-Policy: "rate";q=5;w=60, "payments-day";q=80000;w=86400
--- response_headers_like
RateLimit: ^"rate";r=[01];t=([1-9]|1\d|2[0-4]), "payments-day";r=7999[89];t=\d+$
--- no_error_log
[error]


=== TEST 4: a location without a product shows the rate item only
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/ping
--- more_headers
X-API-Key: key-acme
--- error_code: 200
--- response_headers_like
RateLimit-Policy: ^"rate";q=100;w=1$
RateLimit: ^"rate";r=\d+;t=1$
--- no_error_log
[error]


=== TEST 5: a refusal after identify (403) carries the headers and takes no quota
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers
X-API-Key: key-nosc
--- error_code: 403
--- response_headers
RateLimit-Policy: "rate";q=100;w=1, "payments-day";q=50000;w=86400
--- response_headers_like
RateLimit: ^"rate";r=19[89];t=1, "payments-day";r=50000;t=\d+$
--- response_json
{"code": "insufficient_scope"}


=== TEST 6: no partner, no rate headers (401)
--- http_config eval: $::http
--- config eval: $::config
--- request
GET /v1/payments
--- more_headers
X-API-Key: key-nobody
--- error_code: 401
--- response_headers
!RateLimit-Policy
!RateLimit


=== TEST 7: the first call of a 1r/m partner passes
--- http_config eval: $::http
--- config eval: $::config
--- no_repeat
--- request
GET /v1/payments
--- more_headers
X-API-Key: key-slower
--- error_code: 200
--- response_headers_like
RateLimit: ^"rate";r=0;t=60, "payments-day";r=99;t=\d+$
RateLimit-Policy: ^"rate";q=1;w=60, "payments-day";q=100;w=86400$


=== TEST 8: the next is 429 rate_limited, Retry-After in whole seconds, headers
--- http_config eval: $::http
--- config eval: $::config
--- no_repeat
--- request
GET /v1/payments
--- more_headers
X-API-Key: key-slower
--- error_code: 429
--- response_headers_like
Retry-After: ^([1-9]|[1-5]\d|60)$
RateLimit: ^"rate";r=0;t=([1-9]|[1-5]\d|60), "payments-day";r=99;t=\d+$
RateLimit-Policy: ^"rate";q=1;w=60, "payments-day";q=100;w=86400$
--- response_json
{"code": "rate_limited", "status": 429, "type": "urn:openbank:problem:rate_limited",
 "request_id": "~^[0-9a-f-]{36}$"}
--- no_error_log
[error]
