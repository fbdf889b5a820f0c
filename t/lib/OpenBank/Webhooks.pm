package OpenBank::Webhooks;

# Helpers of the webhook tests (t/webhooks/*.t): the configuration they
# share (two partners with the events scope, the ingest, the events API,
# http://127.0.0.1 allowed), calls, and a receiver (receiver.py) whose
# requests are read back.

use strict;
use warnings;

use Exporter 'import';
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use Time::HiRes qw(sleep);
use OpenBank::Test;

our @EXPORT = qw(webhooks_conf api ingest start_receiver got wait_got
                 statuses);
our @EXPORT_OK = @EXPORT;

my $json = JSON::PP->new->canonical->utf8;
my $rdir;

sub webhooks_conf {
    my (%o) = @_;
    my $keys = project_root() . '/t/keys';
    my $allow = $o{allow} // 'http://127.0.0.1';
    my $http = "openbank_zone openbank 4m;\n"
        . "openbank_state \$TEST_NGINX_SERVROOT/state;\n"
        . "openbank_signing_key $keys/gw-es256.pem kid=gw-es;\n"
        . ($allow ? "openbank_webhook_allow $allow;\n" : '')
        . "openbank_webhook_retries " . ($o{retries} // '1s 1s 2s') . ";\n"
        . ($o{extra_http} // '')
        . "openbank_plan p { rate 1000r/s; quota events 100000/day; }\n"
        . "openbank_partner acme { plan p; scopes events; api_key sha256:"
        . sha256_hex('acme-key') . "; }\n"
        . "openbank_partner beta { plan p; scopes events; api_key sha256:"
        . sha256_hex('beta-key') . "; }\n";
    my $config = <<'EOT';
location = /internal/events {
    openbank_events_ingest;
    allow 127.0.0.1;
    deny all;
}
location /v1/webhook-endpoints {
    openbank_auth api_key;
    openbank_scope events;
    openbank_product events;
    openbank_events_api;
}
location /v1/events {
    openbank_auth api_key;
    openbank_scope events;
    openbank_product events;
    openbank_events_api;
}
EOT
    return (http_config => $http, config => $config . ($o{extra} // ''),
            workers => $o{workers} // 2);
}

# api('POST', '/v1/webhook-endpoints', 'acme-key', {...}) -> ($s, $j, $res)
sub api {
    my ($method, $path, $key, $body) = @_;
    my $res = http_request($method, $path,
                           { 'X-API-Key' => $key,
                             defined $body
                             ? ('Content-Type' => 'application/json') : () },
                           defined $body ? (ref $body ? $json->encode($body)
                                                      : $body) : undef);
    return ($res->status, eval { $json->decode($res->body) }, $res);
}

sub ingest { return api('POST', '/internal/events', 'none', @_) }

# a receiver on a free port: its port; start_receiver(tls => [$crt, $key])
# also serves TLS on another: (port, TLS port); http11 => 1: it answers
# in HTTP/1.1 and keeps its connections
my $receiver;
sub start_receiver {
    my (%o) = @_;
    $rdir = servroot() . '/receiver';
    mkdir $rdir;
    unlink "$rdir/got", "$rdir/statuses";
    my $port = OpenBank::Tokens::free_port();
    my @tls = $o{tls} ? (OpenBank::Tokens::free_port(), @{ $o{tls} }) : ();
    $receiver = fork // die;
    if ($receiver == 0) {
        $ENV{RECEIVER_HTTP11} = $o{http11} ? 1 : 0;
        exec '/usr/bin/python3', project_root() . '/t/webhooks/receiver.py',
             $port, $rdir, @tls;
        exit 1;
    }
    for (1 .. 50) {
        last if IO::Socket::INET->new(PeerAddr => "127.0.0.1:$port");
        sleep 0.1;
    }
    return @tls ? ($port, $tls[0]) : $port;
}
END { kill 'TERM', $receiver if $receiver }

# the receiver's records; a line it is still writing (no newline yet) is
# left for the next look
sub got {
    open my $f, '<', "$rdir/got" or return ();
    return map { $json->decode($_) } grep { /\n\z/ } <$f>;
}

sub wait_got {
    my ($n, $secs) = @_;
    for (1 .. ($secs // 15) * 10) {
        my @g = got();
        return @g if @g >= $n;
        sleep 0.1;
    }
    return got();
}

sub statuses {
    open my $f, '>', "$rdir/statuses" or die;
    print $f $_[0];
    close $f;
}

use IO::Socket::INET;
use OpenBank::Tokens ();

1;
