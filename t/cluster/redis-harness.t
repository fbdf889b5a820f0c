# Self-test of t/lib/OpenBank/Redis.pm, the real redis-server processes of
# the cluster tests: a single Redis and a cluster of 3 masters + 3
# replicas come up ready, a key set through one node is read through the
# node that serves its slot, SIGSTOP/SIGCONT and SIGKILL do what the tests
# rely on, a failover promotes the replica, and nothing is left running.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Redis;
use IO::Socket::INET;
use Time::HiRes qw(time);

sub refuses ($port) {
    return !IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
}

sub pid_gone ($pid) {
    return 1 unless -e "/proc/$pid";
    open my $fh, '<', "/proc/$pid/stat" or return 1;
    return <$fh> =~ /\)\s+Z\s/;
}

# ---------------------------------------------------------------------
# a single Redis

my $one = OpenBank::Redis->start;
my $p = $one->port;
is($one->call('PING'), 'PONG', 'single: answers PING');
ok(-d servroot() . "/redis-$p", 'single: its directory is in the servroot');
is($one->call('SET', 'k', 'v'), 'OK', 'single: SET');
is($one->cli('GET', 'k'), 'v', 'single: redis-cli reads it');
is($one->call_at($p, 'CONFIG', 'GET', 'appendonly')->[1], 'no',
   'single: no persistence by default');
is($one->call_at($p, 'CONFIG', 'GET', 'maxmemory-policy')->[1],
   'noeviction', 'single: noeviction');
is_deeply([$one->masters], [$p], 'single: masters is the server');
is_deeply([$one->urls], ["redis://127.0.0.1:$p"], 'single: urls');
is($one->directive(timeout => '50ms', nodes => 3),
   "openbank_cluster redis://127.0.0.1:$p timeout=50ms nodes=3;",
   'single: the directive');

# SIGSTOP: connections are accepted by the kernel but nothing answers
$one->stop;
my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:$p", Timeout => 1);
ok($s, 'stopped: the kernel still accepts');
print $s "*1\r\n\$4\r\nPING\r\n";
my $rin = '';
vec($rin, fileno($s), 1) = 1;
is(select(my $rout = $rin, undef, undef, 0.5), 0,
   'stopped: no answer within 0.5 s');
$one->cont;
is(scalar <$s>, "+PONG\r\n", 'continued: the pending PING is answered');
close $s;

my $pid = $one->pid;
$one->kill;
ok(refuses($p), 'killed: the port refuses connections');
ok(pid_gone($pid), 'killed: the process is gone');
$one->revive;
is($one->port, $p, 'revived on the same port');
is($one->call('GET', 'k'), undef, 'revived without persistence: empty');

$one->restart;
is($one->call('PING'), 'PONG', 'restarted: answers');

# persistence when asked
my $dur = OpenBank::Redis->start(persist => 1, password => 's3cret');
is($dur->call('SET', 'kept', '1'), 'OK', 'persist: SET with a password');
$dur->restart;
is($dur->call('GET', 'kept'), '1', 'persist: kept across a restart');
like($dur->cli('GET', 'kept'), qr/^1$/, 'password: redis-cli authenticates');
my $pf = $dur->password_file;
is(do { open my $fh, '<', $pf; local $/; <$fh> }, "s3cret\n",
   'password_file holds the password');
is((stat $pf)[2] & 0777, 0600, 'password_file is 0600');
my $raw = IO::Socket::INET->new(PeerAddr => '127.0.0.1:' . $dur->port);
print $raw "*2\r\n\$3\r\nGET\r\n\$4\r\nkept\r\n";
like(scalar <$raw>, qr/^-NOAUTH/, 'password: required');
close $raw;
my $dur_pid = $dur->pid;
undef $dur;
ok(pid_gone($dur_pid), 'DESTROY kills the server');

# ---------------------------------------------------------------------
# slots, computed independently of Redis

my $c = OpenBank::Redis->start(cluster => 1);
is(scalar $c->ports, 6, 'cluster: six servers');
is(scalar $c->masters, 3, 'cluster: three masters');
is(scalar $c->replicas, 3, 'cluster: three replicas');
for my $m ($c->masters) {
    is(scalar $c->replicas($m), 1, "cluster: master $m has a replica");
}
for my $port ($c->ports) {
    my $ci = $c->call_at($port, 'CLUSTER', 'INFO');
    like($ci, qr/cluster_state:ok/, "cluster: $port says ok");
    like($ci, qr/cluster_slots_ok:16384/, "cluster: $port sees all slots");
}

is($c->slot_of('123456789'), 0x31C3 % 16384,
   'slot_of: the CRC16/XMODEM check value');
for my $key ('a', 'foo', 'ob:nonce:acme:n-1', '{acme}:rate', 'x{acme}y',
             '{}{acme}', '{a{b}', 'ob:quota:{acme:payments}') {
    is($c->slot_of($key), $c->call_at($c->port, 'CLUSTER', 'KEYSLOT', $key),
       "slot_of('$key') is CLUSTER KEYSLOT's");
}
is($c->slot_of('x{acme}y'), $c->slot_of('acme'), 'a hash tag is hashed');

# a key set through one node, read through the node that serves its slot
my $key = 'ob:test:moved';
my $owner = $c->master_for_key($key);
my ($other) = grep { $_ != $owner } $c->masters;
my $r = eval { $c->call_at($other, 'SET', $key, 'v1') } // $@;
like($r, qr/MOVED \d+ 127\.0\.0\.1:$owner/,
     'another master answers MOVED to the owner');
is($c->cli_at($other, '-c', 'SET', $key, 'v1'), 'OK',
   'redis-cli -c through another master follows MOVED');
is($c->call_at($owner, 'GET', $key), 'v1', 'the owner serves it');
is($c->call('GET', $key), 'v1', 'call routes by slot');
my ($rep) = $c->replicas($owner);
ok($c->wait_replicated($owner), 'the replica has every write of its master '
   . '(replication works)') or diag($c->{why});
is($c->call_replica($rep, 'GET', $key), 'v1', 'the replica has it');
is($c->dbsize, 1, 'dbsize over the masters');

# ---------------------------------------------------------------------
# failover

my $slot = $c->slot_of($key);
my $t0 = time;
my $new = $c->failover($owner);
note(sprintf 'failover took %.1f s', time - $t0);
is($new, $rep, 'the replica of the killed master was promoted');
is($c->master_for_slot($slot), $new, 'it serves the slot now');
ok(refuses($owner), 'the old master is dead');
is($c->call('GET', $key), 'v1', 'the key survived the failover');
is(scalar $c->masters, 3, 'three masters serve slots again');

$c->revive($owner);
ok($c->alive($owner), 'the old master is back');
ok(OpenBank::Test::Nginx::poll_until(20, sub {
       grep { $_ == $owner } $c->replicas($new)
   }), 'as a replica of the new master');
$c->wait_cluster_ok;

# a manual failover, no server killed
my $back = $c->failover($new, manual => 1);
is($back, $owner, 'a manual failover gives the slot back');
ok($c->alive($new), 'no server was killed');
is($c->call('GET', $key), 'v1', 'the key is still there');

# ---------------------------------------------------------------------
# nothing left behind, even when the test process is killed

my $child = fork // die;
if ($child == 0) {
    my $orphan = OpenBank::Redis->start(dir => servroot() . '/orphan');
    open my $fh, '>', servroot() . '/orphan.pid';
    print $fh $orphan->pid, ' ', $orphan->port, "\n";
    close $fh;
    CORE::kill 'KILL', $$;
}
waitpid $child, 0;
my ($opid, $oport) = split ' ', do {
    open my $fh, '<', servroot() . '/orphan.pid' or die;
    scalar <$fh>;
};
ok(OpenBank::Test::Nginx::poll_until(10, sub { pid_gone($opid) }),
   'a Redis of a SIGKILLed test is killed by the guardian');

my @pids = grep { defined } map { $c->pid($_) } $c->ports;
is(scalar @pids, 6, 'six processes');
undef $c;
ok(!grep({ !pid_gone($_) } @pids), 'the cluster is gone with its object');

done_testing;
