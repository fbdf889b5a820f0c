# Client assertion jtis (private_key_jwt) taken once across gateways
# through Redis (SET ob:jti:{CLIENT_ID}:JTI 1 NX PX), as nonces are: the
# token endpoint waits for Redis (a content handler resumed by the
# reply), a replay on the other gateway is invalid_client, and with Redis
# SIGSTOPped nonce=refuse answers 503 temporarily_unavailable at once
# while nonce=local issues the token; back after SIGCONT by itself.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Redis;
use Time::HiRes qw(time sleep);

my $type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
my %h = ('Content-Type' => 'application/x-www-form-urlencoded');

sub grant ($gw, $assertion) {
    my $t0 = time;
    my $res = $gw->request('POST', '/oauth2/token', \%h,
                           form_body(grant_type => 'client_credentials',
                                     client_assertion_type => $type,
                                     client_assertion => $assertion));
    return ($res, time - $t0);
}

sub poll ($cond, $limit) {
    return OpenBank::Test::Nginx::poll_until($limit, $cond);
}

my $redis = OpenBank::Redis->start;
my $dir = $redis->directive(timeout => '50ms', nodes => 2);

my ($http1, $config) = token_config(extra_http => "$dir\n");
my ($http2) = token_config(
    extra_http => "$dir\nopenbank_cluster_degraded nonce=local;\n");
$config .= "location = /openbank/status { openbank_status; }\n";

my $g1 = start_gateway({ http_config => $http1, config => $config,
                         workers => 2 });
my $g2 = start_gateway({ http_config => $http2, config => $config });

my $a = assertion(kid => 'acme-ed', claims => { jti => 'across-' . time });
my ($res) = grant($g1, $a);
is($res->status, 200, 'an assertion gets a token on gateway 1')
    or diag($res->body);
like($res->body, qr/"access_token":"eyJ/, 'a token');
($res) = grant($g2, $a);
is($res->status, 401, 'the same assertion on gateway 2 is a replay');
like($res->body, qr/"error":"invalid_client"/, 'invalid_client');
($res) = grant($g1, $a);
is($res->status, 401, 'and on gateway 1 again');

my @keys = @{ $redis->call('KEYS', 'ob:jti:*') };
is(scalar(@keys), 1, 'one key in Redis');
like($keys[0] // '', qr/^ob:jti:\{acme-erp\}:across-/,
     'the client in a hash tag, then the jti');

$redis->stop;

(my $r1, my $took) = grant($g1, assertion(kid => 'acme-ed'));
is($r1->status, 503, 'stopped: nonce=refuse: 503');
like($r1->body, qr/"error":"temporarily_unavailable"/,
     'stopped: temporarily_unavailable');
ok($took < 2, "stopped: within a generous bound ($took s)");

my $b = assertion(kid => 'acme-ed');
($res) = grant($g2, $b);
is($res->status, 200, 'stopped: nonce=local: a token from this gateway');
($res) = grant($g2, $b);
is($res->status, 401, 'stopped: nonce=local: a replay on it is refused');

$redis->cont;

ok(poll(sub { (grant($g1, assertion(kid => 'acme-ed')))[0]->status == 200 },
        10), 'continued: tokens again without a restart');

$g1->stop;
$g2->stop;

done_testing;
