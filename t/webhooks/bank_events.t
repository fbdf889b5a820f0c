# conf/nginx.conf end to end, beyond payments (t/webhooks/bank.t): the
# sandbox bank posts an event as each of its escrows, collections and
# payment batches moves, and the partner's endpoint gets each, with the
# object as GET shows it: escrow.funded, .partially_released, .released,
# .refunded, .disputed, .cancelled, .expired; collection.settled and
# collection.failed; payment_batch.completed.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Gateway;
use OpenBank::Webhooks qw(start_receiver got);
use JSON::PP;
use POSIX qw(strftime);

my $json = JSON::PP->new->canonical->utf8;
my $rport = start_receiver();
my $gw = OpenBank::Gateway->new('webhooks-events', settle_delay => 0.3);
$gw->start;
my $seq = 0;
sub key { "whe-$$-" . ++$seq }
sub iso_in { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + $_[0])) }

my $r = $gw->post('/v1/webhook-endpoints',
                  { url => "http://127.0.0.1:$rport/demo",
                    events => ['escrow.*', 'collection.*',
                               'payment_batch.completed'] });
is($r->{status}, 201, 'an endpoint for escrows, collections, batches');

# escrows: each move the state machine has
sub escrow {
    my ($expires) = @_;
    my $r = $gw->post('/v1/escrows', {
        payer_account => { number => '6222020000000001' },
        payee_account => { number => '6222020000000203' },
        amount => { value => '100.00', currency => 'CNY' },
        expires_at => $expires // iso_in(30 * 86400),
    }, 'Idempotency-Key' => key());
    is($r->{status}, 201, 'an escrow') or diag($r->{content});
    return $r->{json}{id};
}
sub act {
    my ($id, $action, $body) = @_;
    my $r = $gw->post("/v1/escrows/$id/$action", $body,
                      'Idempotency-Key' => key());
    is($r->{status}, 200, "escrow $action") or diag($r->{content});
}

my $expiring = escrow(iso_in(2));
act($expiring, 'fund');
my %want;                                  # object id => [types]
my $e = escrow();
act($e, 'fund');
act($e, 'release', { amount => { value => '30.00', currency => 'CNY' } });
act($e, 'release');
$want{$e} = [qw(escrow.funded escrow.partially_released escrow.released)];
$e = escrow();
act($e, 'fund');
act($e, 'dispute');
act($e, 'refund');
$want{$e} = [qw(escrow.funded escrow.disputed escrow.refunded)];
$e = escrow();
act($e, 'cancel');
$want{$e} = ['escrow.cancelled'];
$want{$expiring} = [qw(escrow.funded escrow.expired)];

# collections: one settled, one over the mandate's limit
$r = $gw->post('/v1/mandates', {
    payer_account => { number => '6222020000000201' },
    max_amount => { value => '500.00', currency => 'CNY' },
    expires_at => iso_in(86400), reference => 'webhooks',
}, 'Idempotency-Key' => key());
is($r->{status}, 201, 'a mandate') or diag($r->{content});
my $mandate = $r->{json}{id};
$r = $gw->post("/v1/mandates/$mandate/authorise", '',
               'Idempotency-Key' => key());
is($r->{json}{status}, 'active', 'authorised') or diag($r->{content});
for my $c (['10.00', 'collection.settled'],
           ['500.01', 'collection.failed']) {
    $r = $gw->post('/v1/collections', {
        mandate_id => $mandate,
        amount => { value => $c->[0], currency => 'CNY' },
        reference => 'invoice 42',
    }, 'Idempotency-Key' => key());
    is($r->{status}, 201, "a collection of $c->[0]") or diag($r->{content});
    $want{ $r->{json}{id} } = [$c->[1]];
}

# a payment batch of 3
my $doc = `/usr/bin/python3 bench/pain001.py 3 WH-EVENTS-$$`;
$r = $gw->post('/v1/payment-batches', $doc,
               'Content-Type' => 'application/xml',
               'Idempotency-Key' => key());
is($r->{status}, 202, 'a payment batch') or diag($r->{content});
my $batch = $r->{json}{id};
$want{$batch} = ['payment_batch.completed'];

# every object's events, in the order of their ids
sub of {
    my ($id) = @_;
    return sort { $a->{id} cmp $b->{id} }
           grep { ($_->{data}{id} // '') eq $id }
           map { $json->decode($_->{body}) } got();
}

ok(OpenBank::Test::Nginx::poll_until(30, sub {
       !grep { @{ [of($_)] } < @{ $want{$_} } } keys %want;
   }), 'every event arrives');

my %path = (escrow => 'escrows', collection => 'collections',
            payment_batch => 'payment-batches');
for my $id (sort keys %want) {
    my @got = of($id);
    is_deeply([map { $_->{type} } @got], $want{$id},
              "$id: " . join(', ', @{ $want{$id} }));
    my ($kind) = $want{$id}[0] =~ /^(\w+)\./;
    my $now = $gw->get("/v1/$path{$kind}/$id")->{json};
    is($got[-1]{data}{status}, $now->{status},
       "$id: the last one with the status GET shows ($now->{status})")
        if @got;
}
my ($b) = of($batch);
ok($b && defined $b->{data}{settled} && defined $b->{data}{rejected},
   'payment_batch.completed counts settled and rejected');

$gw->stop;
done_testing();
