# Cluster mode's first kind of state: RFC 9421 nonces taken once across
# gateways through Redis (SET NX PX, the partner in a hash tag), on one
# Redis and on a Redis Cluster.  Redis SIGSTOPped: the answer comes
# within the timeout, 503 state_unavailable with Retry-After for
# nonce=refuse (the default) and accepted for nonce=local, the status says
# "degraded", and after SIGCONT the gateway is back by itself, without a
# restart.  On a cluster the partner's slot is on a master the directive
# does not name, and after a manual failover the gateway's map is stale:
# MOVED is followed and the map read again.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Redis;
use OpenBank::Signer;
use Digest::SHA qw(sha256_hex);
use JSON::PP qw(decode_json);
use Time::HiRes qw(time sleep);

my $body = '{"amount":{"value":"12.50","currency":"CNY"}}';
my $secret = 'b3f1c2d4e5a6978812345678abcdef0123456789abcdef0123456789abcdef01';

sub http ($cluster, $degraded = undef) {
    return "openbank_zone openbank 1m;\nopenbank_clock_skew 300s;\n"
        . "$cluster\n"
        . ($degraded ? "openbank_cluster_degraded $degraded;\n" : '')
        . "openbank_plan p { rate 1000r/s; quota payments 100000/day; }\n"
        . "openbank_partner acme { plan p; scopes payments; api_key sha256:"
        . sha256_hex('key-acme') . "; hmac_secret partners/acme.hmac; }\n"
        . "openbank_partner beta { plan p; scopes payments; api_key sha256:"
        . sha256_hex('key-beta') . "; hmac_secret partners/acme.hmac; }\n";
}

my $config = <<'EOT';
location /v1/ {
    openbank_auth       api_key;
    openbank_scope      payments;
    openbank_signature  required;
    content_by_lua_block { ngx.say("ok ", ngx.var.openbank_partner) }
}
location = /openbank/status { openbank_status; }
location = /metrics { openbank_metrics; }
EOT

my $files = [['conf/partners/acme.hmac', $secret]];

my $seq = 0;

sub signed (%o) {
    my $nonce = $o{nonce} // sprintf("c-%d-%d-%d", $$, int(time * 1000), ++$seq);
    my @h = sign_request(method => 'POST', path => '/v1/pay',
                         authority => 'localhost', body => $body,
                         alg => 'hmac-sha256', key => $secret,
                         keyid => 'hmac', nonce => $nonce,
                         created => int(time) + 150);
    return ['X-API-Key: key-' . ($o{partner} // 'acme'), 'Host: localhost',
            @h];
}

sub pay ($gw, $headers) {
    my $t0 = time;
    my $res = $gw->request('POST', '/v1/pay', $headers, $body);
    return ($res, time - $t0);
}

sub code_of ($res) { my $j = eval { decode_json($res->body) } || {}; $j->{code} // '' }

sub status_of ($gw) {
    my $res = $gw->request('GET', '/openbank/status');
    return eval { decode_json($res->body)->{cluster} } || {};
}

sub poll ($cond, $limit) {
    return OpenBank::Test::Nginx::poll_until($limit, $cond);
}

# ---------------------------------------------------------------------
# one Redis, two gateways

my $redis = OpenBank::Redis->start;
my $dir = $redis->directive(timeout => '50ms', nodes => 2);

my $g1 = start_gateway({ http_config => http($dir), config => $config,
                         user_files => $files, workers => 2 });
my $g2 = start_gateway({ http_config => http($dir, 'nonce=local'),
                         config => $config, user_files => $files });

ok(poll(sub { (status_of($g1)->{state} // '') eq 'connected' }, 10),
   'single: the status says connected');

my $h = signed(nonce => 'once-across');
my ($res) = pay($g1, $h);
is($res->status, 200, 'single: a fresh nonce on gateway 1 is accepted')
    or diag($res->body);
($res) = pay($g2, $h);
is($res->status, 401, 'single: the same nonce on gateway 2 is a replay');
is(code_of($res), 'replayed_request', 'single: replayed_request');
($res) = pay($g1, $h);
is($res->status, 401, 'single: and again on gateway 1');

# the signature is verified once: the check that waited for Redis's
# answer to the nonce only reads that answer when it runs again
{
    my $off = $g2->error_log_offset;
    my ($r1) = pay($g2, signed(nonce => 'verified-once'));
    is($r1->status, 200, 'single: a signed request') or diag($r1->body);
    my $log = $g2->error_log_since($off);
    my $n = () = $log =~ /openbank signature base: /g;
    is($n, 1, 'single: its signature is verified once');
    is($redis->call('EXISTS', 'ob:nonce:{acme}:verified-once'), 1,
       'single: its nonce was taken in Redis (the check waited for it)');
}

is($redis->call('EXISTS', 'ob:nonce:{acme}:once-across'), 1,
   'single: the nonce is a key of Redis with the partner in a hash tag');
my $pttl = $redis->call('PTTL', 'ob:nonce:{acme}:once-across');
ok($pttl > 0 && $pttl <= 451_000, "single: it expires ($pttl ms)");

# the same nonce of another partner is another key
($res) = pay($g2, signed(nonce => 'once-across', partner => 'beta'));
is($res->status, 200, 'single: the same nonce of another partner is its own');

# two requests at once on one gateway, the same nonce: one wins
{
    my $hh = signed(nonce => 'race');
    my @pids;
    pipe(my $r, my $w) or die;
    for (1 .. 2) {
        my $pid = fork // die;
        if (!$pid) {
            close $r;
            my ($x) = pay($g1, $hh);
            print {$w} $x->status, "\n";
            exit 0;
        }
        push @pids, $pid;
    }
    close $w;
    my @st = sort map { chomp; $_ } <$r>;
    waitpid $_, 0 for @pids;
    is("@st", '200 401', 'single: concurrent requests with one nonce: one 200');
}

# ---------------------------------------------------------------------
# Redis SIGSTOPped: within the timeout, as the degraded mode says

$redis->stop;

($res, my $took) = pay($g1, signed());
is($res->status, 503, 'stopped: nonce=refuse: 503');
is(code_of($res), 'state_unavailable', 'stopped: state_unavailable');
ok(($res->header('Retry-After') // '') =~ /^\d+$/, 'stopped: Retry-After');
ok($took < 2, "stopped: answered within a generous bound ($took s)");

($res, $took) = pay($g1, signed());
is($res->status, 503, 'stopped: the next one too');
ok($took < 2, "stopped: at once ($took s)");

# the node is down for both workers of gateway 1: one call waited for the
# timeout, every other refusal came without a call (and the reader of the
# other gateways' changes and the writer of usage, worker 0's, may have
# had theirs in flight too)
my @st = map { (pay($g1, signed()))[0]->status } 1 .. 20;
is(scalar(grep { $_ == 503 } @st), 20, 'stopped: 20 more, all 503');
like($g1->request('GET', '/metrics')->body,
     qr/^openbank_redis_failures_total [1-3]$/m,
     'stopped: one call without an answer in all: the workers share '
     . 'that the node is down');

($res) = pay($g2, (my $local = signed()));
is($res->status, 200, 'stopped: nonce=local: accepted by the gateway alone');
($res) = pay($g2, $local);
is($res->status, 401, 'stopped: nonce=local: a replay on that gateway is one');

ok(poll(sub { (status_of($g1)->{state} // '') eq 'degraded' }, 5),
   'stopped: the status says degraded');
my $st = status_of($g1);
is($st->{nodes}[0]{state}, 'down', 'stopped: the node is down');
is($st->{nodes}[0]{address}, '127.0.0.1:' . $redis->port,
   'stopped: the node address');

my $m = $g1->request('GET', '/metrics')->body;
like($m, qr/^openbank_cluster_degraded_total\{kind="nonce",decision="refuse"\} [1-9]/m,
     'stopped: metrics count the refusals');
like($m, qr/^openbank_redis_failures_total [1-9]/m,
     'stopped: metrics count the calls without an answer');
like($g2->request('GET', '/metrics')->body,
     qr/^openbank_cluster_degraded_total\{kind="nonce",decision="local"\} [1-9]/m,
     'stopped: metrics count the local decisions');

$redis->cont;

ok(poll(sub { (pay($g1, signed()))[0]->status == 200 }, 10),
   'continued: accepted again without a restart');
ok(poll(sub { (status_of($g1)->{state} // '') eq 'connected' }, 5),
   'continued: the status says connected');
($res) = pay($g1, $h);
is($res->status, 401, 'continued: the old nonce is still a replay');
like($g1->request('GET', '/metrics')->body,
     qr/^openbank_redis_duration_seconds_count [1-9]/m,
     'continued: metrics have the calls\' latency');

$g1->stop;
$g2->stop;
undef $redis;

# ---------------------------------------------------------------------
# a Redis Cluster: 3 masters and their replicas

my $rc = OpenBank::Redis->start(cluster => 1);
my $slot_master = $rc->master_for_key('{acme}');
my ($other) = grep { $_ != $slot_master } $rc->masters;

my $g3 = start_gateway({
    http_config => http("openbank_cluster redis://127.0.0.1:$other "
                        . "timeout=200ms nodes=1;"),
    config => $config, user_files => $files });

ok(poll(sub { (status_of($g3)->{state} // '') eq 'connected' }, 10),
   'cluster: connected');
is(scalar(grep { $_->{slots} > 0 } @{ status_of($g3)->{nodes} }), 3,
   'cluster: three masters serve the slots');

$h = signed(nonce => 'cluster-once');
($res) = pay($g3, $h);
is($res->status, 200, 'cluster: accepted') or diag($res->body);
is($rc->call_at($slot_master, 'EXISTS', 'ob:nonce:{acme}:cluster-once'), 1,
   'cluster: the key is on the master of its slot, not on the seed');
($res) = pay($g3, $h);
is($res->status, 401, 'cluster: a replay');

# the slot being migrated to another master: ASK followed (ASKING, then
# the command there), a replay found there too
{
    my $slot = $rc->slot_of('{acme}');
    my ($to) = grep { $_ != $slot_master } $rc->masters;
    my %id = map { $_->{port} => $_->{id} } $rc->nodes($slot_master);
    $rc->call_at($to, 'CLUSTER', 'SETSLOT', $slot, 'IMPORTING',
                 $id{$slot_master});
    $rc->call_at($slot_master, 'CLUSTER', 'SETSLOT', $slot, 'MIGRATING',
                 $id{$to});
    my $before = $rc->call_at($to, 'CLUSTER', 'COUNTKEYSINSLOT', $slot);
    my $hh = signed(nonce => 'while-migrating');
    ($res) = pay($g3, $hh);
    is($res->status, 200, 'cluster: ASK followed during a migration')
        or diag($res->body);
    is($rc->call_at($to, 'CLUSTER', 'COUNTKEYSINSLOT', $slot), $before + 1,
       'cluster: the key went to the importing master');
    ($res) = pay($g3, $hh);
    is($res->status, 401, 'cluster: a replay during the migration');
    ($res) = pay($g3, signed(nonce => 'cluster-once'));
    is($res->status, 401, 'cluster: a key still on the old master: a replay');
    # the migration called off: both sides back to stable, the slot's
    # owner never changed (a NODE assignment would leave the importing
    # side's state behind, and the failover below then met a slot no
    # master covered)
    $rc->call_at($_, 'CLUSTER', 'SETSLOT', $slot, 'STABLE')
        for $slot_master, $to;
}

my $new = $rc->failover($slot_master, manual => 1);
isnt($new, $slot_master, "cluster: a replica ($new) took over");

my $off = $g3->error_log_offset;
($res) = pay($g3, signed(nonce => 'after-failover'));
is($res->status, 200, 'cluster: after the failover, MOVED is followed')
    or diag($res->body);
is($rc->call_at($new, 'EXISTS', 'ob:nonce:{acme}:after-failover'), 1,
   'cluster: the key is on the new master');
ok(poll(sub {
       my ($n) = grep { $_->{address} eq "127.0.0.1:$new" }
                 @{ status_of($g3)->{nodes} };
       $n && $n->{slots} > 0
   }, 5), 'cluster: the map is read again: the new master has the slots');
($res) = pay($g3, signed(nonce => 'after-failover'));
is($res->status, 401, 'cluster: a replay after the failover');
unlike($g3->error_log_since($off), qr/\[(alert|crit)\]/,
       'cluster: nothing alarming in the log');

$g3->stop;
undef $rc;

# ---------------------------------------------------------------------
# a Redis with a password: AUTH on connect; a wrong one is never "up"

my $pw = OpenBank::Redis->start(password => 'pw-of-the-test');
my $g4 = start_gateway({
    http_config => http($pw->directive(timeout => '100ms',
                                       password => $pw->password_file)),
    config => $config, user_files => $files });
ok(poll(sub { (status_of($g4)->{state} // '') eq 'connected' }, 10),
   'password: connected');
($res) = pay($g4, signed(nonce => 'with-auth'));
is($res->status, 200, 'password: accepted');
is($pw->call('EXISTS', 'ob:nonce:{acme}:with-auth'), 1,
   'password: the nonce is in Redis');
$g4->stop;
unlike(slurp_log($g4), qr/pw-of-the-test/, 'password: never in the log');

my $wrong = OpenBank::Redis->start(password => 'the-right-one');
my $g5 = start_gateway({
    http_config => http('openbank_cluster redis://127.0.0.1:' . $wrong->port
                        . ' password=wrong.pass;'),
    config => $config,
    user_files => [@$files, ['conf/wrong.pass', "not-it\n"]] });
($res) = pay($g5, signed());
is($res->status, 503, 'wrong password: refused, never accepted unchecked');
is(code_of($res), 'state_unavailable', 'wrong password: state_unavailable');
is(status_of($g5)->{state}, 'degraded', 'wrong password: degraded');
$g5->stop;
unlike(slurp_log($g5), qr/not-it/, 'wrong password: not in the log');

sub slurp_log ($gw) {
    open my $fh, '<', $gw->servroot . '/logs/error.log' or return '';
    local $/;
    return <$fh>;
}

done_testing;
