# Deliveries that go wrong: a receiver that hangs is cut at the timeout
# and sent again, and holds neither the API nor the other endpoints; an
# endpoint that fails long enough is disabled, and a test ping is still
# sent to it; over TLS, a receiver whose certificate chains to the
# trusted CA and names the host gets its events, one whose certificate
# does not name the host does not.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Webhooks;
use JSON::PP;

my $json = JSON::PP->new->canonical->utf8;
my $root = project_root();
my $dir = servroot() . '/pki';
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
    tls => ["$dir/localhost.crt", "$root/t/keys/server.key"]);
my %conf = webhooks_conf(
    allow => 'http://127.0.0.1 https://localhost',
    retries => '1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s 1s',
    extra_http => "openbank_webhook_timeout 1s;\n"
                  . "openbank_webhook_concurrency 1;\n"
                  . "openbank_webhook_disable_after 2s;\n"
                  . "openbank_webhook_trusted_certificate "
                  . "$root/t/keys/ca.crt;\n");
start_nginx(\%conf);

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
sub poll { OpenBank::Test::Nginx::poll_until(@_) }

# a receiver that hangs once, beside one that answers
my $slow = endpoint("http://127.0.0.1:$rport/slow");
my $fast = endpoint("http://127.0.0.1:$rport/fast", 'beta-key');
statuses('hang');
my ($s, $j) = ingest({ partner => 'acme', type => 'payment.settled',
                       data => { id => 'pay_1' } });
my $evt = $j->{id};
ok(poll(5, sub { grep { $_->{path} eq '/slow' } got() }),
   'the slow receiver has the request');
($s) = api('GET', '/v1/webhook-endpoints', 'acme-key');
is($s, 200, 'the API answers while a delivery hangs');
($s, $j) = ingest({ partner => 'beta', type => 'payment.settled',
                    data => { id => 'pay_2' } });
my $other = $j->{id};
ok(poll(5, sub { grep { $_->{path} eq '/fast' } got() }),
   "another endpoint's delivery is made meanwhile");
ok(poll(10, sub { my @a = attempts($evt); @a >= 2 && $a[1]{status} }),
   'the hanging one is sent again');
my @a = attempts($evt);
is_deeply([map { $_->{error} } @a[0, 1]], ['timed out', undef],
          'timed out, then delivered');
ok($a[0]{duration_ms} >= 900, 'cut at the timeout');
my @b = attempts($other, 'beta-key');
ok(@b == 1 && $b[0]{status} == 200 && $b[0]{duration_ms} < $a[0]{duration_ms},
   'the other endpoint was not held by it');

# an endpoint that fails for longer than openbank_webhook_disable_after
my $dead = endpoint('http://127.0.0.1:9/dead');
($s, $j) = ingest({ partner => 'acme', type => 'escrow.funded',
                    data => { id => 'esc_1' } });
my $evt2 = $j->{id};
ok(poll(20, sub {
       my (undef, $e) = api('GET', "/v1/webhook-endpoints/$dead",
                            'acme-key');
       return ($e->{status} // '') eq 'disabled';
   }), 'an endpoint failing for 2 s is disabled');
(undef, $j) = api('GET', "/v1/webhook-endpoints/$dead", 'acme-key');
like($j->{failing_since} // '', qr/^\d{4}-/, 'with failing_since');
my @d = grep { $_->{endpoint} eq $dead } attempts($evt2);
ok(@d >= 2 && !grep({ $_->{status} } @d), 'after failed attempts');
like($d[0]{error}, qr/refused|failed/, 'each with its error');
my $n = @d;
($s, $j) = ingest({ partner => 'acme', type => 'escrow.released',
                    data => { id => 'esc_1' } });
my $evt3 = $j->{id};
($s, $j) = api('POST', "/v1/webhook-endpoints/$dead/test", 'acme-key');
is($s, 202, 'a test of the disabled endpoint');
my $ping = $j->{id};
ok(poll(5, sub { attempts($ping) }), 'the ping is sent all the same');
is(scalar(grep { $_->{endpoint} eq $dead } attempts($evt3)), 0,
   'but no event is');

# TLS: the CA trusted, the host named
my $tls = endpoint("https://localhost:$tport/tls");
ok($tls, 'an https endpoint on an allowed host');
($s, $j) = ingest({ partner => 'acme', type => 'payment.accepted',
                    data => { id => 'pay_3' } });
my $evt4 = $j->{id};
ok(poll(10, sub { grep { $_->{path} eq '/tls' && $_->{tls} } got() }),
   'delivered over TLS');
ok(poll(5, sub { grep { $_->{endpoint} eq $tls && $_->{status} == 200 }
                 attempts($evt4) }), 'a 200');
my $wrong = endpoint("https://127.0.0.1:$tport/wrong");
($s, $j) = ingest({ partner => 'acme', type => 'payment.rejected',
                    data => { id => 'pay_4' } });
my $evt5 = $j->{id};
ok(poll(10, sub { grep { $_->{endpoint} eq $wrong } attempts($evt5) }),
   'an attempt to a certificate that does not name the host');
my ($w) = grep { $_->{endpoint} eq $wrong } attempts($evt5);
is($w->{error}, 'certificate does not match', 'refused');
is(scalar(grep { $_->{path} eq '/wrong' } got()), 0, 'nothing sent');

stop_nginx();
done_testing();
