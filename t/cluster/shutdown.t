# A request waiting for Redis when its worker goes away (nginx -s reload,
# a graceful stop): the worker closes its idle Redis connections, the
# waiting request hears "no answer" and gets the degraded decision at
# once (503 state_unavailable with nonce=refuse), not a connection cut
# and not the whole timeout; the old worker exits with no open socket
# left.  Redis is SIGSTOPped so that the call waits (timeout=10s).

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Redis;
use OpenBank::Signer;
use Digest::SHA qw(sha256_hex);
use JSON::PP qw(decode_json);
use Time::HiRes qw(time sleep);

my $body = '{"amount":{"value":"12.50","currency":"CNY"}}';
my $secret = 'b3f1c2d4e5a6978812345678abcdef0123456789abcdef0123456789abcdef01';

sub signed ($nonce) {
    return ['X-API-Key: key-acme', 'Host: localhost',
            sign_request(method => 'POST', path => '/v1/pay',
                         authority => 'localhost', body => $body,
                         alg => 'hmac-sha256', key => $secret,
                         keyid => 'hmac', nonce => $nonce,
                         created => int(time) + 150)];
}

my $redis = OpenBank::Redis->start;

my %sections = (
    http_config => "openbank_zone openbank 1m;\nopenbank_clock_skew 300s;\n"
        . $redis->directive(timeout => '10s') . "\n"
        . "openbank_plan p { rate 1000r/s; quota payments 100000/day; }\n"
        . "openbank_partner acme { plan p; scopes payments; api_key sha256:"
        . sha256_hex('key-acme') . "; hmac_secret partners/acme.hmac; }\n",
    config => <<'EOT',
location /v1/ {
    openbank_auth       api_key;
    openbank_scope      payments;
    openbank_signature  required;
    content_by_lua_block { ngx.say("ok") }
}
EOT
    user_files => [['conf/partners/acme.hmac', $secret]]);

my $gw = start_gateway(\%sections);

is($gw->request('POST', '/v1/pay', signed("warm-$$"), $body)->status, 200,
   'a first nonce: connected');

for my $how (qw(reload stop)) {
    $redis->stop;

    my $off = $gw->error_log_offset;
    my @old = $gw->worker_pids;

    pipe(my $r, my $w) or die;
    my $pid = fork // die;
    if (!$pid) {
        close $r;
        my $res = $gw->request('POST', '/v1/pay', signed("$how-$$"), $body,
                               { timeout => 30 });
        my $code = eval { decode_json($res->body)->{code} } // '-';
        print {$w} join(' ', $res->status, $code), "\n";
        exit 0;
    }
    close $w;

    # the request is in: the worker has written the SET to Redis
    my $end = time + 10;
    sleep 0.05 until $gw->error_log_since($off) =~ /openbank check signature: -2/
                     || time > $end;

    my $t0 = time;
    if ($how eq 'reload') {
        ok($gw->reload, 'reload while a request waits for Redis');
    } else {
        $gw->stop;
        pass('graceful stop while a request waits for Redis');
    }
    my $line = <$r>;
    waitpid $pid, 0;
    my $took = time - $t0;

    is($line, "503 state_unavailable\n",
       "$how: the waiting request gets the degraded answer");
    ok($took < 8, "$how: before the 10s timeout ($took s)");

    my $log = $gw->error_log_since($off);
    unlike($log, qr/open socket .* left/, "$how: no open socket left");
    unlike($log, qr/\[alert\]|\[crit\]|signal (11|6)/, "$how: no alert, no crash");

    $redis->cont;
    last if $how eq 'stop';

    ok((sub {
        my $end = time + 10;
        while (time < $end) {
            return 1 if $gw->request('POST', '/v1/pay', signed("after-$$-" . time),
                                     $body)->status == 200;
            sleep 0.05;
        }
        0 })->(), 'reload: the new workers take nonces');
}

done_testing;
