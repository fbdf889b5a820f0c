# Cluster mode's claims (docs/cluster.md, "Conflicts"): the same partner
# name created on two gateways at once is created once, and the other
# gateway answers what a single gateway answers for a duplicate (409
# invalid_state); so is the same client_id under two names, and the same
# software statement registered (RFC 7591) or presented in an update
# (RFC 7592) on two gateways at once.
# Every gateway agrees on the partner afterwards; a deletion ends the
# claim of the name, so the name can be made again on another gateway.
# While Redis cannot answer, a creation follows openbank_cluster_degraded
# registry=: local (the default: made, and logged) or refuse (503
# state_unavailable, Retry-After).

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;
use OpenBank::Registration;
use OpenBank::Redis;
use OpenBank::Load;
use JSON::PP qw(decode_json encode_json);

my $redis = OpenBank::Redis->start;
my $dir = $redis->directive(timeout => '500ms');

my ($http, $config) = dcr_config(extra_http => "$dir\n");
$config .= "location = /metrics { openbank_metrics; }\n";

my @gw = map {
    start_gateway({ http_config => $http, config => $config,
                    workers => 2 })
} 1 .. 3;
my ($A, $B, $C) = @gw;

sub adm ($gw, $method, $path, $body = undef) {
    my %h = (Authorization => "Bearer $ADMIN_KEY");
    $h{'Content-Type'} = 'application/json' if defined $body;
    my $res = $gw->request($method, $path, \%h,
                           defined $body ? encode_json($body) : undef);
    return ($res->status, eval { decode_json($res->body) }, $res);
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
       'the gateway is in sync');
}

sub post_partner ($body) {
    my $json = encode_json($body);
    return OpenBank::Load::request_line('POST', '/admin/partners',
        [Authorization => "Bearer $ADMIN_KEY",
         'Content-Type' => 'application/json'], $json);
}

# the answers of a load run, by request: [status, problem code]
sub answers ($r) {
    return map { [$_->{status},
                  eval { decode_json($_->{body})->{code} } // ''] }
           @{ $r->{answers} };
}

# ---------------------------------------------------------------------
# 20 names, each POSTed to A and B at once (A's and B's bodies differ by
# their client_id, so that the winner shows)

my $pairs = 20;
my $r = OpenBank::Load::run(
    ports => [$A->port, $B->port], connections => 2 * $pairs,
    requests => 2 * $pairs, keep => 1, timeout => 20,
    request => sub ($i, $port) {
        my $n = int($i / 2);
        my $who = $i % 2 ? 'b' : 'a';
        post_partner({ name => "dup$n", plan => 'q', scopes => ['accounts'],
                       client_id => "$who-dup$n" });
    });

my @ans = answers($r);
my (%winner, @bad);
for my $n (0 .. $pairs - 1) {
    my ($a, $b) = @ans[2 * $n, 2 * $n + 1];
    my $got = join ' ', sort map { "$_->[0] $_->[1]" } $a, $b;
    push @bad, "dup$n: $got" unless $got eq '201  409 invalid_state';
    $winner{"dup$n"} = $a->[0] == 201 ? 'a' : 'b';
}
is(scalar(@bad), 0, "$pairs names POSTed to A and B at once: one 201 and "
   . "one 409 invalid_state each") or diag(join "\n", @bad);
my %won = map { $_ => 1 } values %winner;
note('won by A: ' . scalar(grep { $_ eq 'a' } values %winner)
     . ', by B: ' . scalar(grep { $_ eq 'b' } values %winner));

my $detail = eval { decode_json((grep { $_->{status} == 409 }
                                 @{ $r->{answers} })[0]{body})->{detail} };
is($detail, "the partner's name is taken",
   'the loser answers what a single gateway answers for a duplicate');

sub agree ($name) {
    my @ids = map { my ($s, $j) = adm($_, 'GET', "/admin/partners/$name");
                    $s == 200 ? $j->{client_id} : "$s" } @gw;
    return join ' ', @ids;
}

ok(poll(sub { !grep { my $w = "$winner{$_}-$_";
                      agree($_) ne "$w $w $w" } keys %winner }, 10),
   'the three gateways agree on each partner: the winner\'s')
    or diag(join "\n", map { "$_ ($winner{$_}): " . agree($_) }
                       sort keys %winner);

# ---------------------------------------------------------------------
# two names with the same client_id, at once

$r = OpenBank::Load::run(
    ports => [$A->port, $B->port], connections => 2 * $pairs,
    requests => 2 * $pairs, keep => 1, timeout => 20,
    request => sub ($i, $port) {
        my $n = int($i / 2);
        my $who = $i % 2 ? 'b' : 'a';
        post_partner({ name => "cid$n$who", plan => 'q',
                       scopes => ['accounts'], client_id => "shared$n" });
    });
@ans = answers($r);
@bad = ();
my %owner;
for my $n (0 .. $pairs - 1) {
    my ($a, $b) = @ans[2 * $n, 2 * $n + 1];
    my $got = join ' ', sort map { "$_->[0] $_->[1]" } $a, $b;
    push @bad, "shared$n: $got" unless $got eq '201  409 invalid_state';
    $owner{$n} = $a->[0] == 201 ? 'a' : 'b';
}
is(scalar(@bad), 0, 'one client_id under two names on A and B at once: '
   . 'one 201 and one 409 invalid_state each') or diag(join "\n", @bad);
ok(poll(sub { !grep { my $n = $_;
                      my $other = $owner{$n} eq 'a' ? 'b' : 'a';
                      agree("cid$n$owner{$n}") ne "shared$n shared$n shared$n"
                      || agree("cid$n$other") ne '404 404 404' }
              keys %owner }, 10),
   'every gateway has the winner, none the loser');

# ---------------------------------------------------------------------
# a deletion ends the claim: the name made again on another gateway

my $w = $winner{dup0} eq 'a' ? $A : $B;
my $o = $winner{dup0} eq 'a' ? $B : $A;
my ($s, $j) = adm($w, 'DELETE', '/admin/partners/dup0');
is($s, 204, 'dup0 deleted on the gateway that made it');
ok(poll(sub { agree('dup0') eq '404 404 404' }, 5), 'gone everywhere');
($s, $j) = adm($o, 'POST', '/admin/partners',
               { name => 'dup0', plan => 'q', scopes => ['accounts'] });
is($s, 201, 'and made again on the other gateway') or diag(encode_json($j));
ok(poll(sub { agree('dup0') eq 'dup0 dup0 dup0' }, 5),
   'every gateway has the new one');

($s, $j) = adm($C, 'POST', '/admin/partners',
               { name => 'dup1', plan => 'q', scopes => ['accounts'] });
is("$s $j->{code}", '409 invalid_state', 'a name taken long ago: 409');

# ---------------------------------------------------------------------
# one software statement registered on A and B at once (RFC 7591)

my (undef, $jwks) = client_key('claim-client');
my @ssa = map { statement() } 1 .. 10;
$r = OpenBank::Load::run(
    ports => [$A->port, $B->port], connections => 2 * @ssa,
    requests => 2 * @ssa, keep => 1, timeout => 20,
    request => sub ($i, $port) {
        OpenBank::Load::request_line('POST', '/oauth2/register',
            ['Content-Type' => 'application/json'],
            encode_json({ token_endpoint_auth_method => 'private_key_jwt',
                          jwks => $jwks, scope => 'accounts',
                          software_statement => $ssa[int($i / 2)] }));
    });
@bad = ();
my @clients;
for my $n (0 .. $#ssa) {
    my @two = @{ $r->{answers} }[2 * $n, 2 * $n + 1];
    my $got = join ' ', sort map {
        my $b = eval { decode_json($_->{body}) } // {};
        push @clients, [$b->{client_id}, $b->{registration_access_token}]
            if $_->{status} == 201;
        $_->{status} . ($_->{status} == 201 ? '' : " $b->{error}")
    } @two;
    push @bad, "statement $n: $got"
        unless $got eq '201 400 invalid_software_statement';
}
is(scalar(@bad), 0, 'one statement on A and B at once: one 201 and one 400 '
   . 'invalid_software_statement each') or diag(join "\n", @bad);
ok(poll(sub { !grep { my $c = $_->[0]; agree($c) ne "$c $c $c" }
              @clients }, 10),
   'every gateway knows each client registered');

# RFC 7592: two clients updated with one new statement, on A and B at once

my $rounds = int(@clients / 2);
my @new = map { statement() } 1 .. $rounds;
$r = OpenBank::Load::run(
    ports => [$A->port, $B->port], connections => 2 * $rounds,
    requests => 2 * $rounds, keep => 1, timeout => 20,
    request => sub ($i, $port) {
        my ($id, $rat) = @{ $clients[$i] };
        OpenBank::Load::request_line('PUT', "/oauth2/register/$id",
            ['Content-Type' => 'application/json',
             Authorization => "Bearer $rat"],
            encode_json({ client_id => $id,
                          token_endpoint_auth_method => 'private_key_jwt',
                          jwks => $jwks, scope => 'accounts',
                          software_statement => $new[int($i / 2)] }));
    });
@bad = ();
for my $n (0 .. $rounds - 1) {
    my $got = join ' ', sort map {
        my $b = eval { decode_json($_->{body}) } // {};
        $_->{status} . ($_->{status} == 200 ? '' : " $b->{error}")
    } @{ $r->{answers} }[2 * $n, 2 * $n + 1];
    push @bad, "statement $n: $got"
        unless $got eq '200 400 invalid_software_statement';
}
is(scalar(@bad), 0, 'one new statement for two clients on A and B at once: '
   . 'one 200 and one 400 invalid_software_statement each')
    or diag(join "\n", @bad);

# ---------------------------------------------------------------------
# Redis cannot answer: registry=local (the default) makes the partner and
# says so; registry=refuse answers 503 state_unavailable

my ($http_r) = dcr_config(extra_http => "$dir\n"
                          . "openbank_cluster_degraded registry=refuse;\n");
my $D = start_gateway({ http_config => $http_r, config => $config,
                        workers => 1 });
ok(poll(sub { (sync_of($D)->{state} // '') eq 'in_sync' }, 10),
   'D (registry=refuse) is in sync');
($s) = adm($D, 'POST', '/admin/partners',
           { name => 'strict1', plan => 'q', scopes => ['accounts'] });
is($s, 201, 'D makes a partner while Redis answers');

$redis->stop;
my $off = $A->error_log_offset;
($s, $j) = adm($A, 'POST', '/admin/partners',
               { name => 'alone1', plan => 'q', scopes => ['accounts'] });
is($s, 201, 'registry=local: A makes a partner while Redis is stopped');
like($A->error_log_since($off),
     qr/\[warn\].*a partner is created while Redis cannot answer: its name and client id are not claimed across the cluster/,
     'and logs that it is not claimed');
my $res;
($s, $j, $res) = adm($D, 'POST', '/admin/partners',
                     { name => 'strict2', plan => 'q',
                       scopes => ['accounts'] });
is("$s " . ($j->{code} // ''), '503 state_unavailable',
   'registry=refuse: D refuses it');
is($res->header('Retry-After'), '1', 'with Retry-After: 1');
is($res->header('Content-Type'), 'application/problem+json',
   'as problem+json');
($s) = adm($D, 'PATCH', '/admin/partners/strict1', { status => 'suspended' });
is($s, 200, 'D still applies a change that creates nothing');
like($D->request('GET', '/metrics')->body,
     qr/^openbank_cluster_degraded_total\{kind="registry",decision="refuse"\} [1-9]/m,
     'the refusal is counted');
like($A->request('GET', '/metrics')->body,
     qr/^openbank_cluster_degraded_total\{kind="registry",decision="local"\} [1-9]/m,
     'so is the local creation');
$redis->cont;
ok(poll(sub { agree('alone1') eq 'alone1 alone1 alone1' }, 10),
   'once Redis is back, A\'s partner reaches the others');
($s) = adm($D, 'POST', '/admin/partners',
           { name => 'strict2', plan => 'q', scopes => ['accounts'] });
is($s, 201, 'and D makes partners again');

done_testing();
