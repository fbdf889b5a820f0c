# Every refusal of dynamic client registration is the RFC 7591 error the
# contract names (invalid_software_statement, unapproved_software_
# statement, invalid_client_metadata, invalid_redirect_uri), with a
# description saying why; a wrong registration access token is 401
# invalid_token; none is a 5xx or an [alert], and none makes a client.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;
use OpenBank::Registration;
use Crypt::JWT qw(encode_jwt);
use Crypt::Misc qw(encode_b64u);

my ($http, $config) = dcr_config();
start_nginx({ http_config => $http, config => $config, workers => 2 });
my $off = error_log_offset();

my ($pk, $jwks) = client_key('client-1');
my %good = (token_endpoint_auth_method => 'private_key_jwt',
            jwks => $jwks, scope => 'accounts');

sub refused {
    my ($meta, $status, $error, $why, $label) = @_;
    my ($s, $j, $r) = register(ref $meta ? $meta : $meta);
    is($s, $status, "$label: $status");
    is($j && $j->{error}, $error, "$label: $error")
        or diag $r->body;
    like($j && $j->{error_description} // '', $why, "$label: says why")
        if $why;
}

sub partners { my ($s, $j) = admin('GET', '/admin/partners');
               scalar grep { $_->{name} =~ /^dcr-/ } @{ $j->{partners} } }

# the software statement
refused({ %good }, 400, 'invalid_software_statement',
        qr/software_statement.*required/, 'no statement');
refused({ %good, software_statement => 42 }, 400,
        'invalid_software_statement', qr/must be a string/,
        'a statement that is no string');
refused({ %good, software_statement => 'not.a.jwt.at.all' }, 400,
        'invalid_software_statement', qr/not a JW/, 'a statement no JWT');
my $other = Crypt::PK::ECC->new; $other->generate_key('secp256r1');
refused({ %good, software_statement => statement(key => $other) }, 400,
        'invalid_software_statement', qr/signature is not valid/,
        'a statement signed by another key (bad signature)');
my $forged = statement();
my @p = split /\./, $forged;
my $claims = JSON::PP->new->decode(Crypt::Misc::decode_b64u($p[1]));
$claims->{scope} = 'accounts payments';
$p[1] = encode_b64u(JSON::PP->new->encode($claims));
refused({ %good, software_statement => join('.', @p) }, 400,
        'invalid_software_statement', qr/signature is not valid/,
        'a statement whose claims were changed');
refused({ %good, software_statement =>
            statement(claims => { iss => 'https://other.directory' }) },
        400, 'unapproved_software_statement', qr/iss is not the directory/,
        'a statement of another iss');
refused({ %good, software_statement =>
            statement(claims => { exp => time - 3600 }) },
        400, 'invalid_software_statement', qr/expired/, 'an expired statement');
refused({ %good, software_statement => statement(claims => { exp => undef }) },
        400, 'invalid_software_statement', qr/no exp/, 'a statement without exp');
refused({ %good, software_statement =>
            statement(claims => { nbf => time + 3600 }) },
        400, 'invalid_software_statement', qr/not valid yet/,
        'a statement not valid yet');
refused({ %good, software_statement => statement(claims => { jti => undef }) },
        400, 'invalid_software_statement', qr/jti/, 'a statement without jti');
refused({ %good, software_statement => statement(kid => 'dir-nope',
                                                  key_of => 'dir-es') },
        400, 'unapproved_software_statement', qr/kid is not a key/,
        'a statement of an unknown kid');
my $h = encode_b64u('{"alg":"ES256","typ":"JWT"}');
refused({ %good, software_statement => join('.', $h, (split /\./, statement())[1, 2]) },
        400, 'unapproved_software_statement', qr/kid/,
        'a statement without kid (the directory has two keys)');
my $none_h = encode_b64u('{"alg":"none","kid":"dir-es"}');
my $body = (split /\./, statement())[1];
refused({ %good, software_statement => "$none_h.$body." }, 400,
        'invalid_software_statement', qr/no signature/, 'alg none, no signature');
refused({ %good, software_statement => "$none_h.$body.AAAA" }, 400,
        'invalid_software_statement', qr/alg is not its key's \(ES256\)/,
        'alg none with a signature');
refused({ %good, software_statement => statement(kid => 'dir-ps',
                                                  alg => 'RS256') },
        400, 'invalid_software_statement', qr/alg is not its key's \(PS256\)/,
        'RS256 with a key pinned to PS256 (alg mismatch)');
refused({ %good, software_statement => statement(kid => 'dir-es',
                                                  key_of => 'dir-ps',
                                                  alg => 'PS256') },
        400, 'invalid_software_statement', qr/alg is not its key's \(ES256\)/,
        'PS256 under the EC key\'s kid (alg mismatch)');
refused({ %good, software_statement => statement(kid => 'dir-es',
            alg => 'HS256',
            key => Crypt::Misc::decode_b64u(
                       Crypt::PK::ECC->new("$OpenBank::Tokens::KEYS/directory-es256.pem")
                           ->export_key_jwk('public', 1)->{x})) },
        400, 'invalid_software_statement', qr/alg is not its key's/,
        'HS256 keyed with the public key');
is((register({ %good, software_statement => statement(kid => 'dir-ps') }))[0],
   201, 'the RSA key of the directory with PS256 is taken');

# a statement is used once: again on this and the other worker, refused
my $once = statement();
is((register({ %good, software_statement => $once }))[0], 201,
   'a statement: 201');
my $roff = error_log_offset();
my (%statuses, %pids);
for (1 .. 30) {
    my ($s, $j) = register({ %good, software_statement => $once });
    $statuses{"$s " . ($j->{error} // '')}++;
    $pids{$1}++ for error_log_since($roff)
        =~ /\[warn\] (\d+)#\d+: \*\d+ openbank: a software statement used before/g;
    last if keys %pids == 2 && $_ >= 4;
}
is(join(',', keys %statuses), '400 invalid_software_statement',
   'presented again: 400 invalid_software_statement, every time');
is(scalar keys %pids, 2, 'refused by both workers');

# a statement refused for its metadata is not used up
my $kept = statement();
refused({ %good, software_statement => $kept, grant_types => ['password'] },
        400, 'invalid_client_metadata', qr/client_credentials/,
        'a grant the gateway has not');
is((register({ %good, software_statement => $kept }))[0], 201,
   'the statement of a refused request still registers');

# the body and the metadata
refused('{"software_statement": "x", ', 400, 'invalid_client_metadata',
        qr/not JSON/, 'malformed JSON');
refused('[1, 2]', 400, 'invalid_client_metadata', qr/JSON object/,
        'a JSON array');
refused('', 400, 'invalid_client_metadata', qr/empty/, 'an empty body');
refused("{\"a\":\"\0\"}", 400, 'invalid_client_metadata', qr/NUL|JSON/,
        'a NUL in the body');
my %m = (%good, software_statement => statement());
refused({ %m, token_endpoint_auth_method => 'client_secret_basic' }, 400,
        'invalid_client_metadata', qr/private_key_jwt or tls_client_auth/,
        'client_secret_basic');
refused({ %m, token_endpoint_auth_method => undef }, 400,
        'invalid_client_metadata', qr/required/, 'no auth method');
refused({ %m, jwks => undef, jwks_uri => 'https://attacker.example/jwks' },
        400, 'invalid_client_metadata', qr/fetches nothing/,
        'jwks_uri: the gateway fetches nothing');
refused({ %m, jwks => undef }, 400, 'invalid_client_metadata',
        qr/needs "jwks"/, 'private_key_jwt without jwks');
refused({ %m, jwks => { keys => [{ kty => 'EC', crv => 'P-256', kid => 'x',
                                   x => 'AAAA', y => 'AAAA' }] } },
        400, 'invalid_client_metadata', qr/^"jwks": /, 'a bad JWKS');
my $loff = error_log_offset();
refused({ %m, jwks => { keys => [{ kty => "EC\n2026/01/01 00:00:00 [alert] forged",
                                   kid => 'x' }] } },
        400, 'invalid_client_metadata', qr/unsupported "kty"/,
        'a JWKS of an unknown kty with a newline');
unlike(error_log_since($loff), qr/^2026\/01\/01 00:00:00 \[alert\] forged/m,
       'which forges no line of the error log');
refused({ %m, jwks => 'keys' }, 400, 'invalid_client_metadata',
        qr/JWKS document/, 'a JWKS that is no object');
my ($priv) = client_key('p');
refused({ %m, jwks => { keys => [$priv->export_key_jwk('private', 1)] } },
        400, 'invalid_client_metadata', qr/^"jwks": /, 'a private key');
refused({ %m, grant_types => ['authorization_code'] }, 400,
        'invalid_client_metadata', qr/client_credentials/,
        'grant_types authorization_code');
refused({ %m, grant_types => [] }, 400, 'invalid_client_metadata',
        qr/client_credentials/, 'grant_types empty');
refused({ %m, response_types => ['code'] }, 400, 'invalid_client_metadata',
        qr/response_types/, 'a response type');
refused({ %m, scope => 'accounts admin' }, 400, 'invalid_client_metadata',
        qr/scope "admin"/, 'a scope beyond scopes=');
refused({ %m, scope => 'accounts  payments' }, 400, 'invalid_client_metadata',
        qr/one space/, 'a malformed scope');
refused({ %good, software_statement => statement(claims => { scope => 'admin' }) },
        400, 'unapproved_software_statement', qr/scope "admin"/,
        'a statement of a scope beyond scopes=');
refused({ %m, redirect_uris => ['http://fintech.example/cb'] }, 400,
        'invalid_redirect_uri', qr/https/, 'an http redirect URI');
refused({ %m, redirect_uris => ['https://fintech.example/cb#x'] }, 400,
        'invalid_redirect_uri', qr/fragment/, 'a redirect URI with a fragment');
refused({ %m, redirect_uris => 'https://fintech.example/cb' }, 400,
        'invalid_redirect_uri', qr/array/, 'redirect_uris not an array');
refused({ %m, client_name => "a\nb" }, 400, 'invalid_client_metadata',
        qr/client_name/, 'a control character in client_name');
refused({ %m, client_name => 'x' x 300 }, 400, 'invalid_client_metadata',
        qr/at most 255/, 'a client_name too long');
refused('{"scope":"accounts","scope":"payments","software_statement":"'
        . statement() . '"}', 400, 'invalid_client_metadata', qr/twice/,
        'a member twice');
refused({ %m, token_endpoint_auth_method => 'tls_client_auth', jwks => undef },
        400, 'invalid_client_metadata', qr/cnf x5t#S256/,
        'tls_client_auth without a certificate in the statement');
refused({ %m, tls_client_auth_subject_dn => 'CN=fintech' }, 400,
        'invalid_client_metadata', qr/subject_dn" is for tls_client_auth/,
        'tls_client_auth_subject_dn for private_key_jwt');
refused({ %m, token_endpoint_auth_method => 'tls_client_auth', jwks => undef,
          tls_client_auth_subject_dn => 'CN=fintech',
          software_statement => statement(claims => {
              cnf => { 'x5t#S256' => 'A' x 43 } }) }, 400,
        'invalid_client_metadata', qr/without the statement's certificate/,
        'tls_client_auth_subject_dn and the statement\'s certificate');
refused({ %m, token_endpoint_auth_method => 'tls_client_auth' }, 400,
        'invalid_client_metadata', qr/jwks/, 'tls_client_auth with jwks');

# huge bodies
my ($s, $j, $r) = register('{"x":"' . ('a' x 70000) . '"}');
is($s, 413, 'a body over 64 KiB: 413');
is($j && $j->{error}, 'invalid_client_metadata', 'invalid_client_metadata');
$r = http_raw_request("POST /oauth2/register HTTP/1.1\r\nHost: localhost\r\n"
    . "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
    . "Connection: close\r\n\r\n"
    . join('', map { sprintf("%x\r\n%s\r\n", 8000, 'a' x 8000) } 1 .. 10)
    . "0\r\n\r\n");
is($r->status, 413, 'a chunked body over 64 KiB: 413');
refused({ %m, jwks => { keys => [ map { { %{ $jwks->{keys}[0] }, kid => "k$_" } }
                                  1 .. 200 ] } },
        400, 'invalid_client_metadata', qr/longer than/, 'a JWKS too big');

# the client's URI and its registration access token
($s, $j) = register({ %good, software_statement => statement() });
my ($id, $rat) = ($j->{client_id}, $j->{registration_access_token});
for my $case (["obr_wrong", 'a wrong token'], [undef, 'no token'],
              [substr($rat, 0, -1), 'a token one character short'],
              ["${rat}x", 'the token and one more character']) {
    my ($st, $jj, $rr) = dcr_call('GET', "/oauth2/register/$id", undef,
                                  $case->[0]);
    is($st, 401, "$case->[1]: 401");
    is($jj && $jj->{error}, 'invalid_token', "$case->[1]: invalid_token");
    like($rr->header('WWW-Authenticate') // '', qr/^Bearer/,
         "$case->[1]: WWW-Authenticate");
}
is((dcr_call('GET', "/oauth2/register/$id", undef, $rat))[0], 200,
   'the right token: 200');
is((dcr_call('GET', '/oauth2/register/dcr-0123456789abcdef', undef, $rat))[0],
   401, 'another client id with the token: 401');
is((dcr_call('GET', '/oauth2/register/acme', undef, $rat))[0], 401,
   'a static partner\'s name: 401');
is((dcr_call('PUT', "/oauth2/register/$id", { %good, client_id => $id },
             'obr_wrong'))[0], 401, 'PUT with a wrong token: 401');
is((dcr_call('DELETE', "/oauth2/register/$id", undef, 'obr_wrong'))[0], 401,
   'DELETE with a wrong token: 401');
is((dcr_call('GET', "/oauth2/register/$id", undef, $rat))[0], 200,
   'still there');
($s, $j) = dcr_call('PUT', "/oauth2/register/$id", '{"client_id":', $rat);
is($s, 400, 'a PUT of malformed JSON: 400');
is($j->{error}, 'invalid_client_metadata', 'invalid_client_metadata');

# methods and paths
($s, $j, $r) = dcr_call('GET', '/oauth2/register');
is($s, 405, 'GET the collection: 405');
is($r->header('Allow'), 'POST', 'Allow: POST');
($s, $j, $r) = dcr_call('POST', "/oauth2/register/$id", {}, $rat);
is($s, 405, 'POST on a client: 405');
is($r->header('Allow'), 'GET, HEAD, PUT, DELETE', 'its methods');
is((dcr_call('GET', "/oauth2/register/$id/x", undef, $rat))[0], 404,
   'below a client: 404');

is(partners(), 4, 'only the four accepted registrations made clients');
my $log = error_log_since($off);
unlike($log, qr/^\S+ \S+ \[(alert|crit|emerg)\]/m, 'no [alert]');
stop_nginx();
my $access = do { local $/; open my $f, '<', servroot() . '/logs/access.log';
                  <$f> };
unlike($access, qr/" 5\d\d /, 'no 5xx');

done_testing();
