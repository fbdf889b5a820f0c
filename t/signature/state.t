# Replays and signed responses, end to end: a nonce is accepted once
# across workers, kept across a reload, and a restart refuses what was
# signed before it; a full replay set refuses (503) rather than forgets;
# bodies in temporary files and chunked bodies are digested; responses are
# verified with the test's own verifier for Ed25519, EC P-256 and RSA
# gateway keys.

use lib 't/lib';
use OpenBank::Test;
use OpenBank::Signer;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Digest::SHA qw(sha256_hex);

my $dir = tempdir(CLEANUP => 1);
my $k = make_keys($dir);
my $secret = 'another-shared-secret-longer-than-32-bytes';

sub sections {
    my (%o) = @_;
    my $gw = $o{gw} // 'gw';
    return {
        workers => 2,
        http_config => "openbank_zone openbank " . ($o{zone} // '1m') . ";\n"
            . "openbank_signing_key gw.pem kid=$gw-1;\n"
            . "openbank_plan p { rate 100000r/s; quota payments 1000000/day; }\n"
            . "openbank_partner acme { plan p; scopes payments; api_key sha256:"
            . sha256_hex('key-acme') . "; jwks partners/acme.jwks.json; "
            . "hmac_secret partners/acme.hmac; }\n",
        config => <<'EOT',
client_body_buffer_size 1k;
location /v1/ {
    openbank_auth       api_key;
    openbank_signature  required;
    content_by_lua_block {
        ngx.req.read_body()
        local body = ngx.req.get_body_data()
        local f = ngx.req.get_body_file()
        if not body and not f then
            body = ""
        elseif not body then
            local fh, err = io.open(f, "rb")
            if not fh then ngx.log(ngx.ERR, "body file ", f, ": ", err) end
            body = "file of " .. #fh:read("*a") .. " bytes"
        end
        ngx.say(ngx.var.request_method, " ", body)
    }
}
location /big/ {
    openbank_auth       api_key;
    openbank_signature  required;
    content_by_lua_block { ngx.print(string.rep("x", 2 * 1024 * 1024)) }
}
location /redirect/ {
    openbank_auth       api_key;
    openbank_signature  required;
    content_by_lua_block { ngx.exec("/v1/redirected") }
}
location /nobody/ {
    openbank_auth       api_key;
    openbank_signature  required;
    content_by_lua_block { ngx.exit(204) }
}
location /pieces/ {
    openbank_auth       api_key;
    openbank_signature  required;
    content_by_lua_block {
        ngx.print("one ")
        ngx.flush(true)
        if ngx.var.arg_wait then ngx.sleep(tonumber(ngx.var.arg_wait)) end
        ngx.print(string.rep("two ", 3000))
        ngx.flush(true)
        ngx.say("three")
    }
}
EOT
        user_files => [
            ['conf/gw.pem', slurp($k->{$gw}{pem})],
            ['conf/partners/acme.jwks.json',
             '{"keys": [' . ($o{ed} // $k->{ed}{jwk}) . ','
             . $k->{ec}{jwk} . ']}'],
            ['conf/partners/acme.hmac', $secret],
        ],
    };
}

sub signed_headers {
    my (%a) = @_;
    my @h = sign_request(method => 'POST', path => '/v1/pay',
                         authority => 'localhost', alg => 'ed25519',
                         key => $k->{ed}{pem}, keyid => 'ed-1', %a);
    return ['X-API-Key' => 'key-acme', map { split /: /, $_, 2 } @h];
}

sub send_signed {
    my (%a) = @_;
    my $h = $a{headers} // signed_headers(%a);
    return http_request($a{method} // 'POST', $a{path} // '/v1/pay', $h,
                        $a{body});
}

sub code { my ($res) = @_; return $res->{body} =~ /"code":"([^"]+)"/ ? $1 : '' }

sub check_response {
    my ($res, $what, %o) = @_;
    my %h = map { $_ => join(', ', @{ $res->{headers}{$_} }) }
            keys %{ $res->{headers} };
    my $ok = eval {
        verify_response(status => $res->{status}, headers => \%h,
                        body => $res->{body},
                        req => { method => $o{method} // 'POST',
                                 scheme => 'http', authority => 'localhost',
                                 path => $o{path} // '/v1/pay' },
                        pub => $k->{$o{gw} // 'gw'}{pub},
                        type => $o{type} // 'ed25519');
    };
    ok($ok, "$what: the response's signature verifies") or diag($@);
}

start_nginx(sections());

# --- signed responses, verified here --------------------------------

my $body = '{"amount":{"value":"1.00","currency":"CNY"}}';
my $res = send_signed(body => $body);
is($res->{status}, 200, 'a signed POST is served');
is($res->{body}, "POST $body\n", 'with its body');
check_response($res, 'ed25519 gateway key');
is($res->{headers}{'content-length'}[0], length $res->{body},
   'the signed response has its Content-Length');

$res = send_signed(method => 'GET', body => undef);
is($res->{status}, 200, 'a signed GET');
check_response($res, 'GET', method => 'GET');

$res = send_signed(path => '/nobody/x', body => undef, method => 'GET');
is($res->{status}, 204, 'a 204');
check_response($res, '204 without a body', method => 'GET',
               path => '/nobody/x');

# a refusal after the signature was verified is signed as well
$res = send_signed(path => '/nowhere', body => undef, method => 'GET');
is($res->{status}, 404, 'a 404 outside the signed locations');
ok(!$res->{headers}{signature}, 'is not signed (no signature verified)');

# a response larger than the bound goes out unsigned, whole
my $off = error_log_offset();
$res = send_signed(path => '/big/x', body => undef, method => 'GET');
is($res->{status}, 200, 'a 2 MiB response');
is(length $res->{body}, 2 * 1024 * 1024, 'arrives whole');
ok(!$res->{headers}{signature}, 'unsigned');
like(error_log_since($off), qr/\[warn\].*response larger than 1048576 bytes is not signed/,
     'and the log says so');

# a body that comes in pieces is digested as it comes: whole
my $pieces = "one " . ("two " x 3000) . "three\n";
$res = send_signed(path => '/pieces/x', body => undef, method => 'GET');
is($res->{body}, $pieces, 'a response in pieces arrives whole');
check_response($res, 'a response in pieces', method => 'GET',
               path => '/pieces/x');
is($res->{headers}{'content-length'}[0], length $pieces,
   'with its Content-Length');

# held at the same time, on both workers (six for two workers: one has
# several), each digested on its own
my @held;
for my $i (1 .. 6) {
    my $path = "/pieces/$i?wait=0.5";
    my @h = sign_request(method => 'GET', path => $path,
                         authority => 'localhost', alg => 'ed25519',
                         key => $k->{ed}{pem}, keyid => 'ed-1');
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
                                  PeerPort => server_port()) or die $!;
    print $s "GET $path HTTP/1.1\r\nHost: localhost\r\n"
        . "Connection: close\r\nX-API-Key: key-acme\r\n"
        . join('', map { "$_\r\n" } @h) . "\r\n";
    push @held, [$s, $path];
}
$res = send_signed(path => '/pieces/x', body => undef, method => 'GET');
check_response($res, 'a response in pieces while others are held',
               method => 'GET', path => '/pieces/x');
for my $c (@held) {
    my ($s, $path) = @$c;
    local $/;
    my $r = OpenBank::Test::Client::parse_response(scalar <$s>, 'GET');
    is($r->{body}, $pieces, "held response $path arrives whole");
    check_response($r, "held response $path", method => 'GET',
                   path => $path);
}

# HEAD: the digest of no body
$res = send_signed(path => '/v1/pay', body => undef, method => 'HEAD');
is($res->{status}, 200, 'a signed HEAD');
check_response($res, 'HEAD', method => 'HEAD');

# Signature-Input's created is the second's, in the next second too
sub created { ($_[0]->{headers}{'signature-input'}[0] // '') =~ /;created=(\d+);/
              ? $1 : 0 }
$res = send_signed(method => 'GET', body => undef);
my $first = created($res);
ok(abs($first - int(time)) <= 2, 'created is now');
ok(OpenBank::Test::Nginx::poll_until(3, sub { int(time) > $first }),
   'the next second');
$res = send_signed(method => 'GET', body => undef);
ok(created($res) > $first, 'a response in a later second says so');
check_response($res, 'in a later second', method => 'GET');

# an internal redirect after the check is not a replay of itself
$res = send_signed(path => '/redirect/x', body => $body);
is($res->{status}, 200, 'a signed request redirected internally');
is($res->{body}, "POST $body\n", 'reaches the second location');
check_response($res, 'after the redirect', path => '/redirect/x');

# --- bodies: in a temporary file, chunked ---------------------------

my $large = '{"data":"' . ('a' x 200_000) . '"}';
$res = send_signed(body => $large);
is($res->{status}, 200, 'a 200 kB body (in a temporary file) verifies');
like($res->{body}, qr/^POST file of 200011 bytes/, 'the bank gets it whole');

my $h = signed_headers(body => $large);
$res = http_request('POST', '/v1/pay', $h, 'x' . substr($large, 1));
is(code($res), 'signature_invalid',
   'one byte changed in the temporary file is refused');

$h = signed_headers(body => 'chunked body');
my $raw = "POST /v1/pay HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n"
    . "Transfer-Encoding: chunked\r\n";
for (my $i = 0; $i < @$h; $i += 2) { $raw .= "$h->[$i]: $h->[$i + 1]\r\n" }
$raw .= "\r\n7\r\nchunked\r\n5\r\n body\r\n0\r\n\r\n";
$res = http_raw_request($raw);
is($res->{status}, 200, 'a chunked body verifies');
is($res->{body}, "POST chunked body\n", 'and reaches the bank');

# --- replays --------------------------------------------------------

$h = signed_headers(body => $body);
my %seen;
for (1 .. 10) {
    $res = http_request('POST', '/v1/pay', $h, $body);
    $seen{ $res->{status} . ' ' . code($res) }++;
}
is_deeply(\%seen, { '200 ' => 1, '401 replayed_request' => 9 },
          'ten sends of one request over new connections (2 workers): '
          . 'one is served, nine are replays');

my $n = 'shared-nonce-' . time;
$res = send_signed(body => $body, nonce => $n);
is($res->{status}, 200, 'a nonce');
$res = send_signed(body => $body, nonce => $n, alg => 'hmac-sha256',
                   key => $secret, keyid => 'hmac');
is(code($res), 'replayed_request', 'is not accepted again, even with '
   . 'another key and signature of the same partner');

# a reload keeps the replay set
$h = signed_headers(body => $body);
is(http_request('POST', '/v1/pay', $h, $body)->{status}, 200, 'served');
ok(reload_nginx(sections()), 'reload');
is(code(http_request('POST', '/v1/pay', $h, $body)), 'replayed_request',
   'the same request after a reload is a replay');

# a restart empties the set, and refuses what was signed before it
$h = signed_headers(body => $body);
is(http_request('POST', '/v1/pay', $h, $body)->{status}, 200, 'served');
sleep 1.1;   # the next start is in a later second than "created"
stop_nginx();
start_nginx(sections());
$res = http_request('POST', '/v1/pay', $h, $body);
is($res->{status}, 401, 'the same request after a restart is refused');
like($res->{body}, qr/created before the gateway started/, 'as signed '
     . 'before the start');
is(send_signed(body => $body)->{status}, 200,
   'a request signed after the start is served');

# --- the verification context each worker keeps for an Ed25519 key -

# good, wrong (signed with another key), another algorithm, over and
# over, on both workers: one request's verification never leaks into
# the next
my %got;
for (1 .. 8) {
    $got{good}{ send_signed(body => $body)->{status} }++;
    $got{wrong}{ code(send_signed(body => $body, key => $k->{gw}{pem})) }++;
    $got{ec}{ send_signed(body => $body, alg => 'ecdsa-p256-sha256',
                          key => $k->{ec}{pem}, keyid => 'ec-1')->{status} }++;
}
is_deeply(\%got, { good => { 200 => 8 }, wrong => { signature_invalid => 8 },
                   ec => { 200 => 8 } },
          'ed25519 verified, refused and verified again, between ecdsa ones');

# a reload that gives kid ed-1 another key: no worker verifies with the
# old one
(my $rotated = $k->{gw}{jwk}) =~ s/"gw-1"/"ed-1"/;
ok(reload_nginx(sections(ed => $rotated)), 'reload: kid ed-1 is a new key');
%got = ();
for (1 .. 6) {
    $got{old}{ code(send_signed(body => $body)) }++;
    $got{new}{ send_signed(body => $body, key => $k->{gw}{pem})->{status} }++;
}
is_deeply(\%got, { old => { signature_invalid => 6 }, new => { 200 => 6 } },
          'the old key is refused, the new one verifies');

# --- EC P-256 and RSA gateway keys ----------------------------------

for my $gw (['gwec', 'ec'], ['gwrsa', 'rsa']) {
    stop_nginx();
    start_nginx(sections(gw => $gw->[0]));
    $res = send_signed(body => $body);
    is($res->{status}, 200, "served with gateway key $gw->[0]");
    like($res->{headers}{'signature-input'}[0], qr/keyid="$gw->[0]-1"$/,
         'its kid');
    check_response($res, "$gw->[1] gateway key", gw => $gw->[0],
                   type => $gw->[1]);
}

# --- a full replay set refuses ---------------------------------------

stop_nginx();
start_nginx(sections(zone => '128k'));
$off = error_log_offset();
my ($ok, $full) = (0, undef);
for my $i (1 .. 5000) {
    $res = send_signed(method => 'GET', body => undef, alg => 'hmac-sha256',
                       key => $secret, keyid => 'hmac');
    if ($res->{status} == 200) { $ok++; next }
    $full = $res;
    last;
}
ok($ok > 100, "$ok nonces fit in a 128k zone");
ok($full, 'then the zone is full');
is($full && $full->{status}, 503, 'and the request is refused with 503');
is($full && code($full), 'state_unavailable', 'state_unavailable');
like(error_log_since($off), qr/\[alert\].*zone "openbank" is full: cannot record a signature's nonce/,
     'with an [alert] in the log');
is(send_signed(method => 'GET', body => undef, alg => 'hmac-sha256',
               key => $secret, keyid => 'hmac')->{status}, 503,
   'and again: a full set never accepts');

stop_nginx();
done_testing();
