# tls_client_auth clients of dynamic client registration: the software
# statement's cnf x5t#S256 is the client's certificate (the directory
# vouches for it, the body cannot choose it), or tls_client_auth_subject_dn
# its subject; the client gets a certificate-bound token over mutual TLS
# with that certificate, and no other.  The certificate is made here by openssl, signed by the tests' CA;
# its SHA-256 computed by openssl too.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Tokens;
use OpenBank::Admin;
use OpenBank::Registration;
use Crypt::Misc qw(encode_b64u);
use Crypt::Digest::SHA256 qw(sha256);
use File::Temp qw(tempdir);
use IPC::Run qw(run);

my $port = free_port();
my ($http, $config) = dcr_config(token => { tls_port => $port });
start_nginx({ http_config => $http, config => $config, workers => 2 });

my $tmp = tempdir(CLEANUP => 1);
my $keys = $OpenBank::Tokens::KEYS;
my ($o1, $e1, $o2, $e2, $der, $e3);
run(['openssl', 'req', '-new', '-newkey', 'ec', '-pkeyopt',
     'ec_paramgen_curve:P-256', '-nodes', '-subj', '/CN=fintech-dcr',
     '-keyout', "$tmp/c.key", '-out', "$tmp/c.csr"], \undef, \$o1, \$e1)
    or die $e1;
run(['openssl', 'x509', '-req', '-in', "$tmp/c.csr", '-CA', "$keys/ca.crt",
     '-CAkey', "$keys/ca.key", '-CAcreateserial', '-CAserial',
     "$tmp/ca.srl", '-days', '2', '-out', "$tmp/c.crt"],
    \undef, \$o2, \$e2) or die $e2;
run(['openssl', 'x509', '-in', "$tmp/c.crt", '-outform', 'DER'],
    \undef, \$der, \$e3) or die $e3;
my $fp = encode_b64u(sha256($der));

sub tls {
    my (%o) = @_;
    my @cmd = ('curl', '-sk', '--max-time', '10', '-o', '-', '-w',
               '\n%{http_code}');
    push @cmd, '--cert', $o{cert}, '--key', $o{key} if $o{cert};
    push @cmd, '-H', $_ for @{ $o{headers} // [] };
    push @cmd, '-H', 'Content-Type: application/x-www-form-urlencoded',
               '--data-binary', $o{body} if defined $o{body};
    push @cmd, "https://127.0.0.1:$port$o{path}";
    my ($out, $err) = ('', '');
    run(\@cmd, \undef, \$out, \$err);
    my ($body, $status) = $out =~ /\A(.*)\n(\d+)\z/s;
    return ($status // 0, $body // '');
}

my ($s, $j) = register({
    software_statement => statement(claims => { cnf => { 'x5t#S256' => $fp } }),
    token_endpoint_auth_method => 'tls_client_auth', scope => 'accounts' });
is($s, 201, 'a tls_client_auth client: 201');
my ($id, $rat) = ($j->{client_id}, $j->{registration_access_token});
is($j->{token_endpoint_auth_method}, 'tls_client_auth', 'its method');
ok(!exists $j->{jwks}, 'and no JWKS');
my ($as, $aj) = admin('GET', "/admin/partners/$id/credentials");
my ($cred) = grep { $_->{type} eq 'certificate' } @{ $aj->{credentials} };
is($cred && $cred->{hint},
   'sha256:' . substr(unpack('H*', sha256($der)), 0, 16),
   'its certificate credential, the fingerprint of the statement');

my ($st, $body) = tls(path => '/oauth2/token', cert => "$tmp/c.crt",
                      key => "$tmp/c.key",
                      body => "grant_type=client_credentials&client_id=$id");
is($st, 200, 'a token over mutual TLS with its certificate') or diag $body;
my $token = $st == 200 ? json_decode($body)->{access_token} : '';
is(jwt_claims($token)->{cnf}{'x5t#S256'}, $fp, 'bound to the certificate');
($st, $body) = tls(path => '/v1/accounts', cert => "$tmp/c.crt",
                   key => "$tmp/c.key",
                   headers => ["Authorization: Bearer $token"]);
is($st, 200, 'which calls the API over that connection');
is($body, "partner=$id\n", 'as the client');
($st) = tls(path => '/v1/accounts',
            headers => ["Authorization: Bearer $token"]);
is($st, 403, 'but not without the certificate');
($st) = tls(path => '/oauth2/token', cert => "$keys/acme.crt",
            key => "$keys/acme.key",
            body => "grant_type=client_credentials&client_id=$id");
is($st, 401, 'another certificate gets no token for the client');
($st) = tls(path => '/oauth2/token',
            body => "grant_type=client_credentials&client_id=$id");
is($st, 401, 'nor does a connection without one');

# an update without a statement keeps the certificate
($s, $j) = dcr_call('PUT', "/oauth2/register/$id",
                    { client_id => $id, scope => 'accounts payments',
                      token_endpoint_auth_method => 'tls_client_auth' },
                    $rat);
is($s, 200, 'PUT without a statement: 200');
is($j->{scope}, 'accounts payments', 'the new scope');
($st) = tls(path => '/oauth2/token', cert => "$tmp/c.crt",
            key => "$tmp/c.key",
            body => "grant_type=client_credentials&client_id=$id"
                    . "&scope=payments");
is($st, 200, 'the certificate still gets a token, of the new scope');

# one certificate, one client; a static partner's is not to be had
($s, $j) = register({
    software_statement => statement(claims => { cnf => { 'x5t#S256' => $fp } }),
    token_endpoint_auth_method => 'tls_client_auth', scope => 'accounts' });
is($s, 400, 'the same certificate again: 400');
is($j->{error}, 'invalid_client_metadata', 'invalid_client_metadata');
like($j->{error_description}, qr/another client's/, 'saying why');
my $acme = encode_b64u(sha256(cert_thumb('acme')));
($s, $j) = register({
    software_statement => statement(claims => { cnf => { 'x5t#S256' => $acme } }),
    token_endpoint_auth_method => 'tls_client_auth', scope => 'accounts' });
is($s, 400, 'the static partner acme\'s certificate: 400');
like($j->{error_description}, qr/another client's/, 'another client\'s');
($s, $j) = register({
    software_statement => statement(claims => { cnf => { 'x5t#S256' => 'abc' } }),
    token_endpoint_auth_method => 'tls_client_auth', scope => 'accounts' });
is($j->{error}, 'invalid_software_statement', 'a malformed fingerprint: '
   . 'invalid_software_statement');

# tls_client_auth by subject DN (RFC 8705 2.1.2): the certificate's
# subject, RFC 4514, as openssl prints it with -nameopt RFC2253
my ($subject, $e4) = ('', '');
run(['openssl', 'x509', '-in', "$tmp/c.crt", '-noout', '-subject',
     '-nameopt', 'RFC2253'], \undef, \$subject, \$e4) or die $e4;
$subject =~ s/^subject=\s*//;
chomp $subject;
is($subject, 'CN=fintech-dcr', 'the subject, by openssl');
($s, $j) = register({ software_statement => statement(),
                      token_endpoint_auth_method => 'tls_client_auth',
                      tls_client_auth_subject_dn => $subject,
                      scope => 'accounts' });
is($s, 201, 'a client by subject DN: 201') or diag explain $j;
my ($dn_id, $dn_rat) = ($j->{client_id}, $j->{registration_access_token});
is($j->{tls_client_auth_subject_dn}, $subject, 'shown back');
($st, $body) = tls(path => '/oauth2/token', cert => "$tmp/c.crt",
                   key => "$tmp/c.key",
                   body => "grant_type=client_credentials&client_id=$dn_id");
is($st, 200, 'a certificate of that subject gets a token') or diag $body;
($st) = tls(path => '/oauth2/token', cert => "$keys/acme.crt",
            key => "$keys/acme.key",
            body => "grant_type=client_credentials&client_id=$dn_id");
is($st, 401, 'one of another subject does not');
($s, $j) = dcr_call('PUT', "/oauth2/register/$dn_id",
                    { client_id => $dn_id,
                      token_endpoint_auth_method => 'tls_client_auth',
                      tls_client_auth_subject_dn => 'CN=someone-else',
                      scope => 'accounts' }, $dn_rat);
is($s, 200, 'PUT of another subject: 200');
($st) = tls(path => '/oauth2/token', cert => "$tmp/c.crt", key => "$tmp/c.key",
            body => "grant_type=client_credentials&client_id=$dn_id");
is($st, 401, 'then the old subject gets no token');
($as, $aj) = admin('GET', "/admin/partners/$dn_id/credentials");
is(join(',', sort map { "$_->{type}:$_->{hint}" } @{ $aj->{credentials} }),
   'registration:registration,subject_dn:CN=someone-else',
   'the Admin API lists its subject_dn credential');

# deleted: the certificate gets nothing
($s) = dcr_call('DELETE', "/oauth2/register/$id", undef, $rat);
is($s, 204, 'deleted');
($st) = tls(path => '/oauth2/token', cert => "$tmp/c.crt",
            key => "$tmp/c.key",
            body => "grant_type=client_credentials&client_id=$id");
is($st, 401, 'then its certificate gets no token');
($s) = register({
    software_statement => statement(claims => { cnf => { 'x5t#S256' => $fp } }),
    token_endpoint_auth_method => 'tls_client_auth', scope => 'accounts' });
is($s, 201, 'and may be registered again, by a new statement');

stop_nginx();
done_testing();
