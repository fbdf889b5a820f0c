# The demo of `make run`: the real conf/nginx.conf with the PKI that
# `make run` makes (the Makefile's own rule), and the demo partner of
# conf/demo/credentials.json getting tokens the three ways the integrator
# guide (docs/tokens.md) shows: client_secret_basic, private_key_jwt with
# its Ed25519 key (PyJWT, and authlib), tls_client_auth with its
# certificate over TLS (curl checks the server certificate against the
# demo CA).

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Demo;
use OpenBank::Tokens qw(form_body jwt_claims json_decode);
use JSON::PP qw(decode_json);
use Crypt::JWT qw(encode_jwt decode_jwt);
use Crypt::PK::Ed25519;
use IPC::Run ();
use MIME::Base64 ();

my $root = project_root();
my $demo = OpenBank::Demo->new('token-demo', log_level => 'info', tls => 1,
                               chown => ['run']);
my $dir = $demo->dir;
my $port = $demo->port;
my $tls = $demo->tls_port;
my $creds = $demo->creds;

ok($demo->listens, 'conf/nginx.conf listens on 127.0.0.1:8080');
is(system("make -s -C $dir -f $root/Makefile run/pki/mtls.conf >/dev/null"),
   0, 'the Makefile makes the demo PKI');
ok(-s "$dir/run/pki/server.crt" && -s "$dir/run/pki/ca.crt",
   'a CA and a server certificate');

ok(eval { $demo->start }, 'nginx starts with the mTLS server')
    or BAIL_OUT("nginx does not answer: $@");

my $base = $demo->base;
my $issuer = "http://127.0.0.1:$port";
my $meta = $demo->get('/.well-known/oauth-authorization-server')->{json};
is($meta->{token_endpoint}, "$issuer/oauth2/token", 'the metadata');

# client_secret_basic
my $res = $demo->post('/oauth2/token', 'grant_type=client_credentials',
    'Content-Type' => 'application/x-www-form-urlencoded',
    Authorization => 'Basic ' . MIME::Base64::encode_base64(
        "$creds->{client_id}:$creds->{client_secret}", ''));
is($res->{status}, 200, 'client_secret_basic with credentials.json');
my $token = decode_json($res->{content})->{access_token};
my $jwks = $demo->get('/.well-known/jwks.json')->{content};
my $claims = eval { decode_jwt(token => $token, kid_keys => $jwks) };
is($claims && $claims->{sub}, 'demo-erp', 'the token verifies (Crypt::JWT)');

# private_key_jwt with the demo partner's Ed25519 key
my $assertion = encode_jwt(
    payload => { iss => $creds->{client_id}, sub => $creds->{client_id},
                 aud => "$issuer/oauth2/token", jti => "demo-$$-" . time,
                 iat => time, exp => time + 60 },
    alg => 'EdDSA', key => Crypt::PK::Ed25519->new("$root/$creds->{signing_key}"),
    extra_headers => { kid => $creds->{kid} });
$res = $demo->post('/oauth2/token',
    form_body(grant_type => 'client_credentials',
        client_assertion_type =>
            'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
        client_assertion => $assertion),
    'Content-Type' => 'application/x-www-form-urlencoded');
is($res->{status}, 200, 'private_key_jwt with the demo Ed25519 key')
    or diag $res->{content};

# tls_client_auth over TLS, the server checked against the demo CA
my @curl = ('curl', '-s', '--max-time', '10',
            '--cacert', "$dir/run/pki/ca.crt",
            '--cert', "$root/$creds->{client_certificate}",
            '--key', "$root/$creds->{client_key}");
my ($out, $err) = ('', '');
IPC::Run::run([@curl, '-d', 'grant_type=client_credentials',
               '-d', "client_id=$creds->{client_id}",
               "https://127.0.0.1:$tls/oauth2/token"], \undef, \$out, \$err);
my $bound = eval { decode_json($out)->{access_token} };
ok($bound, 'tls_client_auth with the demo certificate') or diag "$out $err";
ok($bound && jwt_claims($bound)->{cnf}{'x5t#S256'}, 'a bound token');

$res = $demo->get('/v1/accounts', Authorization => "Bearer $bound");
is($res->{status}, 403, 'the bound token without its certificate: 403');
like($res->{content}, qr/certificate_mismatch/, 'certificate_mismatch');

($out, $err) = ('', '');
IPC::Run::run([@curl, '-o', '/dev/null', '-w', '%{http_code}',
               '-H', "Authorization: Bearer $bound",
               "https://127.0.0.1:$tls/v1/accounts"], \undef, \$out, \$err);
isnt($out, '403', 'with its certificate it passes the gateway');

# the examples of docs/tokens.md, run as they are written (from the project
# root, with the test's ports)
my $doc = OpenBank::Gateway::slurp("$root/docs/tokens.md");
my @py = $doc =~ /```python\n(.*?)```/sg;
my @sh = $doc =~ /```sh\n(.*?)```/sg;
is(scalar @py, 5, 'docs/tokens.md has five Python examples');

local $ENV{OB_BASE_URL} = $base;
local $ENV{OB_TLS_URL} = "https://127.0.0.1:$tls";
local $ENV{OB_CA} = "$dir/run/pki/ca.crt";
chdir $root or die;

for my $n (0 .. 3) {
    my $code = $py[$n] . ($n == 0 ? $py[4] : '');
    ($out, $err) = ('', '');
    my $ok = IPC::Run::run(['/usr/bin/python3', '-c', $code], \undef, \$out,
                           \$err);
    ok($ok, "Python example " . ($n + 1) . " runs") or diag "$out$err";
    unlike($out, qr/^403/m, 'and is not refused');
    # authlib's private_key_jwt with the guide's exp, under the default bound
    like($out, qr/^200$/m, 'authlib: its token reads GET /v1/accounts')
        if $py[$n] =~ /authlib/;
}

# authlib's own PrivateKeyJWT (exp an hour ahead) gets the refusal the
# guide quotes
my ($refusal) = $doc =~ /default bound refuses \(`invalid_client`: "(.*?)"\)/s;
$refusal =~ s/\s+/ /g if $refusal;
my ($authlib) = grep { /authlib/ } @py;
(my $plain = $authlib // '') =~ s/PrivateKeyJWT60\(token_url/PrivateKeyJWT(token_url/
    or fail('the authlib example registers PrivateKeyJWT60');
($out, $err) = ('', '');
IPC::Run::run(['/usr/bin/python3', '-c', $plain], \undef, \$out, \$err);
like($err, qr/invalid_client: \Q$refusal\E$/m,
     "authlib's default assertion: \"$refusal\"") if $refusal;
ok($refusal, 'the guide quotes the refusal of a too distant exp');

for my $cmd (@sh[0, 2]) {
    my $c = $cmd =~ s/\\\n\s*/ /gr;
    $c =~ s/127\.0\.0\.1:8080/127.0.0.1:$port/g;
    $c =~ s/127\.0\.0\.1:8443/127.0.0.1:$tls/g;
    $c =~ s{run/pki/ca\.crt}{$dir/run/pki/ca.crt}g;
    my $answer = `$c`;
    like($answer, qr/"access_token":"eyJ/, "curl example: $c")
        or diag $answer;
}

# "Calling the API": a token on GET /v1/accounts and POST /v1/payments,
# then introspected with the page's command
my ($calling) = grep { /^TOKEN=\$\(curl/ } @sh;
my ($introspect) = grep { /oauth2\/introspect/ } @sh;
ok($calling && $introspect, 'docs/tokens.md shows how to call the API');
{
    my $c = "$calling\n$introspect";
    $c =~ s/127\.0\.0\.1:8080/127.0.0.1:$port/g;
    OpenBank::Demo::spew("$dir/calling.sh", $c);
    my $answer = `bash $dir/calling.sh 2>&1`;
    # the three bodies, one after the other (curl adds no newline)
    my @json = eval { JSON::PP->new->incr_parse($answer) };
    is(scalar @json, 3, 'three answers') or diag $answer;
    is(scalar @{ $json[0]{accounts} // [] }, 2,
       'GET /v1/accounts with the token');
    is($json[1]{status}, 'pending', 'POST /v1/payments with the token')
        or diag $answer;
    is($json[2]{active}, JSON::PP::true, 'the token is active');
}

# the server on 8443 has the API's endpoints: a bound token of scope
# payments pays there, with its certificate, and still needs an
# Idempotency-Key
my $pay = '{"debtor_account": {"number": "6222020000000001"}, '
    . '"creditor_account": {"number": "6222020000000201", "name": '
    . '"Shanghai Supplier Co., Ltd.", "bank_code": "OBKCNSH"}, "amount": '
    . '{"value": "1.00", "currency": "CNY"}, "reference": "tls"}';
($out, $err) = ('', '');
IPC::Run::run([@curl, '-d', 'grant_type=client_credentials',
               '-d', "client_id=$creds->{client_id}", '-d', 'scope=payments',
               "https://127.0.0.1:$tls/oauth2/token"], \undef, \$out, \$err);
my $paytoken = eval { decode_json($out)->{access_token} } // '';
for my $case (['with an Idempotency-Key', 201,
               ['-H', "Idempotency-Key: tls-$$-" . time]],
              ['without an Idempotency-Key', 400, []]) {
    my ($what, $want, $extra) = @$case;
    ($out, $err) = ('', '');
    IPC::Run::run([@curl, '-w', ' %{http_code}',
                   '-H', "Authorization: Bearer $paytoken",
                   '-H', 'Content-Type: application/json', @$extra,
                   '--data-binary', $pay,
                   "https://127.0.0.1:$tls/v1/payments"], \undef, \$out, \$err);
    like($out, qr/ $want$/, "over TLS, a bound payments token $what: $want")
        or diag "$out $err";
}

my ($fp) = `$sh[3]` =~ /^([0-9a-f]{64})/;
like(OpenBank::Gateway::slurp("$root/conf/nginx.conf"),
     qr/certificate\s+sha256:$fp;/,
     'the documented fingerprint command gives the configured one');

done_testing();

