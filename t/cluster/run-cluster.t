# make run-cluster and make stop-cluster (tools/run-cluster): the Redis
# Cluster of three masters on 7000-7002 comes up ok and, once the module
# has openbank_cluster, the three gateways on 8081-8083 too, each in
# front of the one sandbox bank; stop leaves nothing running.  State in
# the servroot (CLUSTER_DIR), never the project's run/cluster.  Skipped
# when one of those ports is taken (a developer's make run-cluster).

use lib 't/lib';
use OpenBank::Test;
use IO::Socket::INET;
use JSON::PP qw(decode_json);

my $root = project_root();
my $dir = servroot() . '/cluster';
my @redis = (7000, 7001, 7002);
my @gateways = (8081, 8082, 8083);
my $key = 'ob_sandbox_key_demo_3f9c2a7e51d04b8f9a6e';

sub taken ($port) {
    return !!IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
}

my @busy = grep { taken($_) } @redis, map({ $_ + 10000 } @redis), @gateways;
plan skip_all => "ports in use: @busy" if @busy;

my $has_directive = !system("grep -q '\"openbank_cluster\"' "
                            . "$root/ngx_openbank_module/*.c 2>/dev/null");

sub run_cluster (@args) {
    local $ENV{CLUSTER_DIR} = $dir;
    my $out = `$root/tools/run-cluster @args 2>&1`;
    return ($? >> 8, $out);
}

sub pid_of ($file) {
    open my $fh, '<', $file or return undef;
    my $pid = <$fh>;
    return $pid && $pid =~ /^(\d+)/ ? $1 : undef;
}

sub alive ($pid) {
    return 0 unless $pid && kill 0, $pid;
    open my $fh, '<', "/proc/$pid/stat" or return 0;
    return <$fh> !~ /\)\s+Z\s/;
}

sub redis_pids { map { pid_of("$dir/redis-$_/redis.pid") } @redis }
sub nginx_pids { map { pid_of("$dir/gw-$_/run/nginx.pid") } @gateways }

sub get ($port, $path) {
    my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port",
                                  Timeout => 5) or return (0, '');
    print $s "GET $path HTTP/1.0\r\nHost: localhost\r\nX-API-Key: $key\r\n\r\n";
    local $/;
    my $raw = <$s> // '';
    my ($head, $body) = split /\r\n\r\n/, $raw, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d+)};
    return ($status // 0, $body // '');
}

END {
    if (-d $dir) {
        local $?;
        run_cluster('stop');
    }
}

# ---------------------------------------------------------------------
# the Redis side alone

my ($rc, $out) = run_cluster('redis');
is($rc, 0, 'run-cluster redis: exit 0') or diag($out);
my @pids = redis_pids();
is(scalar(grep { alive($_) } @pids), 3, 'three redis-server processes');
for my $p (@redis) {
    my $info = `redis-cli -p $p cluster info`;
    like($info, qr/cluster_state:ok/, "$p: cluster_state ok");
    like($info, qr/cluster_slots_ok:16384/, "$p: every slot served");
    like($info, qr/cluster_known_nodes:3/, "$p: three nodes");
}
is(`redis-cli -p 7000 config get maxmemory-policy | tail -1`, "noeviction\n",
   'noeviction');
is(`redis-cli -p 7001 -c set ob:run-cluster:k v`, "OK\n", 'a key set');

($rc, $out) = run_cluster('stop');
is($rc, 0, 'stop: exit 0') or diag($out);
ok(!grep({ alive($_) } @pids), 'every redis-server stopped');
ok(!grep({ taken($_) } @redis), 'their ports closed');

($rc, $out) = run_cluster('redis');
is($rc, 0, 'started again') or diag($out);
is(`redis-cli -p 7001 -c get ob:run-cluster:k`, "v\n",
   'the same cluster, its data kept (AOF)');

# ---------------------------------------------------------------------
# the gateways

SKIP: {
    skip 'the module has no openbank_cluster yet', 1 unless $has_directive;

    ($rc, $out) = run_cluster('start');
    is($rc, 0, 'run-cluster start: exit 0') or diag($out);
    my @np = nginx_pids();
    is(scalar(grep { alive($_) } @np), 3, 'three nginx masters');
    is(scalar(grep { alive($_) } redis_pids()), 3, 'three redis-server');

    for my $port (@gateways) {
        my ($st, $body) = get($port, '/v1/accounts');
        is($st, 200, "$port: /v1/accounts") or diag($body);
        my $conf = do {
            open my $fh, '<', "$dir/gw-$port/conf/nginx.conf" or die;
            local $/;
            <$fh>;
        };
        like($conf, qr{openbank_cluster\s+redis://127\.0\.0\.1:7000 \s
                       redis://127\.0\.0\.1:7001 \s
                       redis://127\.0\.0\.1:7002 \s nodes=3;}x,
             "$port: the cluster's seeds");
        my $state = OpenBank::Test::Nginx::poll_until(5, sub {
            my (undef, $status) = get($port, '/openbank/status');
            my $json = eval { decode_json($status) } // {};
            my $s = $json->{cluster}{state} // '';
            return $s eq 'connected' ? $s : 0;
        });
        is($state, 'connected', "$port: status says the cluster is connected");
    }
    my $bank = do {
        open my $fh, '<', "$dir/gw-8081/run/access.log" or die;
        local $/;
        <$fh>;
    };
    my $n = () = $bank =~ /^unix: .*"GET \/v1\/accounts /mg;
    is($n, 3, 'one bank behind the three gateways');

    ($rc, $out) = run_cluster('stop');
    is($rc, 0, 'stop-cluster: exit 0') or diag($out);
    ok(!grep({ alive($_) } @np, redis_pids()), 'every process stopped');
    ok(!grep({ taken($_) } @redis, @gateways), 'every port closed');
}

($rc, $out) = run_cluster('stop');
is($rc, 0, 'a second stop does nothing') or diag($out);
my ($st, $status) = run_cluster('status');
isnt($st, 0, 'status: not running');

done_testing;
