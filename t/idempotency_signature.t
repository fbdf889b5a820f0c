# Idempotency keys on signed requests: the answer is
# kept as the bank sent it, and every response, the first and each replay,
# is signed by the gateway for the request it answers (its own nonce and
# target); the replay's body is the first one, byte for byte.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use OpenBank::Signer;
use Test::More;
use File::Temp qw(tempdir);
use JSON::PP;

my $keys = make_keys(tempdir(CLEANUP => 1));
my $creds = OpenBank::Gateway::creds();

my $gw = OpenBank::Gateway->new('idem-signed', settle_delay => 0.2,
    edit => sub {
        my $c = shift;
        $c =~ s/(    openbank_timezone  \+08:00;\n)/$1    openbank_signing_key $keys->{gw}{pem} kid=gw-1;\n/
            or die;
        $c =~ s/openbank_clock_skew\s+\d+s;/openbank_clock_skew 300s;/
            or die 'conf/nginx.conf has no openbank_clock_skew';
        $c =~ s/(        location \/v1\/payments \{\n(?:            .*\n)*?            openbank_signature    )optional;/${1}required;/
            or die;
        return $c;
    });
$gw->start;

my $body = JSON::PP->new->canonical->encode({
    debtor_account => { number => '6222020000000001' },
    creditor_account => { number => '6222020000000201',
                          name => 'Shanghai Supplier Co., Ltd.',
                          bank_code => 'OBKCNSH' },
    amount => { value => '3.00', currency => 'CNY' },
    reference => 'signed-idem',
});
my $authority = '127.0.0.1:' . $gw->port;

sub signed_post {
    my ($path, $key) = @_;
    my %h = map { split /: /, $_, 2 } sign_request(
        method => 'POST', path => $path, authority => $authority,
        body => $body, alg => 'hmac-sha256', key => $creds->{hmac_secret},
        keyid => 'hmac');
    return $gw->post($path, $body, %h, 'Idempotency-Key' => $key);
}

sub verified {
    my ($r, $path) = @_;
    return eval {
        verify_response(status => $r->{status}, headers => $r->{headers},
                        body => $r->{content}, pub => $keys->{gw}{pub},
                        type => 'ed25519',
                        req => { method => 'POST', scheme => 'http',
                                 authority => $authority, path => $path });
    } || diag($@);
}

my $r1 = signed_post('/v1/payments', 'sig-key-1');
is($r1->{status}, 201, 'a signed POST with a key: 201') or diag($r1->{content});
ok(verified($r1, '/v1/payments'), 'the answer is signed by the gateway');

my $r2 = signed_post('/v1/payments', 'sig-key-1');
is($r2->{status}, 201, 'the same request, signed again: 201');
is($r2->{headers}{'idempotent-replayed'}, 'true', 'a replay');
is($r2->{content}, $r1->{content}, 'of the first body');
ok(verified($r2, '/v1/payments'), 'signed for this request');
is($gw->payments_with_reference('signed-idem'), 1, 'one payment');

# after a restart, from the journal: still signed
$gw->stop;
$gw->start;
my $r3 = signed_post('/v1/payments', 'sig-key-1');
is($r3->{headers}{'idempotent-replayed'}, 'true', 'replayed after a restart');
is($r3->{content}, $r1->{content}, 'the first body');
ok(verified($r3, '/v1/payments'), 'signed');

# an unsigned request is refused before its key is looked at
my $r = $gw->post('/v1/payments', $body, 'Idempotency-Key' => 'sig-key-1');
is($r->{status}, 401, 'unsigned: 401');
is($r->{json}{code}, 'signature_missing', 'signature_missing');
ok(!$r->{headers}{'idempotent-replayed'}, 'no replay for it');

$gw->stop;
$gw->check_log;

done_testing();
