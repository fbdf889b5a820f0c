# Mandates and collections (代收, docs/erp.md) through the gateway of
# conf/nginx.conf: a mandate's life and every move its state forbids,
# strict bodies, another partner's mandates, collections settled and
# failed with each reason, Idempotency-Key replays, and the money: the
# payer is debited exactly what the partner is credited, only when a
# collection settles.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use Test::More;
use JSON::PP;
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);

my $gw = OpenBank::Gateway->new('collections', settle_delay => 0.3);
$gw->start;
my $OTHER = 'ob_sandbox_key_other_9d27c4e1a0b6f358';
my $PAYER = '6222020000000201';       # Shanghai Supplier, 80000.00
my $POOR = '6222020000000203';        # Beijing Logistics, 30000.00
my $OWN = '6222020000000001';
my $OWN2 = '6222020000000002';
my $seq = 0;
# a body's bytes are the same each time: a replay is the same request
my $JSON = JSON::PP->new->canonical;

sub key { 'c-' . $$ . '-' . ++$seq }

sub iso_in { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + $_[0])) }

sub mandate {
    my (%o) = @_;
    my %b = (
        payer_account => { number => $o{payer} // $PAYER },
        max_amount => { value => $o{max} // '500.00', currency => 'CNY' },
        expires_at => $o{expires} // iso_in(86400),
        reference => $o{ref} // 'subscription 2026',
    );
    $b{creditor_account} = { number => $o{creditor} } if $o{creditor};
    return $gw->post('/v1/mandates', $JSON->encode(\%b),
                     'Idempotency-Key' => $o{key} // key(),
                     %{ $o{headers} // {} });
}

sub act {
    my ($id, $action, %h) = @_;
    return $gw->request('DELETE', "/v1/mandates/$id", undef, %h)
        if $action eq 'revoke';
    return $gw->post("/v1/mandates/$id/$action", '',
                     'Idempotency-Key' => key(), %h);
}

sub active_mandate {
    my $id = mandate(@_)->{json}{id};
    my $r = act($id, 'authorise');
    is($r->{json}{status}, 'active', "mandate $id authorised")
        or diag($r->{content});
    return $id;
}

sub collect {
    my ($mandate, $value, %o) = @_;
    return $gw->post('/v1/collections', $JSON->encode({
        mandate_id => $mandate,
        amount => { value => $value, currency => $o{currency} // 'CNY' },
        reference => $o{ref} // 'invoice 42',
    }), 'Idempotency-Key' => $o{key} // key(), %{ $o{headers} // {} });
}

sub wait_collection {
    my ($id) = @_;
    my $r;
    for (1 .. 100) {
        $r = $gw->get("/v1/collections/$id");
        return $r if ($r->{json}{status} // '') ne 'pending';
        sleep 0.1;
    }
    return $r;
}

sub balance {
    my ($number) = @_;
    my $r = $gw->ledger("/_test/balance?number=$number");
    chomp $r;
    return $r;
}

# the balance of any account (the payer is not the partner's)
$gw->{edit} = sub {
    my ($conf) = @_;
    $conf =~ s/(location = \/_test\/ledger \{)/location = \/_test\/balance {
            content_by_lua_block {
                local db = require "openbank.db"
                local conn = assert(db.open(ngx.var.openbank_bank_db))
                ngx.say(conn:first("SELECT balance FROM accounts WHERE "
                    .. "number = ?", ngx.var.arg_number).balance)
            }
        }
        $1/ or die;
    return $conf;
};
$gw->stop;
$gw->configure;
$gw->start;

is($gw->ledger->{verify}, 'ok', 'the ledger verifies at start');

# --- a mandate's life
my $r = mandate();
is($r->{status}, 201, 'POST /v1/mandates: 201') or diag($r->{content});
is($r->{json}{status}, 'pending_authorisation', 'pending_authorisation');
like($r->{json}{id}, qr/^mdt_[0-9a-f]{24}$/, 'an id');
is($r->{headers}{location}, "/v1/mandates/$r->{json}{id}", 'Location');
is_deeply($r->{json}{max_amount}, { value => '500.00', currency => 'CNY' },
          'max_amount as sent');
is($r->{json}{payer_account}{number}, $PAYER, 'the payer');
is($r->{json}{creditor_account}{number}, $OWN,
   "the creditor: the partner's first account");
my $m = $r->{json}{id};

$r = $gw->get("/v1/mandates/$m");
is($r->{status}, 200, 'GET /v1/mandates/{id}');
is($r->{json}{status}, 'pending_authorisation', '... still pending');

$r = collect($m, '1.00');
is($r->{status}, 409, 'a collection before authorisation: 409');
is($r->{json}{code}, 'invalid_state', '... invalid_state');

$r = act($m, 'authorise');
is($r->{status}, 200, 'authorise: 200');
is($r->{json}{status}, 'active', '... active');
ok($r->{json}{authorised_at}, '... authorised_at');

$r = act($m, 'authorise');
is($r->{status}, 409, 'authorise twice: 409');
is($r->{json}{code}, 'invalid_state', '... invalid_state');

$r = act($m, 'revoke');
is($r->{status}, 200, 'DELETE: 200');
is($r->{json}{status}, 'revoked', '... revoked');
ok($r->{json}{revoked_at}, '... revoked_at');
for my $action ('revoke', 'authorise') {
    $r = act($m, $action);
    is($r->{status}, 409, "revoked: $action is 409");
    is($r->{json}{code}, 'invalid_state', '... invalid_state');
}
is($gw->get("/v1/mandates/$m")->{json}{status}, 'revoked', 'stays revoked');

# a pending mandate may be revoked too
my $p = mandate()->{json}{id};
is(act($p, 'revoke')->{json}{status}, 'revoked', 'pending -> revoked');

# the creditor account named, one of the partner's
$r = mandate(creditor => $OWN2);
is($r->{status}, 201, 'a mandate into the second account');
is($r->{json}{creditor_account}{number}, $OWN2, '... its creditor');
my $into2 = $r->{json}{id};

# --- expiry
my $soon = mandate(expires => iso_in(2))->{json}{id};
my $soon_active = mandate(expires => iso_in(2))->{json}{id};
act($soon_active, 'authorise');
sleep 2.5;
for my $id ($soon, $soon_active) {
    $r = $gw->get("/v1/mandates/$id");
    is($r->{json}{status}, 'expired', 'past expires_at: expired');
    ok($r->{json}{expired_at}, '... expired_at');
    for my $action ('authorise', 'revoke') {
        $r = act($id, $action);
        is($r->{status}, 409, "expired: $action is 409");
        is($r->{json}{code}, 'invalid_state', '... invalid_state');
    }
}

# --- strict bodies
for my $case (
    [ { payer => '12' }, 'payer_account.number' ],
    [ { payer => '6222020000009999' }, 'payer_account.number' ],
    [ { payer => '6222020000000204' }, 'payer_account.number' ],
    [ { payer => $OWN }, 'payer_account.number' ],
    [ { max => '0.00' }, 'max_amount.value' ],
    [ { max => '1.5' }, 'max_amount.value' ],
    [ { expires => 'tomorrow' }, 'expires_at' ],
    [ { expires => iso_in(-60) }, 'expires_at' ],
    [ { ref => '' }, 'reference' ],
    [ { creditor => '6222020000000101' }, 'creditor_account.number' ],
) {
    $r = mandate(%{ $case->[0] });
    is($r->{status}, 400, "mandate: 400 for $case->[1]");
    is($r->{json}{code}, 'invalid_body', '... invalid_body');
    like($r->{json}{detail} // '', qr/^\Q$case->[1]\E\b/, '... naming it')
        or diag($r->{json}{detail});
}
$r = $gw->post('/v1/mandates', { surprise => 1 }, 'Idempotency-Key' => key());
is($r->{status}, 400, 'an unknown field: 400');
like($r->{json}{detail}, qr/^surprise\b/, '... naming it');

# --- collections: settled, and the money
my $a = active_mandate(max => '500.00');
my ($payer0, $own0) = (balance($PAYER), balance($OWN));
$r = collect($a, '120.50', ref => 'invoice 7');
is($r->{status}, 201, 'POST /v1/collections: 201') or diag($r->{content});
is($r->{json}{status}, 'pending', 'pending');
like($r->{json}{id}, qr/^col_[0-9a-f]{24}$/, 'an id');
is($r->{headers}{location}, "/v1/collections/$r->{json}{id}", 'Location');
is($r->{json}{mandate_id}, $a, 'its mandate');
is(balance($PAYER), $payer0, 'nothing moves while pending');
my $c = $r->{json}{id};
$r = wait_collection($c);
is($r->{json}{status}, 'settled', 'then settled');
ok($r->{json}{settled_at}, '... settled_at');
ok(!defined $r->{json}{reason}, '... no reason');
is(balance($PAYER), $payer0 - 12050, 'the payer paid 120.50');
is(balance($OWN), $own0 + 12050, 'the partner got 120.50');

# exactly max_amount is within the limit; into the named account
my $own2_0 = balance($OWN2);
act($into2, 'authorise');
$r = wait_collection(collect($into2, '500.00')->{json}{id});
is($r->{json}{status}, 'settled', 'exactly max_amount: settled');
is(balance($OWN2), $own2_0 + 50000, 'into the creditor account named');

# --- failures, with reasons; no money moves
my $revoked = active_mandate();
my $pending_then_revoked = collect($revoked, '1.00')->{json}{id};
act($revoked, 'revoke');
my $poor = active_mandate(payer => $POOR, max => '99999.00');
($payer0, $own0) = (balance($PAYER), balance($OWN));
my $poor0 = balance($POOR);
for my $case (
    [ $a, '500.01', 'over_limit' ],
    [ $revoked, '1.00', 'mandate_revoked' ],
    [ $soon_active, '1.00', 'mandate_expired' ],
    [ $poor, '30000.01', 'insufficient_funds' ],
) {
    $r = collect($case->[0], $case->[1], ref => "fail $case->[2]");
    is($r->{status}, 201, "$case->[2]: 201 pending first")
        or diag($r->{content});
    $r = wait_collection($r->{json}{id});
    is($r->{json}{status}, 'failed', '... then failed');
    is($r->{json}{reason}, $case->[2], "... reason $case->[2]");
    ok($r->{json}{failed_at}, '... failed_at');
}
$r = wait_collection($pending_then_revoked);
is($r->{json}{reason}, 'mandate_revoked',
   'revoked while a collection was pending: it fails');
is(balance($PAYER), $payer0, 'failed collections took nothing');
is(balance($POOR), $poor0, '... from either payer');
is(balance($OWN), $own0, '... and paid nothing');

# the whole balance is collectable
$r = wait_collection(collect($poor, '30000.00')->{json}{id});
is($r->{json}{status}, 'settled', 'the whole available balance: settled');
is(balance($POOR), 0, '... the payer is empty');

# --- collection bodies
for my $case (
    [ { mandate_id => $a, amount => { value => '1.00', currency => 'USD' },
        reference => 'x' }, 400, 'amount.currency' ],
    [ { mandate_id => $a, amount => { value => '-1.00', currency => 'CNY' },
        reference => 'x' }, 400, 'amount.value' ],
    [ { mandate_id => $a, amount => { value => '1.00', currency => 'CNY' } },
      400, 'reference' ],
    [ { amount => { value => '1.00', currency => 'CNY' }, reference => 'x' },
      400, 'mandate_id' ],
    [ { mandate_id => $a, amount => { value => '1.00', currency => 'CNY' },
        reference => 'x', extra => 1 }, 400, 'extra' ],
    [ { mandate_id => 'mdt_000000000000000000000000',
        amount => { value => '1.00', currency => 'CNY' }, reference => 'x' },
      404, 'No mandate' ],
) {
    $r = $gw->post('/v1/collections', $case->[0], 'Idempotency-Key' => key());
    is($r->{status}, $case->[1], "collection: $case->[1] for $case->[2]");
    like($r->{json}{detail} // '', qr/^\Q$case->[2]\E\b/, '... naming it')
        or diag($r->{content});
}

# --- another partner's mandates and collections are 404
for my $req (
    [ GET => "/v1/mandates/$a" ],
    [ POST => "/v1/mandates/$p/authorise" ],
    [ DELETE => "/v1/mandates/$a" ],
    [ GET => "/v1/collections/$c" ],
) {
    $r = $gw->request($req->[0], $req->[1], $req->[0] eq 'POST' ? '' : undef,
                      'X-API-Key' => $OTHER, 'Idempotency-Key' => key());
    is($r->{status}, 404, "another partner: $req->[0] $req->[1]: 404");
    is($r->{json}{code}, 'not_found', '... not_found');
}
$r = collect($a, '1.00', headers => { 'X-API-Key' => $OTHER });
is($r->{status}, 404, "a collection on another partner's mandate: 404");
is($r->{json}{code}, 'not_found', '... not_found');
is($gw->get("/v1/mandates/$a")->{json}{status}, 'active',
   "the owner's mandate is untouched");
$r = $gw->get('/v1/mandates/mdt_nope');
is($r->{status}, 404, 'an id of no mandate: 404');

# --- Idempotency-Key: the same POST replays, nothing is made twice
($payer0, $own0) = (balance($PAYER), balance($OWN));
my $k = key();
my $first = collect($a, '3.00', key => $k, ref => 'replayed');
is($first->{status}, 201, 'a keyed collection');
my $again = collect($a, '3.00', key => $k, ref => 'replayed');
is($again->{status}, 201, 'the same key again: 201');
is($again->{json}{id}, $first->{json}{id}, '... the same collection');
is($again->{headers}{'idempotent-replayed'}, 'true', '... replayed');
$r = collect($a, '4.00', key => $k, ref => 'replayed');
is($r->{status}, 422, 'the same key, another body: 422');
is($r->{json}{code}, 'idempotency_key_reused', '... idempotency_key_reused');
wait_collection($first->{json}{id});
is(balance($PAYER), $payer0 - 300, 'collected once');
is(balance($OWN), $own0 + 300, 'credited once');

$k = key();
my $m1 = mandate(key => $k, ref => 'keyed mandate');
my $m2 = mandate(key => $k, ref => 'keyed mandate');
is($m2->{json}{id}, $m1->{json}{id}, 'a mandate replays too');
is($m2->{headers}{'idempotent-replayed'}, 'true', '... replayed');

# the gateway asks for a key on every POST
$r = $gw->post('/v1/collections', { mandate_id => $a });
is($r->{status}, 400, 'a collection without Idempotency-Key: 400');
is($r->{json}{code}, 'idempotency_key_missing', '... idempotency_key_missing');
$r = $gw->post('/v1/mandates', {});
is($r->{json}{code}, 'idempotency_key_missing', 'so is a mandate');

# the bank itself, reached without the gateway, keys and refuses alike
$r = $gw->bank_post('/v1/mandates/mdt_000000000000000000000000/authorise',
                    '', 'X-OpenBank-Partner' => 'demo');
is($r->{status}, 404, 'the bank: an unknown mandate is 404');

# --- the ledger: money neither appeared nor vanished
my $end = $gw->ledger;
is($end->{verify}, 'ok', 'the ledger verifies at the end');
is($end->{sum}, 0, 'all balances still sum to zero');

$gw->check_log;
$gw->stop;
done_testing();
