# Cluster mode's changes (docs/cluster.md, "Changes on every gateway"):
# three gateways on one Redis.  A token accepted everywhere and revoked on
# A is refused on B and C within 1 s; a partner made through A's Admin API
# authenticates on C, and once suspended on A is 403 partner_suspended on
# B and C within 1 s; a gateway started later catches up (the snapshot);
# a change made while Redis is stopped applies on its gateway at once, is
# queued (the status says "behind"), and reaches the others once Redis is
# back, without a restart, and after a restart (a stop, a SIGKILL) of its
# gateway while Redis is still down.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;
use OpenBank::Redis;
use JSON::PP qw(decode_json encode_json);
use Time::HiRes qw(time sleep);

# persisted (appendfsync always): it is killed and started again below
my $redis = OpenBank::Redis->start(persist => 1);
my $dir = $redis->directive(timeout => '100ms');

my ($http, $config) = admin_config(extra_http => "$dir\n");
$config .= "location = /metrics { openbank_metrics; }\n";

my @gw = map {
    start_gateway({ http_config => $http, config => $config,
                    workers => 2 })
} 1 .. 3;
my ($A, $B, $C) = @gw;

my %form = ('Content-Type' => 'application/x-www-form-urlencoded');
my %acme = (%form, Authorization => basic('acme-erp', 'acme-secret-123'));

sub adm ($gw, $method, $path, $body = undef) {
    my %h = (Authorization => "Bearer $ADMIN_KEY");
    $h{'Content-Type'} = 'application/json' if defined $body;
    my $res = $gw->request($method, $path, \%h,
                           defined $body ? encode_json($body) : undef);
    return ($res->status, eval { decode_json($res->body) }, $res);
}

sub bearer ($gw, $token) {
    return $gw->request('GET', '/v1/accounts',
                        { Authorization => "Bearer $token" })->status;
}

sub keyed ($gw, $key) {
    my $res = $gw->request('GET', '/v1/keyed', { 'X-API-Key' => $key });
    my $code = eval { decode_json($res->body)->{code} } // '';
    return $res->status . ($code ? " $code" : '');
}

sub sync_of ($gw) {
    my $res = $gw->request('GET', '/openbank/status');
    return eval { decode_json($res->body)->{sync} } || {};
}

sub poll ($cond, $limit) {
    return OpenBank::Test::Nginx::poll_until($limit, $cond);
}

for my $g (@gw) {
    ok(poll(sub { (sync_of($g)->{state} // '') eq 'in_sync' }, 10),
       'the gateway reads the changes of the cluster: in_sync');
}

# ---------------------------------------------------------------------
# a token accepted everywhere, revoked on A: refused on B and C within 1 s

my $res = $A->request('POST', '/oauth2/token', \%acme,
                      form_body(grant_type => 'client_credentials'));
is($res->status, 200, 'a token from A') or diag($res->body);
my $token = json_decode($res->body)->{access_token};
my $other = json_decode($A->request('POST', '/oauth2/token', \%acme,
            form_body(grant_type => 'client_credentials'))->body)
            ->{access_token};

for my $g (@gw) {
    is(join(' ', map { bearer($g, $token) } 1 .. 4), '200 200 200 200',
       'the token works on every gateway (and is cached)');
}

$res = $A->request('POST', '/oauth2/revoke', \%acme,
                   form_body(token => $token));
is($res->status, 200, 'A revokes it');
is(bearer($A, $token), 401, 'refused on A at once');

my $t0 = time;
ok(poll(sub { join(' ', map { bearer($_, $token) } $B, $B, $C, $C)
              eq '401 401 401 401' }, 1),
   'refused by every worker of B and C within 1 s');
note(sprintf('revocation seen in %.0f ms', 1000 * (time - $t0)));
is(join(' ', map { bearer($_, $other) } @gw), '200 200 200',
   'another token of the partner still works everywhere');

my $c = jwt_claims($token);
my $score = $redis->call('ZSCORE', 'ob:sync:{changes}:revoked',
                         unpack('H*', Digest::SHA::sha256($token))
                         . $c->{jti});
ok($score && $score >= $c->{exp} * 1000,
   'the revocation keeps its expiry in the cluster\'s snapshot');

# ---------------------------------------------------------------------
# a partner made on A authenticates on C; suspended on A: 403 on B and C

my ($s, $j) = adm($A, 'POST', '/admin/partners',
                  { name => 'zeta', plan => 'q', scopes => ['accounts'] });
is($s, 201, 'zeta is made on A') or diag(encode_json($j // {}));
($s, $j) = adm($A, 'POST', '/admin/partners/zeta/credentials',
               { type => 'api_key' });
is($s, 201, 'with an API key');
my $key = $j->{api_key};

is(keyed($A, $key), '200', 'the key works on A');
$t0 = time;
ok(poll(sub { keyed($C, $key) eq '200' && keyed($B, $key) eq '200' }, 1),
   'and on C and B within 1 s');
note(sprintf('creation seen in %.0f ms', 1000 * (time - $t0)));
($s, $j) = adm($C, 'GET', '/admin/partners/zeta');
is($s, 200, 'C\'s Admin API lists zeta');
is($j->{source}, 'registry', 'as a registry partner');

($s) = adm($A, 'PATCH', '/admin/partners/zeta', { status => 'suspended' });
is($s, 200, 'A suspends zeta');
is(keyed($A, $key), '403 partner_suspended', 'A refuses it at once');
$t0 = time;
ok(poll(sub { join(' ', map { keyed($_, $key) } $B, $B, $C, $C)
              eq join(' ', ('403 partner_suspended') x 4) }, 1),
   'B and C answer 403 partner_suspended within 1 s');
note(sprintf('suspension seen in %.0f ms', 1000 * (time - $t0)));

# the audit stays each gateway's own
($s, $j) = adm($B, 'GET', '/admin/audit');
ok(!grep({ ($_->{partner} // '') eq 'zeta' } @{ $j->{events} // [] }),
   'B\'s audit log does not hold A\'s events') if $s == 200;

# a change on B comes back to A, and A does not apply its own twice
($s) = adm($B, 'PATCH', '/admin/partners/zeta', { status => 'active' });
is($s, 200, 'B activates zeta again');
ok(poll(sub { keyed($A, $key) eq '200' && keyed($C, $key) eq '200' }, 1),
   'A and C accept it again within 1 s');

my $st = sync_of($A);
ok($st->{published} >= 4, "A published its changes ($st->{published})");
ok($st->{applied} >= 1, "A applied B's ($st->{applied})");

# ---------------------------------------------------------------------
# a gateway started later catches up

($s) = adm($A, 'PATCH', '/admin/partners/zeta', { status => 'suspended' });
is($s, 200, 'zeta suspended again');
ok(poll(sub { keyed($C, $key) eq '403 partner_suspended' }, 1),
   'seen on C');

$redis->call('XTRIM', 'ob:sync:{changes}:stream', 'MAXLEN', 0);

my $D = start_gateway({ http_config => $http, config => $config,
                        workers => 2 });
ok(poll(sub { (sync_of($D)->{state} // '') eq 'in_sync' }, 10),
   'D, started later, is in sync');
ok(sync_of($D)->{snapshots} >= 1, 'from the cluster\'s snapshot');
is(keyed($D, $key), '403 partner_suspended', 'D knows zeta, suspended');
is(bearer($D, $token), 401, 'D refuses the revoked token');
is(bearer($D, $other), 200, 'and accepts the other');

# ---------------------------------------------------------------------
# Redis stopped during a change: applied on A, queued, then published

$redis->stop;
my $off = $A->error_log_offset;
($s, $j) = adm($A, 'POST', '/admin/partners',
               { name => 'omega', plan => 'q', scopes => ['accounts'] });
is($s, 201, 'a partner is made on A while Redis is stopped');
($s, $j) = adm($A, 'POST', '/admin/partners/omega/credentials',
               { type => 'api_key' });
is($s, 201, 'and its key');
my $okey = $j->{api_key};
is(keyed($A, $okey), '200', 'the change is in force on A');

ok(poll(sub { my $x = sync_of($A);
              ($x->{queued} // 0) >= 2 && $x->{state} eq 'behind' }, 5),
   'A\'s status: 2 changes queued, behind');
like($A->request('GET', '/metrics')->body,
     qr/^openbank_cluster_changes_queued [2-9]/m, 'the metric says so');
is(keyed($C, $okey), '401 invalid_token', 'C does not know omega meanwhile')
    or diag(keyed($C, $okey));

# more changes than one call's 64 arguments hold: a publication of many
for my $i (1 .. 16) {
    ($s) = adm($A, 'PATCH', '/admin/partners/omega',
               { status => $i % 2 ? 'suspended' : 'active' });
    is($s, 200, "change $i of omega on A") if $i == 16;
}
ok(poll(sub { (sync_of($A)->{queued} // 0) >= 18 }, 5),
   'A holds 18 changes not published');

$redis->cont;
ok(poll(sub { keyed($C, $okey) eq '200' && keyed($B, $okey) eq '200'
              && keyed($D, $okey) eq '200' }, 10),
   'once Redis is back, omega reaches B, C and D without a restart');
ok(poll(sub { (sync_of($A)->{queued} // 1) == 0 }, 5), 'A\'s queue is empty');

# ---------------------------------------------------------------------
# usage counted over all gateways

sub usage_of ($gw, $name) {
    my ($s, $j) = adm($gw, 'GET', "/admin/partners/$name/usage");
    my $n = 0;
    for my $d (@{ $j->{days} // [] }) {
        $n += $_->{calls} for values %{ $d->{products} // {} };
    }
    return ($n, $j->{scope} // '');
}

($s) = adm($A, 'POST', '/admin/partners',
           { name => 'usg', plan => 'q', scopes => ['accounts'] });
is($s, 201, 'a partner for usage');
($s, $j) = adm($A, 'POST', '/admin/partners/usg/credentials',
               { type => 'api_key' });
my $ukey = $j->{api_key};
ok(poll(sub { (adm($B, 'GET', '/admin/partners/usg/credentials'))[0] == 200
              && (adm($C, 'GET', '/admin/partners/usg/credentials'))[0]
                 == 200 }, 1), 'known on B and C');
my %calls = (3 => $A, 2 => $B, 4 => $C);
for my $n (sort keys %calls) {
    is(keyed($calls{$n}, $ukey), '200', "call on a gateway") for 1 .. $n;
}
ok(poll(sub { join(' ', usage_of($A, 'usg'), usage_of($C, 'usg'))
              eq '9 cluster 9 cluster' }, 5),
   'the usage endpoint answers the calls of every gateway, on A and on C')
    or diag(join ' ', usage_of($A, 'usg'), usage_of($C, 'usg'));
is(scalar(@{ $redis->call('HKEYS', 'ob:usage:{usg}') }), 3,
   'one field a gateway in the partner\'s hash');

$redis->stop;
$t0 = time;
is(join(' ', usage_of($A, 'usg')), '3 gateway',
   'Redis stopped: A answers its own counts, and says so');
ok(time - $t0 < 2, 'within the timeout');
$redis->cont;
ok(poll(sub { join(' ', usage_of($A, 'usg')) eq '9 cluster' }, 5),
   'and the cluster\'s again once Redis is back');

# ---------------------------------------------------------------------
# a restart keeps what was applied from the cluster (its own journal)

$redis->stop;
$C->restart;
is(keyed($C, $okey), '200', 'C, restarted while Redis is stopped, still '
   . 'knows omega');
is(keyed($C, $key), '403 partner_suspended', 'and zeta, suspended');
is(bearer($C, $token), 401, 'and the revocation');
$redis->cont;
ok(poll(sub { (sync_of($C)->{state} // '') eq 'in_sync' }, 10),
   'C is in sync again once Redis is back');

# ---------------------------------------------------------------------
# changes made while Redis is down (killed: nothing sent before is
# answered later) outlive a restart of their gateway (its changes
# journal): published before it reads the cluster's snapshot, they reach
# the others and are not undone on it

sub token_of ($gw) {
    my $res = $gw->request('POST', '/oauth2/token', \%acme,
                           form_body(grant_type => 'client_credentials'));
    return json_decode($res->body)->{access_token};
}

sub in_force ($gw, $want) {
    return join(' ', map { $_->[0] eq 'key' ? keyed($gw, $_->[1])
                                            : bearer($gw, $_->[1]) }
                     @$want);
}

($s) = adm($A, 'POST', '/admin/partners',
           { name => 'kappa', plan => 'q', scopes => ['accounts'] });
is($s, 201, 'kappa is made on A');
($s, $j) = adm($A, 'POST', '/admin/partners/kappa/credentials',
               { type => 'api_key' });
my $kkey = $j->{api_key};
my $ktok = token_of($A);
ok(poll(sub { keyed($B, $kkey) eq '200' && keyed($C, $kkey) eq '200'
              && bearer($B, $ktok) == 200 }, 5),
   'kappa\'s key and a token of acme work on B and C');

for my $how ('stop', 'kill') {
    $redis->kill;
    my $name = "sigma$how";
    ($s) = adm($A, 'POST', '/admin/partners',
               { name => $name, plan => 'q', scopes => ['accounts'] });
    is($s, 201, "$name is made on A while Redis is down");
    ($s, $j) = adm($A, 'POST', "/admin/partners/$name/credentials",
                   { type => 'api_key' });
    is($s, 201, 'and its key');
    my $nkey = $j->{api_key};
    my $status = $how eq 'stop' ? 'suspended' : 'active';
    ($s) = adm($A, 'PATCH', '/admin/partners/kappa', { status => $status });
    is($s, 200, "kappa $status on A");
    $res = $A->request('POST', '/oauth2/revoke', \%acme,
                       form_body(token => $ktok));
    is($res->status, 200, 'A revokes a token');

    my $kwant = $how eq 'stop' ? '403 partner_suspended' : '200';
    my @want = (['key', $nkey], ['key', $kkey], ['token', $ktok]);
    my $want = "200 $kwant 401";
    is(in_force($A, \@want), $want, 'in force on A');
    ok(poll(sub { (sync_of($A)->{queued} // 0) >= 4 }, 5),
       'A holds 4 changes not published');

    if ($how eq 'stop') {
        $A->restart;
    } else {
        $A->kill;
        $A->restart;
    }

    my $q = sync_of($A);
    ok(($q->{queued} // 0) >= 4,
       "A, restarted ($how), holds them still ($q->{queued} queued)");
    is(in_force($A, \@want), $want, 'in force on A after its restart');
    is(in_force($B, \@want),
       '401 invalid_token '
       . ($how eq 'stop' ? '200' : '403 partner_suspended') . ' 200',
       'not on B while Redis is down');

    $redis->revive;
    ok(poll(sub { in_force($B, \@want) eq $want
                  && in_force($C, \@want) eq $want }, 10),
       "once Redis is back, A's changes are in force on B and C")
        or diag(in_force($B, \@want) . ' / ' . in_force($C, \@want));
    ok(poll(sub { (sync_of($A)->{state} // '') eq 'in_sync' }, 10),
       'A is in sync');
    is(in_force($A, \@want), $want,
       'and still on A, after it read the cluster\'s snapshot');
    ok(sync_of($A)->{snapshots} >= 1, 'which it did');
    ($s, $j) = adm($C, 'GET', "/admin/partners/$name");
    is($s, 200, "C's Admin API lists $name");

    $ktok = token_of($A);
    ok(poll(sub { bearer($B, $ktok) == 200 && bearer($C, $ktok) == 200 },
            5), 'a new token of acme for the next round');
}

# ---------------------------------------------------------------------
# cluster mode enabled on a gateway that has a registry: a new cluster
# (an empty Redis) takes it as its first, rather than deleting it

my $redis2 = OpenBank::Redis->start;
my ($http0) = admin_config();
my $E = start_gateway({ http_config => $http0, config => $config,
                        workers => 1 });
($s, $j) = adm($E, 'POST', '/admin/partners',
               { name => 'solo', plan => 'q', scopes => ['accounts'] });
is($s, 201, 'a partner of a gateway without cluster mode');
($s, $j) = adm($E, 'POST', '/admin/partners/solo/credentials',
               { type => 'api_key' });
my $skey = $j->{api_key};
my ($http2) = admin_config(extra_http => $redis2->directive(timeout => '100ms')
                                         . "\n");
$E->restart({ http_config => $http2, config => $config, workers => 1 });
ok(poll(sub { (sync_of($E)->{state} // '') eq 'in_sync' }, 10),
   'the gateway, now in cluster mode, is in sync');
is(keyed($E, $skey), '200', 'it keeps its partner');
like($E->error_log_since(0), qr/no registry yet: this gateway's is published/,
     'and publishes its registry as the cluster\'s first');
my $F = start_gateway({ http_config => $http2, config => $config,
                        workers => 1 });
ok(poll(sub { keyed($F, $skey) eq '200' }, 10),
   'a second gateway of that cluster knows it');

done_testing();
