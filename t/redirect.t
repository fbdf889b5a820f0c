# Internal redirects (error_page, try_files, rewrite ... last after one,
# ngx.exec, X-Accel-Redirect): nginx forgets the modules' contexts, yet a
# client request is checked once.  Each costs one rate unit and one quota
# unit (the RateLimit header and openbank_status say so), an idempotent
# POST is answered once and replayed, a signed request is verified once
# and its response signed once.  The checks of the first location stand
# for the whole request, whatever location it ends in.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Signer;
use File::Temp qw(tempdir);
use Digest::SHA qw(sha256_hex);
use JSON::PP;

my $k = make_keys(tempdir(CLEANUP => 1));
my $secret = 'a-shared-secret-of-acme-longer-than-32-bytes';
my $key = sha256_hex('key-acme');

# the locations that answer: each counts what reaches it, like a bank
my $api = <<'EOT';
    openbank_auth         api_key;
    openbank_scope        payments;
    openbank_product      payments;
    openbank_signature    optional;
    openbank_idempotency  optional;
EOT

my $config = <<"EOT";
location = /count {
    content_by_lua_block { ngx.say(ngx.shared.bank:get("calls") or 0) }
}
location = /openbank/status { openbank_status; }

# the positive control: no redirect
location /v1/plain/ {
$api
    content_by_lua_block {
        local n = ngx.shared.bank:incr("calls", 1, 0)
        ngx.say("plain ", ngx.var.request_method, " ", n)
    }
}

location \@fallback {
$api
    content_by_lua_block {
        ngx.req.read_body()
        local n = ngx.shared.bank:incr("calls", 1, 0)
        ngx.say("fallback ", ngx.var.request_method, " ", n, " ",
                ngx.req.get_body_data() or "")
    }
}

location /v1/final/ {
$api
    content_by_lua_block {
        ngx.req.read_body()
        local n = ngx.shared.bank:incr("calls", 1, 0)
        ngx.say("final ", ngx.var.request_method, " ", n, " ",
                ngx.req.get_body_data() or "")
    }
}

# error_page to a named location, after the checks (a static 404)
location /v1/errpage/ {
$api
    root \$TEST_NGINX_HTML_DIR;
    error_page 404 = \@fallback;
    error_page 401 = \@fallback;
}

# try_files falls back to a named location
location /v1/try/ {
$api
    root \$TEST_NGINX_HTML_DIR;
    try_files \$uri \@fallback;
}

# error_page to a location whose rewrite ... last goes on elsewhere
location /v1/rewrite/ {
$api
    root \$TEST_NGINX_HTML_DIR;
    error_page 404 = /moved;
}
location = /moved {
    rewrite ^ /v1/final/moved last;
}

# ngx.exec from the content phase
location /v1/exec/ {
$api
    content_by_lua_block { ngx.exec("/v1/final/exec") }
}

# X-Accel-Redirect from an upstream (this very server)
location /v1/accel/ {
$api
    proxy_pass http://127.0.0.1:\$TEST_NGINX_SERVER_PORT/upstream-accel/;
}
location /upstream-accel/ {
    add_header X-Accel-Redirect /v1/final/accel;
    return 200 "the upstream's own body\\n";
}

# into a location of another product
location /v1/toverif/ {
$api
    try_files \$uri /v1/verif/x;
}
location /v1/verif/ {
    openbank_auth     api_key;
    openbank_scope    verification;
    openbank_product  verification;
    content_by_lua_block { ngx.say("verification") }
}

# into a location without the checks
location /v1/tooff/ {
$api
    try_files \$uri /public/x;
}
location /public/ {
    content_by_lua_block { ngx.say("public") }
}
EOT

start_nginx({
    http_config => <<"EOT",
lua_shared_dict bank 1m;
openbank_zone        openbank 1m;
openbank_state       \$TEST_NGINX_SERVROOT/state;
openbank_signing_key gw.pem kid=gw-1;
openbank_clock_skew  300s;
openbank_plan p {
    rate   1r/m burst=100;
    quota  payments      40/day;
    quota  verification  40/day;
}
openbank_partner acme {
    plan         p;
    scopes       payments verification;
    api_key      sha256:$key;
    hmac_secret  partners/acme.hmac;
}
EOT
    config => $config,
    user_files => [
        ['conf/gw.pem', slurp($k->{gw}{pem})],
        ['conf/partners/acme.hmac', $secret],
    ],
});

sub status {
    my $s = decode_json(http_request('GET', '/openbank/status')->body);
    my ($acme) = grep { $_->{name} eq 'acme' } @{ $s->{partners} };
    my %q = map { $_->{product} => $_->{used} } @{ $acme->{quotas} };
    return { rate => $acme->{rate}{remaining}, %q };
}

sub calls { return http_request('GET', '/count')->body + 0 }

# the RateLimit header's remaining rate and payments quota
sub remaining {
    my ($res) = @_;
    my @v = $res->header('RateLimit');
    my ($rate) = ($v[0] // '') =~ /"rate";r=(\d+)/;
    my ($quota) = ($v[0] // '') =~ /"payments-day";r=(\d+)/;
    return (scalar @v, $rate // -1, $quota // -1);
}

sub get {
    my ($path, %h) = @_;
    return http_request('GET', $path, { 'X-API-Key' => 'key-acme', %h });
}

# --- one rate unit and one quota unit a client request ----------------

my @cases = (
    ['/v1/plain/x',   qr/^plain GET/,    'no redirect (control)'],
    ['/v1/errpage/x', qr/^fallback GET/, 'error_page 404 = @fallback'],
    ['/v1/try/x',     qr/^fallback GET/, 'try_files $uri @fallback'],
    ['/v1/rewrite/x', qr/^final GET/,    'error_page, then rewrite ... last'],
    ['/v1/exec/x',    qr/^final GET/,    'ngx.exec'],
    ['/v1/accel/x',   qr/^final GET/,    'X-Accel-Redirect'],
);

for my $c (@cases) {
    my ($path, $body, $what) = @$c;
    for my $rep (1 .. 2) {
        my $before = status();
        my $calls = calls();
        my $res = get($path);
        is($res->status, 200, "$what ($rep): 200");
        like($res->body, $body, "$what ($rep): the last location answers");
        is(calls(), $calls + 1, "$what ($rep): the bank is reached once");
        my ($n, $rate, $quota) = remaining($res);
        is($n, 1, "$what ($rep): one RateLimit header");
        is($quota, 40 - $before->{payments} - 1,
           "$what ($rep): RateLimit shows one quota unit taken");
        ok($rate == $before->{rate} - 1 || $rate == $before->{rate},
           "$what ($rep): and one rate unit ($before->{rate} -> $rate)")
            or diag(scalar $res->header('RateLimit'));
        my $after = status();
        is($after->{payments}, $before->{payments} + 1,
           "$what ($rep): openbank_status counts one call");
        ok($after->{rate} >= $before->{rate} - 1,
           "$what ($rep): one rate unit in openbank_status "
           . "($before->{rate} -> $after->{rate})");
        like(scalar $res->header('X-Request-ID'), qr/^[0-9a-f-]{36}$/,
             "$what ($rep): one request id");
    }
}

# the request id the client gave goes through the redirect
my $res = get('/v1/try/x', 'X-Request-ID' => 'redirected-request-1');
is(scalar $res->header('X-Request-ID'), 'redirected-request-1',
   'the caller\'s request id, once');

# --- the checks of the first location stand ---------------------------

my $before = status();
$res = get('/v1/toverif/x');
is($res->status, 200, 'into another product\'s location: 200');
is($res->body, "verification\n", 'which answers');
my $after = status();
is($after->{payments}, $before->{payments} + 1,
   'one unit of the first location\'s product');
is($after->{verification}, $before->{verification},
   'none of the second\'s');
like(scalar $res->header('RateLimit-Policy'), qr/"payments-day"/,
     'the RateLimit headers are the first product\'s');

$before = status();
$res = get('/v1/tooff/x');
is($res->status, 200, 'into a location without the checks: 200');
is($res->body, "public\n", 'which answers');
is(status()->{payments}, $before->{payments} + 1, 'one quota unit');
my ($n) = remaining($res);
is($n, 1, 'the API call still gets its RateLimit header');

$before = status();
my $calls = calls();
$res = http_request('GET', '/v1/errpage/x');
is($res->status, 401, 'no credential, error_page 401 = @fallback: '
   . 'still refused');
like($res->body, qr/"code":"invalid_token"/, 'invalid_token');
is(calls(), $calls, 'the bank is not reached');
is(status()->{payments}, $before->{payments}, 'no quota unit');

# --- idempotency: answered once, then replayed --------------------------

for my $path ('/v1/try/pay', '/v1/exec/pay') {
    my $key = "idem-$path";
    my $calls = calls();
    my $q = status()->{payments};
    my $r1 = http_request('POST', $path, { 'X-API-Key' => 'key-acme',
                                           'Idempotency-Key' => $key },
                          '{"amount":"1.00"}');
    is($r1->status, 200, "$path: an idempotent POST redirected: 200, "
       . "not its own 409") or diag($r1->body);
    ok(!$r1->header('Idempotent-Replayed'), "$path: not a replay");
    is(calls(), $calls + 1, "$path: the bank is reached once");
    is(status()->{payments}, $q + 1, "$path: one quota unit");

    my $r2 = http_request('POST', $path, { 'X-API-Key' => 'key-acme',
                                           'Idempotency-Key' => $key },
                          '{"amount":"1.00"}');
    is($r2->status, 200, "$path: its retry: 200");
    is(scalar $r2->header('Idempotent-Replayed'), 'true',
       "$path: a replay");
    is($r2->body, $r1->body, "$path: of the first answer");
    is(calls(), $calls + 1, "$path: without the bank");
    is(status()->{payments}, $q + 1, "$path: nor a quota unit");
}

# --- signatures: verified once, the response signed once ----------------

sub signed {
    my ($path, $body, %o) = @_;
    my %h = map { split /: /, $_, 2 } sign_request(
        method => 'POST', path => $path, authority => 'localhost',
        body => $body, alg => 'hmac-sha256', key => $secret,
        keyid => 'hmac', %o);
    return \%h;
}

sub verifies {
    my ($res, $path) = @_;
    my %h = map { $_ => join(', ', @{ $res->{headers}{$_} }) }
            keys %{ $res->{headers} };
    return eval {
        verify_response(status => $res->{status}, headers => \%h,
                        body => $res->{body}, pub => $k->{gw}{pub},
                        type => 'ed25519',
                        req => { method => 'POST', scheme => 'http',
                                 authority => 'localhost', path => $path });
    } || diag($@);
}

for my $path (qw(/v1/try/sig /v1/errpage/sig /v1/rewrite/sig
                 /v1/exec/sig)) {
    my $body = '{"amount":"2.00"}';
    my $h = signed($path, $body);
    my $q = status()->{payments};
    $res = http_request('POST', $path, { 'X-API-Key' => 'key-acme', %$h },
                        $body);
    is($res->status, 200, "$path: a signed POST redirected: 200")
        or diag($res->body);
    like($res->body, qr/ \Q$body\E$/, "$path: with its body");
    is(scalar(() = $res->header('Signature')), 1,
       "$path: one Signature header");
    is(scalar(() = $res->header('Signature-Input')), 1,
       "$path: one Signature-Input header");
    is(scalar(() = $res->header('Content-Digest')), 1,
       "$path: one Content-Digest");
    ok(verifies($res, $path), "$path: the response's signature verifies");
    is(status()->{payments}, $q + 1, "$path: one quota unit");

    # the same signature again is a replay: its nonce was recorded once
    $res = http_request('POST', $path, { 'X-API-Key' => 'key-acme', %$h },
                        $body);
    is($res->status, 401, "$path: the same signature again: 401");
    like($res->body, qr/"code":"replayed_request"/,
         "$path: replayed_request");
}

my $log = slurp(servroot() . '/logs/error.log');
unlike($log, qr/\[(alert|crit|emerg)\]/, 'no alert in the log');
unlike($log, qr/openbank.*\[error\]|\[error\].*openbank/,
       'no openbank error in the log');

stop_nginx();
done_testing();
