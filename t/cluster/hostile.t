# What a Redis answers is read with bounds: a server (here a fake one on
# loopback, or whatever answers at the configured address) that announces
# an array of two thousand million elements is refused at once, the
# connection closed with a clear [error], the degraded mode applied; no
# worker dies and no memory is asked for the announced size.

use lib 't/lib';
use OpenBank::Test;
use IO::Socket::INET;
use Digest::SHA qw(sha256_hex);
use JSON::PP qw(decode_json);

# a "Redis" that answers every command with the same bytes
sub fake_redis ($answer) {
    my $listen = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                       LocalPort => 0, Listen => 16,
                                       ReuseAddr => 1, Proto => 'tcp')
        or die "listen: $!";
    my $pid = fork // die;
    if ($pid == 0) {
        $SIG{CHLD} = 'IGNORE';
        while (my $c = $listen->accept) {
            next if fork;
            while (sysread($c, my $buf, 65536)) {
                syswrite($c, $answer);
            }
            exit 0;
        }
        exit 0;
    }
    return ($pid, $listen->sockport);
}

my ($fake, $port) = fake_redis("*2147483647\r\n");
END { kill 'KILL', $fake if $fake }

my $gw = start_gateway({
    http_config => "openbank_zone openbank 4m;\n"
        . "openbank_cluster redis://127.0.0.1:$port timeout=500ms;\n"
        . "openbank_cluster_degraded rate=refuse;\n"
        . "openbank_plan p { rate 100r/s burst=100; }\n"
        . "openbank_partner acme { plan p; scopes payments; api_key sha256:"
        . sha256_hex('key-acme') . "; }\n",
    config => <<'EOT',
location /v1/ {
    openbank_auth       api_key;
    openbank_scope      payments;
    content_by_lua_block { ngx.say("ok") }
}
location = /openbank/status { openbank_status; }
EOT
});

ok(OpenBank::Test::Nginx::poll_until(10, sub {
       $gw->error_log_since(0) =~ /an answer too large to read \(an array of more than 4194304 elements\)/
   }), 'the answer is refused as too large, in an [error]');

my $res = $gw->request('GET', '/v1/pay', ['X-API-Key: key-acme']);
is($res->status, 503, 'rate=refuse: 503');
like($res->body, qr/"code":"state_unavailable"/, 'state_unavailable');
my $st = eval { decode_json($gw->request('GET', '/openbank/status')->body)
                    ->{cluster} } || {};
isnt($st->{state} // '', 'connected', 'the status does not say connected');
ok($gw->alive, 'the gateway is alive');
unlike($gw->error_log_since(0), qr/exited on signal|worker process \d+ exited/,
       'no worker died');

done_testing();
