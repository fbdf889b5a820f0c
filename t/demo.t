# What `make run` serves: the real conf/nginx.conf (only its port and
# daemon mode changed) with the sandbox bank behind it answers the demo
# partner of conf/demo/credentials.json with exactly the accounts that file
# promises, and takes every credential the docs teach on every API
# location: an access token or the API key, a request signed with the
# partner's Ed25519 key or HMAC secret or not signed at all, a bad
# signature refused, a signed request answered with a response signed by
# the gateway's key of its JWKS (verified here with CryptX, apart from the
# module's code).

use lib 't/lib';
use OpenBank::Test;
use HTTP::Tiny;
use JSON::PP qw(decode_json);
use POSIX ();
use MIME::Base64 qw(encode_base64);
use Crypt::PK::ECC;
use OpenBank::Demo;
use OpenBank::Signer qw(sign_request verify_response);

my $demo = OpenBank::Demo->new('demo');
my $creds = $demo->creds;
my ($http, $base, $port) = (HTTP::Tiny->new, $demo->base, $demo->port);
my $root = $demo->dir;        # the copy of the project: conf/demo/ is there

ok($demo->listens, 'conf/nginx.conf listens on 127.0.0.1:8080');
ok(eval { $demo->start }, 'nginx starts on conf/nginx.conf')
    or BAIL_OUT("nginx does not answer: $@");

# the demo partner's accounts are those credentials.json lists
my $res = $demo->get('/v1/accounts', 'X-API-Key' => $creds->{api_key});
is($res->{status}, 200, 'GET /v1/accounts with the demo API key')
    or diag($res->{content});
my $accounts = eval { $res->{json}{accounts} } || [];
is_deeply([ map { [ @$_{qw(number name bank_code)}, $_->{balance}{value},
                    $_->{balance}{currency} ] } @$accounts ],
          [ map { [ @$_{qw(number name bank_code)}, $_->{balance}{value},
                    $_->{balance}{currency} ] } @{ $creds->{accounts} } ],
          'the accounts and balances of credentials.json');
like($res->{headers}{'x-request-id'}, qr/^[0-9a-f-]{36}$/, 'a request id');

# the other sandbox partner sees its own account only
$res = $demo->get('/v1/accounts',
                  'X-API-Key' => 'ob_sandbox_key_other_9d27c4e1a0b6f358');
is($res->{status}, 200, 'the other partner');
is_deeply([ map { $_->{number} } @{ $res->{json}{accounts} } ],
          [ '6222020000000101' ], 'sees only its own account');

# no key, and an unknown path
$res = $demo->get('/v1/accounts');
is($res->{status}, 401, 'no API key: 401');
is($res->{json}{code}, 'invalid_token', 'invalid_token');

$res = $demo->get('/nothing/here');
is($res->{status}, 404, 'unknown path: 404');
is($res->{headers}{'content-type'}, 'application/problem+json',
   'as a problem');

# a token (client_secret_basic, docs/tokens.md), then signed requests
# (docs/signing.md) with it and with the API key
$res = $http->request('POST', "$base/oauth2/token", {
    headers => { 'Content-Type' => 'application/x-www-form-urlencoded',
                 Authorization => 'Basic ' . encode_base64(
                     "$creds->{client_id}:$creds->{client_secret}", '') },
    content => 'grant_type=client_credentials' });
is($res->{status}, 200, 'a token for the demo partner') or diag $res->{content};
my $token = eval { decode_json($res->{content})->{access_token} } // '';
my %bearer = (Authorization => "Bearer $token");
my %apikey = ('X-API-Key' => $creds->{api_key});

# the gateway's public keys, as PEM files for the verifier
my $jwks = eval { decode_json($http->get("$base/.well-known/jwks.json")
                              ->{content}) } || { keys => [] };
my %gwkey;
for my $jwk (@{ $jwks->{keys} }) {
    my $pem = "$root/jwks-$jwk->{kid}.pem";
    OpenBank::Demo::spew($pem, Crypt::PK::ECC->new(\JSON::PP->new->encode($jwk))
                   ->export_key_pem('public'));
    $gwkey{ $jwk->{kid} } = $pem;
}
ok(%gwkey, 'the gateway publishes its keys');

my $n = 0;
sub payment_body {
    return JSON::PP->new->canonical->encode({
        debtor_account => { number => '6222020000000001' },
        creditor_account => { number => '6222020000000201',
                              name => 'Shanghai Supplier Co., Ltd.',
                              bank_code => 'OBKCNSH' },
        amount => { value => '1.00', currency => 'CNY' },
        reference => "demo-signed-" . ++$n });
}

# a request signed with the demo partner's Ed25519 key, %sig changing
# sign_request's arguments; unsigned => 1: not signed
sub call {
    my ($method, $path, $cred, $body, %sig) = @_;
    my %h = (%$cred, 'Content-Type' => 'application/json');
    $h{'Idempotency-Key'} = "demo-$$-" . ++$n if $method eq 'POST';
    unless (delete $sig{unsigned}) {
        my ($p, $q) = split /\?/, $path, 2;
        %h = (%h, map { split /: /, $_, 2 } sign_request(
            method => $method, path => $p, query => $q,
            authority => "127.0.0.1:$port", body => $body,
            alg => 'ed25519', key => "$root/$creds->{signing_key}",
            keyid => $creds->{kid}, %sig));
    }
    my $r = $http->request($method, "$base$path",
        { headers => \%h, defined $body ? (content => $body) : () });
    $r->{json} = eval { decode_json($r->{content}) } || {};
    return $r;
}

# the response's signature, verified with the JWKS key its keyid names
sub signed_ok {
    my ($r, $method, $path, $what) = @_;
    my ($kid) = ($r->{headers}{'signature-input'} // '') =~ /keyid="([^"]+)"/;
    my ($p, $q) = split /\?/, $path, 2;
    my $ok = eval {
        verify_response(status => $r->{status}, headers => $r->{headers},
            body => $r->{content}, type => 'ec',
            pub => $gwkey{ $kid // '' } // die("no JWKS key \"$kid\"\n"),
            req => { method => $method, scheme => 'http',
                     authority => "127.0.0.1:$port", path => $p,
                     query => $q });
    };
    ok($ok, "$what: the response is signed by the gateway's JWKS key")
        or diag($@);
}

$res = call('POST', '/v1/payments', \%bearer, payment_body());
is($res->{status}, 201, 'token + Ed25519-signed POST /v1/payments: 201')
    or diag $res->{content};
is($res->{json}{status}, 'pending', 'a pending payment');
signed_ok($res, 'POST', '/v1/payments', 'token + Ed25519');

$res = call('POST', '/v1/payments', \%bearer, payment_body(),
            alg => 'hmac-sha256', key => $creds->{hmac_secret},
            keyid => 'hmac');
is($res->{status}, 201, 'token + HMAC-signed POST /v1/payments: 201')
    or diag $res->{content};
signed_ok($res, 'POST', '/v1/payments', 'token + HMAC');

$res = call('POST', '/v1/payments', \%apikey, payment_body());
is($res->{status}, 201, 'API key + signed POST /v1/payments: 201')
    or diag $res->{content};
signed_ok($res, 'POST', '/v1/payments', 'API key + Ed25519');

$res = call('POST', '/v1/payments', \%bearer, payment_body(), unsigned => 1);
is($res->{status}, 201, 'token, unsigned POST /v1/payments: 201')
    or diag $res->{content};

$res = call('POST', '/v1/payments', \%apikey, payment_body(), unsigned => 1);
is($res->{status}, 201, 'API key, unsigned POST /v1/payments: 201 (optional)')
    or diag $res->{content};
ok(!exists $res->{headers}{signature}, '... and its response is not signed');

# every API location verifies what is sent and signs its answer
my $today = POSIX::strftime('%Y-%m-%d', gmtime(time + 8 * 3600));
for my $c (['GET', '/v1/accounts', undef],
           ['GET', "/v1/statements?date=$today", undef],
           ['POST', '/v1/account-verifications',
            '{"account": {"number": "6222020000000201", "name": '
            . '"Shanghai Supplier Co., Ltd.", "bank_code": "OBKCNSH"}}'],
           ['POST', '/v1/escrows', JSON::PP->new->canonical->encode({
               payer_account => { number => '6222020000000001' },
               payee_account => { number => '6222020000000203' },
               amount => { value => '5.00', currency => 'CNY' },
               expires_at => POSIX::strftime('%Y-%m-%dT%H:%M:%SZ',
                                             gmtime(time + 30 * 86400)) })]) {
    my ($m, $path, $body) = @$c;
    $res = call($m, $path, \%bearer, $body);
    like($res->{status}, qr/^20[01]$/, "token + signed $m $path")
        or diag $res->{content};
    signed_ok($res, $m, $path, "$m $path");
    $res = call($m, $path, \%apikey, $body, alg_param => 'ecdsa-p256-sha256');
    is($res->{status}, 401, "$m $path signed with a wrong alg: 401");
}

# bad signatures are refused, and nothing reaches the bank
$res = call('POST', '/v1/payments', \%apikey, payment_body(),
            alg_param => 'ecdsa-p256-sha256');
is($res->{status}, 401, 'API key + a signature with the wrong alg: 401');
is($res->{json}{code}, 'signature_invalid', 'signature_invalid');
like($res->{json}{detail} // '', qr/alg/, 'the detail names the alg');
ok(!exists $res->{headers}{signature},
   'a refusal of the signature is unsigned');

$res = call('POST', '/v1/payments', \%bearer, payment_body(),
            components => ['"@method"', '"@target-uri"']);
is($res->{status}, 401, 'a signed body without "content-digest" covered: 401');
is($res->{json}{code}, 'signature_invalid', 'signature_invalid');
like($res->{json}{detail} // '', qr/content-digest/, 'the detail says so');

$res = call('POST', '/v1/payments', \%apikey, payment_body(),
            key => $creds->{hmac_secret} . 'x', alg => 'hmac-sha256',
            keyid => 'hmac');
is($res->{status}, 401, 'a wrong HMAC: 401');
is($res->{json}{code}, 'signature_invalid', 'signature_invalid');

my $signed = payment_body();
my %h = (%bearer, 'Content-Type' => 'application/json',
         'Idempotency-Key' => "demo-$$-tampered",
         map { split /: /, $_, 2 } sign_request(method => 'POST',
             path => '/v1/payments', authority => "127.0.0.1:$port",
             body => $signed, alg => 'ed25519',
             key => "$root/$creds->{signing_key}", keyid => $creds->{kid}));
$res = $http->request('POST', "$base/v1/payments",
    { headers => \%h, content => $signed =~ s/1\.00/9.00/r });
is($res->{status}, 401, 'a body that is not the signed one: 401');
$res = $http->request('POST', "$base/v1/payments",
    { headers => \%h, content => $signed });
is($res->{status}, 201, 'the signed one passes') or diag $res->{content};
$res = $http->request('POST', "$base/v1/payments",
    { headers => { %h, 'Idempotency-Key' => "demo-$$-again" },
      content => $signed });
is($res->{status}, 401, 'its nonce again: 401');
like($res->{content}, qr/replayed_request/, 'replayed_request');

# the operators' status
$res = $demo->get('/openbank/status');
is($res->{status}, 200, 'status');
is_deeply([ map { $_->{name} } @{ $res->{json}{partners} } ],
          [ 'demo', 'other' ], 'lists the partners');

# the access log says who called and what came of it
$demo->stop;
my $log = $demo->file('run/access.log');
like($log, qr{"GET /v1/accounts HTTP/1.1" 200 partner=demo product=accounts result=ok},
     'access log: partner, product, result');
like($log, qr{"GET /v1/accounts HTTP/1.1" 401 partner=- product=accounts result=invalid_token},
     'access log of a refusal');

unlike($demo->error_log, qr/\[(alert|emerg|crit)\]|exited on signal/,
       'no alert, crash or emergency in the error log');
my @asan = glob($demo->dir . '/run/asan.*');
ok(!@asan, 'AddressSanitizer is silent')
    or diag(OpenBank::Gateway::slurp($asan[0]));

done_testing();
