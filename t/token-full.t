# A full shared zone never turns into a silent acceptance: when no room is
# left for an assertion's jti (records that may not be evicted), the token
# endpoint answers 503 and logs an [alert]; assertions already used stay
# refused; cached tokens simply stop being cached.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;

my ($http, $config) = token_config();
$http =~ s/openbank_zone openbank 4m;/openbank_zone openbank 128k;/ or die;

start_nginx({ http_config => $http, config => $config });

my $type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
my %h = ('Content-Type' => 'application/x-www-form-urlencoded');
my ($first, $res, $n);

for $n (1 .. 4000) {
    my $a = assertion(kid => 'acme-ed');
    $first //= $a;
    $res = http_request('POST', '/oauth2/token', \%h,
                        form_body(grant_type => 'client_credentials',
                                  client_assertion_type => $type,
                                  client_assertion => $a));
    last if $res->status != 200;
}

is($res->status, 503, 'once the zone is full of used jtis: 503');
like($res->body, qr/"error":"temporarily_unavailable"/,
     'temporarily_unavailable');
like($res->body, qr/state_unavailable/, 'saying the state is unavailable');
like(error_log_since(0),
     qr/\[alert\].*zone "openbank" is full: cannot remember an assertion jti/,
     'with an [alert] line');

$res = http_request('POST', '/oauth2/token', \%h,
                    form_body(grant_type => 'client_credentials',
                              client_assertion_type => $type,
                              client_assertion => $first));
is($res->status, 401, 'the first assertion is still refused as a replay');

# tokens still verify: the cache is only a cache (the rate limiter, which
# needs room in the zone too, may refuse with 503 state_unavailable)
$res = http_request('GET', '/v1/accounts', { Authorization => 'Bearer ' . mint() });
ok($res->status == 200
   || ($res->status == 503 && $res->body =~ /"state_unavailable"/),
   'a valid token is not refused as a token when it cannot be cached')
    or diag $res->status . ' ' . $res->body;

stop_nginx();
done_testing();
