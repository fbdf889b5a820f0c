# openbank_status (JSON) and openbank_metrics (Prometheus text) show the
# rate state, each quota's used / limit / remaining / reset, requests by
# partner, product and status, refusals by reason, latency, zone use.

use lib 't/lib';
use OpenBank::Test;
use Digest::SHA qw(sha256_hex);
use JSON::PP qw(decode_json);

my $http = "openbank_zone openbank 1m;\n"
    . "openbank_timezone +08:00;\n"
    . "openbank_plan gold { rate 2r/m burst=3; quota payments 50000/day; "
    . "quota verification 1000/month; }\n"
    . "openbank_partner acme { plan gold; scopes payments verification; "
    . "api_key sha256:" . sha256_hex('key-acme') . "; "
    . "quota payments 80000/day; }\n"
    . "openbank_partner globex { plan gold; scopes verification; "
    . "api_key sha256:" . sha256_hex('key-globex') . "; }\n";

my $config = <<'EOT';
location /v1/payments {
    openbank_auth     api_key;
    openbank_scope    payments;
    openbank_product  payments;
    content_by_lua_block { ngx.say("paid") }
}
location ~ '^/v1/we"ird\d' {
    openbank_auth     api_key;
    content_by_lua_block { ngx.say("odd") }
}
location = /openbank/status { openbank_status; }
location = /metrics         { openbank_metrics; }
EOT

start_nginx({ http_config => $http, config => $config, workers => 2 });

sub pay ($key) {
    return http_request('GET', '/v1/payments', { 'X-API-Key' => $key })->status;
}

my @st = map { pay('key-acme') } 1 .. 5;
is("@st", '200 200 200 429 429', 'acme: the burst of 3, then 429');
is(pay('key-globex'), 403, 'globex: no payments scope');
is(pay('key-nobody'), 401, 'an unknown key');

my $res = http_request('GET', '/openbank/status');
is($res->status, 200, 'status');
is(http_request('GET', '/v1/we%22ird7', { 'X-API-Key' => 'key-globex' })->status,
   200, 'a regex location with a quote and a backslash');
like($res->header('Content-Type'), qr{^application/json}, 'JSON');
my $s = decode_json($res->body);

my ($acme) = grep { $_->{name} eq 'acme' } @{ $s->{partners} };
is($acme->{plan}, 'gold', 'plan');
is_deeply([ @{ $acme->{rate} }{qw(limit period burst remaining)} ],
          [2, 60, 3, 0], 'rate: 2 a minute, burst 3, none left');
ok($acme->{rate}{reset} > 60 && $acme->{rate}{reset} <= 90,
   "rate: full again in about 90 s ($acme->{rate}{reset})");

my %q = map { $_->{product} => $_ } @{ $acme->{quotas} };
is_deeply([ sort keys %q ], ['payments', 'verification'],
          'each product once (the override replaces the plan\'s)');
is_deeply([ @{ $q{payments} }{qw(window limit used remaining)} ],
          ['day', 80000, 3, 79997], 'payments: the override, 3 used');
my $to_midnight = 86400 - (time + 8 * 3600) % 86400;
ok(abs($q{payments}{reset} - $to_midnight) <= 5, 'reset: to midnight +08:00');
is(($q{payments}{window_start} + 8 * 3600) % 86400, 0,
   'the window starts at midnight +08:00');
is_deeply([ @{ $q{verification} }{qw(window limit used remaining)} ],
          ['month', 1000, 0, 1000], 'verification: untouched');

my ($globex) = grep { $_->{name} eq 'globex' } @{ $s->{partners} };
is($globex->{rate}{remaining}, 2, 'globex: its 403 took a rate unit');
is((grep { $_->{product} eq 'payments' } @{ $globex->{quotas} })[0]{used}, 0,
   'but no quota');

# ?partner=NAME: that partner alone, the same figures
my $one = decode_json(http_request('GET', '/openbank/status?partner=acme')
                      ->body);
is_deeply([ map { $_->{name} } @{ $one->{partners} } ], ['acme'],
          '?partner=acme: acme alone');
is_deeply($one->{partners}[0]{quotas}, $acme->{quotas}, 'with its quotas');
$one = decode_json(http_request('GET', '/openbank/status?partner=acm')->body);
is_deeply($one->{partners}, [], '?partner=acm: no partner (no prefix match)');
is($one->{zone}{name}, 'openbank', 'and the zone all the same');

is($s->{zone}{name}, 'openbank', 'zone name');
is($s->{zone}{size}, 1048576, 'zone size');
ok($s->{zone}{used} > 0 && $s->{zone}{used} <= $s->{zone}{size}, 'zone used');
ok($s->{zone}{records} >= 3, "records ($s->{zone}{records})");

$res = http_request('GET', '/metrics');
is($res->status, 200, 'metrics');
like($res->header('Content-Type'), qr{^text/plain; version=0\.0\.4}, 'text format');
my $m = $res->body;

sub metric ($name) {
    return $m =~ /^\Q$name\E (\S+)$/m ? $1 : undef;
}

is(metric('openbank_requests_total{partner="acme",product="payments",status="200",endpoint="/v1/payments"}'),
   3, 'acme 200s');
is(metric('openbank_requests_total{partner="acme",product="payments",status="429",endpoint="/v1/payments"}'),
   2, 'acme 429s');
is(metric('openbank_requests_total{partner="globex",product="payments",status="403",endpoint="/v1/payments"}'),
   1, 'globex 403');
is(metric('openbank_requests_total{partner="",product="payments",status="401",endpoint="/v1/payments"}'),
   1, 'unknown partner: empty label');
is(metric('openbank_requests_total{partner="globex",product="",status="200",endpoint="^/v1/we\\"ird\\\\d"}'),
   1, 'the endpoint label is escaped');
is(metric('openbank_refusals_total{reason="rate_limited"}'), 2, 'rate_limited');
is(metric('openbank_refusals_total{reason="insufficient_scope"}'), 1, 'scope');
is(metric('openbank_refusals_total{reason="invalid_token"}'), 1, 'invalid_token');
is(metric('openbank_refusals_total{reason="quota_exceeded"}'), 0, 'no quota refusal');
is(metric('openbank_request_duration_seconds_count'), 8, 'eight API requests timed');
is(metric('openbank_request_duration_seconds_bucket{le="+Inf"}'), 8, '+Inf bucket');
my @b = $m =~ /^openbank_request_duration_seconds_bucket\{le="[^"]+"\} (\d+)$/mg;
is_deeply([ sort { $a <=> $b } @b ], \@b, 'buckets are cumulative');
like($m, qr/^# TYPE openbank_request_duration_seconds histogram$/m, 'histogram type');
is(metric('openbank_zone_size_bytes{zone="openbank"}'), 1048576, 'zone size');
ok(metric('openbank_zone_used_bytes{zone="openbank"}') > 0, 'zone used');
ok(metric('openbank_zone_records{zone="openbank"}') > 0, 'zone records');
is(metric('openbank_metrics_dropped_total'), 0, 'nothing dropped');

# status and metrics are not API calls: they count nothing
$res = http_request('GET', '/metrics');
is(($res->body =~ /^openbank_request_duration_seconds_count (\d+)$/m)[0], 8,
   'scrapes are not counted');

stop_nginx();
done_testing();
