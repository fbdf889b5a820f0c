# No webhook goes to an address an attacker chose: an endpoint whose host
# is, or resolves to, a loopback, private, link-local, shared, multicast
# or "this network" address is refused, whatever the spelling (decimal,
# octal and hexadecimal IPv4, IPv4 inside IPv6, a name in /etc/hosts),
# unless openbank_webhook_allow names the host; http:// only for a host
# allowed so.  The addresses are checked again at every delivery: an
# endpoint kept while its host was allowed is not sent to once it is not.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Webhooks;

my $rport = start_receiver();
my %conf = webhooks_conf(allow => 'http://127.0.0.2 https://localhost');

start_nginx(\%conf);

my @refused = (
    'https://127.0.0.1/h', 'https://127.1.2.3/h', 'https://10.1.2.3/h',
    'https://172.16.0.1/h', 'https://192.168.1.1/h', 'https://100.64.0.1/h',
    'https://169.254.169.254/latest/meta-data', 'https://0.0.0.0/h',
    'https://224.0.0.1/h', 'https://255.255.255.255/h',
    'https://[::1]/h', 'https://[::]/h', 'https://[::ffff:127.0.0.1]/h',
    'https://[::ffff:10.0.0.1]/h', 'https://[fe80::1]/h',
    'https://[fc00::1]/h', 'https://[fd12:3456::1]/h',
    'https://2130706433/h', 'https://0177.0.0.1/h', 'https://0x7f.0.0.1/h',
    'https://127.1/h', 'https://localtest.invalid/h',
);

for my $url (@refused) {
    my ($s, $j) = api('POST', '/v1/webhook-endpoints', 'acme-key',
                      { url => $url, events => ['*'] });
    is($s, 400, "$url: refused");
    is($j->{code}, 'invalid_body', "$url: invalid_body");
    like($j->{detail} // '', qr/address webhooks are not sent to|does not resolve/,
         "$url: says why");
}

# a name that resolves to loopback (/etc/hosts): refused unless allowed
my $hosts = do { local $/; open my $f, '<', '/etc/hosts' or die; <$f> };
SKIP: {
    skip '/etc/hosts has no localhost line', 3
        unless $hosts =~ /^127\.0\.0\.1\s.*\blocalhost\b/m;
    my ($s, $j) = api('POST', '/v1/webhook-endpoints', 'acme-key',
                      { url => 'https://ip6-localhost/h', events => ['*'] });
    is($s, 400, 'a name of ::1 or 127.0.0.1: refused');
    ($s) = api('POST', '/v1/webhook-endpoints', 'acme-key',
               { url => 'https://localhost/h', events => ['*'] });
    is($s, 201, 'localhost when allowed (https://localhost)');
    ($s, $j) = api('POST', '/v1/webhook-endpoints', 'acme-key',
                   { url => 'http://localhost/h', events => ['*'] });
    is($s, 400, 'but not over http');
}

my ($s, $j) = api('POST', '/v1/webhook-endpoints', 'acme-key',
                  { url => 'http://example.com/h', events => ['*'] });
is($s, 400, 'http:// for a host not allowed: refused');
like($j->{detail}, qr/https/, 'https:// is asked for');

($s, $j) = api('POST', '/v1/webhook-endpoints', 'acme-key',
               { url => 'http://127.0.0.2:' . $rport . '/h',
                 events => ['*'] });
is($s, 201, 'an allowed host: http and a loopback address');
my $ep = $j->{id};

# the allow-list without it: the next delivery is refused, not sent
%conf = webhooks_conf(allow => '');
ok(reload_nginx(\%conf), 'reloaded without the allow-list');
($s, $j) = ingest({ partner => 'acme', type => 'payment.settled',
                    data => {} });
is($s, 202, 'an event');
my $evt = $j->{id};
my $seen;
ok(OpenBank::Test::Nginx::poll_until(10, sub {
       ($s, $j) = api('GET', "/v1/events/$evt", 'acme-key');
       $seen = $j->{attempts}[0];
       return $seen;
   }), 'an attempt is recorded');
like($seen->{error} // '', qr/no longer allowed|address/,
     'refused at delivery time');
is_deeply([got()], [], 'nothing reached the receiver');

stop_nginx();
done_testing();
