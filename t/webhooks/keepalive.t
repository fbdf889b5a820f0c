# Connections to receivers (docs/webhooks.md, "Connections to
# receivers"): deliveries to a receiver that keeps its connections open
# go over one connection, whether it answers with a Content-Length or
# chunked; a receiver that answers "Connection: close", or in HTTP/1.0,
# gets a new connection each time, and so does one whose answer has more
# bytes than it, two lengths, a header longer than the buffer, a chunk
# too big or no length (its status counted); a receiver that closes its idle
# connections loses no delivery and fails none; a kept connection that
# the receiver drops before answering has the request sent again on a
# new one, the same attempt (one attempt, delivered); a receiver that
# keeps the connection but hangs mid-answer times out as before.
#
# The receiver here is the test's own (a Perl select loop, not
# receiver.py): it numbers the connections it accepts and the requests
# on each, and answers as t/.../mode says.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Webhooks;
use IO::Select;
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep time);

my $dir = servroot() . '/keepalive';
mkdir servroot();
mkdir $dir;
unlink "$dir/log";
mode('keep');

sub mode {
    open my $f, '>', "$dir/mode.tmp" or die;
    print $f $_[0];
    close $f;
    rename "$dir/mode.tmp", "$dir/mode" or die;
}

# the receiver's requests: [connection, request on it, webhook-id]
sub seen {
    open my $f, '<', "$dir/log" or return ();
    return map { chomp; [split / /] } <$f>;
}

my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
                                   Listen => 64, ReuseAddr => 1) or die;
my $rport = $listen->sockport;

my $child = fork // die;
if ($child == 0) {
    receiver();
    exit 0;
}
close $listen;
END { kill 'KILL', $child if $child }

sub receiver {
    my $sel = IO::Select->new($listen);
    my (%buf, %num, %reqs, %idle_close, %hung);
    my $conns = 0;
    my $drop = sub {
        my ($fh) = @_;
        $sel->remove($fh);
        delete $_->{$fh} for \%buf, \%num, \%reqs, \%idle_close, \%hung;
        close $fh;
    };
    for (;;) {
        my $now = time;
        for my $fh (grep { $idle_close{$_} && $idle_close{$_}[0] <= $now }
                    $sel->handles) {
            $drop->($fh);
        }
        for my $fh ($sel->can_read(0.05)) {
            if ($fh == $listen) {
                my $c = $listen->accept or next;
                $sel->add($c);
                $num{$c} = ++$conns;
                $reqs{$c} = 0;
                $buf{$c} = '';
                next;
            }
            my $n = sysread($fh, my $chunk, 65536);
            if (!$n) {
                $drop->($fh);
                next;
            }
            next if $hung{$fh};
            $buf{$fh} .= $chunk;
            while ($buf{$fh} =~ /\r\n\r\n/) {
                my $end = $+[0];
                my $head = substr($buf{$fh}, 0, $end);
                my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
                last if length($buf{$fh}) < $end + ($len // 0);
                substr($buf{$fh}, 0, $end + ($len // 0), '');
                my ($id) = $head =~ /^webhook-id:\s*(\S+)/mi;
                my $r = ++$reqs{$fh};
                delete $idle_close{$fh};
                open my $m, '<', "$dir/mode" or die;
                my $mode = <$m>;
                close $m;
                if ($mode eq 'drop-second' && $r == 2) {
                    log_req($num{$fh}, $r, $id, 'dropped');
                    $drop->($fh);
                    last;
                }
                log_req($num{$fh}, $r, $id, 'answered');
                if ($mode eq 'hang-mid') {
                    syswrite($fh, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n");
                    $hung{$fh} = 1;
                    last;
                }
                my $answer =
                    $mode eq 'chunked'
                    ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      . "2\r\nok\r\n3;x=y\r\n!!!\r\n0\r\nX-T: 1\r\n\r\n"
                    : $mode eq 'close'
                    ? "HTTP/1.1 200 OK\r\nConnection: close\r\n"
                      . "Content-Length: 2\r\n\r\nok"
                    : $mode eq 'http10'
                    ? "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok"
                    : $mode eq 'extra'
                    ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
                      . "HTTP/1.1 500 Not asked for\r\n\r\n"
                    : $mode eq 'two-lengths'
                    ? "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                      . "Content-Length: 3\r\n\r\nok!"
                    : $mode eq 'long-header'
                    ? "HTTP/1.1 200 OK\r\nX-Long: " . ('x' x 8000)
                      . "\r\nContent-Length: 2\r\n\r\nok"
                    : $mode eq 'big-chunk'
                    ? "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                      . "fffffffffffffffffff\r\nok"
                    : $mode eq 'no-length'
                    ? "HTTP/1.1 200 OK\r\n\r\nok"
                    : "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                syswrite($fh, $answer);
                if ($mode eq 'close' || $mode eq 'http10') {
                    $drop->($fh);
                    last;
                }
                $idle_close{$fh} = [time + 0.2] if $mode eq 'idle-close';
            }
        }
    }
}

sub log_req {
    open my $f, '>>', "$dir/log" or die;
    print $f join(' ', @_), "\n";
    close $f;
}

my %conf = webhooks_conf(workers => 1,
                         extra_http => "openbank_webhook_timeout 2s;\n");
start_nginx(\%conf);

sub poll { OpenBank::Test::Nginx::poll_until(@_) }

sub event {
    my ($evt) = @_;
    my ($s, $j) = api('GET', "/v1/events/$evt", 'acme-key');
    return $s == 200 ? $j : undef;
}

sub done {
    my ($evt) = @_;
    my $j = event($evt) or return undef;
    my $d = $j->{deliveries}[0] or return undef;
    return $d->{status} ne 'pending' ? $j : undef;
}

my $n = 0;

# one event, delivered: its events API view
sub deliver {
    my ($s, $j) = ingest({ partner => 'acme', type => 'payment.settled',
                           data => { id => 'pay_' . ++$n } });
    return undef unless $s == 202;
    my $evt = $j->{id};
    my $got;
    poll(15, sub { $got = done($evt) });
    return $got;
}

sub delivered_ok {
    my ($j, $label) = @_;
    is_deeply($j && [$j->{deliveries}[0]{status},
                     [map { [$_->{status}, $_->{error}] }
                      @{ $j->{attempts} }]],
              ['delivered', [[200, undef]]], $label);
}

sub conns { my %c = map { $_->[0] => 1 } @_; return scalar keys %c }

my ($s, $j) = api('POST', '/v1/webhook-endpoints', 'acme-key',
                  { url => "http://127.0.0.1:$rport/hooks",
                    events => ['payment.*'] });
is($s, 201, 'an endpoint');

# kept: five deliveries, one connection, its requests 1 to 5
delivered_ok(deliver(), "delivery $_ to a receiver that keeps connections")
    for 1 .. 5;
my @seen = seen();
is(scalar @seen, 5, 'five requests');
is(conns(@seen), 1, 'over one connection');
is_deeply([map { $_->[1] } @seen], [1 .. 5], 'its requests 1 to 5');

# chunked answers, read whole: the connection still kept
mode('chunked');
unlink "$dir/log";
delivered_ok(deliver(), "chunked answer $_") for 1 .. 3;
@seen = seen();
is(conns(@seen), 1, 'chunked answers: one connection');
is_deeply([map { $_->[1] } @seen], [6, 7, 8],
          'the same connection as before');

# many at once: no more connections than the endpoint's concurrency (4)
mode('keep');
unlink "$dir/log";
my @ids;
for (1 .. 12) {
    ($s, $j) = ingest({ partner => 'acme', type => 'payment.settled',
                        data => { id => 'pay_' . ++$n } });
    push @ids, $j->{id};
}
ok(poll(20, sub { !grep { !done($_) } @ids }), 'twelve at once delivered');
is((grep { done($_)->{deliveries}[0]{status} eq 'delivered' } @ids), 12,
   'all of them');
cmp_ok(conns(seen()), '<=', 4, 'over at most the concurrency');

# Connection: close and HTTP/1.0 answers: a new connection each time
# (the connections kept before closed one by one as they are used)
for my $m ('close', 'http10') {
    mode($m);
    delivered_ok(deliver(), "$m: the connections kept before, $_")
        for 1 .. 4;
    unlink "$dir/log";
    delivered_ok(deliver(), "$m: delivery $_") for 1 .. 3;
    @seen = seen();
    is(conns(@seen), 3, "$m: three connections");
    is_deeply([map { $_->[1] } @seen], [1, 1, 1], "$m: one request each");
}

# answers whose end is unknown or doubtful, the receiver keeping the
# connection: their status counts, their connection is not used again
for my $m ('extra', 'two-lengths', 'long-header', 'big-chunk',
           'no-length') {
    mode('keep');
    delivered_ok(deliver(), "$m: a kept connection first");
    mode($m);
    unlink "$dir/log";
    my $o = error_log_offset();
    delivered_ok(deliver(), "$m: delivery $_") for 1 .. 2;
    @seen = seen();
    is_deeply([map { $_->[1] } @seen[1 .. $#seen]], [1],
              "$m: then a new connection");
    is(scalar @seen, 2, "$m: each sent once");
    unlike(error_log_since($o), qr/webhook \S+ to \S+ failed/,
           "$m: no attempt failed");
}

# a receiver closing idle connections (0.2 s after each answer)
mode('idle-close');
unlink "$dir/log";
my $off = error_log_offset();
for (1 .. 3) {
    delivered_ok(deliver(), "idle-close: delivery $_");
    sleep 0.5;
}
@seen = seen();
is(scalar @seen, 3, 'idle-close: each sent once');
is(conns(@seen), 3, 'idle-close: on a new connection each time');
unlike(error_log_since($off), qr/webhook \S+ to \S+ failed/,
       'idle-close: no attempt failed');

# a kept connection dropped at its second request, unanswered: the
# request again on a new connection, the same attempt
mode('keep');
delivered_ok(deliver(), 'a connection to keep');
mode('drop-second');
unlink "$dir/log";
$off = error_log_offset();
$j = deliver();
delivered_ok($j, 'dropped, then sent again: one attempt, delivered');
@seen = seen();
is_deeply([map { [$_->[1], $_->[2], $_->[3]] } @seen],
          [[2, $j->{id}, 'dropped'], [1, $j->{id}, 'answered']],
          'dropped on the kept connection, answered on a new one');
unlike(error_log_since($off), qr/webhook \S+ to \S+ failed/,
       'no attempt failed');

# kept, then hanging mid-answer: timed out, as before
mode('keep');
delivered_ok(deliver(), 'kept again');
mode('hang-mid');
($s, $j) = ingest({ partner => 'acme', type => 'payment.settled',
                    data => { id => 'pay_' . ++$n } });
my $hung = $j->{id};
ok(poll(15, sub { @{ (event($hung) // {})->{attempts} // [] } >= 1 }),
   'an attempt to the receiver hanging mid-answer');
mode('keep');
unlink "$dir/log";
$j = event($hung);
is_deeply([map { [$_->{status}, $_->{error}] } $j->{attempts}[0]],
          [[undef, 'timed out']], 'hanging mid-answer: timed out');

# and the next attempt, on a new connection
ok(poll(15, sub { my $d = done($hung); $d && $d->{deliveries}[0]{status}
                                       eq 'delivered' }),
   'the retry delivered');
@seen = seen();
is($seen[0][1], 1, 'on a new connection');

done_testing();
