# conf/nginx.conf end to end: the sandbox bank posts its events to the
# gateway's ingest as its payments move (in the same transaction as the
# move, then from its settlement timer), and the partner's endpoint gets
# them: payment.accepted and payment.settled with the payment as GET
# shows it, payment.rejected for one the bank refuses; another partner's
# endpoint gets none of them.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Gateway;
use OpenBank::Webhooks qw(start_receiver wait_got got);
use JSON::PP;

my $json = JSON::PP->new->canonical->utf8;
my $rport = start_receiver();
my $gw = OpenBank::Gateway->new('webhooks', settle_delay => 0.3);
$gw->start;
my $OTHER = 'ob_sandbox_key_other_9d27c4e1a0b6f358';

my $r = $gw->post('/v1/webhook-endpoints',
                  { url => "http://127.0.0.1:$rport/demo",
                    events => ['payment.*'] });
is($r->{status}, 201, 'the demo partner makes an endpoint');
$r = $gw->post('/v1/webhook-endpoints',
               { url => "http://127.0.0.1:$rport/other",
                 events => ['*'] }, 'X-API-Key' => $OTHER);
is($r->{status}, 201, 'so does the other partner');

my $seq = 0;
sub pay {
    my ($to) = @_;
    return $gw->post('/v1/payments', {
        debtor_account => { number => '6222020000000001' },
        creditor_account => { number => $to,
                              name => 'Shanghai Supplier Co., Ltd.',
                              bank_code => 'OBKCNSH' },
        amount => { value => '12.34', currency => 'CNY' },
        reference => 'webhooks',
    }, 'Idempotency-Key' => "wh-$$-" . ++$seq);
}

$r = pay('6222020000000201');
is($r->{status}, 201, 'a payment');
my $id = $r->{json}{id};
$r = pay('6222029999999999');
is($r->{status}, 201, 'a payment to no account');
my $bad = $r->{json}{id};

# a payment's events in the order they were made (their ids sort so);
# deliveries themselves may arrive in any order
sub of { my ($pid) = @_;
         sort { $a->{id} cmp $b->{id} }
         map { $json->decode($_->{body}) }
         grep { $json->decode($_->{body})->{data}{id} eq $pid } got() }

ok(OpenBank::Test::Nginx::poll_until(15, sub {
       my @e = of($id);
       return grep { $_->{type} eq 'payment.settled' } @e;
   }), 'payment.settled arrives');
my @e = of($id);
is_deeply([map { $_->{type} } @e], ['payment.accepted', 'payment.settled'],
          'accepted, then settled, in the order of their ids');
is_deeply([map { $_->{data}{status} } @e], ['accepted', 'settled'],
          'each with the payment as it was then');
is($e[1]{data}{amount}{value}, '12.34', 'the payment as GET shows it');

ok(OpenBank::Test::Nginx::poll_until(15, sub { my @e = of($bad); @e }),
   'the refused payment has its event');
is_deeply([map { $_->{type} } of($bad)], ['payment.rejected'],
          'payment.rejected');

is(scalar(grep { $_->{path} eq '/other' } got()), 0,
   "the other partner's endpoint got none of them");

# the events API has them too
$r = $gw->get('/v1/events?type=payment.settled');
is($r->{status}, 200, 'GET /v1/events');
ok((grep { $_->{data}{id} eq $id } @{$r->{json}{data}}),
   'the settlement is listed');

$gw->stop;
done_testing();
