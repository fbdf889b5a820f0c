# The account a payment or an escrow debits must be one of the partner's,
# in the currency of the amount: else 400 invalid_body naming the field,
# the same words for payments (debtor_account) and escrows (payer_account).

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use Test::More;
use POSIX qw(strftime);

my $gw = OpenBank::Gateway->new('ownership');
$gw->start;
my $n = 0;
my $exp = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 86400));

sub payment {
    my ($from, $currency) = @_;
    return $gw->post('/v1/payments', {
        debtor_account => { number => $from },
        creditor_account => { number => '6222020000000201',
                              name => 'Shanghai Supplier Co., Ltd.',
                              bank_code => 'OBKCNSH' },
        amount => { value => '1.00', currency => $currency },
        reference => 'ownership' }, 'Idempotency-Key' => 'own-' . ++$n);
}

sub escrow {
    my ($from, $currency) = @_;
    return $gw->post('/v1/escrows', {
        payer_account => { number => $from },
        payee_account => { number => '6222020000000203' },
        amount => { value => '1.00', currency => $currency },
        expires_at => $exp }, 'Idempotency-Key' => 'own-' . ++$n);
}

for my $case (
    [ 'payment', \&payment, 'debtor' ],
    [ 'escrow', \&escrow, 'payer' ],
) {
    my ($what, $post, $role) = @$case;

    for my $refusal (
        [ 'another partner\'s account', '6222020000000101', 'CNY',
          "${role}_account.number: not an account of yours" ],
        [ 'an account of no partner', '6222020000000201', 'CNY',
          "${role}_account.number: not an account of yours" ],
        [ 'no such account', '6222020000009999', 'CNY',
          "${role}_account.number: not an account of yours" ],
        [ 'another currency', '6222020000000001', 'USD',
          "amount.currency: the $role account holds CNY" ],
    ) {
        my ($name, $from, $currency, $detail) = @$refusal;
        my $r = $post->($from, $currency);
        is($r->{status}, 400, "$what from $name: 400") or diag $r->{content};
        is($r->{json}{code}, 'invalid_body', "$what from $name: invalid_body");
        is($r->{json}{detail}, $detail, "$what from $name: \"$detail\"");
    }

    my $r = $post->('6222020000000002', 'CNY');
    is($r->{status}, 201, "$what from the partner's own account: 201")
        or diag $r->{content};
}

is($gw->ledger->{verify}, 'ok', 'the ledger verifies');
$gw->stop;
$gw->check_log;

done_testing();
