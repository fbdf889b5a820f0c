# tls_client_auth (RFC 8705) and certificate-bound tokens: the client
# certificate's SHA-256 is the partner's "certificate"; a token issued on
# a connection with a certificate carries cnf.x5t#S256 and is refused
# (403 certificate_mismatch) on a connection without that certificate.
# curl is the TLS client; openssl computes the thumbprints independently.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use Crypt::Misc qw(encode_b64u);
use Crypt::Digest::SHA256 qw(sha256);

my $port = free_port();
my ($http, $config) = token_config(tls_port => $port);

start_nginx({ http_config => $http, config => $config, workers => 2 });

my $thumb = encode_b64u(sha256(cert_thumb('acme')));
my $grant = 'grant_type=client_credentials';

sub token_from {
    my ($status, $body) = @_;
    return $status == 200 ? json_decode($body)->{access_token} : undef;
}

# tls_client_auth
my ($st, $body) = curl_tls(port => $port, path => '/oauth2/token',
                           cert => 'acme', body => "$grant&client_id=acme-erp");
is($st, 200, 'tls_client_auth: acme\'s certificate gets a token')
    or diag $body;
my $bound = token_from($st, $body);
is(jwt_claims($bound)->{cnf}{'x5t#S256'}, $thumb,
   'the token is bound: cnf.x5t#S256 is the certificate\'s (openssl)');
my $jwks = http_request('GET', '/.well-known/jwks.json')->body;
ok(eval { Crypt::JWT::decode_jwt(token => $bound, kid_keys => $jwks) },
   'and verifies with Crypt::JWT');

($st, $body) = curl_tls(port => $port, path => '/oauth2/token', cert => 'beta',
                        body => "$grant&client_id=acme-erp");
is($st, 401, 'tls_client_auth: another partner\'s certificate is refused');
like($body, qr/"invalid_client"/, 'invalid_client');

($st, $body) = curl_tls(port => $port, path => '/oauth2/token',
                        body => "$grant&client_id=acme-erp");
is($st, 401, 'tls_client_auth: no certificate, no token');

($st, $body) = curl_tls(port => $port, path => '/oauth2/token', cert => 'beta',
                        body => "$grant&client_id=beta-app");
is($st, 200, 'control: beta with its own certificate');

# the bound token on the API
for my $i (1 .. 3) {
    ($st, $body) = curl_tls(port => $port, path => '/v1/accounts',
                            cert => 'acme',
                            headers => ["Authorization: Bearer $bound"]);
    is($st, 200, "the bound token with its certificate ($i)");
}

($st, $body) = curl_tls(port => $port, path => '/v1/accounts',
                        headers => ["Authorization: Bearer $bound"]);
is($st, 403, 'the bound (and cached) token without a certificate');
like($body, qr/"code":\s*"certificate_mismatch"/, 'certificate_mismatch');

($st, $body) = curl_tls(port => $port, path => '/v1/accounts', cert => 'beta',
                        headers => ["Authorization: Bearer $bound"]);
is($st, 403, 'the bound token with another certificate');
like($body, qr/"code":\s*"certificate_mismatch"/, 'certificate_mismatch');

my $res = http_request('GET', '/v1/accounts',
                       { Authorization => "Bearer $bound" });
is($res->status, 403, 'the bound token over plain HTTP');

# a bound token minted here, never seen by the gateway (not cached)
my $fresh = mint(claims => { cnf => { 'x5t#S256' => $thumb } });
($st) = curl_tls(port => $port, path => '/v1/accounts',
                 headers => ["Authorization: Bearer $fresh"]);
is($st, 403, 'an uncached bound token without a certificate');
($st) = curl_tls(port => $port, path => '/v1/accounts', cert => 'acme',
                 headers => ["Authorization: Bearer $fresh"]);
is($st, 200, 'control: with its certificate');

# client_secret_basic on a connection with a certificate binds too
($st, $body) = curl_tls(port => $port, path => '/oauth2/token', cert => 'acme',
                        headers => ['Authorization: '
                                    . basic('acme-erp', 'acme-secret-123')],
                        body => $grant);
my $basic_bound = token_from($st, $body);
is(jwt_claims($basic_bound)->{cnf}{'x5t#S256'}, $thumb,
   'Basic over mTLS: the token is bound');

# and without a certificate, not
($st, $body) = curl_tls(port => $port, path => '/oauth2/token',
                        headers => ['Authorization: '
                                    . basic('acme-erp', 'acme-secret-123')],
                        body => $grant);
my $unbound = token_from($st, $body);
ok(!exists jwt_claims($unbound)->{cnf}, 'Basic without a certificate: unbound');
($st) = curl_tls(port => $port, path => '/v1/accounts', cert => 'beta',
                 headers => ["Authorization: Bearer $unbound"]);
is($st, 200, 'control: an unbound token works whatever the certificate');

# introspection tells the binding
($st, $body) = curl_tls(port => $port, path => '/oauth2/introspect',
                        cert => 'acme',
                        body => "client_id=acme-erp&token=$bound");
is($st, 200, 'introspection with tls_client_auth');
is(json_decode($body)->{cnf}{'x5t#S256'}, $thumb, 'shows the cnf');

stop_nginx();
done_testing();
