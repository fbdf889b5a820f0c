# Quotas count per calendar day and month in openbank_timezone (+08:00),
# with real month lengths: nginx runs under Debian's libfaketime, started
# a few seconds before midnight in +08:00 (still the afternoon in UTC).

use lib 't/lib';
use OpenBank::Test;
use Digest::SHA qw(sha256_hex);
use JSON::PP qw(decode_json);
use Time::Local qw(timegm);

my $lib = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

plan skip_all => 'libfaketime is not installed' unless -f $lib;
plan skip_all => 'LD_PRELOAD belongs to ASan in this run'
    if $ENV{TEST_NGINX_ASAN};

my $http = "openbank_zone openbank 1m;\n"
    . "openbank_timezone +08:00;\n"
    . "openbank_plan p { rate 1000r/s; quota payments 2/day; "
    . "quota accounts 2/month; }\n"
    . "openbank_partner acme { plan p; scopes payments accounts; "
    . "api_key sha256:" . sha256_hex('key-acme') . "; }\n";

my $config = <<'EOT';
location /v1/payments {
    openbank_auth     api_key;
    openbank_scope    payments;
    openbank_product  payments;
    content_by_lua_block { ngx.say("paid") }
}
location /v1/accounts {
    openbank_auth     api_key;
    openbank_scope    accounts;
    openbank_product  accounts;
    content_by_lua_block { ngx.say("accounts") }
}
location = /openbank/status { openbank_status; }
EOT

sub call ($product) {
    return http_request('GET', "/v1/$product", { 'X-API-Key' => 'key-acme' });
}

sub quota_of ($product) {
    my $s = decode_json(http_request('GET', '/openbank/status')->body);
    my ($q) = grep { $_->{product} eq $product } @{ $s->{partners}[0]{quotas} };
    return $q;
}

# $start: a UTC time a few seconds before midnight in +08:00;
# $days, $next: the lengths of that month and of the next one
sub rollover ($start, $days, $next, $month_start, $next_start) {
    local $ENV{TZ} = 'UTC';
    # libfaketime reads FAKETIME again every few seconds: nginx must keep
    # it in its workers' environment ("env"), and an offset is stable
    my ($y, $mo, $d, $h, $mi, $se) = $start =~ /(\d+)/g;
    my $offset = timegm($se, $mi, $h, $d, $mo - 1, $y) - time;
    local $ENV{FAKETIME} = sprintf('%+ds', $offset);
    local $ENV{FAKETIME_DONT_FAKE_MONOTONIC} = 1;
    local $ENV{LD_PRELOAD} = $lib;

    start_nginx({ main_config => "env FAKETIME;\nenv FAKETIME_DONT_FAKE_MONOTONIC;",
                  http_config => $http, config => $config, workers => 2 });

    is(call('payments')->status, 200, "$start: payment") for 1 .. 2;
    my $res = call('payments');
    is($res->status, 429, 'the day quota is spent');
    ok($res->header('Retry-After') >= 1 && $res->header('Retry-After') <= 10,
       'Retry-After: seconds to midnight in +08:00, not in UTC ('
       . $res->header('Retry-After') . ')');

    is(call('accounts')->status, 200, 'accounts call') for 1 .. 2;
    $res = call('accounts');
    is($res->status, 429, 'the month quota is spent');
    like($res->header('RateLimit-Policy'),
         qr/"accounts-month";q=2;w=@{[$days * 86400]}$/,
         "w is this month's length: $days days");
    is(quota_of('accounts')->{window_start}, $month_start,
       'the month began at midnight +08:00 on its first day');

    sleep 12;   # past midnight in +08:00

    $res = call('payments');
    is($res->status, 200, 'a new day: payments again');
    like($res->header('RateLimit'), qr/"payments-day";r=1;t=(\d+)$/, 'r=1');
    my ($t) = $res->header('RateLimit') =~ /t=(\d+)$/;
    ok($t > 86000 && $t <= 86400, "t is about a day ($t)");

    $res = call('accounts');
    is($res->status, 200, 'a new month: accounts again');
    like($res->header('RateLimit-Policy'),
         qr/"accounts-month";q=2;w=@{[$next * 86400]}$/,
         "w is the new month's length: $next days");
    is(quota_of('accounts')->{window_start}, $next_start, 'new window start');
    is(quota_of('accounts')->{used}, 1, 'one used in the new month');

    stop_nginx();
}

# 2026-11-30 23:59:50 in +08:00: November has 30 days, December 31
rollover('2026-11-30 15:59:50', 30, 31,
         timegm(0, 0, 16, 31, 9, 2026), timegm(0, 0, 16, 30, 10, 2026));

# 2028-02-29 23:59:50 in +08:00: a leap February, then March
rollover('2028-02-29 15:59:50', 29, 31,
         timegm(0, 0, 16, 31, 0, 2028), timegm(0, 0, 16, 29, 1, 2028));

done_testing();
