# openbank_concurrency (docs/resilience.md): the calls in flight to the
# bank, measured at the bank (a backend that counts how many of its calls
# run at once): a partner's share (429 concurrency_limited), the whole
# limit (503 overloaded), both with Retry-After: 1; two partners at once
# each get their share; a slot comes back when the client goes away, and
# when the worker holding it is killed.

use lib 't/lib';
use OpenBank::Test;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use Time::HiRes qw(sleep time);

sub partner ($name) {
    return "openbank_partner $name { plan p; scopes payments; "
         . "api_key sha256:" . sha256_hex("key-$name") . "; }\n";
}

my $http = <<'EOT'
openbank_zone         openbank 1m;
lua_shared_dict       bank 1m;
openbank_plan p { rate 10000r/s burst=10000; }
openbank_concurrency  core 4 per_partner=50%;
openbank_concurrency  solo 2;
upstream bank { server 127.0.0.1:$TEST_NGINX_SERVER_PORT; }
EOT
    . partner('alpha') . partner('beta') . partner('gamma');

my $config = <<'EOT';
location /v1/ {
    openbank_auth         api_key;
    openbank_scope        payments;
    openbank_concurrency  core;
    proxy_pass            http://bank/bank/;
}
location /solo/ {
    openbank_concurrency  solo;
    proxy_pass            http://bank/bank/;
}
location /bank/ {
    content_by_lua_block {
        local bank = ngx.shared.bank
        local now = bank:incr("now", 1, 0)
        if now > (bank:get("max") or 0) then bank:set("max", now) end
        bank:incr("calls", 1, 0)
        ngx.sleep(tonumber(ngx.var.arg_t) or 0)
        bank:incr("now", -1)
        ngx.say("done")
    }
}
location = /bank-max {
    content_by_lua_block {
        local bank = ngx.shared.bank
        ngx.say(bank:get("max") or 0)
        bank:set("max", 0)
    }
}
location = /openbank/status { openbank_status; }
location = /metrics { openbank_metrics; }
EOT

start_nginx({ http_config => $http, config => $config, workers => 2 });
my $port = server_port();
my $log = error_log_offset();

sub bank_max () { 0 + http_request(GET => '/bank-max')->body }
sub limit_status ($name) {
    my $st = decode_json(http_request(GET => '/openbank/status')->body);
    my ($l) = grep { $_->{name} eq $name } @{ $st->{concurrency} };
    return $l;
}
# n calls at once; the statuses, sorted (and the bodies' codes)
sub curl_cmd ($n, $path, $key) {
    my $h = $key ? "-H 'X-API-Key: key-$key'" : '';
    my $urls = join ' ', map { "-o /dev/null http://127.0.0.1:$port$path" }
                         1 .. $n;
    return "curl -s --parallel --parallel-immediate --parallel-max $n $h -w '%{http_code}\\n' "
         . "$urls 2>/dev/null";
}
sub codes ($out) { [ sort map { /^(\d{3})$/ ? $1 : () } split /\n/, $out ] }
sub parallel ($n, $path, $key = undef) {
    my $cmd = curl_cmd($n, $path, $key);
    my $out = `$cmd`;
    return codes($out);
}
sub background ($n, $path, $key, $file) {
    system(curl_cmd($n, $path, $key) . " > $file &");
}
sub wait_in_flight ($name, $n) {
    for (1 .. 50) {
        return 1 if limit_status($name)->{in_flight} == $n;
        sleep(0.1);
    }
    return 0;
}
sub wait_free ($name) { wait_in_flight($name, 0) }

# --- a partner's share: 50% of 4

my $codes = parallel(6, '/v1/pay?t=1', 'alpha');
is_deeply($codes, [200, 200, 429, 429, 429, 429],
          'alpha alone: 2 calls in flight (its share), 4 refused with 429')
    or diag("@$codes");
# (how many overlapped at the bank depends on when each arrived there)
my $max = bank_max();
ok($max >= 1 && $max <= 2, 'the bank saw at most 2 at once') or diag($max);

my $res;
background(2, '/v1/pay?t=1', 'alpha', servroot() . '/bg1');
ok(wait_in_flight('core', 2), 'alpha\'s 2 calls in flight');
$res = http_request(GET => '/v1/pay', { 'X-API-Key' => 'key-alpha' });
is($res->status, 429, 'alpha holds its share: 429');
my $p = decode_json($res->body);
is($p->{code}, 'concurrency_limited', 'concurrency_limited');
like($p->{detail}, qr/partner "alpha" has 2 calls in flight/, 'says why');
is($res->header('Retry-After'), '1', 'Retry-After: 1');
is($res->header('Content-Type'), 'application/problem+json', 'a problem');

my $l = limit_status('core');
is($l->{in_flight}, 2, 'status: 2 in flight');
is_deeply($l->{partners}, { alpha => 2 }, 'status: alpha holds 2');
is($l->{limit}, 4, 'status: the limit');
is($l->{per_partner}, 50, 'status: the share');

$res = http_request(GET => '/v1/pay', { 'X-API-Key' => 'key-beta' });
is($res->status, 200, 'beta meanwhile: its own share');

ok(wait_free('core'), 'the slots come back when the calls end');

# --- two partners' storms at once: each its share, the whole limit taken,
# and a third partner, below its share, finds no slot: 503

background(6, '/v1/pay?t=1', 'alpha', servroot() . '/bg-a');
background(6, '/v1/pay?t=1', 'beta', servroot() . '/bg-b');
ok(wait_in_flight('core', 4), 'the 4 slots taken');
$res = http_request(GET => '/v1/pay', { 'X-API-Key' => 'key-gamma' });
is($res->status, 503, 'all 4 taken: gamma gets 503');
is(decode_json($res->body)->{code}, 'overloaded', 'overloaded');
is($res->header('Retry-After'), '1', 'Retry-After: 1');
ok(wait_free('core'), 'the storms end');
sub slurp ($f) { local (@ARGV, $/) = ($f); <> }
is_deeply(codes(slurp(servroot() . '/bg-a')), [200, 200, (429) x 4],
          "alpha's storm: its 2");
is_deeply(codes(slurp(servroot() . '/bg-b')), [200, 200, (429) x 4],
          "beta's storm: its 2, alpha's did not starve it");
$max = bank_max();
ok($max >= 1 && $max <= 4, 'the bank saw at most 4 at once') or diag($max);

# --- no share: only the limit, 503

$codes = parallel(4, '/solo/x?t=1');
is_deeply($codes, [200, 200, 503, 503], 'solo 2: 2 answered, 2 overloaded')
    or diag("@$codes");
ok(wait_free('solo'), 'solo: free again');

# --- a client that goes away gives its slot back

system("curl -s -o /dev/null --max-time 0.3 -H 'X-API-Key: key-alpha' "
     . "http://127.0.0.1:$port/v1/pay?t=3 & "
     . "curl -s -o /dev/null --max-time 0.3 -H 'X-API-Key: key-alpha' "
     . "http://127.0.0.1:$port/v1/pay?t=3; wait");
ok(wait_free('core'), 'two clients gone after 0.3s: their slots are back');
$res = http_request(GET => '/v1/pay', { 'X-API-Key' => 'key-alpha' });
is($res->status, 200, 'alpha can call again');

# --- a worker killed while it holds slots: the new worker takes them back

background(2, '/v1/pay?t=3', 'alpha', servroot() . '/bg-kill');
background(1, '/solo/x?t=3', undef, servroot() . '/bg-kill2');
my $taken = 0;
for (1 .. 30) {
    $taken = limit_status('core')->{in_flight} + limit_status('solo')->{in_flight};
    last if $taken == 3;
    sleep(0.1);
}
is($taken, 3, '3 slots held');
my @old = worker_pids();
# stopped first, both: the bank's side of a call is in a worker too, and a
# worker still running would see its call fail and give its slot back
kill 'STOP', @old;
kill 'KILL', @old;
my @new;
for (1 .. 50) {
    @new = grep { my $n = $_; !grep { $_ == $n } @old } worker_pids();
    last if @new == 2;
    sleep(0.1);
}
is(scalar @new, 2, 'the master started 2 new workers');
ok(wait_free('core'), 'core: the dead workers\' slots are back');
ok(wait_free('solo'), 'solo: too');
is_deeply(limit_status('core')->{partners}, {}, 'no partner holds any');
ok(limit_status('core')->{reclaimed} >= 2, 'status: counted as reclaimed');
like(error_log_since($log),
     qr/\[warn\].*openbank concurrency "core": \d+ calls in flight of process \d+, which is gone, taken back/,
     'logged at warn');
$codes = parallel(2, '/v1/pay?t=0.2', 'alpha');
is_deeply($codes, [200, 200], 'alpha has its whole share again');

# --- /metrics

my $m = http_request(GET => '/metrics')->body;
like($m, qr/^openbank_concurrency_in_flight\{limit="core"\} 0$/m, 'in flight');
like($m, qr/^openbank_concurrency_limit\{limit="core"\} 4$/m, 'the limit');
like($m, qr/^openbank_concurrency_refusals_total\{limit="core",reason="concurrency_limited"\} (\d+)$/m,
     'refusals: concurrency_limited');
like($m, qr/^openbank_concurrency_refusals_total\{limit="core",reason="overloaded"\} [1-9]/m,
     'refusals: overloaded');
like($m, qr/^openbank_concurrency_refusals_total\{limit="solo",reason="overloaded"\} 2$/m,
     'solo: 2 overloaded');
like($m, qr/^openbank_refusals_total\{reason="concurrency_limited"\} [1-9]/m,
     'among the refusals by reason');

my @bad = grep { /\[(alert|crit|emerg)\]/ && !/exited on signal 9/ }
          split /^/, error_log_since($log);
is(scalar @bad, 0, 'no [alert] but the killed workers\'') or diag(@bad);

stop_nginx();
done_testing();
