# Cluster mode's rate and quotas: three gateways on one Redis under 300
# concurrent connections spend a quota exactly (not one call over) and
# admit no more than the rate allows (rate x time + burst, + 1 %); the
# leases cost few Redis commands; Redis SIGSTOPped mid-load: answers
# within the timeout, quota=refuse refuses with 503 state_unavailable,
# quota=local admits a share and adds it to Redis when Redis is back,
# rate=local limits each gateway to rate / nodes; a gateway reloaded
# while the others serve resets nothing; then the same on a 3-master
# Redis Cluster.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Redis;
use OpenBank::Load;
use Digest::SHA qw(sha256_hex);
use JSON::PP qw(decode_json);
use POSIX qw(floor);
use Time::HiRes qw(time sleep);

my $tz = 0;

sub http ($cluster, $degraded = undef) {
    return "openbank_zone openbank 4m;\n"
        . "$cluster\n"
        . ($degraded ? "openbank_cluster_degraded $degraded;\n" : '')
        . "openbank_plan q { rate 100000r/s burst=100000; "
        . "quota payments 1000/day; }\n"
        . "openbank_plan r { rate 200r/s burst=20; }\n"
        . "openbank_plan d { rate 100000r/s burst=100000; "
        . "quota payments 600/day; }\n"
        . "openbank_plan l { rate 30r/s burst=30; }\n"
        . "openbank_plan big { rate 100000r/s burst=100000; "
        . "quota payments 1000000/day; }\n"
        . join('', map {
              "openbank_partner $_->[0] { plan $_->[1]; scopes payments; "
              . "api_key sha256:" . sha256_hex("key-$_->[0]") . "; }\n"
          } ['acme', 'q'], ['beta', 'r'], ['dora', 'd'], ['lima', 'l'],
            ['omni', 'big']);
}

my $config = <<'EOT';
location /v1/ {
    openbank_auth       api_key;
    openbank_scope      payments;
    openbank_product    payments;
    content_by_lua_block { ngx.say("ok ", ngx.var.openbank_partner) }
}
location = /openbank/status { openbank_status; }
location = /metrics { openbank_metrics; }
EOT

sub req ($partner) {
    return sub ($i, $port) {
        OpenBank::Load::request_line('GET', '/v1/pay',
                                     ['X-API-Key' => "key-$partner"]);
    };
}

sub status_of ($gw) {
    my $res = $gw->request('GET', '/openbank/status');
    return eval { decode_json($res->body)->{cluster} } || {};
}

sub poll ($cond, $limit) {
    return OpenBank::Test::Nginx::poll_until($limit, $cond);
}

sub day_start { my $t = time; return int($t / 86400) * 86400 }

sub commands ($redis, @ports) {
    my $n = 0;
    for my $p (@ports ? @ports : ($redis->port)) {
        my $info = $redis->call_at($p, 'INFO', 'commandstats');
        $n += $1 while $info =~ /^cmdstat_(?:evalsha|eval):calls=(\d+)/mg;
    }
    return $n;
}

sub metric ($gw, $re) {
    my $m = $gw->request('GET', '/metrics')->body;
    return $m =~ $re ? $1 : undef;
}

# ---------------------------------------------------------------------
# one Redis, three gateways of two workers

my $redis = OpenBank::Redis->start;
my $dir = $redis->directive(timeout => '500ms', nodes => 3);

my @gw = (
    start_gateway({ http_config => http($dir, 'rate=local quota=local'),
                    config => $config, workers => 2 }),
    start_gateway({ http_config => http($dir, 'rate=local quota=refuse'),
                    config => $config, workers => 2 }),
    start_gateway({ http_config => http($dir, 'rate=refuse quota=local'),
                    config => $config, workers => 2 }),
);
my @ports = map { $_->port } @gw;

ok(poll(sub { !grep { (status_of($_)->{state} // '') ne 'connected' } @gw },
        10), 'single: the three gateways are connected');

# a quota of 1000 a day, 3000 calls at once over the three gateways

my $before = commands($redis);
my $t0 = time;
my $r = OpenBank::Load::run(ports => \@ports, connections => 300,
                            requests => 3000, request => req('acme'),
                            keep => 1);
is($r->{status}{200}, 1000, 'single: the quota is spent exactly: 1000 200s')
    or diag(explain($r->{status}));
is($r->{status}{429}, 2000, 'single: the 2000 others are 429');
my @codes = map { $_->{body} =~ /"code":"([^"]+)"/ ? $1 : '' }
            grep { $_->{status} == 429 } @{ $r->{answers} };
is(scalar(grep { $_ eq 'quota_exceeded' } @codes), 2000,
   'single: quota_exceeded');
my $qkey = 'ob:quota:{acme}:payments:day:' . day_start();
is($redis->call('GET', $qkey), 1000,
   "single: Redis says 1000 granted ($qkey)");

# the partner's leases: a unit given back does not come back twice
ok(poll(sub { ($redis->call('GET', $qkey) // 0) == 1000 }, 3),
   'single: still 1000 once the idle leases went back');
my $res = $gw[1]->request('GET', '/v1/pay', ['X-API-Key: key-acme']);
is($res->status, 429, 'single: one more on gateway 2: 429');
like($res->header('RateLimit') // '', qr/"payments-day";r=0;/,
     'single: RateLimit says none remain');

# a gateway reloaded while the others serve: no reset
$gw[0]->reload;
$r = OpenBank::Load::run(ports => \@ports, connections => 60,
                         requests => 300, request => req('acme'));
is($r->{status}{429}, 300, 'single: after a reload of gateway 1, all 429')
    or diag(explain($r->{status}));
is($redis->call('GET', $qkey), 1000, 'single: Redis still says 1000');

# leases: few commands for many calls (a partner that spends fast)
$before = commands($redis);
$r = OpenBank::Load::run(ports => \@ports, connections => 150,
                         requests => 6000, request => req('omni'));
my $spent = commands($redis) - $before;
is($r->{status}{200}, 6000, 'single: omni: 6000 admitted');
ok($spent < 600, "single: leases: $spent script calls for 6000 calls");
my $okey = 'ob:quota:{omni}:payments:day:' . day_start();
ok(poll(sub { ($redis->call('GET', $okey) // 0) == 6000 }, 5),
   'single: once the idle leases went back, Redis says 6000 used');

# the rate: 200/s, burst 20, over ~2 s of load from 300 connections

$t0 = time;
my $first_ok;
$r = OpenBank::Load::run(ports => \@ports, connections => 300,
                         requests => 6000, request => req('beta'));
my $elapsed = time - $t0;
my $admitted = $r->{status}{200} // 0;
my $bound = (200 * $elapsed + 20) * 1.01;
ok($admitted <= $bound,
   sprintf('single: the rate admitted %d in %.2f s: within rate x time + '
           . 'burst + 1 %% (%.0f)', $admitted, $elapsed, $bound));
ok($admitted >= 200 * $elapsed * 0.3,
   "single: and not far below it ($admitted)");
is(($r->{status}{200} // 0) + ($r->{status}{429} // 0), 6000,
   'single: the others are 429') or diag(explain($r->{status}));

# ---------------------------------------------------------------------
# Redis SIGSTOPped mid-load

# dora: 600 a day; 150 spent while Redis answers
$r = OpenBank::Load::run(ports => \@ports, connections => 30,
                         requests => 150, request => req('dora'));
is($r->{status}{200}, 150, 'stopped: 150 before the stop');
my $dkey = 'ob:quota:{dora}:payments:day:' . day_start();

# the leases go back, so that what remains is in Redis
ok(poll(sub { ($redis->call('GET', $dkey) // 0) == 150 }, 5),
   'stopped: Redis has the 150');

$redis->stop;

my %by;
my $slow = 0;
for my $g (0 .. 2) {
    for (1 .. 40) {
        my $t = time;
        my $x = $gw[$g]->request('GET', '/v1/pay', ['X-API-Key: key-dora']);
        $slow++ if time - $t >= 2;
        my $code = $x->body =~ /"code":"([^"]+)"/ ? $1 : '';
        $by{$g}{$x->status . ($code ? " $code" : '')}++;
        if ($x->status == 503) {
            $by{$g}{retry}++ if ($x->header('Retry-After') // '') =~ /^\d+$/;
        }
    }
}
diag(explain(\%by)) unless ($by{0}{200} // 0) > 0;
is($slow, 0, 'stopped: every answer within a generous bound');
is($by{1}{'503 state_unavailable'}, 40,
   'stopped: quota=refuse: 503 state_unavailable');
is($by{1}{retry}, 40, 'stopped: with Retry-After');
# the share of a gateway's worker: (600 - 150) / (3 gateways x 2 workers)
my $share = floor(450 / 6);
my $local0 = $by{0}{200} // 0;
my $local2 = $by{2}{200} // 0;
ok($local0 >= 1 && $local0 <= 2 * $share,
   "stopped: quota=local admits this worker's share ($local0 of 40)");
ok(!grep({ !/^(200|429 quota_exceeded)$/ } keys %{ $by{0} }),
   'stopped: quota=local: only 200 and 429');
ok(!grep({ !/^(200|503 state_unavailable|retry)$/ } keys %{ $by{2} }),
   'stopped: rate=refuse: 200 or 503 state_unavailable');
like($gw[0]->request('GET', '/metrics')->body,
     qr/^openbank_cluster_degraded_total\{kind="quota",decision="local"\} [1-9]/m,
     'stopped: metrics count what was admitted while apart');

# rate=local: lima 30/s, burst 30, on gateway 1 alone: 30 / 3 = 10 at once
my $l = 0;
for (1 .. 30) {
    $l++ if $gw[0]->request('GET', '/v1/pay', ['X-API-Key: key-lima'])->status
            == 200;
}
ok($l >= 10 && $l <= 13, "stopped: rate=local: a third of the burst ($l)");

$redis->cont;

# back within 1 s, and what was admitted apart is added
ok(poll(sub { $gw[1]->request('GET', '/v1/pay', ['X-API-Key: key-dora'])
                  ->status == 200 }, 3),
   'continued: quota=refuse admits again without a restart');
my $admitted_apart = $local0 + $local2 + 1;
ok(poll(sub { ($redis->call('GET', $dkey) // 0) == 150 + $admitted_apart },
        5),
   "continued: Redis has the calls admitted apart (150 + $admitted_apart): "
   . ($redis->call('GET', $dkey) // 'none'));

# the rest of the quota, exactly
$r = OpenBank::Load::run(ports => \@ports, connections => 100,
                         requests => 1000, request => req('dora'));
is($r->{status}{200}, 600 - 150 - $admitted_apart,
   'continued: the rest of the quota, exactly') or diag(explain($r->{status}));

# a script Redis forgot (SCRIPT FLUSH): EVAL with the source, once
$redis->call('SCRIPT', 'FLUSH');
$res = $gw[0]->request('GET', '/v1/pay', ['X-API-Key: key-beta']);
ok(poll(sub { $gw[0]->request('GET', '/v1/pay', ['X-API-Key: key-beta'])
                  ->status == 200 }, 3),
   'flushed: the rate still answers after SCRIPT FLUSH');
like($redis->call('INFO', 'commandstats'), qr/^cmdstat_eval:calls=[1-9]/m,
     'flushed: by EVAL');

$_->stop for @gw;
undef $redis;

# ---------------------------------------------------------------------
# a Redis Cluster of 3 masters

my $rc = OpenBank::Redis->start(cluster => 1);
# exactness, not the degraded mode: a call that a busy machine delays past
# the timeout must not hand the quota to quota=local's share
$dir = $rc->directive(timeout => '1000ms', nodes => 3);

@gw = map { start_gateway({ http_config => http($dir, 'quota=refuse'),
                            config => $config,
                            workers => 2 }) } 1 .. 3;
@ports = map { $_->port } @gw;

ok(poll(sub { !grep { (status_of($_)->{state} // '') ne 'connected' } @gw },
        15), 'cluster: the three gateways are connected');

$r = OpenBank::Load::run(ports => \@ports, connections => 300,
                         requests => 3000, request => req('acme'));
is($r->{status}{200}, 1000, 'cluster: the quota is spent exactly')
    or diag(explain($r->{status}));
is($r->{status}{429}, 2000, 'cluster: the others are 429');
my $m = $rc->master_for_key('{acme}');
is($rc->call_at($m, 'GET', $qkey), 1000, 'cluster: the slot\'s master says 1000');

$t0 = time;
$r = OpenBank::Load::run(ports => \@ports, connections => 300,
                         requests => 4000, request => req('beta'));
$elapsed = time - $t0;
$admitted = $r->{status}{200} // 0;
$bound = (200 * $elapsed + 20) * 1.01;
ok($admitted <= $bound,
   sprintf('cluster: the rate admitted %d in %.2f s (bound %.0f)',
           $admitted, $elapsed, $bound));

$_->stop for @gw;

done_testing;
