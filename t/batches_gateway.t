# A pain.001.001.09 of 10,000 payments (about 5 MB, bench/pain001.py)
# through the gateway on the demo config (conf/nginx.conf): the batch
# location's body limit takes it, the gateway's idempotency replays it,
# the sandbox accepts it (202) and settles every item on its normal timer.
# Timings are shown, not asserted (docs/erp.md has the measurement).

use lib 't/lib';
use OpenBank::Test;
use Time::HiRes qw(time sleep);
use OpenBank::Demo;
use OpenBank::Signer qw(sign_request);

my $demo = OpenBank::Demo->new('batches-gw');
my $key = $demo->creds->{api_key};
ok(eval { $demo->start }, 'nginx starts on conf/nginx.conf')
    or BAIL_OUT("nginx does not answer: $@");

my $doc = `/usr/bin/python3 bench/pain001.py 10000 GW-10000`;
ok(length($doc) > 4_000_000, 'a pain.001 of ' . length($doc) . ' bytes');

my %h = ('X-API-Key' => $key, 'Content-Type' => 'application/xml',
         'Idempotency-Key' => 'gw-batch-10000');
my $t0 = time;
my $res = $demo->post('/v1/payment-batches', $doc, %h);
my $took = time - $t0;
is($res->{status}, 202, '10,000 items through the gateway: 202')
    or diag(substr($res->{content} // '', 0, 500));
is($res->{json}{count}, 10000, 'count 10000');
is($res->{json}{status}, 'accepted', 'accepted');
diag(sprintf 'POST of 10,000 items: %.2f s', $took);
my $id = $res->{json}{id};

$res = $demo->post('/v1/payment-batches', $doc, %h);
is($res->{status}, 202, 'the same request again: 202');
is($res->{json}{id}, $id, 'the same batch');
is($res->{headers}{'idempotent-replayed'}, 'true', 'replayed by the gateway');

my $j;
$t0 = time;
for (1 .. 300) {
    $res = $demo->get("/v1/payment-batches/$id", 'X-API-Key' => $key);
    $j = $res->{json};
    last if $j->{status} && $j->{status} ne 'accepted';
    sleep 0.2;
}
diag(sprintf 'settled %.1f s after the POST', time - $t0);
is($j->{status}, 'completed', 'every item settled');
is($j->{counts}{settled}, 10000, '10000 settled');

$res = $demo->get("/v1/payment-batches/$id/status-report",
                  'X-API-Key' => $key);
is($res->{status}, 200, 'the status report through the gateway');
my $n = () = $res->{content} =~ /<TxSts>ACSC<\/TxSts>/g;
is($n, 10000, 'ACSC for every item');

# signed with the partner's Ed25519 key: the Content-Digest of the whole
# body is checked (the body is in a temporary file at the gateway)
my $creds = $demo->creds;
my $doc2 = `/usr/bin/python3 bench/pain001.py 10000 GW-SIGNED`;
my %s = ('X-API-Key' => $key, 'Content-Type' => 'application/xml',
         'Idempotency-Key' => 'gw-batch-signed');
%s = (%s, map { split /: /, $_, 2 } sign_request(
    method => 'POST', path => '/v1/payment-batches',
    authority => '127.0.0.1:' . $demo->port, body => $doc2,
    alg => 'ed25519', key => $demo->dir . "/$creds->{signing_key}",
    keyid => $creds->{kid}));
$res = $demo->post('/v1/payment-batches', $doc2, %s);
is($res->{status}, 202, 'a signed batch of 10,000 items: 202')
    or diag($res->{content});
ok($res->{headers}{'signature'}, 'its answer is signed');

$s{'Idempotency-Key'} = 'gw-batch-signed-2';
my $bad = $doc2 =~ s/<Ustrd>Invoice 9999 /<Ustrd>Invoice 9998 /r;
$res = $demo->post('/v1/payment-batches', $bad, %s);
is($res->{status}, 401, 'one byte changed past the signature: 401');
is($res->{json}{code}, 'signature_invalid', 'signature_invalid');

# past the location's 8m: 413 from the gateway, the bank never sees it
$res = $demo->post('/v1/payment-batches', $doc . (' ' x (4 * 1024 * 1024)),
                   %h, 'Idempotency-Key' => 'gw-batch-too-large');
is($res->{status}, 413, 'a body of more than 8 MiB: 413');
is($res->{json}{code}, 'payload_too_large', 'payload_too_large');

$demo->check_log(qr/client intended to send too large body/);
done_testing();
