# RFC 9421 Appendix B as data (t/data/rfc9421/: the test keys of B.1, the
# messages of B.2, each case's Signature-Input, Signature and signature
# base): the module's own code (through objs/sigtool, the module's
# httpsig.c alone) builds every base byte for byte, reproduces the
# deterministic signatures of B.2.5 (HMAC) and B.2.6 (Ed25519) exactly, and
# verifies B.2.1 to B.2.4 (RSA-PSS and ECDSA are randomized).  The openssl
# command checks the data independently.

use strict;
use warnings;
use Test::More;
use File::Temp qw(tempfile);
use MIME::Base64 ();
use Digest::SHA ();

my $root = '.';
my $data = "$root/t/data/rfc9421";
-x "$root/objs/sigtool"
    or BAIL_OUT('objs/sigtool is not built: make objs/sigtool (make test builds it)');
my $tool = "$root/objs/sigtool";

sub run { my $out = `@_`; return ($? >> 8, $out) }
sub q1 { my $s = shift; $s =~ s/'/'\\''/g; return "'$s'" }
sub slurp { local $/; open my $f, '<', $_[0] or die "$_[0]: $!"; <$f> }

open my $cases, '<', "$data/cases.txt" or die $!;
while (my $line = <$cases>) {
    chomp $line;
    my ($id, $msg, $key, $alg, $input, $sig) = split /\|/, $line;
    my $label = "sig-$id";
    my $base = slurp("$data/$id.base");

    my ($rc, $out) = run("$tool base $data/$msg.msg " . q1($input)
                         . " $label");
    is($rc, 0, "B.2.$1: the base builds") if $id =~ /b2(\d)/;
    is($out, $base, "$id: the base is the RFC's, byte for byte");

    my $k = $alg eq 'hmac-sha256' ? "hmac:$data/$key.b64"
                                   : "$data/$key.pub.pem";
    ($rc, $out) = run("$tool verify $data/$msg.msg " . q1($input) . ' '
                      . q1($sig) . " $label $alg $k");
    is($rc, 0, "$id: the RFC's signature verifies ($alg)");

    # one bit off in the signature, one byte off in the message
    (my $bad = $sig) =~ s/=:([A-Za-z])/'=:' . ($1 eq 'A' ? 'B' : 'A')/e;
    ($rc) = run("$tool verify $data/$msg.msg " . q1($input) . ' '
                . q1($bad) . " $label $alg $k 2>/dev/null");
    is($rc, 1, "$id: a changed signature does not verify");

    (my $other = $input) =~ s/created=1618884473/created=1618884474/;
    ($rc) = run("$tool verify $data/$msg.msg " . q1($other) . ' '
                . q1($sig) . " $label $alg $k 2>/dev/null");
    is($rc, 1, "$id: a changed created does not verify");

    my ($b64) = $sig =~ /=:(.*):$/;
    if ($alg eq 'hmac-sha256' || $alg eq 'ed25519') {
        ($rc, $out) = run("$tool sign $data/$msg.msg " . q1($input)
                          . " $label $alg "
                          . ($alg eq 'hmac-sha256' ? $k : "$data/$key.pem"));
        is($out, "$b64\n", "$id: the module's signer reproduces the RFC's "
           . "signature exactly");
    }

    # independently: openssl verifies the RFC's signature over the base
    my ($fh, $bf) = tempfile(UNLINK => 1);
    print $fh $base; close $fh;
    my ($sh, $sf) = tempfile(UNLINK => 1);
    binmode $sh; print $sh MIME::Base64::decode_base64($b64); close $sh;
    my $cmd;
    if ($alg eq 'ed25519') {
        $cmd = "openssl pkeyutl -verify -pubin -inkey $data/$key.pub.pem "
             . "-rawin -in $bf -sigfile $sf";
    } elsif ($alg eq 'rsa-pss-sha512') {
        $cmd = "openssl dgst -sha512 -verify $data/$key.pub.pem "
             . "-sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:64 "
             . "-signature $sf $bf";
    } elsif ($alg eq 'hmac-sha256') {
        my $hex = unpack('H*', MIME::Base64::decode_base64(
                              slurp("$data/$key.b64")));
        my $mac = `openssl dgst -sha256 -mac HMAC -macopt hexkey:$hex -binary $bf`;
        is(MIME::Base64::encode_base64($mac, ''), $b64,
           "$id: openssl's HMAC of the base is the RFC's");
        next;
    } else {
        # ECDSA: raw r||s to DER for openssl
        my $raw = MIME::Base64::decode_base64($b64);
        my $der = der_sig(substr($raw, 0, 32), substr($raw, 32));
        open my $dh, '>', $sf or die; binmode $dh; print $dh $der; close $dh;
        $cmd = "openssl dgst -sha256 -verify $data/$key.pub.pem "
             . "-signature $sf $bf";
    }
    ($rc, $out) = run("$cmd 2>&1");
    is($rc, 0, "$id: openssl verifies the RFC's signature over this base")
        or diag($out);
}

sub der_int {
    my $v = shift;
    $v =~ s/^\x00+//;
    $v = "\x00$v" if !length $v || ord($v) & 0x80;
    return "\x02" . chr(length $v) . $v;
}
sub der_sig {
    my $body = der_int($_[0]) . der_int($_[1]);
    return "\x30" . chr(length $body) . $body;
}

# the RFC 9530 digests of the Appendix B bodies
is('sha-512=:' . MIME::Base64::encode_base64(
       Digest::SHA::sha512(slurp("$data/request.body")), '') . ':',
   (slurp("$data/request.msg") =~ /Content-Digest: (\S+)/)[0],
   'the request body has the published Content-Digest');
is('sha-512=:' . MIME::Base64::encode_base64(
       Digest::SHA::sha512(slurp("$data/response.body")), '') . ':',
   (slurp("$data/response.msg") =~ /Content-Digest: (\S+)/)[0],
   'the response body has the published Content-Digest');

done_testing();
