# The bank capabilities behind /v1 (docs/integrators.md) through the gateway of
# conf/nginx.conf: payments and their life, strict bodies, another
# partner's ids, paging while payments are created, account verification,
# every escrow move the state machine forbids, statements, and a random
# sequence of a few hundred operations after which no money appeared or
# vanished and every statement reconciles.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use Test::More;
use JSON::PP;
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);

my $gw = OpenBank::Gateway->new('bank', settle_delay => 0.3);
$gw->start;
my $OTHER = 'ob_sandbox_key_other_9d27c4e1a0b6f358';
my $seq = 0;

sub key { 'k-' . $$ . '-' . ++$seq }

sub acct { { number => $_[0], name => $_[1] // 'Shanghai Supplier Co., Ltd.',
             bank_code => 'OBKCNSH' } }

sub pay {
    my (%o) = @_;
    my $body = {
        debtor_account => { number => $o{from} // '6222020000000001' },
        creditor_account => $o{to} // acct('6222020000000201'),
        amount => { value => $o{value} // '10.00', currency => 'CNY' },
        reference => $o{ref} // 'ref',
    };
    return $gw->post('/v1/payments', $body, 'Idempotency-Key' => key(),
                     %{ $o{headers} // {} });
}

sub wait_status {
    my ($id, @want) = @_;
    my $r;
    for (1 .. 100) {
        $r = $gw->get("/v1/payments/$id");
        return $r if grep { $_ eq ($r->{json}{status} // '') } @want;
        sleep 0.1;
    }
    return $r;
}

sub balance {
    my ($number, $key) = @_;
    my $r = $gw->get('/v1/accounts', $key ? ('X-API-Key' => $key) : ());
    my ($a) = grep { $_->{number} eq $number } @{ $r->{json}{accounts} };
    return $a;
}

sub cents { my ($v) = @_; $v =~ s/\.//; return $v + 0 }

my $start = $gw->ledger;
is($start->{verify}, 'ok', 'the ledger verifies at start');
is($start->{sum}, 0, 'all balances sum to zero (equity is the source)');

# --- a payment's life
my $before = cents(balance('6222020000000001')->{balance}{value});
my $r = pay(value => '1250.00', ref => 'life');
is($r->{status}, 201, 'POST /v1/payments: 201');
is($r->{json}{status}, 'pending', 'pending');
like($r->{json}{id}, qr/^pay_[0-9a-f]{24}$/, 'an id');
is($r->{headers}{location}, "/v1/payments/$r->{json}{id}", 'Location');
is_deeply($r->{json}{amount}, { value => '1250.00', currency => 'CNY' },
          'the amount as sent');
my $id = $r->{json}{id};
$r = wait_status($id, 'settled');
is($r->{json}{status}, 'settled', 'then settled');
ok($r->{json}{accepted_at} && $r->{json}{settled_at}, 'accepted_at, settled_at');
is(cents(balance('6222020000000001')->{balance}{value}), $before - 125000,
   'the debtor paid 1250.00');

# the worker's timer settles without anyone reading
$r = pay(value => '1.00', ref => 'by-timer');
sleep 2;
my (undef, $st) = $gw->payments_with_reference('by-timer');
is($st, 'settled', 'settled by the timer, nobody read it meanwhile');

# rejections, with reasons
for my $case (
    [ { value => '9999999.00' }, 'insufficient_funds' ],
    [ { to => acct('6222020000009999') }, 'account_not_found' ],
    [ { to => acct('6222020000000204') }, 'invalid_account' ],
    [ { to => { %{ acct('6222020000000201') }, bank_code => 'OTHRCNSH' } },
      'invalid_account' ],
    [ { to => acct('6222020000000001') }, 'invalid_account' ],
) {
    $r = pay(%{ $case->[0] }, ref => "rej-$case->[1]");
    is($r->{status}, 201, "$case->[1]: 201 pending first");
    $r = wait_status($r->{json}{id}, 'rejected', 'settled');
    is($r->{json}{status}, 'rejected', "then rejected");
    is($r->{json}{reason}, $case->[1], "reason $case->[1]");
}

# --- strict bodies: 400 invalid_body naming the field
my %good = (
    debtor_account => { number => '6222020000000001' },
    creditor_account => acct('6222020000000201'),
    amount => { value => '1.00', currency => 'CNY' },
    reference => 'x',
);
for my $case (
    [ { amount => { value => '1250.0', currency => 'CNY' } }, 'amount.value' ],
    [ { amount => { value => '1250.001', currency => 'CNY' } }, 'amount.value' ],
    [ { amount => { value => '-1.00', currency => 'CNY' } }, 'amount.value' ],
    [ { amount => { value => '0.00', currency => 'CNY' } }, 'amount.value' ],
    [ { amount => { value => '1e3', currency => 'CNY' } }, 'amount.value' ],
    [ { amount => { value => '01.00', currency => 'CNY' } }, 'amount.value' ],
    [ { amount => { value => 12.5, currency => 'CNY' } }, 'amount.value' ],
    [ { amount => { value => '1.00', currency => 'XXX' } }, 'amount.currency' ],
    [ { amount => { value => '1.00', currency => 'USD' } }, 'amount.currency' ],
    [ { amount => { value => '1.00' } }, 'amount.currency' ],
    [ { amount => undef }, 'amount' ],
    [ { reference => '' }, 'reference' ],
    [ { reference => 'x' x 141 }, 'reference' ],
    [ { debtor_account => { number => '12' } }, 'debtor_account.number' ],
    [ { debtor_account => { number => '6222020000000101' } },
      'debtor_account.number' ],
    [ { creditor_account => { number => '6222020000000201' } },
      'creditor_account.name' ],
    [ { creditor_account => 'x' }, 'creditor_account' ],
    [ { surprise => 1 }, 'surprise' ],
) {
    my %b = (%good, %{ $case->[0] });
    delete $b{$_} for grep { !defined $b{$_} } keys %b;
    $r = $gw->post('/v1/payments', \%b, 'Idempotency-Key' => key());
    is($r->{status}, 400, "400 for $case->[1]");
    is($r->{json}{code}, 'invalid_body', '... invalid_body');
    like($r->{json}{detail} // '', qr/^\Q$case->[1]\E\b/, '... naming it')
        or diag($r->{json}{detail});
}
for my $raw ('', 'not json', '[1,2]', '{"a":', '"string"') {
    $r = $gw->post('/v1/payments', $raw, 'Idempotency-Key' => key());
    is($r->{status}, 400, "body '$raw': 400");
    is($r->{json}{code}, 'invalid_body', '... invalid_body');
}

# --- another partner's ids are 404
$r = $gw->get("/v1/payments/$id", 'X-API-Key' => $OTHER);
is($r->{status}, 404, "another partner's payment: 404");
is($r->{json}{code}, 'not_found', 'not_found');
$r = $gw->get('/v1/payments/pay_000000000000000000000000');
is($r->{status}, 404, 'an unknown payment: 404');

# --- paging without gaps or repeats while payments are being created
my %created;
for my $i (1 .. 25) {
    $r = pay(ref => "page-$i", value => '0.01');
    $created{ $r->{json}{id} } = 1;
}
my (@seen, $cursor, $pages);
do {
    my $q = '/v1/payments?limit=7' . ($cursor ? "&cursor=$cursor" : '');
    $r = $gw->get($q);
    is($r->{status}, 200, "page " . ++$pages) or last;
    push @seen, map { $_->{id} } @{ $r->{json}{payments} };
    $cursor = $r->{json}{next_cursor};
    # new payments arrive between pages: they are newer, not in later pages
    pay(ref => 'page-new', value => '0.01') for 1 .. 2;
} while ($cursor && $pages < 100);
my %count;
$count{$_}++ for @seen;
is(scalar(grep { $count{$_} > 1 } keys %count), 0, 'no payment twice');
is(scalar(grep { !$count{$_} } keys %created), 0,
   'every payment made before paging is on some page');
my $tot = $gw->ledger->{payments};
is(scalar @seen + 2 * $pages, $tot, 'nothing more, nothing less');

$r = $gw->get('/v1/payments?status=settled&limit=100');
ok(!grep({ $_->{status} ne 'settled' } @{ $r->{json}{payments} }),
   'status filter');
$r = $gw->get('/v1/payments?from=2000-01-01&to=2000-01-02');
is(scalar @{ $r->{json}{payments} }, 0, 'from/to filter');
for my $q ('limit=0', 'limit=101', 'limit=x', 'status=paid', 'cursor=zzz',
           'from=yesterday', 'to=2026-13-01') {
    $r = $gw->get("/v1/payments?$q");
    is($r->{status}, 400, "$q: 400");
    is($r->{json}{code}, 'invalid_request', '... invalid_request');
}

# --- account verification
sub verify {
    my ($number, $name, %h) = @_;
    return $gw->post('/v1/account-verifications',
                     { account => acct($number, $name) }, %h);
}
for my $case (
    [ '6222020000000201', 'Shanghai Supplier Co., Ltd.', 'match' ],
    [ '6222020000000201', 'SHANGHAI SUPPLIER CO LTD', 'match' ],
    [ '6222020000000201', "\x{ff33}hanghai \x{ff33}upplier", 'match' ],
    [ '6222020000000201', 'Shanghai Suppler', 'close_match' ],
    [ '6222020000000201', 'Beijing Logistics', 'no_match' ],
    [ '6222020000000202', "\x{4e0a}\x{6d77}\x{4f9b}\x{5e94}\x{5546}", 'match' ],
    [ '6222020000000202',
      "\x{4e0a}\x{6d77}\x{4f9b}\x{5e94}\x{5546}\x{80a1}\x{4efd}\x{6709}\x{9650}"
      . "\x{516c}\x{53f8}", 'match' ],
    [ '6222020000000203', 'Beijing Logistic Ltd', 'close_match' ],
    [ '6222020000009999', 'Nobody', 'account_not_found' ],
    [ '6222020000000204', 'Hangzhou Dormant Trading', 'account_not_found' ],
) {
    my $name = $case->[1];
    utf8::encode($name);
    $r = $gw->post('/v1/account-verifications',
                   '{"account":{"number":"' . $case->[0] . '","name":"'
                   . $name . '","bank_code":"OBKCNSH"}}');
    is($r->{status}, 200, "verify $case->[0]: 200");
    is($r->{json}{result}, $case->[2], "... $case->[2]");
    if ($case->[2] eq 'close_match') {
        ok($r->{json}{matched_name}, '... with the name on the account');
    } else {
        ok(!exists $r->{json}{matched_name}, '... without a name');
    }
}
# attempt limits: 5 failed attempts per account and day, then 429
my @st;
for (1 .. 6) {
    $r = verify('6222020000000203', 'Guess Name', 'X-API-Key' => $OTHER);
    push @st, $r->{status};
}
is("@st", '200 200 200 200 200 429', 'the sixth failed guess: 429');
is($r->{json}{code}, 'rate_limited', 'rate_limited');
ok($r->{headers}{'retry-after'} > 0, 'with Retry-After');
$r = verify('6222020000000203', 'Beijing Logistics Ltd.');
is($r->{json}{result}, 'match', 'per partner: demo is not limited');
$r = verify('6222020000000203', undef);
$r = $gw->post('/v1/account-verifications', { account => {
    number => '6222020000000203', bank_code => 'OBKCNSH' } });
is($r->{status}, 400, 'no name: 400');
like($r->{json}{detail}, qr/^account\.name/, '... naming account.name');

# --- escrows: every move the state machine forbids is 409
my $exp_far = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 30 * 86400));
sub escrow {
    my (%o) = @_;
    return $gw->post('/v1/escrows', {
        payer_account => { number => '6222020000000001' },
        payee_account => { number => '6222020000000203' },
        amount => { value => '100.00', currency => 'CNY' },
        expires_at => $o{expires} // $exp_far,
        $o{milestones} ? (milestones => $o{milestones}) : (),
    }, 'Idempotency-Key' => key());
}
sub act {
    my ($id, $action, $body) = @_;
    return $gw->post("/v1/escrows/$id/$action", $body,
                     'Idempotency-Key' => key());
}

my %path = (
    awaiting_funding => [],
    funded => ['fund'],
    partially_released => ['fund', [ 'release', { amount =>
                            { value => '30.00', currency => 'CNY' } } ]],
    released => ['fund', 'release'],
    refunded => ['fund', 'refund'],
    cancelled => ['cancel'],
    disputed => ['fund', 'dispute'],
);
my %allowed = (
    fund => [ 'awaiting_funding' ],
    cancel => [ 'awaiting_funding' ],
    release => [ qw(funded partially_released disputed) ],
    refund => [ qw(funded partially_released disputed) ],
    dispute => [ qw(funded partially_released) ],
);

# expired ones first, they need a little time
my $soon = strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 2));
my %expired;
for my $action (sort keys %allowed) {
    $expired{$action} = escrow(expires => $soon)->{json}{id};
}
my $exp_funded = escrow(expires => $soon)->{json}{id};
is(act($exp_funded, 'fund')->{status}, 200, 'funded, to expire');

for my $state (sort keys %path) {
    for my $action (sort keys %allowed) {
        my $e = escrow()->{json}{id};
        for my $step (@{ $path{$state} }) {
            my ($a, $b) = ref $step ? @$step : ($step);
            my $s = act($e, $a, $b);
            is($s->{status}, 200, "$state: $a") or diag($s->{content});
        }
        is($gw->get("/v1/escrows/$e")->{json}{status}, $state,
           "in state $state");
        my $res = act($e, $action);
        if (grep { $_ eq $state } @{ $allowed{$action} }) {
            is($res->{status}, 200, "$state: $action is allowed")
                or diag($res->{content});
        } else {
            is($res->{status}, 409, "$state: $action is forbidden: 409");
            is($res->{json}{code}, 'invalid_state', '... invalid_state');
        }
    }
}

sleep 3;
is($gw->get("/v1/escrows/$exp_funded")->{json}{status}, 'expired',
   'a funded escrow expires');
is($gw->get("/v1/escrows/$exp_funded")->{json}{refunded}{value}, '100.00',
   '... and its money went back to the payer');
for my $action (sort keys %allowed) {
    my $res = act($expired{$action}, $action);
    is($res->{status}, 409, "expired: $action is forbidden: 409");
    is($res->{json}{code}, 'invalid_state', '... invalid_state');
}

# milestones and partial releases
$r = escrow(milestones => [
    { name => 'design', amount => { value => '40.00', currency => 'CNY' } },
    { name => 'build', amount => { value => '60.00', currency => 'CNY' } } ]);
is($r->{status}, 201, 'an escrow with milestones');
my $m = $r->{json}{id};
act($m, 'fund');
$r = act($m, 'release', { milestone => 'design' });
is($r->{json}{status}, 'partially_released', 'one milestone released');
is($r->{json}{held}{value}, '60.00', '60.00 still held');
$r = act($m, 'release', { milestone => 'design' });
is($r->{status}, 409, 'a milestone twice: 409');
$r = act($m, 'release', { amount => { value => '60.01', currency => 'CNY' } });
is($r->{status}, 400, 'more than is held: 400');
like($r->{json}{detail}, qr/^amount/, '... naming amount');
$r = act($m, 'release', { milestone => 'build' });
is($r->{json}{status}, 'released', 'the last milestone: released');
is(scalar @{ $r->{json}{history} }, 4, 'the history: create, fund, 2 releases');

$r = escrow(milestones => [
    { name => 'a', amount => { value => '40.00', currency => 'CNY' } } ]);
is($r->{status}, 400, 'milestones that do not add up: 400');
like($r->{json}{detail}, qr/^milestones/, '... naming milestones');
$r = $gw->get("/v1/escrows/$m", 'X-API-Key' => $OTHER);
is($r->{status}, 404, "another partner's escrow: 404");

# --- a random sequence of operations: money is conserved
srand(6);
my @ids;
my @escrows;
for my $i (1 .. 300) {
    my $op = int rand 10;
    if ($op < 5) {
        my @to = ('6222020000000201', '6222020000000202', '6222020000000203',
                  '6222020000000002', '6222020000009999');
        my $to = $to[int rand @to];
        my $v = sprintf '%d.%02d', int(rand(5000)), int(rand(100));
        $v = '0.01' if $v eq '0.00';
        $v = '400000.00' if rand() < 0.05;
        my $from = rand() < 0.8 ? '6222020000000001' : '6222020000000002';
        pay(from => $from, to => acct($to, 'Any Name'), value => $v,
            ref => "rand-$i");
    } elsif ($op < 7 || !@escrows) {
        my $v = sprintf '%d.%02d', 1 + int(rand(900)), int(rand(100));
        my $e = $gw->post('/v1/escrows', {
            payer_account => { number => '6222020000000002' },
            payee_account => { number => '6222020000000201' },
            amount => { value => $v, currency => 'CNY' },
            expires_at => rand() < 0.1 ? $soon : $exp_far,
        }, 'Idempotency-Key' => key());
        push @escrows, $e->{json}{id} if $e->{status} == 201;
    } else {
        my $e = $escrows[int rand @escrows];
        my @a = qw(fund fund release release refund dispute cancel);
        my $a = $a[int rand @a];
        my $body = $a eq 'release' && rand() < 0.5
            ? { amount => { value => sprintf('%d.00', 1 + int rand 50),
                            currency => 'CNY' } } : undef;
        my $res = act($e, $a, $body);
        ok($res->{status} =~ /^(200|409|400)$/, "random $a: $res->{status}")
            or diag($res->{content});
    }
}
sleep 1;
$gw->get('/v1/payments?limit=1');    # the bank advances before reads

my $end = $gw->ledger;
is($end->{verify}, 'ok', 'the ledger verifies: every transaction balances, '
   . 'every balance is the sum of its entries');
is($end->{sum}, $start->{sum}, 'the sum of all balances is unchanged');
is($end->{escrow_holding}, $end->{escrow_owed},
   'the escrow holding account holds exactly what funded escrows hold');
is($end->{held}, $end->{accepted}, 'holds are exactly the accepted payments');

# every statement reconciles
my $today = strftime('%Y-%m-%d', gmtime(time + 8 * 3600));
for my $key (undef, $OTHER) {
    $r = $gw->get("/v1/statements?date=$today",
                  $key ? ('X-API-Key' => $key) : ());
    is($r->{status}, 200, 'GET /v1/statements');
    is($r->{json}{timezone}, '+08:00', 'in the bank\'s timezone');
    for my $a (@{ $r->{json}{accounts} }) {
        my $bal = cents($a->{opening_balance}{value});
        my $ok = 1;
        for my $e (@{ $a->{entries} }) {
            $bal += cents($e->{amount}{value});
            $ok = 0 if $bal != cents($e->{balance_after}{value});
        }
        ok($ok, "$a->{number}: each balance_after follows");
        is($bal, cents($a->{closing_balance}{value}),
           "$a->{number}: opening + entries = closing");
        is(cents($a->{closing_balance}{value})
           - cents($a->{opening_balance}{value}),
           cents($a->{total_credits}{value}) - cents($a->{total_debits}{value}),
           "$a->{number}: closing - opening = credits - debits");
        is($a->{closing_balance}{value},
           balance($a->{number}, $key)->{balance}{value},
           "$a->{number}: closing = the balance now");
    }
}
$r = $gw->get('/v1/statements?date=2000-01-01');
is($r->{json}{accounts}[0]{opening_balance}{value}, '0.00',
   'a day before anything: zero');
is(scalar @{ $r->{json}{accounts}[0]{entries} }, 0, '... no entries');
for my $q ('', 'date=2026-02-30', 'date=today', 'date=2026-11-23&account=1') {
    $r = $gw->get("/v1/statements?$q");
    ok($r->{status} == 400 || $r->{status} == 404, "statements?$q: refused");
}

$gw->stop;
$gw->check_log;

done_testing();
