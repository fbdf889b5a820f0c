package OpenBank::Tokens;

# Helpers of the token tests (t/token-*.t): the configuration they share,
# and the independent side: tokens and client assertions minted with
# Crypt::JWT (CryptX), client certificates and TLS calls with curl.

use strict;
use warnings;

use Exporter 'import';
use Crypt::JWT qw(encode_jwt decode_jwt);
use Crypt::PK::ECC;
use Crypt::PK::RSA;
use Crypt::PK::Ed25519;
use Crypt::Digest::SHA256 qw(sha256);
use Crypt::Misc qw(encode_b64u decode_b64u encode_b64);
use JSON::PP;
use IO::Socket::INET;

our @EXPORT = qw(
    $ISSUER $KEYS mint assertion basic b64u jwt_parts jwt_claims
    form_body json_decode token_config free_port gw_key partner_key
    curl_tls cert_thumb sign_raw public_pem
);

our $ISSUER = 'https://gw.test';
our $KEYS;

BEGIN {
    require Cwd;
    require File::Basename;
    $KEYS = Cwd::abs_path(File::Basename::dirname(__FILE__) . '/../../keys');
}

my %gw = (
    'gw-ps'  => ['gw-ps256.pem', 'Crypt::PK::RSA', 'PS256'],
    'gw-es'  => ['gw-es256.pem', 'Crypt::PK::ECC', 'ES256'],
    'gw-ed'  => ['gw-eddsa.pem', 'Crypt::PK::Ed25519', 'EdDSA'],
    'gw-old' => ['gw-old.pem', 'Crypt::PK::ECC', 'ES256'],
);

my %partner = (
    'acme-ec'  => ['acme-es256.pem', 'Crypt::PK::ECC', 'ES256'],
    'acme-rsa' => ['acme-rsa.pem', 'Crypt::PK::RSA', 'PS256'],
    'acme-ed'  => ['acme-ed25519.pem', 'Crypt::PK::Ed25519', 'EdDSA'],
    'beta-ed'  => ['beta-ed25519.pem', 'Crypt::PK::Ed25519', 'EdDSA'],
);

sub gw_key { my ($kid) = @_; my $k = $gw{$kid} or die "no key $kid";
             return ($k->[1]->new("$KEYS/$k->[0]"), $k->[2]) }

sub partner_key { my ($kid) = @_; my $k = $partner{$kid} or die "no $kid";
                  return ($k->[1]->new("$KEYS/$k->[0]"), $k->[2]) }

sub b64u { encode_b64u($_[0]) }

my $n = 0;

# a token as the gateway would issue it, with changes:
#   kid => 'gw-es' (default 'gw-ps'), alg => ..., key => object,
#   claims => { name => value or undef to remove }, header => {...}
sub mint {
    my (%o) = @_;
    my $kid = $o{kid} // 'gw-ps';
    my ($key, $alg) = gw_key($o{key_of} // $kid);
    my $now = time;
    my %c = (iss => $ISSUER, sub => 'acme-erp', client_id => 'acme-erp',
             aud => $ISSUER, iat => $now, exp => $now + 300,
             jti => 'test-' . $$ . '-' . $n++ . '-' . int(rand(1e9)),
             scope => 'accounts payments');
    for my $k (keys %{ $o{claims} // {} }) {
        if (defined $o{claims}{$k}) { $c{$k} = $o{claims}{$k} }
        else { delete $c{$k} }
    }
    return encode_jwt(payload => \%c, alg => $o{alg} // $alg,
                      key => $o{key} // $key,
                      extra_headers => { kid => $kid, typ => 'at+jwt',
                                         %{ $o{header} // {} } });
}

# a private_key_jwt client assertion (RFC 7523) of acme, with changes
sub assertion {
    my (%o) = @_;
    my $kid = $o{kid} // 'acme-ec';
    my ($key, $alg) = partner_key($o{key_of} // $kid);
    my $id = $o{client_id} // 'acme-erp';
    my $now = time;
    my %c = (iss => $id, sub => $id, aud => "$ISSUER/oauth2/token",
             iat => $now, exp => $now + 120,
             jti => 'a-' . $$ . '-' . $n++ . '-' . int(rand(1e9)));
    for my $k (keys %{ $o{claims} // {} }) {
        if (defined $o{claims}{$k}) { $c{$k} = $o{claims}{$k} }
        else { delete $c{$k} }
    }
    return encode_jwt(payload => \%c, alg => $o{alg} // $alg,
                      key => $o{key} // $key,
                      extra_headers => { kid => $kid,
                                         %{ $o{header} // {} } });
}

# a PS256 JWS over exactly these header and claims texts, with gw-ps
sub sign_raw {
    my ($header, $claims) = @_;
    my ($key) = gw_key('gw-ps');
    my $input = encode_b64u($header) . '.' . encode_b64u($claims);
    return $input . '.'
        . encode_b64u($key->sign_message($input, 'SHA256', 'pss', 32));
}

sub public_pem { my ($k) = gw_key($_[0]); return $k->export_key_pem('public') }

sub basic { my ($id, $secret) = @_; return 'Basic ' . encode_b64("$id:$secret") }

sub jwt_parts { return split /\./, $_[0], -1 }

sub jwt_claims { my @p = jwt_parts($_[0]);
                 return JSON::PP->new->decode(decode_b64u($p[1])) }

sub json_decode { return JSON::PP->new->decode($_[0]) }

sub form_body {
    my (@kv) = @_;
    my @out;
    while (my ($k, $v) = splice @kv, 0, 2) {
        $v =~ s/([^A-Za-z0-9\-._~])/sprintf("%%%02X", ord $1)/ge;
        push @out, "$k=$v";
    }
    return join '&', @out;
}

sub free_port {
    my $s = IO::Socket::INET->new(Listen => 1, LocalAddr => '127.0.0.1',
                                  LocalPort => 0, ReuseAddr => 1)
        or die "no port: $!";
    my $p = $s->sockport;
    close $s;
    return $p;
}

sub cert_thumb {
    my ($name) = @_;
    my $der = `openssl x509 -in $KEYS/$name.crt -outform DER`;
    return $der;
}

# curl over TLS to the test server's TLS port; returns (status, body,
# headers text).  cert => 'acme' | 'beta' | undef
sub curl_tls {
    my (%o) = @_;
    my @cmd = ('curl', '-sk', '--max-time', '10', '-o', '-', '-D', '/dev/stderr',
               '-w', '\n%{http_code}');
    push @cmd, '--cert', "$KEYS/$o{cert}.crt", '--key', "$KEYS/$o{cert}.key"
        if $o{cert};
    push @cmd, '-H', $_ for @{ $o{headers} // [] };
    if (defined $o{body}) {
        push @cmd, '-H', 'Content-Type: application/x-www-form-urlencoded',
                   '--data-binary', $o{body};
    }
    push @cmd, "https://127.0.0.1:$o{port}$o{path}";
    require IPC::Run;
    my ($out, $err) = ('', '');
    IPC::Run::run(\@cmd, \undef, \$out, \$err);
    my ($body, $status) = $out =~ /\A(.*)\n(\d+)\z/s;
    return ($status // 0, $body // '', $err);
}

# the configuration of the token tests: http_config, and server config
sub token_config {
    my (%o) = @_;
    my $keys = $o{signing_keys} // [['gw-ps256.pem', 'gw-ps'],
                                    ['gw-es256.pem', 'gw-es'],
                                    ['gw-eddsa.pem', 'gw-ed']];
    my $http = "openbank_zone openbank 4m;\n"
        . "openbank_state \$TEST_NGINX_SERVROOT/state;\n"
        . "openbank_issuer $ISSUER;\n"
        . join('', map { "openbank_signing_key $KEYS/$_->[0] kid=$_->[1];\n" }
                       @$keys)
        . ($o{extra_http} // '')
        . "openbank_plan p { rate 10000r/s; quota accounts 1000000/day; "
        . "quota payments 1000000/day; }\n"
        . "openbank_partner acme { plan p; scopes accounts payments; "
        . "client_id acme-erp; client_secret sha256:"
        . "a6b27b48133a838998fe621d2d571a1985ccb5a9b116cd80da7f215bb544540a; "
        . "jwks $KEYS/acme.jwks.json; certificate sha256:"
        . "c30c6a28ffecebe58885922e4af68a8af9ffc89df565d3f56d8492f1743fb409; }\n"
        . "openbank_partner beta { plan p; scopes accounts; "
        . "client_id beta-app; client_secret sha256:"
        . "026853c772b43ff6bb63b05fa0025b6f45eae28bd9f84b38a72d495ae71c4d32; "
        . "jwks $KEYS/beta.jwks.json; certificate sha256:"
        . "e59e0814aa2d96c6d2671050d31cfd5cd989dc7af086eacbb1583146b3e2629b; }\n";

    my $locations = <<'EOT';
location = /oauth2/token { openbank_token_endpoint; }
location = /oauth2/introspect { openbank_introspection_endpoint; }
location = /oauth2/revoke { openbank_revocation_endpoint; }
location = /.well-known/jwks.json { openbank_jwks_endpoint; }
location = /.well-known/oauth-authorization-server {
    openbank_metadata_endpoint;
}
location /v1/accounts {
    openbank_auth token;
    openbank_scope accounts;
    content_by_lua_block {
        ngx.say("partner=", ngx.var.openbank_partner)
    }
}
location /v1/payments {
    openbank_auth token;
    openbank_scope payments;
    content_by_lua_block {
        ngx.say("partner=", ngx.var.openbank_partner)
    }
}
location /v1/both {
    openbank_auth token api_key;
    openbank_scope accounts;
    content_by_lua_block {
        ngx.say("partner=", ngx.var.openbank_partner)
    }
}
EOT

    if ($o{tls_port}) {
        $http .= "server {\n"
            . "    listen 127.0.0.1:$o{tls_port} ssl;\n"
            . "    ssl_certificate $KEYS/server.crt;\n"
            . "    ssl_certificate_key $KEYS/server.key;\n"
            . "    ssl_client_certificate $KEYS/ca.crt;\n"
            . "    ssl_verify_client optional;\n"
            . $locations . "}\n";
    }

    return ($http, $locations);
}

1;
