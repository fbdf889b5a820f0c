# A partner's webhook endpoints through the Admin API (docs/admin.md,
# "Webhook endpoints"): made with the partner API's rules and answer (the
# secret shown once), listed without it, pinged (the ping signed with
# that secret, checked with the Standard Webhooks algorithm written out),
# deleted; every refusal a problem: 401 without the key, 404 for an
# unknown partner or endpoint or another partner's, 400 with its detail,
# 409 for the 11th, 405 with Allow; each change in the audit log as the
# admin's; and the partner itself sees the endpoint the admin made.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;
use OpenBank::Webhooks qw(start_receiver wait_got);
use Digest::SHA qw(hmac_sha256);
use MIME::Base64 qw(decode_base64 encode_base64);
use JSON::PP;

my $json = JSON::PP->new->canonical->utf8;
my $rport = start_receiver();

my ($http, $config) = admin_config(
    extra_http => "openbank_webhook_allow http://127.0.0.1;\n"
                  . "openbank_webhook_retries 1s;\n");
$config .= <<'EOT';
location /v1/webhook-endpoints {
    openbank_auth api_key;
    openbank_scope accounts;
    openbank_events_api;
}
EOT
start_nginx({ http_config => $http, config => $config, workers => 2 });
my $off = error_log_offset();

sub problem_is {
    my ($got, $status, $code, $detail, $what) = @_;
    my ($s, $j, $r) = @$got;
    is($s, $status, "$what: $status");
    is($r->header('Content-Type'), 'application/problem+json',
       "$what: a problem");
    is($j && $j->{code}, $code, "$what: $code");
    like($j && $j->{detail} // '', $detail, "$what: says why") if $detail;
}

# Standard Webhooks: v1,base64(HMAC-SHA256(key, "id.timestamp.body"))
sub standard_ok {
    my ($secret, $h, $body) = @_;
    my $key = decode_base64(substr($secret, 6));
    my $mac = encode_base64(hmac_sha256("$h->{'webhook-id'}."
                                        . "$h->{'webhook-timestamp'}.$body",
                                        $key), '');
    return $h->{'webhook-signature'} eq "v1,$mac";
}

my $base = '/admin/partners/acme/webhook-endpoints';
my $url = "http://127.0.0.1:$rport/hooks/acme";

# the admin key first
my $res = http_request('GET', $base);
is($res->status, 401, 'no admin key: 401');
problem_is([admin('POST', $base, { url => $url, events => ['*'] },
                  'wrong-key')], 401, 'invalid_token', qr/admin key/,
           'a wrong key');

# made, shown once
my ($s, $j, $r) = admin('POST', $base, { url => $url,
                        events => ['payment.*', 'escrow.released'] });
is($s, 201, 'an endpoint of acme is made');
like($j->{id}, qr/^we_[0-9a-f]{16}$/, 'its id');
like($j->{secret}, qr/^whsec_[A-Za-z0-9+\/]{43}=$/, 'its secret, this once');
is_deeply([$j->{url}, $j->{events}, $j->{status}],
          [$url, ['payment.*', 'escrow.released'], 'enabled'], 'as made');
my ($ep, $secret) = ($j->{id}, $j->{secret});

($s, $j) = admin('GET', $base);
is($s, 200, 'the list');
is_deeply([map { $_->{id} } @{ $j->{data} }], [$ep], 'has it');
ok(!exists $j->{data}[0]{secret}, 'without its secret');
($s, $j) = admin('GET', "$base/$ep");
is($s, 200, 'one endpoint');
ok(!exists $j->{secret}, 'without its secret');
($s, $j) = admin('GET', '/admin/partners/beta/webhook-endpoints');
is_deeply($j->{data}, [], "another partner's list does not have it");

# the partner sees it too (a registry partner of its own, with its key)
($s) = admin('POST', '/admin/partners',
             { name => 'zeta', plan => 'p', scopes => ['accounts'] });
is($s, 201, 'a registry partner');
($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                 { type => 'api_key' });
my $zkey = $j->{api_key};
($s, $j) = admin('POST', '/admin/partners/zeta/webhook-endpoints',
                 { url => "$url/zeta", events => ['*'] });
is($s, 201, 'an endpoint of a registry partner');
my $zep = $j->{id};
$res = http_request('GET', '/v1/webhook-endpoints', { 'X-API-Key' => $zkey });
is($res->status, 200, 'the partner lists its endpoints');
is_deeply([map { $_->{id} } @{ $json->decode($res->body)->{data} }],
          [$zep], 'the one the admin made');

# a ping, signed with the secret shown
($s, $j) = admin('POST', "$base/$ep/test");
is($s, 202, 'a test ping');
like($j->{id}, qr/^evt_[0-9a-f]{16}$/, 'its event id');
my $evt = $j->{id};
my @g = grep { $_->{path} eq '/hooks/acme' } wait_got(1);
ok(@g, 'the ping arrived');
if (@g) {
    my $b = $json->decode($g[0]{body});
    is_deeply([$b->{id}, $b->{type}], [$evt, 'ping'], 'a ping');
    ok(standard_ok($secret, $g[0]{headers}, $g[0]{body}),
       'signed with the secret the admin was shown');
}

# refusals
problem_is([admin('GET', '/admin/partners/nobody/webhook-endpoints')], 404,
           'not_found', qr/no partner "nobody"/, 'an unknown partner');
problem_is([admin('POST', '/admin/partners/nobody/webhook-endpoints',
                  { url => $url, events => ['*'] })], 404, 'not_found',
           qr/no partner "nobody"/, 'an endpoint for an unknown partner');
problem_is([admin('DELETE', '/admin/partners/nobody/webhook-endpoints/'
                  . $ep)], 404, 'not_found', qr/no partner/,
           'a delete for an unknown partner');
problem_is([admin('DELETE', "$base/we_0000000000000001")], 404,
           'not_found', qr/no webhook endpoint we_0000000000000001/,
           'an unknown endpoint');
problem_is([admin('POST', "$base/we_0000000000000001/test")], 404,
           'not_found', qr/no webhook endpoint/, 'a test of an unknown one');
problem_is([admin('DELETE', "$base/we_xyz")], 404, 'not_found', undef,
           'no endpoint id');
problem_is([admin('DELETE', "/admin/partners/beta/webhook-endpoints/$ep")],
           404, 'not_found', qr/no webhook endpoint/,
           "another partner's endpoint");
problem_is([admin('POST', "/admin/partners/beta/webhook-endpoints/$ep/test")],
           404, 'not_found', qr/no webhook endpoint/,
           "a test of another partner's endpoint");
problem_is([admin('GET', "$base/$ep/nothing")], 404, 'not_found', undef,
           'below an endpoint');

my @bad = (
    ['{"url":', qr/at byte/, 'not JSON'],
    ['{"events":["*"]}', qr/"url" is missing/, 'no url'],
    ['{"url":"https://example.com/h"}', qr/at least one/, 'no events'],
    ['{"url":"https://example.com/h","events":["payment.exploded"]}',
     qr/neither an event type/, 'an unknown type'],
    ['{"url":"http://example.com/h","events":["*"]}', qr/https/,
     'http:// for a host not allowed'],
    ['{"url":"https://10.0.0.1/h","events":["*"]}',
     qr/address webhooks are not sent to/, 'a private address'],
    ['{"url":"https://example.com/","events":["*"],"x":1}',
     qr/unknown member/, 'an unknown member'],
);
for my $b (@bad) {
    problem_is([admin('POST', $base, $b->[0])], 400, 'invalid_body', $b->[1],
               $b->[2]);
}

for my $n (2 .. 10) {
    ($s) = admin('POST', $base, { url => "$url/$n", events => ['*'] });
    is($s, 201, "endpoint $n") if $n == 10;
}
problem_is([admin('POST', $base, { url => "$url/11", events => ['*'] })],
           409, 'invalid_state', qr/at most 10/, 'the 11th');

for my $m (['PATCH', $base, 'GET, HEAD, POST'],
           ['PUT', "$base/$ep", 'GET, HEAD, DELETE'],
           ['GET', "$base/$ep/test", 'POST']) {
    my @got = admin($m->[0], $m->[1]);
    problem_is(\@got, 405, 'method_not_allowed', undef, "$m->[0] $m->[1]");
    is($got[2]->header('Allow'), $m->[2], "$m->[0]: Allow: $m->[2]");
}

# deleted: gone for the admin and the partner
($s) = admin('DELETE', "$base/$ep");
is($s, 204, 'deleted');
problem_is([admin('GET', "$base/$ep")], 404, 'not_found', undef,
           'gone');
($s, $j) = admin('DELETE', "/admin/partners/zeta/webhook-endpoints/$zep");
is($s, 204, "the registry partner's deleted");
$res = http_request('GET', '/v1/webhook-endpoints', { 'X-API-Key' => $zkey });
is_deeply($json->decode($res->body)->{data}, [], 'the partner sees it gone');

# the audit log: each change, the admin's; no refused one
($s, $j) = admin('GET', '/admin/audit');
my @ev = grep { $_->{action} =~ /^webhook_endpoint\./ } @{ $j->{events} };
is_deeply([map { "$_->{action} $_->{target}" } @ev[0, 1, -2, -1]],
          ["webhook_endpoint.create acme/$ep",
           "webhook_endpoint.create zeta/$zep",
           "webhook_endpoint.delete acme/$ep",
           "webhook_endpoint.delete zeta/$zep"],
          'the audit log has the changes');
is(scalar @ev, 13, 'and only those made: 11 made, 2 deleted');
is_deeply([grep { $_ ne 'admin' } map { $_->{actor} } @ev], [],
          'each by the admin');

my $log = error_log_since($off);
unlike($log, qr/\[alert\]|\[crit\]|\[emerg\]/, 'no alert');
unlike($log, qr/\Q$secret\E/, 'the secret is not in the log');
unlike($log, qr/whsec_/, 'nor any secret');

done_testing();
