package OpenBank::Test::Client;

# A deliberately small HTTP/1.x client over a raw socket.
#
# It sends exactly the headers it is given, plus "Host", "Connection: close"
# and "Content-Length" (only when there is a body) unless the caller already
# gave them, so that tests can prove what happens when a credential is
# absent.  It reads until the server closes the connection (or the time
# limit passes) and keeps the whole response: status, every header value in
# order, the decoded body and the raw bytes.

use v5.36;
use strict;
use warnings;

use Errno qw(EAGAIN EINTR EWOULDBLOCK);
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);

use Exporter 'import';
our @EXPORT_OK = qw(build_request send_raw parse_response http_exchange
                    normalize_headers);

# [Name => value, ...] from a hashref (sorted, for stable requests), an
# arrayref of pairs or "Name: value" strings, or a "Name: value\n" text.
sub normalize_headers ($headers) {
    return [] unless defined $headers;

    if (ref $headers eq 'HASH') {
        return [map { [$_ => $headers->{$_}] } sort keys %$headers];
    }

    if (ref $headers eq 'ARRAY') {
        my @in = @$headers;
        my @out;
        while (@in) {
            my $item = shift @in;
            if (ref $item eq 'ARRAY') {
                push @out, [@$item];
            } elsif ($item =~ /^([^:\s]+):[ \t]*(.*?)\s*$/) {
                push @out, [$1 => $2];
            } else {
                die "header '$item' has no value\n" unless @in;
                push @out, [$item => shift @in];
            }
        }
        return \@out;
    }

    my @out;
    for my $line (split /\r?\n/, $headers) {
        next unless $line =~ /\S/;
        $line =~ /^([^:\s]+):[ \t]*(.*?)\s*$/
            or die "bad header line '$line' (want 'Name: value')\n";
        push @out, [$1 => $2];
    }
    return \@out;
}

sub _has_header ($pairs, $name) {
    return scalar grep { lc $_->[0] eq lc $name } @$pairs;
}

# %args: method, path, headers (anything normalize_headers takes), body,
# version ("HTTP/1.1" by default), host ("localhost" by default).
sub build_request (%args) {
    my $method  = $args{method} // 'GET';
    my $path    = $args{path}   // '/';
    my $version = $args{version} // 'HTTP/1.1';
    my $body    = $args{body};
    my $headers = normalize_headers($args{headers});

    my @lines = ("$method $path $version");
    push @lines, 'Host: ' . ($args{host} // 'localhost')
        unless _has_header($headers, 'Host');
    push @lines, "$_->[0]: $_->[1]" for @$headers;
    push @lines, 'Connection: close'
        unless _has_header($headers, 'Connection');
    push @lines, 'Content-Length: ' . length($body)
        if defined $body
           && !_has_header($headers, 'Content-Length')
           && !_has_header($headers, 'Transfer-Encoding');

    return join("\r\n", @lines) . "\r\n\r\n" . ($body // '');
}

# Sends $bytes to 127.0.0.1:$port and reads until EOF, until $done->($raw)
# is true (if given), or $timeout seconds.  Returns ($raw_response, $error);
# $error is undef when the response ended in time.
sub send_raw ($port, $bytes, $timeout = 10, $done = undef) {
    my $deadline = time + $timeout;
    my $sock = IO::Socket::INET->new(
        PeerAddr => '127.0.0.1',
        PeerPort => $port,
        Proto    => 'tcp',
        Timeout  => $timeout,
    ) or return ('', "cannot connect to 127.0.0.1:$port: $@");
    $sock->blocking(0);
    binmode $sock;

    local $SIG{PIPE} = 'IGNORE';
    my $sel = IO::Select->new($sock);
    my ($raw, $error, $off) = ('', undef, 0);
    my $writing = length $bytes > 0;

    while (1) {
        my $left = $deadline - time;
        if ($left <= 0) {
            $error = "timeout after ${timeout}s";
            last;
        }

        my ($readable, $writable) =
            IO::Select->select($sel, $writing ? $sel : undef, undef, $left);

        if ($writable && @$writable) {
            my $n = syswrite $sock, $bytes, length($bytes) - $off, $off;
            if (defined $n) {
                $off += $n;
                $writing = 0 if $off >= length $bytes;
            } elsif ($! != EAGAIN && $! != EWOULDBLOCK && $! != EINTR) {
                # the server may answer and close before reading it all
                $writing = 0;
            }
        }

        next unless $readable && @$readable;
        my $n = sysread $sock, my $buf, 65536;
        if (!defined $n) {
            next if $! == EAGAIN || $! == EWOULDBLOCK || $! == EINTR;
            $error = "read error: $!" unless length $raw;
            last;
        }
        last if $n == 0;
        $raw .= $buf;
        last if $done && $done->($raw);
    }

    close $sock;
    return ($raw, $error);
}

sub _dechunk ($data) {
    my ($body, $complete) = ('', 0);
    while ($data =~ s/\A([0-9a-fA-F]+)[^\r\n]*\r\n//) {
        my $size = hex $1;
        if ($size == 0) {
            $complete = 1;
            last;
        }
        last if length $data < $size;
        $body .= substr $data, 0, $size, '';
        $data =~ s/\A\r\n//;
    }
    return ($body, $complete);
}

# Parses a raw HTTP/1.x response.  Interim 1xx responses (except 101) are
# skipped.  Returns an OpenBank::Test::Response.
sub parse_response ($raw, $method = 'GET') {
    my $res = OpenBank::Test::Response->new(raw => $raw);
    my $rest = $raw;

    while (1) {
        my ($head, $tail) = split /\r?\n\r?\n/, $rest, 2;
        if (!defined $tail) {
            $res->{error} = length $raw ? 'incomplete response header'
                                        : 'empty response';
            return $res;
        }
        my ($status_line, @lines) = split /\r?\n/, $head;
        if ($status_line !~ m{^(HTTP/\d\.\d)\s+(\d{3})(?:\s+(.*))?$}) {
            $res->{error} = "bad status line '$status_line'";
            return $res;
        }
        @$res{qw(protocol status reason status_line)}
            = ($1, $2 + 0, $3 // '', $status_line);
        $rest = $tail;
        next if $res->{status} >= 100 && $res->{status} < 200
                && $res->{status} != 101;

        for my $line (@lines) {
            next unless $line =~ /^([^:\s]+):[ \t]*(.*?)[ \t]*$/;
            push @{$res->{header_list}}, [$1, $2];
            push @{$res->{headers}{lc $1}}, $2;
        }
        last;
    }

    my $status = $res->{status};
    if ($method eq 'HEAD' || $status == 204 || $status == 304) {
        $res->{body} = '';
    } elsif (grep { /chunked/i } $res->header('Transfer-Encoding')) {
        my ($body, $complete) = _dechunk($rest);
        $res->{body} = $body;
        $res->{error} = 'truncated chunked body' unless $complete;
    } elsif (defined(my $len = $res->header('Content-Length'))) {
        $res->{body} = substr $rest, 0, $len;
        $res->{error} = "body shorter than Content-Length $len"
            if length $rest < $len;
    } else {
        $res->{body} = $rest;
    }
    return $res;
}

# Has $raw a complete final response whose length is known without EOF?
# (So that a test asking for keep-alive does not wait for the timeout.)
sub response_complete ($raw, $method = 'GET') {
    my $res = parse_response($raw, $method);
    return 0 if !defined $res->{status} || defined $res->{error};
    my $status = $res->{status};
    return 1 if $method eq 'HEAD' || $status == 204 || $status == 304;
    return 1 if grep { /chunked/i } $res->header('Transfer-Encoding');
    return defined $res->header('Content-Length');
}

# One request, one response.  %args as build_request, plus port, timeout
# and raw (bytes to send instead of building a request).
sub http_exchange (%args) {
    my $method = $args{method} // 'GET';
    if (defined $args{raw} && $args{raw} =~ /^(\S+)/) {
        $method = $1;
    }
    my $bytes = $args{raw} // build_request(%args);
    my ($raw, $error) = send_raw($args{port}, $bytes, $args{timeout} // 10,
                                 sub ($r) { response_complete($r, $method) });
    my $res = parse_response($raw, $method);
    $res->{request} = $bytes;
    $res->{error} = $error if defined $error;
    return $res;
}


package OpenBank::Test::Response;

# A blessed hash: status, reason, protocol, status_line, headers
# ({lowercased name => [values]}), header_list ([[Name, value], ...] in
# order), body, raw, request, error (undef when all went well).

use v5.36;
use strict;
use warnings;

sub new ($class, %fields) {
    return bless {
        status      => undef,
        reason      => '',
        protocol    => undef,
        status_line => undef,
        headers     => {},
        header_list => [],
        body        => undef,
        raw         => '',
        request     => undef,
        error       => undef,
        %fields,
    }, $class;
}

sub status      ($self) { $self->{status} }
sub reason      ($self) { $self->{reason} }
sub protocol    ($self) { $self->{protocol} }
sub status_line ($self) { $self->{status_line} }
sub headers     ($self) { $self->{headers} }
sub header_list ($self) { $self->{header_list} }
sub body        ($self) { $self->{body} }
sub raw         ($self) { $self->{raw} }
sub request     ($self) { $self->{request} }
sub error       ($self) { $self->{error} }

# In list context all values of the header, in scalar context the values
# joined with ", " (undef when absent).
sub header ($self, $name) {
    my @values = @{$self->{headers}{lc $name} // []};
    return @values if wantarray;
    return @values ? join(', ', @values) : undef;
}

1;
