package OpenBank::Load;

# Concurrent load from one process, for the tests where several gateways
# serve at once (cluster mode: a quota spent exactly, a rate within 1 %,
# a nonce taken once): many connections open together, each request
# written whole and its answer read to the end, spread over the ports.
#
#   my $r = OpenBank::Load::run(ports => [$p1, $p2, $p3],
#                               connections => 300, requests => 3000,
#                               request => sub ($i, $port) { ... bytes });
#   $r->{status}{200}, $r->{status}{429}, $r->{by_port}{$p1}{200},
#   $r->{answers}[$i] = { port, status, head, body }   (keep => 1;
#                                                     body de-chunked)
#
# Each request is its own connection (the bytes must ask for
# "Connection: close"; request_line() builds such a request), so that no
# answer waits behind another on a keep-alive connection.  A connection
# that fails or does not answer within `timeout` seconds counts as status
# 0.  Plain sockets and select(), no fork.

use v5.36;
use strict;
use warnings;

use Errno qw(EAGAIN EINPROGRESS EWOULDBLOCK);
use IO::Select;
use IO::Socket::INET;
use Socket qw(SOCK_STREAM);
use Time::HiRes qw(time);

# GET or POST bytes with Connection: close
sub request_line ($method, $path, $headers = [], $body = undef) {
    my $req = "$method $path HTTP/1.1\r\nHost: localhost\r\n"
            . "Connection: close\r\n";
    my @h = @$headers;
    while (my ($k, $v) = splice @h, 0, 2) {
        $req .= "$k: $v\r\n";
    }
    $req .= 'Content-Length: ' . length($body) . "\r\n" if defined $body;
    return $req . "\r\n" . ($body // '');
}

sub _connect ($port) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
                                  Type => SOCK_STREAM, Blocking => 0);
    return $s;
}

sub run (%o) {
    my @ports = @{ $o{ports} };
    my $conns = $o{connections} // 10;
    my $total = $o{requests};
    my $timeout = $o{timeout} // 30;
    my $make = $o{request};
    my %r = (status => {}, by_port => {}, answers => []);

    my $next = 0;
    my (%c, $sel);
    $sel = IO::Select->new;

    my $start = sub {
        return if $next >= $total;
        my $i = $next++;
        my $port = $ports[$i % @ports];
        my $s = _connect($port);
        my $st = { i => $i, port => $port, out => $make->($i, $port),
                   in => '', t => time, s => $s };
        unless ($s) {
            _done(\%r, $st, 0, \%o);
            return 1;
        }
        $c{fileno $s} = $st;
        $sel->add($s);
        return 1;
    };

    $start->() for 1 .. $conns;

    while (%c) {
        my @w = grep { length $c{fileno $_}{out} } $sel->handles;
        my ($rd, $wr) = IO::Select->select($sel, IO::Select->new(@w),
                                           undef, 0.5);
        for my $s (@{ $wr // [] }) {
            my $st = $c{fileno $s} or next;
            my $n = syswrite $s, $st->{out};
            if (defined $n) {
                substr($st->{out}, 0, $n) = '';
            } elsif ($! != EAGAIN && $! != EWOULDBLOCK
                     && $! != EINPROGRESS) {
                _finish(\%r, \%c, $sel, $st, \%o);
                $start->();
            }
        }
        for my $s (@{ $rd // [] }) {
            my $st = $c{fileno $s} or next;
            my $n = sysread $s, my $buf, 65536;
            if ($n) {
                $st->{in} .= $buf;
                next;
            }
            next if !defined $n && ($! == EAGAIN || $! == EWOULDBLOCK);
            _finish(\%r, \%c, $sel, $st, \%o);
            $start->();
        }
        my $now = time;
        for my $st (values %c) {
            next if $now - $st->{t} < $timeout;
            $st->{in} = '';
            _finish(\%r, \%c, $sel, $st, \%o);
            $start->();
        }
    }
    return \%r;
}

sub _finish ($r, $c, $sel, $st, $o) {
    my $s = $st->{s};
    delete $c->{fileno $s};
    $sel->remove($s);
    close $s;
    my ($head, $body) = split /\r\n\r\n/, $st->{in}, 2;
    my ($status) = ($head // '') =~ m{^HTTP/1\.\d (\d{3})};
    $body = _dechunk($body // '')
        if ($head // '') =~ /^transfer-encoding:\s*chunked\s*$/mi;
    _done($r, $st, $status // 0, $o, $head, $body);
}

sub _dechunk ($raw) {
    my $out = '';
    while ($raw =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
        my $n = hex $1;
        last if $n == 0;
        $out .= substr $raw, 0, $n, '';
        $raw =~ s/^\r\n//;
    }
    return $out;
}

sub _done ($r, $st, $status, $o, $head = '', $body = '') {
    $r->{status}{$status}++;
    $r->{by_port}{ $st->{port} }{$status}++;
    $r->{answers}[ $st->{i} ] = { port => $st->{port}, status => $status,
                                  head => $head, body => $body }
        if $o->{keep};
}

1;
