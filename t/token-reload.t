# nginx -s reload applies changed partners and keys at once, on every
# worker: a partner's new secret, a key removed from its JWKS, a partner
# removed (its cached tokens die with it), a new signing key that signs.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;

my ($http, $config) = token_config();
my %form = ('Content-Type' => 'application/x-www-form-urlencoded');
my $type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

sub token_basic {
    my ($id, $secret) = @_;
    return http_request('POST', '/oauth2/token',
                        { %form, Authorization => basic($id, $secret) },
                        'grant_type=client_credentials');
}

sub with_assertion {
    return http_request('POST', '/oauth2/token', \%form,
        form_body(grant_type => 'client_credentials',
                  client_assertion_type => $type,
                  client_assertion => assertion(@_)))->status;
}

sub calls {
    my ($token, $n) = @_;
    return join ' ', map {
        http_request('GET', '/v1/accounts',
                     { Authorization => "Bearer $token" })->status
    } 1 .. $n;
}

start_nginx({ http_config => $http, config => $config, workers => 2 });

my $beta = json_decode(token_basic('beta-app', 'beta-secret-456')->body)
               ->{access_token};
is(calls($beta, 4), '200 200 200 200', 'beta\'s token works (cached)');
is(with_assertion(kid => 'acme-ec'), 200, 'acme-ec signs assertions');
is(token_basic('acme-erp', 'acme-secret-123')->status, 200, 'acme\'s secret');

# the new configuration: acme's secret changes, its JWKS loses acme-ec,
# beta goes, and a new signing key comes first
my $jwks = servroot() . '/acme-rotated.jwks.json';
{
    my $j = json_decode(do { local $/; open my $f, '<',
                             "$OpenBank::Tokens::KEYS/acme.jwks.json"; <$f> });
    $j->{keys} = [ grep { $_->{kid} ne 'acme-ec' } @{ $j->{keys} } ];
    open my $f, '>', $jwks or die; print $f JSON::PP->new->encode($j); close $f;
}
my ($http2) = token_config(signing_keys => [['gw-eddsa.pem', 'gw-ed'],
                                            ['gw-ps256.pem', 'gw-ps']]);
my $new_hash = unpack('H*', Crypt::Digest::SHA256::sha256('acme-secret-new'));
$http2 =~ s/a6b27b48133a838998fe621d2d571a1985ccb5a9b116cd80da7f215bb544540a/$new_hash/
    or die;
$http2 =~ s{jwks \S+/acme\.jwks\.json}{jwks $jwks} or die;
$http2 =~ s/openbank_partner beta \{[^}]*\}\n// or die;

ok(reload_nginx({ http_config => $http2, config => $config, workers => 2 }),
   'reload');

is(token_basic('acme-erp', 'acme-secret-123')->status, 401,
   'the old secret is refused at once');
my $res = token_basic('acme-erp', 'acme-secret-new');
is($res->status, 200, 'the new secret works');
my $token = json_decode($res->body)->{access_token};
my ($hdr) = jwt_parts($token);
is(json_decode(Crypt::Misc::decode_b64u($hdr))->{kid}, 'gw-ed',
   'the new first key signs');
is(calls($token, 2), '200 200', 'and its tokens work');

is(with_assertion(kid => 'acme-ec'), 401,
   'a key removed from the JWKS no longer signs assertions');
is(with_assertion(kid => 'acme-ed'), 200, 'control: a key that stays');

is(calls($beta, 4), '401 401 401 401',
   'a removed partner\'s cached token is refused on every worker');

stop_nginx();
done_testing();
