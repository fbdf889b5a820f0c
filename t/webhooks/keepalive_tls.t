# Kept connections over TLS (docs/webhooks.md, "Connections to
# receivers"): deliveries to an https:// endpoint go over one TLS
# connection; a kept connection is only for the endpoint, host, port and
# scheme it was made for: another endpoint with the same URL gets a
# connection of its own, and one naming the same receiver by its address
# (whose certificate does not name it) is refused as before, not sent on
# the kept connection of the other.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Webhooks;

my $root = project_root();
my $dir = servroot() . '/pki';
mkdir servroot();
mkdir $dir;

# a certificate for localhost by the tests' CA
system("openssl req -new -key $root/t/keys/server.key -subj /CN=localhost "
       . "-out $dir/localhost.csr 2>/dev/null") == 0 or die;
open my $ext, '>', "$dir/ext" or die;
print $ext "subjectAltName=DNS:localhost\n";
close $ext;
system("openssl x509 -req -in $dir/localhost.csr -CA $root/t/keys/ca.crt "
       . "-CAkey $root/t/keys/ca.key -CAserial $dir/ca.srl -CAcreateserial "
       . "-days 2 "
       . "-extfile $dir/ext -out $dir/localhost.crt 2>/dev/null") == 0
    or die;

my ($rport, $tport) = start_receiver(
    tls => ["$dir/localhost.crt", "$root/t/keys/server.key"], http11 => 1);
my %conf = webhooks_conf(
    workers => 1,
    allow => 'http://127.0.0.1 https://localhost https://127.0.0.1',
    extra_http => "openbank_webhook_trusted_certificate "
                  . "$root/t/keys/ca.crt;\n");
start_nginx(\%conf);

sub poll { OpenBank::Test::Nginx::poll_until(@_) }

sub endpoint {
    my ($url, $key) = @_;
    my ($s, $j) = api('POST', '/v1/webhook-endpoints', $key // 'acme-key',
                      { url => $url, events => ['*'] });
    return $j->{id};
}

sub attempts {
    my ($evt, $key) = @_;
    my (undef, $j) = api('GET', "/v1/events/$evt", $key // 'acme-key');
    return @{ $j->{attempts} // [] };
}

my $n = 0;
sub event {
    my ($partner) = @_;
    my ($s, $j) = ingest({ partner => $partner // 'acme',
                           type => 'payment.settled',
                           data => { id => 'pay_' . ++$n } });
    return $j->{id};
}

sub peers {
    my ($path) = @_;
    my %p = map { $_->{peer} => 1 } grep { $_->{path} eq $path } got();
    return scalar keys %p;
}

# one endpoint: three deliveries, one TLS connection
my $a = endpoint("https://localhost:$tport/a");
ok($a, 'an https endpoint');
for my $i (1 .. 3) {
    my $evt = event();
    ok(poll(10, sub { grep { $_->{status} && $_->{status} == 200 }
                      attempts($evt) }), "delivery $i over TLS");
}
my @a = grep { $_->{path} eq '/a' } got();
is(scalar @a, 3, 'three requests');
ok(!grep({ !$_->{tls} } @a), 'all over TLS');
is(peers('/a'), 1, 'over one connection');

# the same URL, another partner's endpoint: a connection of its own
my $b = endpoint("https://localhost:$tport/a", 'beta-key');
my $evt = event('beta');
ok(poll(10, sub { grep { $_->{status} && $_->{status} == 200 }
                  attempts($evt, 'beta-key') }), 'the other endpoint too');
is(peers('/a'), 2, 'on a connection of its own');

# the receiver by its address: its certificate does not name it; the
# connection kept for localhost is not used for it
my $c = endpoint("https://127.0.0.1:$tport/c");
ok($c, 'an endpoint naming the receiver by its address');
$evt = event();
ok(poll(10, sub { grep { $_->{endpoint} eq $c } attempts($evt) }),
   'an attempt');
my ($w) = grep { $_->{endpoint} eq $c } attempts($evt);
is($w->{error}, 'certificate does not match', 'refused as before');
is(scalar(grep { $_->{path} eq '/c' } got()), 0, 'nothing sent to it');
ok(poll(10, sub { grep { $_->{endpoint} eq $a && $_->{status}
                         && $_->{status} == 200 } attempts($evt) }),
   'while the first endpoint still gets the event');
is(peers('/a'), 2, 'on its kept connection');

stop_nginx();
done_testing();
