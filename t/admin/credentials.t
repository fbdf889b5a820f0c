# Credentials of registry partners, made at run time: each type works as
# a static one does, on every worker, without a reload; several live at
# once (rotation); a deleted or expired one is refused from the next
# request on, and so are the tokens it obtained; a suspended partner is
# refused everywhere with 403 partner_suspended; a PATCH of the plan or
# the quotas is in force at once and resets no counter.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;
use OpenBank::Signer qw(sign_request);
use POSIX qw(strftime);

my ($http, $config) = admin_config();
start_nginx({ http_config => $http, config => $config, workers => 2 });
my $off = error_log_offset();

my %form = ('Content-Type' => 'application/x-www-form-urlencoded');
my $type = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

sub keyed { my ($k, $n) = @_;
            join ' ', map { api_key_call($k)->status } 1 .. $n }
sub beared { my ($t, $n) = @_;
             join ' ', map { bearer_call($t)->status } 1 .. $n }
sub token_with {
    my ($h, $body) = @_;
    return http_request('POST', '/oauth2/token', { %form, %$h },
                        $body // form_body(grant_type => 'client_credentials'));
}

my ($s, $j, $r) = admin('POST', '/admin/partners',
    { name => 'zeta', plan => 'p', scopes => ['accounts'],
      client_id => 'zeta-app', quotas => { accounts => '5/day' } });
is($s, 201, 'a registry partner');

# an API key: shown once, in force on both workers at once
my @calls_before = keyed('obk_nothing', 2);
($s, $j, $r) = admin('POST', '/admin/partners/zeta/credentials',
                     { type => 'api_key' });
is($s, 201, 'an API key is made');
my ($key1, $id1) = ($j->{api_key}, $j->{id});
like($key1, qr/^obk_[A-Za-z0-9_-]{43}$/, 'of 32 random bytes');
like($id1, qr/^cred_[0-9a-f]{16}$/, 'its id');
is($j->{hint}, substr($key1, 0, 8), 'its hint: the first 8 characters');
# every worker: calls until both have answered (no quota on /v1/who)
my %pid;
for (1 .. 40) {
    my $w = http_request('GET', '/v1/who', { 'X-API-Key' => $key1 });
    last unless $w->status == 200;
    $pid{$1}++ if $w->body =~ /partner=zeta pid=(\d+)/;
    last if keys %pid == 2;
}
is(scalar keys %pid, 2,
   'it works at once, on both workers, without a reload');
is(keyed($key1, 3), '200 200 200', 'and counts against the quota');

# the quota of the PATCH: 3 of 5 taken; 4 now: one more, then 429
($s) = admin('PATCH', '/admin/partners/zeta',
             { quotas => { accounts => '4/day' } });
is($s, 200, 'the quota lowered');
is(keyed($key1, 2), '200 429',
   'at once, and the counter is not reset (3 were taken)');
($s) = admin('PATCH', '/admin/partners/zeta',
             { quotas => { accounts => '100/day' } });
is(keyed($key1, 1), '200', 'raised again: the counter goes on');
my $st = json_decode(http_request('GET', '/openbank/status')->body);
my ($zs) = grep { $_->{name} eq 'zeta' } @{ $st->{partners} };
ok($zs, '/openbank/status shows the registry partner');
my ($zq) = grep { $_->{product} eq 'accounts' } @{ $zs->{quotas} // [] };
is($zq && $zq->{used}, 5, 'with its quota\'s use') or diag explain $zs;
is($zq && $zq->{limit}, 100, 'and its limit');
$r = api_key_call($key1);
like($r->header('RateLimit-Policy') // '', qr/"rate";q=10000;w=1/,
     'the plan p');
($s) = admin('PATCH', '/admin/partners/zeta', { plan => 'q' });
is($s, 200, 'another plan');
$r = api_key_call($key1);
like($r->header('RateLimit-Policy') // '', qr/"rate";q=700;w=1/,
     'in force at the next request');
($s) = admin('PATCH', '/admin/partners/zeta', { plan => 'p' });

# rotation: two live keys; the old one deleted
($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                 { type => 'api_key' });
my ($key2, $id2) = ($j->{api_key}, $j->{id});
is(keyed($key1, 2) . ' ' . keyed($key2, 2), '200 200 200 200',
   'two live keys of one partner');
($s) = admin('DELETE', "/admin/partners/zeta/credentials/$id1");
is($s, 204, 'the old key deleted: 204');
my $doff = error_log_offset();
is(keyed($key1, 4), '401 401 401 401', 'refused from the next request on');
my %refusers;
for (1 .. 40) {
    last if keys %refusers == 2;
    last unless api_key_call($key1)->status == 401;
    $refusers{$1}++ for error_log_since($doff)
                        =~ /\[info\] (\d+)#\d+: \*\d+ openbank: unknown API key/g;
}
is(scalar keys %refusers, 2, 'by both workers');
is(keyed($key2, 2), '200 200', 'the new key works');
is((admin('DELETE', "/admin/partners/zeta/credentials/$id1"))[0], 404,
   'deleting it twice: 404');

# the list: no secret, a hint, last_used_at
($s, $j) = admin('GET', '/admin/partners/zeta/credentials');
is($s, 200, 'the credentials');
is(scalar @{ $j->{credentials} }, 1, 'one left');
is($j->{credentials}[0]{id}, $id2, 'the new key');
is($j->{credentials}[0]{type}, 'api_key', 'its type');
ok($j->{credentials}[0]{last_used_at}, 'used');
unlike(join('', map { JSON::PP->new->encode($_) } @{ $j->{credentials} }),
       qr/\Q$key2\E/, 'and no secret');

# expiry
my $soon = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 2));
($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                 { type => 'api_key', expires_at => $soon });
is($s, 201, 'a key that expires');
is($j->{expires_at}, $soon, 'when asked');
my $brief = $j->{api_key};
is(keyed($brief, 1), '200', 'it works');
sleep 3;
is(keyed($brief, 4), '401 401 401 401', 'then it is refused as unknown');
($s, $j) = admin('GET', '/admin/partners/zeta/credentials');
is(scalar(grep { $_->{expired} } @{ $j->{credentials} }), 1,
   'and listed as expired');
is((admin('POST', '/admin/partners/zeta/credentials',
          { type => 'api_key', expires_at => '2001-01-01T00:00:00Z' }))[0],
   400, 'an expiry in the past: 400');

# a client secret: tokens, refused once it is deleted
($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                 { type => 'client_secret' });
is($s, 201, 'a client secret');
is($j->{client_id}, 'zeta-app', 'with the client_id');
my ($secret, $sid) = ($j->{client_secret}, $j->{id});
$r = token_with({ Authorization => basic('zeta-app', $secret) });
is($r->status, 200, 'client_secret_basic at /oauth2/token');
my $token = json_decode($r->body)->{access_token};
is(beared($token, 3), '200 200 200', 'its token works');
is(token_with({ Authorization => basic('zeta-app', 'wrong') })->status, 401,
   'a wrong secret: 401');
($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                 { type => 'client_secret' });
my $secret2 = $j->{client_secret};
$r = token_with({ Authorization => basic('zeta-app', $secret2) });
my $token2 = json_decode($r->body)->{access_token};
is(beared($token2, 1), '200', 'a second secret, a second token');
is((admin('DELETE', "/admin/partners/zeta/credentials/$sid"))[0], 204,
   'the first secret deleted');
is(beared($token, 4), '401 401 401 401',
   'the token it obtained is refused, on every worker');
is(token_with({ Authorization => basic('zeta-app', $secret) })->status, 401,
   'and the secret itself');
$r = http_request('POST', '/oauth2/introspect',
                  { %form, Authorization => basic('zeta-app', $secret2) },
                  form_body(token => $token));
is($r->body, qq({"active":false}\n), 'introspection: that token is inactive');
is(beared($token2, 2), '200 200', 'the other secret\'s token still works');

# suspension: every credential, tokens included, 403 partner_suspended
($s, $j) = admin('PATCH', '/admin/partners/zeta', { status => 'suspended' });
is($s, 200, 'suspended');
is($j->{status}, 'suspended', 'so it says');
$r = bearer_call($token2);
is($r->status, 403, 'a live token: 403');
is(json_decode($r->body)->{code}, 'partner_suspended', 'partner_suspended');
is(beared($token2, 3), '403 403 403', 'on every worker');
$r = api_key_call($key2);
is($r->status, 403, 'an API key: 403');
is(json_decode($r->body)->{code}, 'partner_suspended', 'partner_suspended');
$r = token_with({ Authorization => basic('zeta-app', $secret2) });
is($r->status, 403, 'no new token');
like($r->body, qr/partner_suspended/, 'partner_suspended');
($s) = admin('PATCH', '/admin/partners/zeta', { status => 'active' });
is(beared($token2, 2) . ' ' . keyed($key2, 1), '200 200 200',
   'active again: all works');

# a JWKS: private_key_jwt with a key of it
($s, $j) = admin('POST', '/admin/partners',
                 { name => 'kappa', plan => 'p', scopes => ['accounts'] });
my $jwks = json_decode(do { local $/; open my $f, '<', "$KEYS/beta.jwks.json";
                            <$f> });
($s, $j) = admin('POST', '/admin/partners/kappa/credentials',
                 { type => 'jwks', jwks => $jwks });
is($s, 201, 'a JWKS');
my ($s2, $j2) = admin('POST', '/admin/partners/kappa/credentials',
                      { type => 'jwks', jwks => $jwks });
is($s2, 409, 'the same kids again: 409');
like($j2->{detail}, qr/kid "beta-ed"/, 'naming the kid');
like($j->{hint}, qr/beta-ed/, 'its hint: the kids');
my $jid = $j->{id};
$r = token_with({}, form_body(grant_type => 'client_credentials',
                              client_assertion_type => $type,
                              client_assertion => assertion(
                                  kid => 'beta-ed', client_id => 'kappa')));
is($r->status, 200, 'private_key_jwt with a key of the JWKS');
my $jt = json_decode($r->body)->{access_token};
is(beared($jt, 2), '200 200', 'its token works');
is((admin('DELETE', "/admin/partners/kappa/credentials/$jid"))[0], 204,
   'the JWKS deleted');
is(beared($jt, 2), '401 401', 'its token is refused');
$r = token_with({}, form_body(grant_type => 'client_credentials',
                              client_assertion_type => $type,
                              client_assertion => assertion(
                                  kid => 'beta-ed', client_id => 'kappa')));
is($r->status, 401, 'and the key');

my @badjwks = (
    [{ keys => 'x' }, qr/keys/, 'keys not an array'],
    [{ keys => [{ kty => 'EC', crv => 'P-256', kid => 'k', x => 'AA',
                  y => 'AA' }] }, qr/k/, 'an EC key off the curve'],
    [{ keys => [{ kty => 'oct', kid => 's', k => 'c2VjcmV0' }] }, qr/s/,
     'a symmetric key'],
    ['{"keys":[]}', qr/./, 'no keys'],
    [[1], qr/JWKS document/, 'an array'],
);
for my $b (@badjwks) {
    my $body = ref $b->[0] eq 'HASH' || ref $b->[0] eq 'ARRAY'
             ? { type => 'jwks', jwks => $b->[0] }
             : '{"type":"jwks","jwks":' . $b->[0] . '}';
    ($s, $j) = admin('POST', '/admin/partners/kappa/credentials', $body);
    is($s, 400, "$b->[2]: 400");
    is($j->{code}, 'invalid_body', "$b->[2]: invalid_body");
    like($j->{detail}, $b->[1], "$b->[2]: says which and why");
}

# an HMAC secret: signatures with keyid "hmac"
($s, $j) = admin('POST', '/admin/partners/kappa/credentials',
                 { type => 'api_key' });
my $kkey = $j->{api_key};
($s, $j) = admin('POST', '/admin/partners/kappa/credentials',
                 { type => 'hmac_secret' });
is($s, 201, 'an HMAC secret');
my $hmac = $j->{hmac_secret};
like($hmac, qr/^[A-Za-z0-9_-]{43}$/, 'of 32 random bytes');
my $port = server_port();
my @sig = sign_request(method => 'GET', path => '/v1/signed',
                       authority => "127.0.0.1:$port", alg => 'hmac-sha256',
                       key => $hmac, keyid => 'hmac');
my %sh = ('X-API-Key' => $kkey, map { split /: /, $_, 2 } @sig);
$r = http_request('GET', '/v1/signed', \%sh, undef,
                  { host => "127.0.0.1:$port" });
is($r->status, 200, 'a request signed with it') or diag $r->body;
@sig = sign_request(method => 'GET', path => '/v1/signed',
                    authority => "127.0.0.1:$port", alg => 'hmac-sha256',
                    key => 'x' x 43, keyid => 'hmac');
%sh = ('X-API-Key' => $kkey, map { split /: /, $_, 2 } @sig);
is(http_request('GET', '/v1/signed', \%sh, undef,
                { host => "127.0.0.1:$port" })->status, 401,
   'another secret: 401');

# a certificate: by fingerprint or PEM; one per certificate
my $pem = do { local $/; open my $f, '<', "$KEYS/server.crt"; <$f> };
my $fp = substr(`openssl x509 -in $KEYS/server.crt -outform DER | sha256sum`,
                0, 16);
($s, $j) = admin('POST', '/admin/partners/kappa/credentials',
                 { type => 'certificate', certificate => $pem });
is($s, 201, 'a certificate from its PEM');
is($j->{hint}, "sha256:$fp", 'its hint: the fingerprint');
($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                 { type => 'certificate', certificate => $pem });
is($s, 409, 'the same certificate again: 409');
($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                 { type => 'certificate', sha256 => 'sha256:c30c6a28ffecebe5'
                   . '8885922e4af68a8af9ffc89df565d3f56d8492f1743fb409' });
is($s, 409, 'a static partner\'s certificate: 409');
is($j->{code}, 'invalid_state', 'invalid_state');
($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                 { type => 'certificate', certificate => "-----BEGIN "
                   . "CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n" });
is($s, 400, 'a bad PEM: 400');
($s, $j) = admin('POST', '/admin/partners/zeta/credentials',
                 { type => 'certificate', sha256 => 'abc' });
is($s, 400, 'a bad fingerprint: 400');

# the other refusals
for my $b ([{ }, qr/"type" is required/, 'no type'],
           [{ type => 'password' }, qr/"type"/, 'an unknown type'],
           [{ type => 'api_key', jwks => {} }, qr/jwks/, 'jwks with api_key'],
           [{ type => 'jwks' }, qr/jwks/, 'jwks without jwks'],
           [{ type => 'api_key', sha256 => 'ab' x 32 }, qr/certificate/,
            'a fingerprint with api_key'],
           [{ type => 'api_key', expires_at => 'tomorrow' }, qr/expires_at/,
            'a bad expiry']) {
    ($s, $j) = admin('POST', '/admin/partners/zeta/credentials', $b->[0]);
    is($s, 400, "$b->[2]: 400");
    like($j->{detail}, $b->[1], "$b->[2]: says why");
}
($s, $j) = admin('POST', '/admin/partners/acme/credentials',
                 { type => 'api_key' });
is($s, 409, 'a credential for a static partner: 409');
($s, $j) = admin('POST', '/admin/partners/nobody/credentials',
                 { type => 'api_key' });
is($s, 404, 'for nobody: 404');
is((admin('DELETE', "/admin/partners/kappa/credentials/$id2"))[0], 404,
   'another partner\'s credential: 404');
is((admin('DELETE', '/admin/partners/zeta/credentials/cred_xyz'))[0], 404,
   'a bad id: 404');

# a partner deleted: its credentials and tokens go with it
is((admin('DELETE', '/admin/partners/zeta'))[0], 204, 'zeta deleted');
is(keyed($key2, 2) . ' ' . beared($token2, 2), '401 401 401 401',
   'its key and its token are refused');
is((admin('POST', '/admin/partners',
          { name => 'zeta', plan => 'p', scopes => ['accounts'],
            client_id => 'zeta-app' }))[0], 201, 'zeta made again');
is(keyed($key2, 1) . ' ' . beared($token2, 1), '401 401',
   'the old key and token stay refused');

my $log = error_log_since($off);
unlike($log, qr/\[alert\]|\[crit\]|\[emerg\]/, 'no alert');
# nginx's own debug lines show the request's headers; no other line may
unlike(join('', grep { !/\[debug\]/ } split /^/, $log),
       qr/\Q$key2\E|\Q$secret2\E|\Q$hmac\E/, 'no secret in the log');

stop_nginx();
done_testing();
