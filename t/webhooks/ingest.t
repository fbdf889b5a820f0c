# The ingest (openbank_events_ingest) takes only a well-formed event of a
# known type for a known partner, answers 202 only once the event is in
# the events journal, and refuses everything else with a problem; the
# endpoints' bodies are as strict, and a partner has at most 10.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Webhooks;

my %conf = webhooks_conf();
my $dir = servroot() . '/state';

start_nginx(\%conf);

my @bad = (
    ['{"partner":"acme","type":"payment.settled","data":{}',
     qr/unterminated|expected/, 'a truncated object'],
    ['not json', qr/not a JSON object/, 'not JSON'],
    ['{"partner":"acme","type":"payment.settled","data":{}} x',
     qr/text after the object/, 'text after the object'],
    ['{"partner":"acme","partner":"beta","type":"payment.settled",'
     . '"data":{}}', qr/duplicate/, 'a member twice'],
    ['{"partner":"acme","type":"payment.settled","data":{},"x":1}',
     qr/unknown member "x"/, 'an unknown member'],
    ['{"partner":"acme","type":"payment.settled"}', qr/"data" is missing/,
     'no data'],
    ['{"partner":"acme","type":"payment.settled","data":[1]}',
     qr/must be an object/, 'data not an object'],
    ['{"partner":"acme","type":"payment.exploded","data":{}}',
     qr/unknown event type/, 'an unknown type'],
    ['{"partner":"acme","type":"ping","data":{}}',
     qr/unknown event type/, 'a ping is not the bank\'s to post'],
    ['{"partner":"nobody","type":"payment.settled","data":{}}',
     qr/no partner named "nobody"/, 'an unknown partner'],
    ['{"partner":"a b","type":"payment.settled","data":{}}',
     qr/not a partner's name/, 'not a name'],
    [qq({"partner":"acme","type":"payment.settled","data":{"a":"\x01"}}),
     qr/control character/, 'a control character in a string'],
    [qq({"partner":"acme","type":"payment.settled","data":{"a":"\xff"}}),
     qr/not UTF-8/, 'a string that is not UTF-8'],
    ['{"partner":"acme","type":"payment.settled","data":'
     . ('{"a":' x 40) . '1' . ('}' x 40) . '}', qr/32 deep/,
     'nested too deep'],
    ['{"partner":"acme","type":"payment.settled","data":{"a":01}}',
     qr/expected/, 'a number with a leading zero'],
);

for my $b (@bad) {
    my ($s, $j) = ingest($b->[0]);
    is($s, 400, "$b->[2]: 400");
    is($j->{code}, 'invalid_body', "$b->[2]: invalid_body");
    like($j->{detail} // '', $b->[1], "$b->[2]: says why");
}

my ($s, $j, $res) = ingest('{"partner":"acme","type":"payment.settled",'
                           . '"data":{"pad":"' . ('x' x 70000) . '"}}');
is($s, 413, 'a huge event: 413');
is($j->{code}, 'payload_too_large', 'payload_too_large');

$res = http_request('GET', '/internal/events');
is($res->status, 405, 'GET: 405');
is($res->header('Allow'), 'POST', 'Allow: POST');

($s, $j) = ingest({ partner => 'acme', type => 'payment.settled',
                    data => { id => 'pay_1', note => "caf\x{e9} \x{4e2d}" } });
is($s, 202, 'a good event: 202');
my $id = $j->{id};
ok(-s "$dir/events.journal", 'in the events journal');

# 202 only once durable: a journal that cannot be written is 503
my $jn = "$dir/events.journal";
rename $jn, "$jn.saved" or die $!;
mkdir $jn or die $!;
my $off = error_log_offset();
($s, $j) = ingest({ partner => 'acme', type => 'payment.settled',
                    data => {} });
is($s, 503, 'the journal cannot be written: 503, not 202');
is($j->{code}, 'state_unavailable', 'state_unavailable');
like(error_log_since($off), qr/\[alert\].*events journal/,
     'an [alert] names the journal');
rmdir $jn or die $!;
rename "$jn.saved", $jn or die $!;
($s) = ingest({ partner => 'acme', type => 'payment.settled', data => {} });
is($s, 202, 'the journal back: 202');

# restart: the event and its id are kept
stop_nginx();
start_nginx(\%conf);
($s, $j) = api('GET', "/v1/events/$id", 'acme-key');
is($s, 200, 'the event after a restart');
is($j->{data}{note}, "caf\x{e9} \x{4e2d}", 'its data as sent');

# the endpoints' bodies
my @badw = (
    ['{"url":"https://example.com/h"}', qr/at least one/, 'no events'],
    ['{"url":"https://example.com/h","events":["payment.exploded"]}',
     qr/neither an event type/, 'an unknown type'],
    ['{"url":"https://example.com/h","events":["pay*"]}',
     qr/neither an event type/, 'a prefix without its dot'],
    ['{"events":["payment.*"]}', qr/"url" is missing/, 'no url'],
    ['{"url":"ftp://example.com/h","events":["*"]}', qr/https/,
     'not http(s)'],
    ['{"url":"https://user:pw@example.com/h","events":["*"]}',
     qr/user information/, 'user information'],
    ['{"url":"https://example.com:99999/h","events":["*"]}', qr/port/,
     'a bad port'],
    ['{"url":"https://example.com/h#x","events":["*"]}', qr/fragment/,
     'a fragment'],
    ['{"url":"https://exa mple.com/","events":["*"]}', qr/byte/, 'a space'],
    ['{"url":"https://example.com/","events":["*"],"x":1}',
     qr/unknown member/, 'an unknown member'],
);

for my $b (@badw) {
    my ($s, $j) = api('POST', '/v1/webhook-endpoints', 'acme-key', $b->[0]);
    is($s, 400, "endpoint, $b->[2]: 400");
    like($j->{detail} // '', $b->[1], "endpoint, $b->[2]: says why");
}

# at most 10 endpoints a partner
my $port = server_port();
for my $n (1 .. 10) {
    ($s) = api('POST', '/v1/webhook-endpoints', 'acme-key',
               { url => "http://127.0.0.1:9/$n", events => ['*'] });
    is($s, 201, "endpoint $n") if $n == 1 || $n == 10;
}
($s, $j) = api('POST', '/v1/webhook-endpoints', 'acme-key',
               { url => 'http://127.0.0.1:9/11', events => ['*'] });
is($s, 409, 'an 11th: 409');
is($j->{code}, 'invalid_state', 'invalid_state');
($s) = api('POST', '/v1/webhook-endpoints', 'beta-key',
           { url => 'http://127.0.0.1:9/b', events => ['*'] });
is($s, 201, 'another partner has its own 10');

# no secret in the journal in clear
($s, $j) = api('POST', '/v1/webhook-endpoints', 'beta-key',
               { url => 'http://127.0.0.1:9/c', events => ['*'] });
my $secret = $j->{secret};
ok(OpenBank::Test::Nginx::poll_until(5, sub { -s $jn }), 'journaled');
open my $f, '<', $jn or die;
my $text = do { local $/; <$f> };
ok(index($text, $secret) < 0 && index($text, substr($secret, 6)) < 0,
   'the secret is not in the journal in clear');
unlike(join('', map { $_ } error_log_since(0)), qr/\Q$secret\E/,
       'nor in the error log');

stop_nginx();
done_testing();
