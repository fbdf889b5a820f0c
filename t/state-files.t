# The files under openbank_state lost under a running gateway: each state
# file, then the directory itself, removed or made unusable (replaced by a
# directory, or the directory replaced by a file: the tests run as root,
# whom chmod 000 does not stop), and the cache manager killed with SIGKILL
# so that nginx starts a new one.  Nothing crashes; each loss is logged
# once, with the path and the error (not once a second); the gateway
# serves, with 503 state_unavailable only where durable state is needed
# and cannot be written; once the path is usable again the state is
# written again, whole, and a restart finds it.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use Test::More;
use JSON::PP;
use MIME::Base64 qw(encode_base64 decode_base64);
use Time::HiRes qw(sleep time);

my $json = JSON::PP->new->canonical;
my $gw = OpenBank::Gateway->new('state-files', settle_delay => 0.05);
my $dir = $gw->dir;
my $state = "$dir/run/state";
my $creds = OpenBank::Gateway::creds();
my $basic = 'Basic ' . encode_base64(
    "$creds->{client_id}:$creds->{client_secret}", '');
my $n = 0;
my $created = 0;    # idempotency records the gateway keeps

sub payment {
    my ($ref) = @_;
    return $json->encode({
        debtor_account => { number => '6222020000000001' },
        creditor_account => { number => '6222020000000201',
                              name => 'Shanghai Supplier Co., Ltd.',
                              bank_code => 'OBKCNSH' },
        amount => { value => '1.00', currency => 'CNY' },
        reference => $ref,
    });
}

sub pay {
    my ($key) = @_;
    return $gw->post('/v1/payments', payment($key), 'Idempotency-Key' => $key);
}

sub form {
    my ($path, $body) = @_;
    return $gw->request('POST', $path, $body, 'X-API-Key' => undef,
        Authorization => $basic,
        'Content-Type' => 'application/x-www-form-urlencoded');
}

sub token {
    my $r = form('/oauth2/token', 'grant_type=client_credentials');
    die "no token: $r->{content}" unless $r->{json}{access_token};
    return $r->{json}{access_token};
}

sub jti {
    my ($token) = @_;
    my (undef, $claims) = split /\./, $token;
    $claims =~ tr/-_/+\//;
    $claims .= '=' x (-length($claims) % 4);
    return decode_json(decode_base64($claims))->{jti};
}

sub revoke { form('/oauth2/revoke', "token=$_[0]") }

sub bearer {
    my ($token) = @_;
    return $gw->get('/v1/accounts', 'X-API-Key' => undef,
                    Authorization => "Bearer $token")->{status};
}

sub wait_for {
    my ($cond, $seconds) = @_;
    my $end = time + $seconds;
    while (time < $end) {
        return 1 if $cond->();
        sleep 0.1;
    }
    return $cond->();
}

sub cache_manager {
    my (undef, @kids) = $gw->pids;
    for my $pid (@kids) {
        my $cmd = OpenBank::Gateway::slurp("/proc/$pid/cmdline");
        return $pid if $cmd =~ /cache manager/;
    }
    return;
}

# SIGKILL, as t/idempotency.t does to every child: nginx starts another
sub respawn_cache_manager {
    my $old = cache_manager() or die 'no cache manager';
    kill 'KILL', $old;
    wait_for(sub { my $new = cache_manager(); $new && $new != $old }, 5)
        or die 'no new cache manager';
}

sub offset { length $gw->error_log }
sub since { substr($gw->error_log, $_[0]) }

# [alert], [crit] and [emerg] lines since $off but nginx's own line for
# the SIGKILL the test sends
sub alerts {
    my ($off) = @_;
    return grep { /\[(alert|crit|emerg)\]/
                  && !/cache manager process \d+ exited on signal 9$/ }
           split /\n/, since($off);
}

sub is_lines {
    my ($name, $lines, $expected) = @_;
    is(scalar @$lines, scalar @$expected, "$name: exactly the expected "
       . scalar(@$expected) . " [alert] lines")
        or diag(join "\n", @$lines);
    for my $re (@$expected) {
        my @m = grep { $_ =~ $re } @$lines;
        is(scalar @m, 1, "$name: one [alert] like $re");
    }
}

sub journal { OpenBank::Gateway::slurp("$state/idempotency.journal") }
sub revoked { OpenBank::Gateway::slurp("$state/revocations.journal") }

$gw->start;
my $owner = (stat $state)[4];

# --- every file there is: counters (and .prev), the idempotency journal and
# its lock, the revocations journal and its lock
is(pay('kept')->{status}, 201, 'a payment with an Idempotency-Key');
$created++;
my @revoked;
my $t = token();
is(revoke($t)->{status}, 200, 'a revoked token');
push @revoked, jti($t);
is(bearer($t), 401, '... is refused');
$gw->get('/v1/accounts');
sub state_files {
    opendir my $dh, $state or die;
    my @f = sort grep { !/^\./ } readdir $dh;
    closedir $dh;
    return @f;
}
# two snapshots, and none being written (between the renames of a snapshot
# there is a counters.tmp.<pid> and no counters)
ok(wait_for(sub { my @f = state_files();
                  (grep { $_ eq 'counters.prev' } @f)
                  && (grep { $_ eq 'counters' } @f)
                  && !grep { /^counters\.tmp\./ } @f }, 5),
   'two snapshots');
my @files = state_files();
is("@files", 'counters counters.prev events.journal events.lock '
   . 'idempotency.journal idempotency.lock '
   . 'registry.journal registry.key registry.lock '
   . 'revocations.journal revocations.lock', 'the files under openbank_state');
my $ops = OpenBank::Gateway::slurp("$OpenBank::Gateway::ROOT/docs/operations.md");
my @undocumented = grep { $ops !~ /^\| `\Q$_\E` \|/m } @files;
ok(!@undocumented, 'docs/operations.md lists each of them')
    or diag("@undocumented");

my $enoent = qr/\(2: No such file or directory\)/;
my $eisdir = qr/\(21: Is a directory\)/;
my $enotdir = qr/\(20: Not a directory\)/;
my $counters = sub { qr/\Q$state\E\/counters\.tmp\.\d+" failed $_[0] while writing the counters to "\Q$state\E" \(they stay in the zone/ };

sub outage {
    my (%c) = @_;
    my $name = $c{name};
    my $off = offset();

    $c{break}->();
    respawn_cache_manager();

    is($gw->get('/v1/accounts')->{status}, 200,
       "$name: the gateway answers");

    my $r = pay('key-' . ++$n);
    $created++ if $r->{status} == 201;
    is($r->{status}, $c{new_key}, "$name: a new Idempotency-Key, "
       . $c{new_key}) or diag($r->{content});
    if ($c{new_key} == 503) {
        is($r->{json}{code}, 'state_unavailable', "$name: state_unavailable");
        is($gw->payments_with_reference("key-$n"), 0,
           "$name: it did not reach the bank");
    }

    $r = pay('kept');
    is($r->{headers}{'idempotent-replayed'}, 'true',
       "$name: a kept answer is replayed");

    my $tok = token();
    $r = revoke($tok);
    is($r->{status}, $c{revoke}, "$name: a revocation, $c{revoke}");
    push @revoked, jti($tok);    # in the zone, refused or not
    is(bearer($tok), 401, "$name: the revoked token is refused");

    # an event of the bank core's (docs/webhooks.md): 202 only if durable
    my $events = $c{events} // 202;
    $r = $gw->post('/internal/events', { partner => 'demo',
                   type => 'payment.settled', data => { id => "e-$n" } });
    is($r->{status}, $events, "$name: an event, $events");

    # the snapshot of every second: the counters change all along
    for (1 .. 5) {
        $gw->get('/v1/accounts');
        sleep 0.5;
    }

    my $log = since($off);
    unlike($log, qr/exited on signal (?!9\b)/, "$name: nothing crashed");
    is_lines($name, [ alerts($off) ], $c{alerts});
    like($log, $c{warn}, "$name: a [warn]") if $c{warn};

    # usable again: the state is written again, whole
    $off = offset();
    $c{restore}->() if $c{restore};
    ok(wait_for(sub { -f "$state/counters" }, 5),
       "$name: then the counters are written again");

    sleep 1.1;    # new keys wait a second after a failed write
    $r = $gw->post('/internal/events', { partner => 'demo',
                   type => 'payment.settled', data => { id => "e-$n" } });
    is($r->{status}, 202, "$name: then an event, 202");
    $r = pay('key-' . ++$n);
    $created++ if $r->{status} == 201;
    is($r->{status}, 201, "$name: then a new key, 201")
        or diag($r->{content});
    like(journal(), qr/kept/, "$name: the journal has the key kept before");
    like(journal(), qr/key-$n/, "$name: and the new one");
    like(since($off), $c{recovered}, "$name: the recovery is logged")
        if $c{recovered};

    $tok = token();
    is(revoke($tok)->{status}, 200, "$name: a revocation, 200");
    push @revoked, jti($tok);
    my $file = revoked();
    my @missing = grep { $file !~ /\Q$_\E/ } @revoked;
    ok(!@missing, "$name: revocations.journal has every revocation")
        or diag("missing @missing");

    is_lines("$name, after", [ alerts($off) ], []);
}

sub file_gone { my $f = shift; return (name => "$f removed",
    break => sub { unlink "$state/$f" or die "$f: $!" }) }
sub file_dir { my $f = shift; return (name => "$f a directory",
    break => sub { unlink "$state/$f" or die "$f: $!";
                   mkdir "$state/$f" or die "$f: $!" },
    restore => sub { rmdir "$state/$f" or die "$f: $!" }) }

outage(file_gone('counters'), new_key => 201, revoke => 200, alerts => []);

outage(file_dir('counters'), new_key => 201, revoke => 200,
       alerts => [ qr/rename\(\) "\Q$state\E\/counters\.tmp\.\d+" to "\Q$state\E\/counters" failed $eisdir while writing the counters/ ],
       recovered => qr/\[notice\].*counters written to "\Q$state\E" again, after \d+ failed attempts/);

outage(file_gone('counters.prev'), new_key => 201, revoke => 200,
       alerts => []);

outage(file_dir('counters.prev'), new_key => 201, revoke => 200,
       alerts => [],
       warn => qr/\[warn\].*rename\(\) "\Q$state\E\/counters" to "\Q$state\E\/counters\.prev" failed $eisdir/);

outage(file_gone('idempotency.journal'), new_key => 201, revoke => 200,
       alerts => [ qr/idempotency journal "\Q$state\E\/idempotency\.journal" was removed or replaced \(0 bytes, \d+ expected\): it is made again from the records of the zone/ ]);

outage(file_dir('idempotency.journal'), new_key => 503, revoke => 200,
       alerts => [ qr/open\(\) "\Q$state\E\/idempotency\.journal" failed: new idempotency keys are refused with 503 until it opens $eisdir/ ],
       recovered => qr/\[notice\].*idempotency journal .* written again: new keys are accepted/);

outage(file_gone('idempotency.lock'), new_key => 201, revoke => 200,
       alerts => []);

outage(file_dir('idempotency.lock'), new_key => 503, revoke => 200,
       alerts => [ qr/open\(\) "\Q$state\E\/idempotency\.lock" failed: new idempotency keys are refused with 503 until it opens $eisdir/ ]);

outage(file_gone('revocations.journal'), new_key => 201, revoke => 200,
       alerts => [ qr/revocations journal "\Q$state\E\/revocations\.journal" was removed or replaced \(0 bytes, \d+ expected\): it is made again from the records of the zone/ ]);

outage(file_dir('revocations.journal'), new_key => 201, revoke => 503,
       alerts => [ qr/open\(\) revocations journal "\Q$state\E\/revocations\.journal" failed $eisdir/,
                   qr/the revocation of \S+ is not durable/ ]);

outage(file_gone('revocations.lock'), new_key => 201, revoke => 200,
       alerts => []);

outage(file_dir('revocations.lock'), new_key => 201, revoke => 503,
       alerts => [ qr/open\(\) "\Q$state\E\/revocations\.lock" failed $eisdir/ ]);

# the directory itself: removed, then made again by the operator
outage(name => 'the directory removed',
       break => sub { system('rm', '-rf', $state) == 0 or die },
       restore => sub { mkdir $state or die; chown $owner, -1, $state },
       new_key => 503, revoke => 503, events => 503,
       alerts => [ $counters->($enoent),
                   qr/open\(\) "\Q$state\E\/idempotency\.journal" failed: new idempotency keys are refused with 503 until it opens $enoent/,
                   qr/open\(\) "\Q$state\E\/revocations\.lock" failed $enoent/,
                   qr/open\(\) "\Q$state\E\/events\.lock" failed $enoent/ ],
       recovered => qr/\[notice\].*counters written to "\Q$state\E" again/);

# a file where the directory was: every path under it is "not a directory"
outage(name => 'the directory a file',
       break => sub { rename $state, "$state.aside" or die;
                      OpenBank::Gateway::spew($state, "not a directory\n") },
       restore => sub { unlink $state or die;
                        rename "$state.aside", $state or die },
       new_key => 503, revoke => 503, events => 503,
       alerts => [ $counters->($enotdir),
                   qr/open\(\) "\Q$state\E\/idempotency\.journal" failed: new idempotency keys are refused with 503 until it opens $enotdir/,
                   qr/open\(\) "\Q$state\E\/revocations\.lock" failed $enotdir/,
                   qr/open\(\) "\Q$state\E\/events\.lock" failed $enotdir/ ],
       recovered => qr/\[notice\].*counters written to "\Q$state\E" again/);

# --- a restart finds everything that was written
$gw->stop;
my $off = offset();
$gw->start;
my $log = since($off);
like($log, qr/openbank: $created idempotency records restored/,
     'a restart restores every idempotency record')
    or diag(join "\n", grep { /restored/ } split /\n/, $log);
like($log, qr/${\ scalar @revoked} revoked tokens restored/,
     'and every revocation');
like($log, qr/\d+ counters restored/, 'and the counters');
my $r = pay('kept');
is($r->{headers}{'idempotent-replayed'}, 'true', 'the kept key is replayed');
is($gw->payments_with_reference('kept'), 1, '... from one payment');
is(bearer($t), 401, 'the first revoked token is still refused');
$gw->stop;

my @asan = glob("$dir/run/asan*");
ok(!@asan, 'no AddressSanitizer report')
    or diag(OpenBank::Gateway::slurp($asan[0]));

done_testing();
