# The durable and shared state behind idempotency keys: the journal under
# openbank_state (torn last record, a damaged record in the middle, an
# unreadable journal), a full zone (503 state_unavailable and an [alert],
# never a silent acceptance), and the configuration checks.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use Test::More;
use JSON::PP;

my $json = JSON::PP->new->canonical;

sub slurp {
    my ($file) = @_;
    open my $fh, '<', $file or die "$file: $!";
    binmode $fh;
    local $/;
    return scalar <$fh>;
}

# where the records end: the file without the zeros written ahead
sub records_end {
    my ($file) = @_;
    my $data = slurp($file);
    $data =~ s/\0+\z//;
    return length $data;
}

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

my $gw = OpenBank::Gateway->new('idem-state', settle_delay => 0.2);
my $journal = $gw->dir . '/run/state/idempotency.journal';
$gw->start;

my %first;
for my $i (1 .. 3) {
    my $r = $gw->post('/v1/payments', payment("st-$i"),
                      'Idempotency-Key' => "st-$i");
    is($r->{status}, 201, "payment $i");
    $first{$i} = $r->{content};
}

ok(-s $journal, 'the journal exists under openbank_state');
my $size = -s $journal;

# a reload keeps the zone: the journal is neither read nor rewritten
my $inode = (stat $journal)[1];
$gw->reload;
my $rr = $gw->post('/v1/payments', payment('st-1'), 'Idempotency-Key' => 'st-1');
is($rr->{headers}{'idempotent-replayed'}, 'true', 'after a reload: replayed');
is($rr->{content}, $first{1}, '... the first answer');
is((stat $journal)[1], $inode, 'the journal was not rewritten by the reload');
my @restored = $gw->error_log =~ /idempotency records restored/g;
is(scalar @restored, 1, 'nor read again');
$gw->stop;

# written in place: zeros written ahead of the records, in 4 MiB steps
my $records = records_end($journal);
$size = -s $journal;
ok($size >= 4 * 1024 * 1024 && $size % (4 * 1024 * 1024) == 0,
   "the journal's blocks are written ahead ($size bytes)");
ok($records > 0 && $records < $size, "its records end at $records");
is(substr(slurp($journal), $records), "\0" x ($size - $records),
   'zeros after them');
$size = $records;

# a torn last record: a crash in the middle of a write
open my $fh, '+<', $journal or die;
binmode $fh;
seek $fh, $records, 0;
print $fh pack('a4 L L', 'OBJ1', 500, 0) . 'torn';
close $fh;

$gw->start;
for my $i (1 .. 3) {
    my $r = $gw->post('/v1/payments', payment("st-$i"),
                      'Idempotency-Key' => "st-$i");
    is($r->{headers}{'idempotent-replayed'}, 'true',
       "after a torn last record: key $i replayed");
    is($r->{content}, $first{$i}, '... with its answer');
}
like($gw->error_log, qr/bytes of torn or damaged records ignored/,
     'the torn record is reported');
$gw->stop;
is(-s $journal, $size, 'and compacted away at start');

# garbage after the zeros: reported, the records before it kept
open $fh, '>>', $journal or die;
print $fh "\0" x 1000, 'garbage';
close $fh;

$gw->start;
for my $i (1 .. 3) {
    my $r = $gw->post('/v1/payments', payment("st-$i"),
                      'Idempotency-Key' => "st-$i");
    is($r->{headers}{'idempotent-replayed'}, 'true',
       "garbage after the end: key $i replayed");
}
like($gw->error_log, qr/: 7 bytes of torn or damaged records ignored/,
     'the garbage is reported, the zeros are not');
$gw->stop;

# the zeros alone are no damage
my $log = length $gw->error_log;
$gw->start;
for my $i (4 .. 5) {
    my $r = $gw->post('/v1/payments', payment("st-$i"),
                      'Idempotency-Key' => "st-$i");
    is($r->{status}, 201, "payment $i, after the compaction");
    $first{$i} = $r->{content};
}

# where the records end: the first 24 bytes of the lock file
my $lock = $gw->dir . '/run/state/idempotency.lock';
my @st = stat $journal;
my ($dev, $ino, $end) = unpack 'Q3', slurp($lock);
is_deeply([$dev, $ino, $end], [$st[0], $st[1], records_end($journal)],
          'the lock file says where the records of this journal end');
ok(-s $journal > records_end($journal), 'written ahead again');

# a worker killed in the middle of its write: a torn record at the end,
# the end not moved; the next write goes over it, what is left of it is
# never replayed
open $fh, '+<', $journal or die;
binmode $fh;
seek $fh, $end, 0;
print $fh pack('a4 L L', 'OBJ1', 5000, 0) . ('torn' x 500);
close $fh;
my $r7 = $gw->post('/v1/payments', payment('st-7'),
                   'Idempotency-Key' => 'st-7');
is($r7->{status}, 201, 'payment 7, written over the torn record');
$first{7} = $r7->{content};
ok(index(slurp($journal), 'st-7', $end) >= $end,
   'at the end of the records, not after the torn one');
$gw->stop;
$gw->start;
my $r7b = $gw->post('/v1/payments', payment('st-7'),
                    'Idempotency-Key' => 'st-7');
is($r7b->{content}, $first{7}, 'payment 7 replayed after a restart');
$gw->stop;
like(substr($gw->error_log, $log), qr/bytes of torn or damaged records ignored/,
     "what is left of the torn record is reported, not replayed");
$log = length $gw->error_log;
$gw->start;
for my $i (1 .. 5) {
    my $r = $gw->post('/v1/payments', payment("st-$i"),
                      'Idempotency-Key' => "st-$i");
    is($r->{content}, $first{$i}, "a zero tail: key $i replayed");
}
$gw->stop;
unlike(substr($gw->error_log, $log), qr/torn or damaged/,
       'a zero tail is not reported as damage');

# a stale end in the lock file (it is not synced: a crash may lose it)
# is found again at start: no record written over
@st = stat $journal;
open $fh, '>', $lock or die;
binmode $fh;
print $fh pack('Q3', $st[0], $st[1], 0);
close $fh;
$gw->start;
my $r6 = $gw->post('/v1/payments', payment('st-6'),
                   'Idempotency-Key' => 'st-6');
is($r6->{status}, 201, 'payment 6, the tail lost');
$first{6} = $r6->{content};
$gw->stop;
$gw->start;
for my $i (1 .. 6) {
    my $r = $gw->post('/v1/payments', payment("st-$i"),
                      'Idempotency-Key' => "st-$i");
    is($r->{content}, $first{$i}, "a lost tail: key $i kept");
}
$gw->stop;
$size = records_end($journal);

# a damaged record in the middle: that one is lost, the others are kept
open $fh, '+<', $journal or die;
binmode $fh;
seek $fh, 30, 0;
print $fh "\xff\xff\xff\xff";
close $fh;

$gw->start;
my $r;
for my $i (1 .. 3) {
    $r = $gw->post('/v1/payments', payment("st-$i"),
                   'Idempotency-Key' => "st-$i");
    is($r->{status}, 201, "key $i: 201");
    is($r->{headers}{'idempotent-replayed'}, 'true',
       "key $i: replayed, by the gateway or by the bank");
    is($gw->payments_with_reference("st-$i"), 1,
       "key $i: one payment (the bank's key covers a lost record)");
}
like($gw->error_log, qr/6 idempotency records restored/,
     'the damaged record is lost to the gateway, the others kept');
$gw->stop;
$gw->check_log;

# an unreadable journal: refuse rather than guess
unlink $journal;
mkdir $journal or die;
$gw->start;
$r = $gw->post('/v1/payments', payment('st-9'), 'Idempotency-Key' => 'st-9');
is($r->{status}, 503, 'unreadable journal: 503');
is($r->{json}{code}, 'state_unavailable', 'state_unavailable');
is($gw->payments_with_reference('st-9'), 0, 'nothing reached the bank');
$r = $gw->get('/v1/payments?limit=1');
is($r->{status}, 200, 'GETs still work');
$gw->stop;
like($gw->error_log, qr/\[alert\].*journal.*unreadable/, 'an [alert]');
rmdir $journal;

# a full zone
my $small = OpenBank::Gateway->new('idem-full', settle_delay => 0.2,
    edit => sub {
        my $c = shift;
        $c =~ s/openbank_zone      openbank 16m;/openbank_zone      openbank 128k;/
            or die;
        # a rate whose counter outlives the test: a counter that ended
        # would need room again, and a full zone refuses to count a call
        $c =~ s/rate   100000r\/s burst=100000;/rate   1r\/m burst=100000;/
            or die;
        return $c;
    });
$small->start;

my ($ok, $full, $other) = (0, 0, 0);
my $last;
for my $i (1 .. 400) {
    my $r = $small->post('/v1/payments', payment("full-$i"),
                         'Idempotency-Key' => "full-$i");
    if ($r->{status} == 201) {
        $ok++;
        $last = $i;
    } elsif ($r->{status} == 503
             && ($r->{json}{code} // '') eq 'state_unavailable') {
        $full++;
        last;
    } else {
        $other++;
        diag($r->{content});
        last;
    }
}
ok($ok > 10, "the zone held $ok keys");
is($full, 1, 'then a new key is refused: 503 state_unavailable');
is($other, 0, 'nothing else');
my $n = $small->payments_with_reference("full-" . ($last + 1));
is($n, 0, 'the refused one never reached the bank');

$r = $small->post('/v1/payments', payment("full-1"),
                  'Idempotency-Key' => 'full-1');
is($r->{headers}{'idempotent-replayed'}, 'true',
   'kept keys are not evicted to make room');
$small->stop;
like($small->error_log, qr/\[alert\].*is full, idempotency record not created/,
     'an [alert] says the zone is full');
$small->check_log(qr/is full/);

# the configuration
for my $case (
    [ 'openbank_idempotency  maybe;', qr/invalid value "maybe"/ ],
    [ 'openbank_idempotency  required; openbank_idempotency off;',
      qr/is duplicate/ ],
) {
    my $bad = OpenBank::Gateway->new('idem-conf', edit => sub {
        my $c = shift;
        $c =~ s/openbank_idempotency  required;/$case->[0]/ or die;
        return $c;
    });
    my ($rc, $out) = $bad->test_config;
    isnt($rc, 0, "nginx -t refuses: $case->[0]");
    like($out, $case->[1], '... saying why');
}

my $nostate = OpenBank::Gateway->new('idem-conf', edit => sub {
    my $c = shift;
    $c =~ s/openbank_state     run\/state;\n// or die;
    return $c;
});
my ($rc, $out) = $nostate->test_config;
isnt($rc, 0, 'openbank_idempotency without openbank_state: nginx -t fails');
like($out, qr/requires "openbank_zone" and "openbank_state"/, '... saying why');

# at server level it applies to the locations with partners; one without
# (status) inherits nothing; set there explicitly, it is an error
my $srv = OpenBank::Gateway->new('idem-conf', edit => sub {
    my $c = shift;
    $c =~ s/(listen  127\.0\.0\.1:\d+;\n)/$1        openbank_idempotency  required;\n/
        or die;
    return $c;
});
($rc, $out) = $srv->test_config;
is($rc, 0, 'openbank_idempotency at server level: nginx -t is fine')
    or diag($out);

my $noauth = OpenBank::Gateway->new('idem-conf', edit => sub {
    my $c = shift;
    $c =~ s/(            openbank_status;\n)/$1            openbank_idempotency  required;\n/
        or die;
    return $c;
});
($rc, $out) = $noauth->test_config;
isnt($rc, 0, 'in a location without openbank_auth: nginx -t fails');
like($out, qr/requires "openbank_auth"/, '... saying why');

done_testing();
