# Circuit breakers (docs/resilience.md) in front of a controllable bank:
# a backend in the same nginx that answers, fails with 500, answers 404,
# hangs past the proxy's timeout, answers slowly, and an upstream that
# refuses connections.  Two workers, the API on a reuseport listener so
# that connections spread over both: the breaker's state is the zone's.

use lib 't/lib';
use OpenBank::Test;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep);

sub free_port () {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1)
        or die "no free port: $!";
    my $port = $s->sockport;
    close $s;
    return $port;
}

my $api = free_port();
my $closed = free_port();

my $http = <<"EOT";
openbank_zone      openbank 1m;
lua_shared_dict    bank 1m;

openbank_breaker   core    failures=50% window=10s minimum=4 open=2s probes=2;
openbank_breaker   other   failures=50% minimum=4 open=30s probes=1;
openbank_breaker   refused minimum=3 open=30s;
openbank_breaker   hangs   minimum=2 open=30s;
openbank_breaker   slow    failures=100% slow=200ms:50% minimum=4 open=30s;

upstream bank   { server 127.0.0.1:\$TEST_NGINX_SERVER_PORT; }
upstream closed { server 127.0.0.1:$closed max_fails=0; }

server {
    listen 127.0.0.1:$api reuseport;
    add_header X-Worker \$pid always;

    location /core/    { openbank_breaker core;    proxy_pass http://bank/bank/; }
    location /other/   { openbank_breaker other;   proxy_pass http://bank/bank/; }
    location /refused/ { openbank_breaker refused; proxy_pass http://closed/; }
    location /hangs/   {
        openbank_breaker hangs;
        proxy_read_timeout 200ms;
        proxy_pass http://bank/bank/;
    }
    location /slow/    { openbank_breaker slow;    proxy_pass http://bank/bank/; }
    location = /openbank/status { openbank_status; }
    location = /metrics { openbank_metrics; }
}
EOT

my $config = <<'EOT';
location /bank/ {
    content_by_lua_block {
        local bank = ngx.shared.bank
        local what = ngx.var.uri:match("^/bank/(%w+)")
        bank:incr("hits", 1, 0)
        bank:incr("hits:" .. what, 1, 0)
        if what == "fail" then
            return ngx.exit(500)
        elseif what == "missing" then
            return ngx.exit(404)
        elseif what == "hang" then
            ngx.sleep(1)
        elseif what == "slow" then
            ngx.sleep(0.3)
        elseif what == "probe" then
            ngx.sleep(1)
        end
        ngx.say("paid")
    }
}
location = /hits {
    content_by_lua_block {
        ngx.say(ngx.shared.bank:get("hits:" .. ngx.var.arg_what) or 0)
    }
}
EOT

start_nginx({ http_config => $http, config => $config, workers => 2 });
my $log = error_log_offset();

sub get ($path) { http_request(GET => $path, undef, undef, { port => $api }) }
# a call counts once it has ended, in its log phase, just after its answer
sub settle () { sleep(0.2) }
sub hits ($what) { 0 + http_request(GET => "/hits?what=$what")->body }
sub status ($name) {
    my $st = decode_json(get('/openbank/status')->body);
    my ($b) = grep { $_->{name} eq $name } @{ $st->{breakers} };
    return $b;
}
# the [warn] lines so far, once the log phase that writes them is done
sub warns () {
    settle();
    return join '', grep { /\[warn\]/ } split /^/, error_log_since($log);
}
sub parallel ($n, $path) {
    my $urls = join ' ', map { "-o /dev/null http://127.0.0.1:$api$path" } 1 .. $n;
    return [ sort map { /^(\d{3})$/ ? $1 : () }
             `curl -s --parallel --parallel-immediate --parallel-max $n -w '%{http_code}\\n' $urls 2>/dev/null` ];
}

# --- closed: failures below the minimum reach the bank and do not open it

for my $i (1 .. 3) {
    is(get('/core/fail')->status, 500, "failure $i reaches the bank: 500");
}
settle();
is(hits('fail'), 3, 'the bank saw the 3 calls');
my $b = status('core');
is($b->{state}, 'closed', 'below the minimum: closed');
is_deeply($b->{window}, { calls => 3, failures => 3, slow => 0 },
          'the window counts 3 calls, 3 failed');

# --- the minimum reached with 100% failed: it opens

is(get('/core/fail')->status, 500, 'the 4th failure reaches the bank');
like(warns(), qr/\[warn\].*openbank breaker "core" opened: 4 of the last 4 (?#
    )calls failed and 0 were slow/,
     'the transition is logged at warn');

my $res = get('/core/ok');
is($res->status, 503, 'open: 503');
is($res->header('Content-Type'), 'application/problem+json', 'a problem');
is(decode_json($res->body)->{code}, 'circuit_open', 'circuit_open');
like($res->header('Retry-After'), qr/^[12]$/,
     'Retry-After: the seconds to half-open (open=2s)');
like($res->header('X-Request-ID'), qr/^[0-9a-f-]{36}$/, 'with a request id');

# no call reaches the bank while open, whichever worker takes it
my %workers;
for (1 .. 40) {
    my $r = get('/core/ok');
    $workers{ $r->header('X-Worker') }++ if $r->status == 503;
}
is(hits('ok'), 0, 'no call reached the bank while open');
is(scalar keys %workers, 2, 'both workers refused calls: one state')
    or diag(explain(\%workers));

$b = status('core');
is($b->{state}, 'open', 'status: open');
ok($b->{refused} >= 41, "status: refusals counted ($b->{refused})");
is($b->{transitions}{open}, 1, 'status: opened once');

# another breaker is independent
is(get('/other/ok')->status, 200, 'breaker "other" is closed: 200');
is(hits('ok'), 1, '... and its call reached the bank');

# --- half-open: exactly "probes" calls go to the bank

sleep(2.2);
my $codes = parallel(6, '/core/probe');
is_deeply($codes, [200, 200, 503, 503, 503, 503],
          'half-open: 2 probes answered, 4 calls refused')
    or diag("@$codes");
is(hits('probe'), 2, 'exactly 2 calls reached the bank');
like(warns(), qr/openbank breaker "core" half-open: 2 probe/,
     'half-open logged');
like(warns(),
     qr/openbank breaker "core" closed: 2 probe calls succeeded/,
     'both succeeded: closed, logged');
is(get('/core/ok')->status, 200, 'closed: calls go again');
settle();
is(status('core')->{state}, 'closed', 'status: closed');

# --- a 4xx is the caller's: a success for the breaker

for (1 .. 6) { get('/core/missing') }
settle();
$b = status('core');
is($b->{state}, 'closed', '6 answers 404: still closed');
is($b->{window}{failures}, 0, 'no failure counted for a 404');
is($b->{window}{calls}, 7, 'but calls counted (and the 200)');

# --- a failed probe opens it again

for (1 .. 6) { get('/core/fail') }
settle();
is(status('core')->{state}, 'closed', '6 failures of 13 calls: below 50%');
is(get('/core/fail')->status, 500, 'a 7th failure');
settle();
is(get('/core/ok')->status, 503, '7 failures of 14 calls: open again');
sleep(2.2);
is(get('/core/fail')->status, 500, 'half-open: the probe reaches the bank');
settle();
$res = get('/core/ok');
is($res->status, 503, 'the probe failed: open again');
like($res->header('Retry-After'), qr/^[12]$/, 'for "open" again');
like(warns(),
     qr/openbank breaker "core" opened again: a probe failed \(status 500\)/,
     'logged');

# --- connection refused and timeouts are failures

for (1 .. 3) {
    is(get('/refused/x')->status, 502, 'connection refused: 502');
}
settle();
is(get('/refused/x')->status, 503, 'then the breaker is open');
is(status('refused')->{state}, 'open', 'status: open');

is(get('/hangs/hang')->status, 504, 'a timeout: 504');
is(get('/hangs/hang')->status, 504, 'a second timeout: 504');
settle();
$res = get('/hangs/hang');
is($res->status, 503, 'two timeouts of two: open');
is(decode_json($res->body)->{code}, 'circuit_open', 'circuit_open');
is(hits('hang'), 2, 'the third call never reached the bank');

# --- slow calls: answered, but slower than slow=200ms

for (1 .. 4) {
    is(get('/slow/slow')->status, 200, 'a slow answer is an answer');
}
settle();
$b = status('slow');
is($b->{state}, 'open', '4 slow calls of 4 (slow=200ms:50%): open');
is($b->{window}{slow}, 4, 'the 4 were slow');
is(get('/slow/ok')->status, 503, 'refused');

# --- /metrics

my $m = get('/metrics')->body;
like($m, qr/^openbank_breaker_state\{breaker="core"\} 1$/m, 'state gauge');
like($m, qr/^openbank_breaker_state\{breaker="other"\} 0$/m, 'closed: 0');
like($m, qr/^openbank_breaker_transitions_total\{breaker="core",to="open"\}
    \ 3$/mx, 'core opened 3 times');
like($m, qr/^openbank_breaker_transitions_total\{breaker="core",
    to="half_open"\}\ 2$/mx, 'half-open twice');
like($m, qr/^openbank_breaker_transitions_total\{breaker="core",
    to="closed"\}\ 1$/mx, 'closed once');
like($m, qr/^openbank_breaker_refusals_total\{breaker="core"\} \d+$/m,
     'refusals');
like($m, qr/^openbank_refusals_total\{reason="circuit_open"\} [1-9]\d*$/m,
     'circuit_open among the refusals by reason');

# --- a reload keeps the breakers' state, its parameters changed or not

(my $http2 = $http) =~ s/refused minimum=3 open=30s/refused minimum=5 open=30s/
    or die;
ok(reload_nginx({ http_config => $http2, config => $config, workers => 2 }),
   'reloaded, with another minimum for "refused"');
$res = get('/refused/x');
is($res->status, 503, 'after the reload, "refused" is still open');
is(decode_json($res->body)->{code}, 'circuit_open', 'circuit_open');
$b = status('refused');
is($b->{state}, 'open', 'status: open');
is($b->{transitions}{open}, 1, 'its transitions kept');
is(status('other')->{state}, 'closed', '"other" still closed');

# --- probes whose worker died: given up after "open", new probes go

sleep(2.2);                                   # "core" is due for half-open
my $offset = error_log_offset();
system("curl -s -o /dev/null http://127.0.0.1:$api/core/probe & "
     . "curl -s -o /dev/null http://127.0.0.1:$api/core/probe &");
my $taken = 0;
for (1 .. 30) {
    $taken = status('core')->{probes}{taken};
    last if $taken == 2;
    sleep(0.1);
}
is($taken, 2, 'half-open: both probes taken');
my @old = worker_pids();
kill 'STOP', @old;                            # no worker sees its call end
kill 'KILL', @old;
for (1 .. 50) {
    last if 2 == grep { my $n = $_; !grep { $_ == $n } @old } worker_pids();
    sleep(0.1);
}
$res = get('/core/ok');
is($res->status, 503, 'the probes died with their workers: still refused');
is($res->header('Retry-After'), '1', 'half-open: Retry-After 1');
sleep(2.2);
is(get('/core/ok')->status, 200, 'after "open", a new round: a probe');
settle();
is(get('/core/ok')->status, 200, 'the second probe');
settle();
is(status('core')->{state}, 'closed', 'both succeeded: closed');
like(error_log_since($offset), qr/breaker "core" closed: 2 probe calls/,
     'logged');

my @bad = grep { /\[(alert|crit|emerg)\]/ && !/exited on signal 9/ }
          split /^/, error_log_since($log);
is(scalar @bad, 0, 'no [alert] but the killed workers\'') or diag(@bad);

stop_nginx();
done_testing();
