# Dynamic client registration (RFC 7591, RFC 7592): a client registered
# with a software statement of the directory is a registry partner on
# openbank_registration_plan; it gets a token at the token endpoint with
# private_key_jwt (its assertion signed here with Crypt::JWT) and calls an
# API; GET, PUT and DELETE on its registration_client_uri with its
# registration access token; the audit log says "registration".

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;
use OpenBank::Registration;
use Digest::SHA qw(sha256_hex);

my ($http, $config) = dcr_config();
start_nginx({ http_config => $http, config => $config, workers => 2 });
my $dir = servroot() . '/state';

my $meta = json_decode(http_request('GET',
    '/.well-known/oauth-authorization-server')->body);
is($meta->{registration_endpoint}, "$ISSUER/oauth2/register",
   'the metadata names the registration endpoint (RFC 8414)');

my ($pk, $jwks) = client_key('client-1');
my $ssa = statement();
my ($s, $j, $r) = register({
    software_statement => $ssa,
    token_endpoint_auth_method => 'private_key_jwt',
    grant_types => ['client_credentials'],
    jwks => $jwks, scope => 'accounts',
    client_name => 'overridden by the statement',
    logo_uri => 'https://fintech.example/logo.png' });
is($s, 201, 'registered: 201');
is($r->header('Cache-Control'), 'no-store', 'never cached');
like($r->header('Content-Type'), qr{^application/json}, 'JSON');
my $id = $j->{client_id};
like($id, qr/^dcr-[0-9a-f]{16}$/, 'a client_id');
my $rat = $j->{registration_access_token};
like($rat, qr/^obr_[A-Za-z0-9_-]{43}$/,
     'a registration access token of 32 random bytes');
cmp_ok(abs($j->{client_id_issued_at} - time), '<', 60, 'client_id_issued_at');
is($j->{registration_client_uri}, "$ISSUER/oauth2/register/$id",
   'the registration_client_uri');
is($j->{token_endpoint_auth_method}, 'private_key_jwt', 'the auth method');
is_deeply($j->{grant_types}, ['client_credentials'], 'the grant');
is($j->{scope}, 'accounts', 'the scope');
is($j->{client_name}, 'Fintech App',
   'the statement\'s software_client_name wins over the body\'s');
is($j->{software_id}, 'fintech-app-1', 'the software_id of the statement');
is_deeply($j->{jwks}, $jwks, 'the JWKS registered');
ok(!exists $j->{logo_uri}, 'a member the gateway does not know is ignored');

# the registration access token is nowhere but in that answer
my $journal = do { local $/; open my $f, '<', "$dir/registry.journal"; <$f> };
like($journal, qr/\Q$id\E/, 'the journal has the client');
unlike($journal, qr/\Q$rat\E/, 'but not its registration access token');
my ($as, $aj) = admin('GET', "/admin/partners/$id/credentials");
unlike(JSON::PP->new->encode($aj), qr/\Q$rat\E/,
       'nor the Admin API\'s credentials');
is(join(',', sort map { $_->{type} } @{ $aj->{credentials} }),
   'jwks,registration', 'which are its JWKS and its registration');

# a registry partner on the plan, with the scope asked
($as, $aj) = admin('GET', "/admin/partners/$id");
is($as, 200, 'a registry partner');
is($aj->{source}, 'registry', 'of the registry');
is($aj->{plan}, 'p', 'on openbank_registration_plan');
is_deeply($aj->{scopes}, ['accounts'], 'with the scope registered');
is($aj->{client_id}, $id, 'and the client_id');

# the token endpoint, private_key_jwt, on both workers; then an API call
$r = dcr_token($id, $pk);
is($r->status, 200, 'a token with private_key_jwt') or diag $r->body;
my $tok = json_decode($r->body);
is($tok->{scope}, 'accounts', 'of the scope registered');
is(jwt_claims($tok->{access_token})->{client_id}, $id, 'for the client');
$r = bearer_call($tok->{access_token});
is($r->status, 200, 'the token calls the API');
is($r->body, "partner=$id\n", 'as the client');
is(bearer_call($tok->{access_token}, '/v1/payments')->status, 403,
   'not beyond its scope');
is(dcr_token($id, $pk, 'client-1', 'payments')->status, 400,
   'nor can it ask for another scope');
my ($other) = client_key('client-1');
is(dcr_token($id, $other)->status, 401,
   'an assertion of another key is refused');
my %seen;
for (1 .. 20) {
    my $w = dcr_token($id, $pk);
    last unless $w->status == 200;
    $seen{ok}++;
}
is($seen{ok}, 20, 'twenty tokens in a row, on whichever worker, without a reload');

# RFC 7592: read
($s, $j, $r) = dcr_call('GET', "/oauth2/register/$id", undef, $rat);
is($s, 200, 'GET the client: 200');
is($j->{client_id}, $id, 'its client_id');
ok(!exists $j->{registration_access_token},
   'the token is not shown again (only its hash is kept)');
is_deeply($j->{jwks}, $jwks, 'its JWKS');
is($j->{scope}, 'accounts', 'its scope');
is($r->header('Cache-Control'), 'no-store', 'never cached');

# RFC 7592: update, new keys and a wider scope; the old key's tokens end
my ($pk2, $jwks2) = client_key('client-2');
($s, $j, $r) = dcr_call('PUT', "/oauth2/register/$id",
    { client_id => $id, token_endpoint_auth_method => 'private_key_jwt',
      grant_types => ['client_credentials'], jwks => $jwks2,
      scope => 'accounts payments', client_name => 'Fintech App 2' }, $rat);
is($s, 200, 'PUT the client: 200') or diag $r->body;
is($j->{scope}, 'accounts payments', 'its new scope');
is($j->{client_name}, 'Fintech App 2', 'its new name');
is_deeply($j->{jwks}, $jwks2, 'its new JWKS');
is(dcr_token($id, $pk)->status, 401, 'the old key is refused');
is(bearer_call($tok->{access_token})->status, 401,
   'and so is the token it obtained');
$r = dcr_token($id, $pk2, 'client-2', 'payments');
is($r->status, 200, 'the new key gets a token of the new scope');
my $tok2 = json_decode($r->body)->{access_token};
is(bearer_call($tok2, '/v1/payments')->status, 200, 'which calls the API');
($s, $j) = dcr_call('GET', "/oauth2/register/$id", undef, $rat);
is($j->{client_name}, 'Fintech App 2', 'GET shows the update');

# a PUT with nothing changed keeps the credential and its tokens
($s, $j) = dcr_call('PUT', "/oauth2/register/$id",
    { client_id => $id, token_endpoint_auth_method => 'private_key_jwt',
      jwks => $jwks2, scope => 'accounts payments' }, $rat);
is($s, 200, 'the same again: 200');
is(bearer_call($tok2, '/v1/payments')->status, 200,
   'the same key: its token lives on');
($s, $j) = dcr_call('PUT', "/oauth2/register/$id",
    { client_id => 'dcr-0000000000000000',
      token_endpoint_auth_method => 'private_key_jwt', jwks => $jwks2,
      scope => 'accounts' }, $rat);
is($s, 400, 'a PUT of another client_id: 400');
is($j->{error}, 'invalid_client_metadata', 'invalid_client_metadata');

# a suspension by the Admin API holds for a registered client too
($as) = admin('PATCH', "/admin/partners/$id", { status => 'suspended' });
is(dcr_token($id, $pk2, 'client-2')->status, 403,
   'suspended by the bank: refused at the token endpoint');
($as) = admin('PATCH', "/admin/partners/$id", { status => 'active' });

# a second client: its token is not the first one's
my ($pkb, $jwksb) = client_key('k');
($s, $j) = register({ software_statement => statement(),
                      token_endpoint_auth_method => 'private_key_jwt',
                      jwks => $jwksb });
is($s, 201, 'a second client, without scope: all of scopes=');
is($j->{scope}, 'accounts payments', 'the plan\'s scopes=');
my ($id_b, $rat_b) = ($j->{client_id}, $j->{registration_access_token});
isnt($id_b, $id, 'another client_id');
($s, $j) = dcr_call('GET', "/oauth2/register/$id", undef, $rat_b);
is($s, 401, 'one client\'s token does not open another');
is($j->{error}, 'invalid_token', 'invalid_token');

# RFC 7592: delete; then the client and its token are gone
($s, $j, $r) = dcr_call('DELETE', "/oauth2/register/$id", undef, $rat);
is($s, 204, 'DELETE the client: 204');
is($r->body, '', 'no body');
($s, $j, $r) = dcr_call('GET', "/oauth2/register/$id", undef, $rat);
is($s, 401, 'GET after DELETE: 401');
is($j->{error}, 'invalid_token', 'invalid_token');
like($r->header('WWW-Authenticate') // '', qr/^Bearer .*invalid_token/,
     'with WWW-Authenticate');
is(dcr_token($id, $pk2, 'client-2')->status, 401,
   'the token endpoint refuses it');
is(bearer_call($tok2, '/v1/payments')->status, 401,
   'and its tokens');
is((admin('GET', "/admin/partners/$id"))[0], 404, 'the partner is gone');
is((dcr_call('DELETE', "/oauth2/register/$id", undef, $rat))[0], 401,
   'a second DELETE: 401');

# the audit log
($as, $aj) = admin('GET', '/admin/audit');
my @ev = grep { $_->{actor} eq 'registration' } @{ $aj->{events} };
is(join(' ', map { "$_->{action}" } grep { $_->{target} eq $id } @ev),
   'registration.create registration.update registration.update '
   . 'registration.delete', 'the audit log has each change');
ok((grep { $_->{target} eq $id_b } @ev), 'and the second client');

like(error_log_since(0), qr/registration of client "\Q$id\E" on plan "p"/,
     'the log names the client');
unlike(join("", grep { !/\[debug\]/ } split /^/m, error_log_since(0)),
       qr/\Q$rat\E|\Q$rat_b\E/,
       'and never a registration access token (but in debug lines)');
unlike(error_log_since(0), qr/\[(alert|crit|emerg)\]/, 'no [alert]');

stop_nginx();
done_testing();
