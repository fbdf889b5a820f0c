# Webhooks end to end: the bank posts an event (202 once durable), a
# partner's endpoint gets it signed twice (the Standard Webhooks HMAC,
# checked here with the algorithm written out, and the RFC 9421
# signature by the gateway's key, checked with CryptX), a receiver's 500s
# are retried with the same id, and the event and its attempts are in
# the events API; an event posted and not yet delivered when nginx is
# killed -9 is delivered after the restart, with the same id.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Webhooks;
use Crypt::PK::ECC;
use Digest::SHA qw(hmac_sha256 sha256);
use MIME::Base64 qw(decode_base64 encode_base64);
use JSON::PP;
use Time::HiRes qw(sleep);

my $json = JSON::PP->new->canonical->utf8;
my $KEYS = project_root() . '/t/keys';
my $rport = start_receiver();
my %conf = webhooks_conf();

# Standard Webhooks (standardwebhooks.com): v1,base64(HMAC-SHA256(key,
# "id.timestamp.body")), the key the base64 after "whsec_"
sub standard_ok {
    my ($secret, $h, $body) = @_;
    my $key = decode_base64(substr($secret, 6));
    my $mac = encode_base64(hmac_sha256("$h->{'webhook-id'}."
                                        . "$h->{'webhook-timestamp'}.$body",
                                        $key), '');
    return $h->{'webhook-signature'} eq "v1,$mac";
}

# RFC 9421: the base of the covered components, ecdsa-p256-sha256 (r||s)
my $gw = Crypt::PK::ECC->new(\Crypt::PK::ECC->new("$KEYS/gw-es256.pem")
                                 ->export_key_pem('public'));
sub rfc9421_ok {
    my ($url, $h, $body) = @_;
    my $digest = 'sha-256=:' . encode_base64(sha256($body), '') . ':';
    return 0 unless $h->{'content-digest'} eq $digest;
    my ($params) = $h->{'signature-input'} =~ /^sig=(.*)$/ or return 0;
    my ($sig) = $h->{signature} =~ /^sig=:([^:]+):$/ or return 0;
    my $base = join "\n", qq{"\@method": POST}, qq{"\@target-uri": $url},
        qq{"content-digest": $digest},
        qq{"webhook-id": $h->{'webhook-id'}},
        qq{"webhook-timestamp": $h->{'webhook-timestamp'}},
        qq{"\@signature-params": $params};
    return $params =~ /^\("\@method" "\@target-uri" "content-digest" "webhook-id" "webhook-timestamp"\);created=\d+;keyid="gw-es"$/
           && $gw->verify_message_rfc7518(decode_base64($sig), $base,
                                          'SHA256');
}

start_nginx(\%conf);

# an endpoint of acme's
my $url = "http://127.0.0.1:$rport/hooks/acme?x=1";
my ($s, $j) = api('POST', '/v1/webhook-endpoints', 'acme-key',
                  { url => $url, events => ['payment.*', 'escrow.released'] });
is($s, 201, 'an endpoint is made');
like($j->{id}, qr/^we_[0-9a-f]{16}$/, 'its id');
like($j->{secret}, qr/^whsec_[A-Za-z0-9+\/]{43}=$/,
     'its secret: whsec_ and the base64 of 32 bytes');
is_deeply([$j->{url}, $j->{events}, $j->{status}],
          [$url, ['payment.*', 'escrow.released'], 'enabled'], 'as made');
my ($ep, $secret) = ($j->{id}, $j->{secret});

($s, $j) = api('GET', "/v1/webhook-endpoints/$ep", 'acme-key');
is($s, 200, 'it is shown');
ok(!exists $j->{secret}, 'without its secret');
is((api('GET', "/v1/webhook-endpoints/$ep", 'beta-key'))[0], 404,
   "another partner's endpoint is 404");
($s, $j) = api('GET', '/v1/webhook-endpoints', 'acme-key');
is(scalar @{$j->{data}}, 1, 'the list has it');
($s, $j) = api('GET', '/v1/webhook-endpoints', 'beta-key');
is(scalar @{$j->{data}}, 0, "another partner's list does not");

# the bank posts an event: 202 {"id"}, delivered signed
my $data = { id => 'pay_1', status => 'settled', amount => '10.00' };
($s, $j) = ingest({ partner => 'acme', type => 'payment.settled',
                    data => $data });
is($s, 202, 'the event is taken');
like($j->{id}, qr/^evt_[0-9a-f]{16}$/, 'its id');
my $evt = $j->{id};

my @g = wait_got(1);
is(scalar @g, 1, 'the receiver got it');
my ($h, $body) = ($g[0]{headers}, $g[0]{body});
is($g[0]{path}, '/hooks/acme?x=1', 'at its path');
my $b = $json->decode($body);
is_deeply([$b->{id}, $b->{type}, $b->{data}],
          [$evt, 'payment.settled', $data], 'the body: id, type, data');
like($b->{created}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/,
     'created, RFC 3339');
is($h->{'webhook-id'}, $evt, 'webhook-id is the event id');
like($h->{'webhook-timestamp'}, qr/^\d+$/, 'webhook-timestamp');
ok(standard_ok($secret, $h, $body), 'the Standard Webhooks signature holds');
ok(!standard_ok($secret, $h, $body . ' '),
   'and not over a tampered body');
ok(!standard_ok('whsec_' . encode_base64('x' x 32, ''), $h, $body),
   'nor with another secret');
ok(rfc9421_ok($url, $h, $body), 'the RFC 9421 signature holds');
my $tampered = $body =~ s/10\.00/99.00/r;
ok(!rfc9421_ok($url, { %$h, 'content-digest' => 'sha-256=:'
                       . encode_base64(sha256($tampered), '') . ':' },
               $tampered), 'and not over a tampered body');

# a type the endpoint does not take, another partner's event: not sent
is((ingest({ partner => 'acme', type => 'collection.settled',
             data => {} }))[0], 202, 'an event of a type not taken');
is((ingest({ partner => 'beta', type => 'payment.settled',
             data => {} }))[0], 202, "another partner's event");

# retries: 500, 500, then 200, the same id each time
statuses('500,500');
($s, $j) = ingest({ partner => 'acme', type => 'escrow.released',
                    data => { id => 'esc_1' } });
my $evt2 = $j->{id};
@g = grep { $json->decode($_->{body})->{id} eq $evt2 } wait_got(4, 20);
is(scalar @g, 3, 'sent three times');
is_deeply([map { $_->{answer} } @g], ['500', '500', '200'],
          'after two 500s');
is_deeply([map { $_->{headers}{'webhook-id'} } @g], [($evt2) x 3],
          'with the same id');
ok(standard_ok($secret, $g[2]{headers}, $g[2]{body}),
   'the last one signed');
is(scalar(grep { $json->decode($_->{body})->{type} eq 'collection.settled' }
          got()), 0, 'the type not taken was not sent');

# the events API
($s, $j) = api('GET', "/v1/events/$evt2", 'acme-key');
is($s, 200, 'the event');
is_deeply([map { $_->{status} } @{$j->{attempts}}], [500, 500, 200],
          'with its attempts');
is($j->{attempts}[0]{endpoint}, $ep, 'to the endpoint');
is((api('GET', "/v1/events/$evt2", 'beta-key'))[0], 404,
   "another partner's event is 404");
($s, $j) = api('GET', '/v1/events', 'acme-key');
is_deeply([map { $_->{type} } @{$j->{data}}],
          ['payment.settled', 'collection.settled', 'escrow.released'],
          'the list, oldest first');
($s, $j) = api('GET', "/v1/events?after=$evt&type=escrow.released",
               'acme-key');
is_deeply([map { $_->{id} } @{$j->{data}}], [$evt2], 'after=, type=');
($s, $j) = api('GET', '/v1/events?limit=1', 'acme-key');
is_deeply([scalar @{$j->{data}}, $j->{has_more}], [1, JSON::PP::true],
          'limit=, has_more');

# a ping
($s, $j) = api('POST', "/v1/webhook-endpoints/$ep/test", 'acme-key');
is($s, 202, 'a test');
my $ping = $j->{id};
@g = grep { $json->decode($_->{body})->{id} eq $ping } wait_got(5);
is($json->decode($g[0]{body})->{type}, 'ping', 'a ping is sent') if @g;
ok(@g, 'the ping arrived');

# kill -9 between the 202 and the delivery: delivered after the restart
statuses('hang');
($s, $j) = ingest({ partner => 'acme', type => 'payment.accepted',
                    data => { id => 'pay_9' } });
is($s, 202, 'an event taken');
my $evt3 = $j->{id};
wait_got(6);
kill_nginx();
statuses('');
start_nginx(\%conf);
@g = grep { $json->decode($_->{body})->{id} eq $evt3 } wait_got(7, 20);
ok(@g >= 2, 'sent again after kill -9 and restart');
is($g[-1]{headers}{'webhook-id'}, $evt3, 'with the same id');
is($g[-1]{answer}, '200', 'and delivered');
($s, $j) = api('GET', "/v1/events/$evt3", 'acme-key');
is($s, 200, 'the event survived');
($s, $j) = api('GET', "/v1/webhook-endpoints/$ep", 'acme-key');
is($s, 200, 'the endpoint survived');

# deleted: 204, then 404
is((api('DELETE', "/v1/webhook-endpoints/$ep", 'acme-key'))[0], 204,
   'deleted');
is((api('GET', "/v1/webhook-endpoints/$ep", 'acme-key'))[0], 404,
   'gone');

stop_nginx();
done_testing();
