# The retry schedule (docs/webhooks.md, "Retries"), with a short one,
# openbank_webhook_retries 1s 2s 3s: a receiver that fails gets the
# attempts in order, each after the delay of the schedule (within the
# documented jitter, +-10 %); the events API shows each attempt and,
# while the delivery is pending, when the next one is due; a 2xx stops
# the retries; after the last retry the delivery is given up: "failed"
# in the events API and "given up" in the log; a reload in between loses
# no retry.  And a delivery that hangs
# holds no API request: the API answers while the receiver still has the
# request and the attempt is not over.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Webhooks;
use JSON::PP;
use Time::Local qw(timegm);

my $json = JSON::PP->new->canonical->utf8;
my @SCHEDULE = (1, 2, 3);
my $rport = start_receiver();
my %conf = webhooks_conf(retries => join(' ', map { "${_}s" } @SCHEDULE));
start_nginx(\%conf);

sub poll { OpenBank::Test::Nginx::poll_until(@_) }

# RFC 3339 with milliseconds -> unix seconds
sub when {
    my ($t) = @_;
    my ($y, $mo, $d, $h, $mi, $s, $ms) =
        $t =~ /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)\.(\d{3})Z$/
        or return undef;
    return timegm($s, $mi, $h, $d, $mo - 1, $y) + $ms / 1000;
}

sub event {
    my ($evt) = @_;
    my ($s, $j) = api('GET', "/v1/events/$evt", 'acme-key');
    return $s == 200 ? $j : undef;
}

sub got_of {
    my ($evt) = @_;
    return grep { $_->{headers}{'webhook-id'} eq $evt } got();
}

my ($s, $j) = api('POST', '/v1/webhook-endpoints', 'acme-key',
                  { url => "http://127.0.0.1:$rport/hooks",
                    events => ['payment.*'] });
is($s, 201, 'an endpoint');
my $ep = $j->{id};

# a failure, then a 2xx: sent twice, the second after the first delay
statuses('500');
($s, $j) = ingest({ partner => 'acme', type => 'payment.settled',
                    data => { id => 'pay_1' } });
is($s, 202, 'an event');
my $ok = $j->{id};
ok(poll(20, sub { (event($ok)->{deliveries}[0]{status} // '') eq
                  'delivered' }), 'delivered after a failure');
my @g = got_of($ok);
is_deeply([map { $_->{answer} } @g], ['500', '200'], 'a 500, then a 200');
cmp_ok($g[1]{time} - $g[0]{time}, '>=', 0.9 * $SCHEDULE[0],
       'the retry after the first delay, less its jitter at most');
$j = event($ok);
is_deeply([map { [$_->{status}, $_->{error}] } @{ $j->{attempts} }],
          [[500, 'not a 2xx'], [200, undef]], 'both attempts in the API');
is_deeply($j->{deliveries}, [{ endpoint => $ep, status => 'delivered',
                               attempts => 2 }], 'and the delivery done');

# failures only: 1 + 3 attempts, then given up
statuses('500,500,500,500');
($s, $j) = ingest({ partner => 'acme', type => 'payment.rejected',
                    data => { id => 'pay_2' } });
is($s, 202, 'an event to a receiver that fails');
my $bad = $j->{id};

# after each failure, while pending: when the next attempt is due
my @next;
for my $k (1 .. @SCHEDULE) {
    my $seen = poll(30, sub {
        my $e = event($bad) or return;
        my $d = $e->{deliveries}[0] or return;
        return $d->{status} eq 'pending' && $d->{attempts} == $k
               && @{ $e->{attempts} } == $k ? $e : undef;
    });
    ok($seen, "pending after failure $k");
    next unless $seen;
    my $a = $seen->{attempts}[-1];
    push @next, [when($seen->{deliveries}[0]{next_attempt}),
                 when($a->{at}) + $a->{duration_ms} / 1000];
}
for my $k (0 .. $#next) {
    my ($due, $end) = @{ $next[$k] };
    my $d = $SCHEDULE[$k];
    ok($due - $end >= 0.9 * $d - 0.0015 && $due - $end <= 1.1 * $d + 0.0015,
       sprintf('next_attempt %.3f s after attempt %d ended: %d s +-10 %%',
               $due - $end, $k + 1, $d));
}

ok(poll(60, sub { (event($bad)->{deliveries}[0]{status} // '') eq
                  'failed' }), 'after the schedule, the delivery failed');
$j = event($bad);
is_deeply($j->{deliveries}, [{ endpoint => $ep, status => 'failed',
                               attempts => 1 + @SCHEDULE }],
          'after 1 + 3 attempts');
is_deeply([map { $_->{status} } @{ $j->{attempts} }], [(500) x 4],
          'each attempt in the API');
@g = got_of($bad);
is(scalar @g, 1 + @SCHEDULE, 'the receiver got 4 attempts');
for my $k (1 .. $#g) {
    my $gap = $g[$k]{time} - $g[$k - 1]{time};
    my $d = $SCHEDULE[$k - 1];
    ok($gap >= 0.9 * $d && $gap < 1.1 * $d + 5,
       sprintf('attempt %d %.2f s after attempt %d: %d s +-10 %%',
               $k + 1, $gap, $k, $d));
}
my @at = map { when($_->{at}) } @{ $j->{attempts} };
ok(!grep({ $at[$_] <= $at[$_ - 1] } 1 .. $#at), 'in order');
is_deeply([map { $_->{headers}{'webhook-id'} } @g], [($bad) x 4],
          'with the same id');
like(error_log_since(0),
     qr/webhook \Q$bad\E to \Q$ep\E failed \(attempt 4\): not a 2xx, given up/,
     'the log says it was given up');
is(scalar(got_of($ok)), 2, 'the delivered event was not sent again');

# a reload between a failure and its retry: sent again, with the same id
statuses('500');
($s, $j) = ingest({ partner => 'acme', type => 'payment.settled',
                    data => { id => 'pay_4' } });
my $rel = $j->{id};
ok(poll(10, sub { (event($rel)->{deliveries}[0]{attempts} // 0) >= 1 }),
   'a first attempt failed');
ok(reload_nginx(\%conf), 'reloaded');
ok(poll(20, sub { (event($rel)->{deliveries}[0]{status} // '') eq
                  'delivered' }), 'delivered after the reload');
is_deeply([map { $_->{headers}{'webhook-id'} } got_of($rel)], [$rel, $rel],
          'twice, with the same id');

# a receiver that hangs (the timeout is 10 s): the API answers while the
# receiver holds the request and the attempt is not over
statuses('hang');
($s, $j) = ingest({ partner => 'acme', type => 'payment.accepted',
                    data => { id => 'pay_3' } });
my $hung = $j->{id};
ok(poll(10, sub { got_of($hung) }), 'the receiver has the request');
($s, $j) = api('GET', "/v1/events/$hung", 'acme-key');
is($s, 200, 'the API answers during the delivery');
is_deeply([scalar @{ $j->{attempts} }, $j->{deliveries}[0]{status}],
          [0, 'pending'], 'which has not ended: the receiver still hangs');
($s) = ingest({ partner => 'acme', type => 'payment.settled',
                data => { id => 'pay_3' } });
is($s, 202, 'and the ingest answers too');
is((api('GET', "/v1/events/$hung", 'acme-key'))[1]{attempts}[0], undef,
   'the attempt still not over after both answers');

stop_nginx();
done_testing();
