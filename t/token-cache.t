# A token is verified once and then served from the shared zone, in every
# worker; a reload that removes its key (or changes the issuer) makes the
# cached token worthless at once.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;

my ($http, $config) = token_config();

start_nginx({ http_config => $http, config => $config, workers => 2 });

my $token = mint(kid => 'gw-es');
my $off = error_log_offset();

my @status;
for my $i (1 .. 8) {
    push @status, http_request('GET', '/v1/accounts',
                               { Authorization => "Bearer $token" })->status;
}
is("@status", join(' ', (200) x 8), 'eight calls with one token pass');

my $log = error_log_since($off);
my $verified = () = $log =~ /openbank: access token \S+ verified/g;
my $cached = () = $log =~ /openbank: access token from the cache/g;
is($verified, 1, 'the signature was checked once');
is($cached, 7, 'the other seven came from the shared cache');

# the cached entry follows the configuration: the key goes, so does it
my $keep = mint(kid => 'gw-ps');
is(http_request('GET', '/v1/accounts',
                { Authorization => "Bearer $keep" })->status, 200,
   'control: a token of the key that stays');

my ($http2) = token_config(signing_keys => [['gw-ps256.pem', 'gw-ps'],
                                            ['gw-eddsa.pem', 'gw-ed']]);
ok(reload_nginx({ http_config => $http2, config => $config, workers => 2 }),
   'reload without gw-es');

$off = error_log_offset();
for my $i (1 .. 4) {
    my $res = http_request('GET', '/v1/accounts',
                           { Authorization => "Bearer $token" });
    is($res->status, 401, "the cached token of a removed key is refused ($i)");
}
like(error_log_since($off), qr/signing key is no longer trusted/,
     'because its key is no longer trusted');

is(http_request('GET', '/v1/accounts',
                { Authorization => "Bearer " . mint(kid => 'gw-es') })->status,
   401, 'a new token of the removed key is refused');
is(http_request('GET', '/v1/accounts',
                { Authorization => "Bearer $keep" })->status, 200,
   'control: the cached token of the key that stays still passes');

# another issuer: every token of the old one is refused, cached or not
(my $http3 = $http2) =~ s{openbank_issuer \S+;}{openbank_issuer https://gw2.test;};
ok(reload_nginx({ http_config => $http3, config => $config, workers => 2 }),
   'reload with another issuer');
is(http_request('GET', '/v1/accounts',
                { Authorization => "Bearer $keep" })->status, 401,
   'the cached token of the old issuer is refused');
is(http_request('GET', '/v1/accounts',
                { Authorization => "Bearer "
                  . mint(claims => { iss => 'https://gw2.test',
                                     aud => 'https://gw2.test' }) })->status,
   200, 'control: a token of the new issuer passes');

stop_nginx();
done_testing();
