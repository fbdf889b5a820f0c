# Idempotency keys end to end (docs/idempotency.md): conf/nginx.conf, the gateway
# in front of the sandbox bank.  One payment and one replay; 20 concurrent
# identical POSTs and the bank sees one; the same key with another body;
# a key in flight; missing and malformed keys; a restart between the first
# request and its retry; a crash of the whole gateway in flight, and a
# gateway that lost its record while the bank had already paid.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use Test::More;
use Time::HiRes qw(sleep time);
use POSIX qw(_exit);

my $gw = OpenBank::Gateway->new('idempotency', settle_delay => 0.2);
$gw->start;

my $n = 0;
sub payment {
    my ($ref, $value) = @_;
    return {
        debtor_account => { number => '6222020000000001' },
        creditor_account => { number => '6222020000000201',
                              name => 'Shanghai Supplier Co., Ltd.',
                              bank_code => 'OBKCNSH' },
        amount => { value => $value // '12.50', currency => 'CNY' },
        reference => $ref,
    };
}

# --- two identical POSTs: one payment, one replay
my $body = JSON::PP->new->canonical->encode(payment('idem-1'));
my $r1 = $gw->post('/v1/payments', $body, 'Idempotency-Key' => 'key-1');
is($r1->{status}, 201, 'first POST: 201') or diag($r1->{content});
is($r1->{json}{status}, 'pending', 'pending');
ok(!$r1->{headers}{'idempotent-replayed'}, 'first is not a replay');

my $r2 = $gw->post('/v1/payments', $body, 'Idempotency-Key' => 'key-1');
is($r2->{status}, 201, 'retry: 201, the first status');
is($r2->{headers}{'idempotent-replayed'}, 'true', 'Idempotent-Replayed: true');
is($r2->{content}, $r1->{content}, 'the first body, byte for byte');
is($r2->{headers}{location}, $r1->{headers}{location}, 'the first Location');
is($r2->{headers}{'content-type'}, 'application/json', 'its Content-Type');
isnt($r2->{headers}{'x-request-id'}, $r1->{headers}{'x-request-id'},
     'a request id of its own');
is($gw->payments_with_reference('idem-1'), 1, 'the bank made one payment');

# --- same key, another body; another path; the key of another partner
my $r = $gw->post('/v1/payments', payment('idem-1', '12.51'),
                  'Idempotency-Key' => 'key-1');
is($r->{status}, 422, 'same key, another body: 422');
is($r->{json}{code}, 'idempotency_key_reused', 'idempotency_key_reused');
is($r->{headers}{'content-type'}, 'application/problem+json', 'a problem');

$r = $gw->post('/v1/payments?x=1', $body, 'Idempotency-Key' => 'key-1');
is($r->{status}, 422, 'same key and body, another path: 422');

$r = $gw->post('/v1/escrows', $body, 'Idempotency-Key' => 'key-1');
is($r->{status}, 422, 'same key on another endpoint: 422');

# keys are scoped to the partner: "other" may use key-1 for itself
$r = $gw->post('/v1/payments', {
        %{ payment('idem-other') },
        debtor_account => { number => '6222020000000101' } },
    'Idempotency-Key' => 'key-1',
    'X-API-Key' => 'ob_sandbox_key_other_9d27c4e1a0b6f358');
is($r->{status}, 201, "another partner's key-1 is its own") or diag($r->{content});
ok(!$r->{headers}{'idempotent-replayed'}, 'not a replay of demo\'s');

# --- missing and malformed keys
$r = $gw->post('/v1/payments', payment('idem-nokey'));
is($r->{status}, 400, 'no key where required: 400');
is($r->{json}{code}, 'idempotency_key_missing', 'idempotency_key_missing');

for my $bad ('', 'a b', 'x' x 256, "a\tb") {
    $r = $gw->post('/v1/payments', payment('idem-bad'),
                   'Idempotency-Key' => $bad);
    is($r->{status}, 400, 'malformed key (' . length($bad) . ' bytes): 400');
    is($r->{json}{code}, 'invalid_request', '... invalid_request');
}

$r = $gw->post('/v1/payments', payment('idem-twice'),
               'Idempotency-Key' => ['a', 'b']);
is($r->{status}, 400, 'two keys: 400');
is($r->{json}{code}, 'invalid_request', 'invalid_request');

$r = $gw->post('/v1/payments', payment('idem-long'),
               'Idempotency-Key' => 'x' x 255);
is($r->{status}, 201, 'a key of 255 characters is fine');
is($gw->payments_with_reference('idem-bad'), 0, 'no refused one paid');

# optional on verifications: no key is fine, a key is honoured
$r = $gw->post('/v1/account-verifications', { account => {
    number => '6222020000000201', name => 'Shanghai Supplier Co., Ltd.',
    bank_code => 'OBKCNSH' } });
is($r->{status}, 200, 'optional: no key, no problem');

# GETs never need a key
$r = $gw->get('/v1/payments?limit=1');
is($r->{status}, 200, 'GET needs no key');

# a 4xx answer of the bank is an answer: kept and replayed
$r1 = $gw->post('/v1/payments', { reference => 'x' },
                'Idempotency-Key' => 'key-400');
is($r1->{status}, 400, 'the bank refuses a bad body');
is($r1->{json}{code}, 'invalid_body', 'invalid_body');
$r2 = $gw->post('/v1/payments', { reference => 'x' },
                'Idempotency-Key' => 'key-400');
is($r2->{status}, 400, 'replayed');
is($r2->{headers}{'idempotent-replayed'}, 'true', 'as a replay');

# bodies that nginx keeps in a temporary file are fingerprinted from it
my $big = '{"reference":"' . ('b' x 100_000) . '"}';
$r1 = $gw->post('/v1/payments', $big, 'Idempotency-Key' => 'key-big');
is($r1->{status}, 400, 'a 100 kB body (in a temporary file): the bank '
   . 'refuses it');
$r2 = $gw->post('/v1/payments', $big, 'Idempotency-Key' => 'key-big');
is($r2->{headers}{'idempotent-replayed'}, 'true', 'the same: replayed');
(my $big2 = $big) =~ s/b"/c"/;
$r = $gw->post('/v1/payments', $big2, 'Idempotency-Key' => 'key-big');
is($r->{status}, 422, 'one byte changed at its end: 422');

# a body over client_max_body_size: 413 before any record is made
$r = $gw->post('/v1/payments', '{"x":"' . ('z' x 1_100_000) . '"}',
               'Idempotency-Key' => 'key-huge');
is($r->{status}, 413, 'over client_max_body_size: 413');
is($r->{json}{code}, 'payload_too_large', 'payload_too_large');
$r = $gw->post('/v1/payments', payment('idem-huge'),
               'Idempotency-Key' => 'key-huge');
is($r->{status}, 201, 'the key was not taken by the refused request');

$gw->stop;
$gw->check_log(qr/client intended to send too large body/);

# --- in flight, and 20 at once: the bank holds every POST for a while
my $slow = OpenBank::Gateway->new('idempotency-slow', settle_delay => 0.2,
                                  debug_delay => 1.5);
$slow->start;

$body = JSON::PP->new->canonical->encode(payment('idem-flight'));

my @kids;
pipe(my $rd, my $wr) or die;
for my $i (1 .. 20) {
    my $pid = fork // die;
    if ($pid == 0) {
        close $rd;
        my $res = $slow->post('/v1/payments', $body,
                              'Idempotency-Key' => 'key-20');
        my $rep = $res->{headers}{'idempotent-replayed'} ? 'replay' : 'first';
        syswrite $wr, "$res->{status} $rep " . ($res->{json}{id}
                                                 // $res->{json}{code}
                                                 // '') . "\n";
        _exit(0);
    }
    push @kids, $pid;
}
close $wr;
waitpid $_, 0 for @kids;
my @answers = <$rd>;
chomp @answers;

is(scalar @answers, 20, '20 answers');
my @first = grep { /^201 first / } @answers;
my @flight = grep { /^409 first idempotency_in_flight$/ } @answers;
my @replay = grep { /^201 replay / } @answers;
is(scalar @first, 1, 'one reached the bank and paid');
is(@first + @flight + @replay, 20, 'the others: 409 in flight or a replay')
    or diag(join "\n", @answers);
is($slow->payments_with_reference('idem-flight'), 1, 'the bank saw one');

$r = $slow->post('/v1/payments', $body, 'Idempotency-Key' => 'key-20');
is($r->{status}, 201, 'afterwards, a replay');
is($r->{headers}{'idempotent-replayed'}, 'true', 'Idempotent-Replayed');
my ($id) = $first[0] =~ / (pay_\w+)$/;
is($r->{json}{id}, $id, 'of the one payment');

$slow->stop;
$slow->check_log;

# --- restart between the first request and the retry
$gw->start;
$body = JSON::PP->new->canonical->encode(payment('idem-restart'));
$r1 = $gw->post('/v1/payments', $body, 'Idempotency-Key' => 'key-restart');
is($r1->{status}, 201, 'first');
$gw->stop;
$gw->start;
$r2 = $gw->post('/v1/payments', $body, 'Idempotency-Key' => 'key-restart');
is($r2->{status}, 201, 'after a restart: 201');
is($r2->{headers}{'idempotent-replayed'}, 'true', 'replayed by the gateway');
is($r2->{content}, $r1->{content}, 'the same answer');
is($gw->payments_with_reference('idem-restart'), 1, 'one payment');

# and after a crash (kill -9 of master and workers) after the answer
$gw->kill9;
$gw->start;
$r2 = $gw->post('/v1/payments', $body, 'Idempotency-Key' => 'key-restart');
is($r2->{headers}{'idempotent-replayed'}, 'true',
   'after kill -9: still replayed (the journal was written first)');
like($gw->error_log, qr/idempotency records restored/, 'restored at start');

# --- the gateway lost its record but the bank had paid: the bank's own
# key refuses the duplicate (the request reaches the bank as the gateway
# forwards it: partner header and key)
$body = JSON::PP->new->canonical->encode(payment('idem-lost'));
my $b1 = $gw->bank_post('/v1/payments', $body,
                        'X-OpenBank-Partner' => 'demo',
                        'Idempotency-Key' => 'key-lost');
is($b1->{status}, 201, 'the bank paid (the gateway crashed before keeping '
                      . 'the answer)');
$gw->kill9;
$gw->start;
$r = $gw->post('/v1/payments', $body, 'Idempotency-Key' => 'key-lost');
is($r->{status}, 201, 'the retry through the gateway: 201');
is($r->{json}{id}, $b1->{json}{id}, 'the same payment');
is($r->{headers}{'idempotent-replayed'}, 'true', 'replayed by the bank');
is($gw->payments_with_reference('idem-lost'), 1, 'one payment');


$r = $gw->post('/v1/payments', payment('idem-lost', '99.00'),
               'Idempotency-Key' => 'key-lost');
is($r->{status}, 422, 'the bank too refuses the key with another body');
$gw->stop;
$gw->check_log(qr/client intended to send too large body/);

# --- a crash of the whole gateway while the request is at the bank

# the POSTs the bank has held so far (openbank_bank_debug_delay), and a
# wait until it holds one more
sub holds { my $n = () = $_[0]->error_log =~ /bank: holding the POST/g; $n }
sub held {
    my ($gw, $before) = @_;
    for (1 .. 100) {
        return if holds($gw) > $before;
        sleep 0.1;
    }
    fail('the bank holds the POST');
}
my $crash = OpenBank::Gateway->new('idempotency-crash', settle_delay => 0.2,
                                   debug_delay => 3);
$crash->start;
$body = JSON::PP->new->canonical->encode(payment('idem-crash'));
my $holds = holds($crash);
my $pid = fork // die;
if ($pid == 0) {
    $crash->post('/v1/payments', $body, 'Idempotency-Key' => 'key-crash');
    _exit(0);
}
held($crash, $holds);
$crash->kill9;
waitpid $pid, 0;
$crash->{debug_delay} = 0;
$crash->configure;
$crash->start;
$r = $crash->post('/v1/payments', $body, 'Idempotency-Key' => 'key-crash');
is($r->{status}, 201, 'after a crash in flight the key is free again: 201')
    or diag($r->{content});
$r2 = $crash->post('/v1/payments', $body, 'Idempotency-Key' => 'key-crash');
is($r2->{headers}{'idempotent-replayed'}, 'true', 'then replayed');
is($crash->payments_with_reference('idem-crash'), 1,
   'and the bank holds exactly one payment');

# --- a worker (not the whole gateway) dies with the key in flight: the
# zone keeps the in-flight record of a process that is gone, and the next
# request with the key takes it over
$body = JSON::PP->new->canonical->encode(payment('idem-worker'));
$crash->{debug_delay} = 3;
$crash->configure;
$crash->stop;
$crash->start;
$holds = holds($crash);
$pid = fork // die;
if ($pid == 0) {
    $crash->post('/v1/payments', $body, 'Idempotency-Key' => 'key-worker');
    _exit(0);
}
held($crash, $holds);
my (undef, @workers) = $crash->pids;
# stopped first, all of them: a worker killed an instant before the others
# would end the request of its neighbour (502) and free the key
kill 'STOP', @workers;
kill 'KILL', @workers;
waitpid $pid, 0;
for (1 .. 100) {
    my (undef, @w) = $crash->pids;
    last if @w == @workers;
    sleep 0.1;
}
$r = $crash->post('/v1/payments', $body, 'Idempotency-Key' => 'key-worker');
is($r->{status}, 201, 'after a worker died in flight: 201 (taken over)')
    or diag($r->{content});
like($crash->error_log, qr/taking over an abandoned in-flight idempotency key/,
     '... with a [warn]');
$r2 = $crash->post('/v1/payments', $body, 'Idempotency-Key' => 'key-worker');
is($r2->{headers}{'idempotent-replayed'}, 'true', 'then replayed');
is($crash->payments_with_reference('idem-worker'), 1, 'one payment');

$crash->stop;
# the workers also serve the bank: one killed an instant before the other
# may cut the other's connection to the bank
$crash->check_log(qr/exited on signal 9/,
                  qr/upstream prematurely closed connection/);

done_testing();
