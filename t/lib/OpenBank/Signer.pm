package OpenBank::Signer;

# An RFC 9421 signer and verifier for the tests, written apart from the
# module's C code so that the two do not share a mistake: the base is
# built here in Perl, the signatures are made with CryptX and, for SM2,
# with the openssl command.

use strict;
use warnings;

use Exporter 'import';
use MIME::Base64 qw(encode_base64 decode_base64);
use Digest::SHA qw(sha256 sha512);
use Crypt::Mac::HMAC qw(hmac);
use Crypt::PK::Ed25519;
use Crypt::PK::ECC;
use Crypt::PK::RSA;
use File::Temp qw(tempfile);

our @EXPORT = qw(sign_request content_digest signature_base b64
                 verify_response sm2_sign make_keys slurp);

sub b64 { my $s = encode_base64($_[0], ''); return $s }

sub content_digest {
    my ($body, $alg) = @_;
    $alg //= 'sha-256';
    return "$alg=:" . b64($alg eq 'sha-512' ? sha512($body) : sha256($body))
           . ':';
}

# the base of RFC 9421 section 2.5 for a request: %m has method, scheme,
# authority, path, query (undef: none) and headers (lowercase name =>
# value); status and req (the request's %m) for a response
sub signature_base {
    my ($m, $components, $params) = @_;
    my @lines;
    for my $c (@$components) {
        my ($name, $req) = $c =~ /^"([^"]+)"(;req)?$/
            or die "component $c";
        my $src = $req ? $m->{req} : $m;
        my $v;
        if    ($name eq '@method')    { $v = $src->{method} }
        elsif ($name eq '@authority') { $v = lc $src->{authority} }
        elsif ($name eq '@scheme')    { $v = $src->{scheme} }
        elsif ($name eq '@path')      { $v = $src->{path} }
        elsif ($name eq '@query')     { $v = '?' . ($src->{query} // '') }
        elsif ($name eq '@status')    { $v = $src->{status} }
        elsif ($name eq '@request-target') {
            $v = $src->{path}
                 . (defined $src->{query} ? "?$src->{query}" : '');
        }
        elsif ($name eq '@target-uri') {
            $v = "$src->{scheme}://" . lc($src->{authority}) . $src->{path}
                 . (defined $src->{query} ? "?$src->{query}" : '');
        }
        else {
            $v = $src->{headers}{$name};
            die "no header $name" unless defined $v;
        }
        push @lines, "$c: $v";
    }
    push @lines, '"@signature-params": (' . join(' ', @$components) . ')'
                 . $params;
    return join("\n", @lines);
}

sub sm2_sign {
    my ($keyfile, $data) = @_;
    my ($fh, $in) = tempfile(UNLINK => 1);
    binmode $fh; print $fh $data; close $fh;
    my $sig = `openssl dgst -sm3 -sign $keyfile -sigopt distid:1234567812345678 $in`;
    die "openssl sm2 failed" if $? || !length $sig;
    return $sig;
}

sub sign_with {
    my ($alg, $key, $base) = @_;
    if ($alg eq 'hmac-sha256') { return hmac('SHA256', $key, $base) }
    if ($alg eq 'ed25519') {
        return Crypt::PK::Ed25519->new($key)->sign_message($base);
    }
    if ($alg eq 'ecdsa-p256-sha256') {
        return Crypt::PK::ECC->new($key)
                   ->sign_message_rfc7518($base, 'SHA256');
    }
    if ($alg eq 'rsa-pss-sha512') {
        return Crypt::PK::RSA->new($key)
                   ->sign_message($base, 'SHA512', 'pss', 64);
    }
    if ($alg eq 'rsa-v1_5-sha256') {
        return Crypt::PK::RSA->new($key)
                   ->sign_message($base, 'SHA256', 'v1.5');
    }
    if ($alg eq 'sm2-sm3') { return sm2_sign($key, $base) }
    if ($alg eq 'sm2-sm3-raw') { return der_to_raw(sm2_sign($key, $base)) }
    if ($alg eq 'ecdsa-p256-sha256-der') {
        return Crypt::PK::ECC->new($key)->sign_message($base, 'SHA256');
    }
    die "alg $alg";
}

my $nonce_seq = 0;

# sign_request(method => 'POST', path => '/v1/x', query => 'a=1',
#   authority => '127.0.0.1:1984', body => '...', alg => 'ed25519',
#   key => FILE or secret, keyid => 'ed-1', [created, expires, nonce,
#   components => [...], params => ';extra', alg_param => 'ed25519',
#   digest => 'sha-512' or 'none', label => 'sig'])
# returns a list of header lines for more_headers
sub sign_request {
    my %a = @_;
    my $body = $a{body};
    my %h = %{ $a{headers} // {} };
    my @out;
    if (defined $body && ($a{digest} // '') ne 'none') {
        $h{'content-digest'} = content_digest($body, $a{digest});
        push @out, "Content-Digest: $h{'content-digest'}";
    }
    my $m = { method => $a{method} // 'GET', scheme => 'http',
              authority => $a{authority} // 'localhost',
              path => $a{path} // '/', query => $a{query},
              headers => \%h };
    my $components = $a{components} // [
        '"@method"', '"@target-uri"',
        (defined $body ? ('"content-digest"') : ()) ];
    my $created = $a{created} // time;
    my $nonce = $a{nonce} // sprintf('n-%d-%d-%d', $$, time, ++$nonce_seq);
    my $params = ";created=$created;keyid=\"$a{keyid}\"";
    $params .= ";nonce=\"$nonce\"" if length $nonce;
    $params .= ";expires=$a{expires}" if defined $a{expires};
    $params .= ";alg=\"$a{alg_param}\"" if defined $a{alg_param};
    $params .= $a{params} if defined $a{params};
    my $base = signature_base($m, $components, $params);
    my $sig = sign_with($a{alg}, $a{key}, $base);
    my $label = $a{label} // 'sig';
    push @out, "Signature-Input: $label=(" . join(' ', @$components)
               . ")$params";
    push @out, "Signature: $label=:" . b64($sig) . ':';
    return wantarray ? @out : join("\n", @out);
}

# verify_response(status => 200, headers => {lowercase => value}, body,
#   req => {method, scheme, authority, path, query}, pub => PEM file of
#   the gateway's public key, type => ed25519 | ec | rsa): dies with the
#   reason, or returns 1
sub verify_response {
    my %a = @_;
    my $h = $a{headers};
    my $want = content_digest($a{body});
    die "Content-Digest $h->{'content-digest'} is not $want"
        unless ($h->{'content-digest'} // '') eq $want;
    my $in = $h->{'signature-input'} // die 'no Signature-Input';
    $in =~ /^sig=\(("[^)]*)\)(;created=\d+;keyid="[^"]+")$/
        or die "Signature-Input $in";
    my ($list, $params) = ($1, $2);
    die "components $list"
        unless $list eq '"@status" "content-digest" "@method";req '
                        . '"@target-uri";req';
    my $base = signature_base(
        { status => $a{status}, headers => $h, req => $a{req} },
        [split / /, $list], $params);
    ($h->{signature} // '') =~ /^sig=:([A-Za-z0-9+\/=]+):$/
        or die "Signature $h->{signature}";
    my $sig = decode_base64($1);
    my $pem = do { local $/; open my $f, '<', $a{pub} or die $!; <$f> };
    my $type = $a{type} // 'ed25519';
    my $ok;
    if ($type eq 'rsa') {
        $ok = Crypt::PK::RSA->new(\$pem)
                  ->verify_message($sig, $base, 'SHA512', 'pss', 64);
    } elsif ($type eq 'ec') {
        $ok = Crypt::PK::ECC->new(\$pem)
                  ->verify_message_rfc7518($sig, $base, 'SHA256');
    } else {
        $ok = Crypt::PK::Ed25519->new(\$pem)->verify_message($sig, $base);
    }
    die "the response's signature does not verify" unless $ok;
    return 1;
}

# an ECDSA/SM2 DER signature (SEQUENCE of two INTEGERs) as raw r||s
sub der_to_raw {
    my ($der) = @_;
    my ($rl) = unpack('x3 C', $der);
    my $r = substr($der, 4, $rl);
    my ($sl) = unpack('C', substr($der, 5 + $rl, 1));
    my $s = substr($der, 6 + $rl, $sl);
    return join '', map { substr(("\0" x 32) . $_, -32) } $r, $s;
}

sub slurp { local $/; open my $f, '<', $_[0] or die "$_[0]: $!"; <$f> }

sub b64url { my $s = b64($_[0]); $s =~ tr{+/}{-_}; $s =~ s/=+$//; $s }

# keys made with the openssl command in $dir: name => {pem => private key
# file, pub => public key file, jwk => public JWK text with kid}
sub make_keys {
    my ($dir) = @_;
    my %spec = (
        ed      => ['-algorithm ed25519', {}],
        ec      => ['-algorithm EC -pkeyopt ec_paramgen_curve:P-256', {}],
        rsa     => ['-algorithm RSA -pkeyopt rsa_keygen_bits:2048',
                    { alg => 'PS512' }],
        rs256   => ['-algorithm RSA -pkeyopt rsa_keygen_bits:2048',
                    { alg => 'RS256' }],
        rsanone => ['-algorithm RSA -pkeyopt rsa_keygen_bits:2048', {}],
        sm2     => ['-algorithm EC -pkeyopt ec_paramgen_curve:SM2', {}],
        gw      => ['-algorithm ed25519', {}],
        gwec    => ['-algorithm EC -pkeyopt ec_paramgen_curve:P-256', {}],
        gwrsa   => ['-algorithm RSA -pkeyopt rsa_keygen_bits:2048', {}],
    );
    my %k;
    for my $name (sort keys %spec) {
        my ($opts, $extra) = @{ $spec{$name} };
        my $pem = "$dir/$name.pem";
        system("openssl genpkey $opts -out $pem 2>/dev/null") == 0
            or die "openssl genpkey $opts";
        system("openssl pkey -in $pem -pubout -out $dir/$name.pub.pem") == 0
            or die "openssl pkey";
        my $jwk;
        if ($name eq 'sm2') {
            my $der = `openssl pkey -in $pem -pubout -outform DER`;
            my $pt = substr($der, -64);
            $jwk = { kty => 'EC', crv => 'SM2',
                     x => b64url(substr($pt, 0, 32)),
                     y => b64url(substr($pt, 32)) };
        } else {
            my $class = $name =~ /^(ed|gw)$/ ? 'Crypt::PK::Ed25519'
                      : $name =~ /ec$/       ? 'Crypt::PK::ECC'
                      :                        'Crypt::PK::RSA';
            $jwk = $class->new($pem)->export_key_jwk('public', 1);
        }
        $jwk->{kid} = "$name-1";
        $jwk->{$_} = $extra->{$_} for keys %$extra;
        require JSON::PP;
        $k{$name} = { pem => $pem, pub => "$dir/$name.pub.pem",
                      jwk => JSON::PP->new->canonical->encode($jwk),
                      kid => "$name-1" };
    }
    return \%k;
}

1;
