#!/usr/bin/perl
# bench/lib/tokens.pl KEY.pem KID N OUT: N distinct access tokens of
# partner "bench", as the gateway would issue them (PS256 with an RSA key,
# ES256 with an EC P-256 one), minted independently with Crypt::JWT, one
# per line in OUT.
use strict;
use warnings;
use Crypt::JWT qw(encode_jwt);
use Crypt::PK::RSA;
use Crypt::PK::ECC;

my ($pem, $kid, $n, $out) = @ARGV;
my $ec = do { local (@ARGV, $/) = $pem; <> } =~ /EC PRIVATE|BEGIN PRIVATE KEY/
         && !eval { Crypt::PK::RSA->new($pem) };
my $key = $ec ? Crypt::PK::ECC->new($pem) : Crypt::PK::RSA->new($pem);
my $now = time;
open my $f, '>', $out or die "$out: $!";
for my $i (1 .. $n) {
    print $f encode_jwt(
        payload => { iss => 'https://bench.test', sub => 'bench-erp',
                     client_id => 'bench-erp', aud => 'https://bench.test',
                     iat => $now, exp => $now + 3600, jti => "bench-$$-$i",
                     scope => 'accounts' },
        alg => $ec ? 'ES256' : 'PS256', key => $key,
        extra_headers => { kid => $kid, typ => 'at+jwt' }), "\n";
}
close $f or die;
