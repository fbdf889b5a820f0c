#!/usr/bin/perl
# bench/lib/tokens.pl KEY.pem KID N OUT: N distinct PS256 access tokens of
# partner "bench", as the gateway would issue them, minted independently
# with Crypt::JWT, one per line in OUT.
use strict;
use warnings;
use Crypt::JWT qw(encode_jwt);
use Crypt::PK::RSA;

my ($pem, $kid, $n, $out) = @ARGV;
my $key = Crypt::PK::RSA->new($pem);
my $now = time;
open my $f, '>', $out or die "$out: $!";
for my $i (1 .. $n) {
    print $f encode_jwt(
        payload => { iss => 'https://bench.test', sub => 'bench-erp',
                     client_id => 'bench-erp', aud => 'https://bench.test',
                     iat => $now, exp => $now + 3600, jti => "bench-$$-$i",
                     scope => 'accounts' },
        alg => 'PS256', key => $key,
        extra_headers => { kid => $kid, typ => 'at+jwt' }), "\n";
}
close $f or die;
