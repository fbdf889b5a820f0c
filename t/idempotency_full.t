# An answer the zone has no room for: the bank has acted and the answer
# goes out and into the journal, but not into the zone (an [alert] says
# so).  The key keeps its in-flight record, released: another body is
# still 422 from the gateway, and a retry of the same request goes to the
# bank again at once (no 409, no takeover), whose own key answers it
# without a second payment.  The key keeps its room, so a zone that is
# full goes on refusing new keys.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use Test::More;
use JSON::PP;

my $json = JSON::PP->new->canonical;

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

my $gw = OpenBank::Gateway->new('idem-nofit', settle_delay => 0.2,
    edit => sub {
        my $c = shift;
        $c =~ s/openbank_zone      openbank 16m;/openbank_zone      openbank 128k;/
            or die;
        # a rate whose counter outlives the test: a counter that ended
        # would need room again, and a full zone refuses to count a call
        $c =~ s/rate   100000r\/s burst=100000;/rate   1r\/m burst=100000;/
            or die;
        # the bank's events would fill the zone too: this is about
        # idempotency answers alone
        $c =~ s/\n *set \$openbank_bank_events [^\n]*//;
        return $c;
    });
$gw->start;

my $nofit = qr/\[alert\].*zone "openbank" is full, 1 answers to idempotency keys are kept only in the journal/;
my $log = sub { substr($gw->error_log, $_[0]) };

# new keys until an answer finds no room (each kept payment answer takes
# 1 KiB; the in-flight record it would replace, 128 bytes)
my ($k, $first, $bad);
for my $i (1 .. 400) {
    my $offset = length $gw->error_log;
    my $r = $gw->post('/v1/payments', payment("nf-$i"),
                      'Idempotency-Key' => "nf-$i");
    if ($r->{status} != 201) {
        $bad = "nf-$i: $r->{status} $r->{content}";
        last;
    }
    if ($log->($offset) =~ $nofit) {
        ($k, $first) = ($i, $r);
        last;
    }
}
ok(defined $k, 'new keys until an answer has no room in the zone')
    or BAIL_OUT($bad // 'the zone never ran out of room');
is($first->{json}{status}, 'pending', 'that answer was sent all the same');
is($gw->payments_with_reference("nf-$k"), 1, 'the bank made the payment');
like(OpenBank::Gateway::slurp($gw->dir . '/run/state/idempotency.journal'),
     qr/\0nf-$k(?!\d)/, 'the answer is in the journal');

# a retry of the same request: to the bank again, which replays
for my $n (1 .. 2) {
    my $offset = length $gw->error_log;
    my $r = $gw->post('/v1/payments', payment("nf-$k"),
                      'Idempotency-Key' => "nf-$k");
    is($r->{status}, 201, "retry $n: 201, not 409");
    is($r->{headers}{'idempotent-replayed'}, 'true',
       "retry $n: replayed (by the bank's own key)");
    is($r->{json}{id}, $first->{json}{id}, "retry $n: the first payment");
    is($gw->payments_with_reference("nf-$k"), 1,
       "retry $n: still one payment");
    my $since = $log->($offset);
    like($since, $nofit, "retry $n reached the bank: its answer has no room either");
    unlike($since, qr/taking over/, "retry $n: no takeover [warn]");
}

# another body with the key: the gateway still knows its fingerprint
my $r = $gw->post('/v1/payments', payment("nf-$k-other"),
                  'Idempotency-Key' => "nf-$k");
is($r->{status}, 422, 'another body: 422');
is($r->{json}{code}, 'idempotency_key_reused', 'idempotency_key_reused');
like($r->{json}{detail}, qr/another method, path or body/,
     "... from the gateway, not the bank's");
is($gw->payments_with_reference("nf-$k-other"), 0, 'nothing reached the bank');

# the released record keeps its room: new keys fill what is left, then 503
my ($more, $full) = (0, 0);
for my $i ($k + 1 .. $k + 400) {
    my $r = $gw->post('/v1/payments', payment("nf-$i"),
                      'Idempotency-Key' => "nf-$i");
    if ($r->{status} == 503 && ($r->{json}{code} // '') eq 'state_unavailable') {
        $full = 1;
        is($gw->payments_with_reference("nf-$i"), 0,
           'the refused key never reached the bank');
        last;
    }
    last if $r->{status} != 201;
    $more++;
}
ok($full, "after $more more keys, a new key is 503 state_unavailable");

$r = $gw->post('/v1/payments', payment("nf-$k"), 'Idempotency-Key' => "nf-$k");
is($r->{status}, 201, 'the zone full, a retry of the key is still served');
is($r->{json}{id}, $first->{json}{id}, '... with the first payment');
is($gw->payments_with_reference("nf-$k"), 1, '... and no second one');

$gw->stop;
$gw->check_log(qr/is full, \d+ answers to idempotency keys are kept only in the journal/,
               qr/is full, idempotency record not created/);

done_testing();
