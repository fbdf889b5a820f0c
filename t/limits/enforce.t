# The rate is exact across workers under concurrency; the quota is taken
# last, so calls refused by earlier checks never count, and calls refused
# for the quota never reach the bank.

use lib 't/lib';
use OpenBank::Test;
use Digest::SHA qw(sha256_hex);
use Time::HiRes qw(time);

my $root = servroot();

sub partner ($name, $plan, $scopes) {
    return "openbank_partner $name { plan $plan; scopes $scopes; "
         . "api_key sha256:" . sha256_hex("key-$name") . "; }\n";
}

my $http = <<'EOT'
openbank_zone      openbank 1m;
openbank_timezone  +08:00;
lua_shared_dict    hits 1m;
openbank_plan tiny  { rate 5r/m burst=3; quota payments 1000/day; }
openbank_plan small { rate 1000r/s;      quota payments 5/day; }
upstream bank { server 127.0.0.1:$TEST_NGINX_SERVER_PORT; }
EOT
    . partner('hammer', 'tiny', 'payments')
    . partner('counted', 'small', 'payments')
    . partner('outsider', 'small', 'accounts');

my $config = <<'EOT';
location /v1/payments {
    openbank_auth     api_key;
    openbank_scope    payments;
    openbank_product  payments;
    proxy_pass        http://bank/bank;
}
location = /bank {
    content_by_lua_block {
        ngx.shared.hits:incr("payments", 1, 0)
        ngx.say("paid")
    }
}
location = /hits {
    content_by_lua_block { ngx.say(ngx.shared.hits:get("payments") or 0) }
}
location = /openbank/status { openbank_status; }
EOT

start_nginx({ http_config => $http, config => $config, workers => 2 });

my $port = server_port();

# Hundreds of concurrent requests (curl --parallel, 2 workers) against
# 5r/m with burst=3: no more than burst + elapsed x rate are admitted.
my $n = 300;
my $t0 = time;
my @codes = map { /^(\d{3})$/ ? $1 : () }
    `curl -s --parallel --parallel-max 100 -H 'X-API-Key: key-hammer' \\
     -w '%{http_code}\\n' \\
     \$(for i in \$(seq $n); do \\
         echo -o /dev/null http://127.0.0.1:$port/v1/payments; done) \\
     2>/dev/null`;
my $elapsed = time - $t0;
my %count;
$count{$_}++ for @codes;

is(scalar @codes, $n, "$n responses");
my $bound = 3 + int($elapsed * 5 / 60);
ok(($count{200} // 0) >= 3, "the burst is admitted ($count{200})");
ok(($count{200} // 0) <= $bound,
   "no more than burst + elapsed x rate admitted: $count{200} <= $bound "
   . sprintf('(%.1fs)', $elapsed));
is(($count{200} // 0) + ($count{429} // 0), $n, 'every other call is a 429');

my $res = http_request('GET', '/v1/payments', { 'X-API-Key' => 'key-hammer' });
is($res->status, 429, 'still limited');
like($res->header('Retry-After'), qr/^([1-9]|1[0-2])$/,
     'Retry-After: whole seconds, at most one request interval');
like($res->body, qr/"code":"rate_limited"/, 'rate_limited');

is(http_request('GET', '/hits')->body, ($count{200} // 0) . "\n",
   'only the admitted calls reached the bank');

# The quota: 5 a day.  A call refused earlier (scope) takes nothing.
for (1 .. 3) {
    $res = http_request('GET', '/v1/payments', { 'X-API-Key' => 'key-outsider' });
    is($res->status, 403, 'outsider lacks the scope');
}

my $before = http_request('GET', '/hits')->body + 0;
my @st;
for (1 .. 8) {
    $res = http_request('GET', '/v1/payments', { 'X-API-Key' => 'key-counted' });
    push @st, $res->status;
}
is("@st", "200 200 200 200 200 429 429 429", '5 pass, then quota_exceeded');
like($res->body, qr/"code":"quota_exceeded"/, 'the code says why');

# Retry-After: the seconds to the next midnight in +08:00
my $to_midnight = 86400 - (int(time) + 8 * 3600) % 86400;
my $retry = $res->header('Retry-After');
ok(abs($retry - $to_midnight) <= 5,
   "Retry-After $retry is the time to midnight in +08:00 ($to_midnight)");
like($res->header('RateLimit'), qr/"payments-day";r=0;t=\d+$/, 'r=0');

is(http_request('GET', '/hits')->body + 0, $before + 5,
   'the refused calls never reached the bank');

# a quota refusal does not count against the rate either (1000r/s: the
# rate shows a full bucket less only the 5 admitted calls at most)
like($res->header('RateLimit'), qr/^"rate";r=(99[5-9]|1000);t=[01],/,
     'quota refusals gave their rate unit back');

my $status = http_request('GET', '/openbank/status')->body;
like($status, qr/"name":"outsider".*?"product":"payments","window":"day","limit":5,"used":0,/,
     'the scope refusals did not take a unit');
like($status, qr/"name":"counted".*?"product":"payments","window":"day","limit":5,"used":5,"remaining":0,/,
     'status: used 5, remaining 0');

stop_nginx();
done_testing();
