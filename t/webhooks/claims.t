# Claiming the deliveries that are due: a walk of the outbox that stops
# once it has claimed all it has room for (64 at a time) still sends what
# it claimed, at once, not after the claims' lease (the timeout + 30 s):
# 100 events to an endpoint allowed 100 deliveries at a time are all
# delivered within a few seconds of the timeout.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Webhooks;

my $rport = start_receiver();
my %conf = webhooks_conf(extra_http => "openbank_webhook_timeout 1s;\n"
                                       . "openbank_webhook_concurrency 100;\n",
                         workers => 1);
start_nginx(\%conf);

my ($s, $j) = api('POST', '/v1/webhook-endpoints', 'acme-key',
                  { url => "http://127.0.0.1:$rport/hooks",
                    events => ['*'] });
is($s, 201, 'an endpoint');

my @ids;
for my $i (1 .. 100) {
    ($s, $j) = ingest({ partner => 'acme', type => 'payment.settled',
                        data => { id => "pay_$i" } });
    push @ids, $j->{id} if $s == 202;
}
is(scalar @ids, 100, '100 events taken');

# the lease is 31 s: 15 s is far below it, and far above what 100
# deliveries to a local receiver take
ok(OpenBank::Test::Nginx::poll_until(15, sub {
       my %got = map { $_->{headers}{'webhook-id'} => 1 } got();
       return !grep { !$got{$_} } @ids;
   }), 'all delivered well before the claims\' lease would have ended');

stop_nginx();
done_testing();
