# Only caches give way to make room, and they do whatever else the zone
# holds: a zone full of cached tokens behind hundreds of used assertion
# jtis (records that may not be evicted, the oldest of the zone) still
# takes a new jti, in the room of a cached token.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;

my ($http, $config) = token_config();
$http =~ s/openbank_zone openbank 4m;/openbank_zone openbank 128k;/ or die;

start_nginx({ http_config => $http, config => $config });

my $type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';
my %h = ('Content-Type' => 'application/x-www-form-urlencoded');
my ($res, $n, $taken);

sub token_request {
    return http_request('POST', '/oauth2/token', \%h,
                        form_body(grant_type => 'client_credentials',
                                  client_assertion_type => $type,
                                  client_assertion =>
                                      assertion(kid => 'acme-ed')));
}

$taken = 0;
for $n (1 .. 300) {
    $res = token_request();
    last if $res->status != 200;
    $taken++;
}
is($taken, 300, '300 assertions are taken, their jtis kept');

# the rest of the zone: verified tokens, cached
for $n (1 .. 700) {
    http_request('GET', '/v1/accounts',
                 { Authorization => 'Bearer ' . mint() });
}

$taken = 0;
for $n (1 .. 200) {
    $res = token_request();
    last if $res->status != 200;
    $taken++;
}
is($taken, 200, 'a zone full of cached tokens takes 200 more jtis')
    or diag $res->status . ' ' . $res->body;
unlike(error_log_since(0), qr/is full: cannot remember an assertion jti/,
       'and never says it is full');

stop_nginx();
done_testing();
