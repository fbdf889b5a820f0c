# Payment batches (docs/erp.md): JSON and ISO 20022 pain.001.001.09 in,
# one payment per item, counts and totals by status, a pain.002.001.10
# status report (read here with Python's xml.etree, not the bank's Lua);
# hostile and malformed XML refused with a 4xx, every bad item of a batch
# reported at once and nothing booked; MsgId unique per partner;
# Idempotency-Key replay and reuse; money conserved over a random mix of
# settled and rejected items.  The bank is reached directly, as the
# gateway reaches it.

use lib 't/lib';
use OpenBank::Test;
use JSON::PP qw(decode_json);

my $JSON = JSON::PP->new->canonical;
sub encode_json { $JSON->encode($_[0]) }
use IPC::Open2 qw(open2);
use Time::HiRes qw(sleep);

my $config = <<'EOT';
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
set $openbank_bank_settle_delay 0.2;
client_max_body_size 8m;
client_body_buffer_size 8m;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
# every account's balance, the ledger's check and the number of payments
location = /_test/state {
    content_by_lua_block {
        local db = require "openbank.db"
        local ledger = require "openbank.ledger"
        local json = require "openbank.json"
        local conn = assert(db.open(ngx.var.openbank_bank_db,
                                    require("openbank.schema").migrate))
        local b = {}
        for _, r in ipairs(conn:query("SELECT number, balance, held "
                                      .. "FROM accounts")) do
            b[r.number] = r.balance
        end
        local n = conn:first("SELECT COUNT(*) AS n FROM payments").n
        local k = {}
        for _, r in ipairs(conn:query("SELECT key, request "
                                      .. "FROM idempotency_keys")) do
            k[r.key] = r.request
        end
        ngx.say(require("cjson").encode({ balances = b, payments = n,
                                          keys = k,
                              verify = ledger.verify(conn) and true
                                       or false }))
    }
}
# a key's record as the bank kept it before it kept digests: the request
# itself (the body POSTed here, for the batch endpoint)
location = /_test/legacy {
    content_by_lua_block {
        local db = require "openbank.db"
        local conn = assert(db.open(ngx.var.openbank_bank_db))
        ngx.req.read_body()
        assert(conn:run("UPDATE idempotency_keys SET request = ? "
                        .. "WHERE key = ?", "POST /v1/payment-batches\n"
                        .. ngx.req.get_body_data(), ngx.var.arg_key))
    }
}
EOT

start_nginx({ config => $config });

my $NS = 'urn:iso:std:iso:20022:tech:xsd:pain.001.001.09';
my $DEMO1 = '6222020000000001';
my $DEMO2 = '6222020000000002';
my %NAME = ('6222020000000201' => 'Shanghai Supplier Co., Ltd.',
            '6222020000000202' => 'Shanghai Supplier 2',
            '6222020000000203' => 'Beijing Logistics Ltd.',
            '6222020000000204' => 'Hangzhou Dormant Trading Co., Ltd.',
            '6222020000000299' => 'Nobody Ltd.',
            $DEMO1 => 'Demo Trading Co., Ltd.');

sub cents { my ($c) = @_; sprintf '%d.%02d', int($c / 100), $c % 100 }

# a pain.001.001.09: items [e2e, amount, account, name, reference, ccy]
sub pain001 {
    my (%o) = @_;
    my @items = @{ $o{items} };
    my $sum = 0;
    $sum += int($_->[1] * 100 + 0.5) for @items;
    my $tx = join '', map {
        my ($e2e, $amt, $acct, $name, $ref, $ccy) = @$_;
        "<CdtTrfTxInf><PmtId><EndToEndId>$e2e</EndToEndId></PmtId>"
        . '<Amt><InstdAmt Ccy="' . ($ccy // 'CNY') . "\">$amt</InstdAmt>"
        . '</Amt><Cdtr><Nm>' . ($name // $NAME{$acct} // 'X') . '</Nm></Cdtr>'
        . "<CdtrAcct><Id><Othr><Id>$acct</Id></Othr></Id></CdtrAcct>"
        . (defined $ref ? "<RmtInf><Ustrd>$ref</Ustrd></RmtInf>" : '')
        . "</CdtTrfTxInf>\n"
    } @items;
    my $nb = $o{nb} // scalar @items;
    my $ctrl = $o{ctrl} // cents($sum);
    my $debtor = $o{debtor} // $DEMO1;
    my $ns = $o{ns} // $NS;
    return qq{<?xml version="1.0" encoding="UTF-8"?>\n}
        . ($o{prolog} // '')
        . qq{<Document xmlns="$ns"><CstmrCdtTrfInitn><GrpHdr>}
        . "<MsgId>$o{msg}</MsgId><CreDtTm>2026-12-03T09:00:00+08:00</CreDtTm>"
        . "<NbOfTxs>$nb</NbOfTxs><CtrlSum>$ctrl</CtrlSum>"
        . '<InitgPty><Nm>Demo</Nm></InitgPty></GrpHdr>'
        . "<PmtInf><PmtInfId>$o{msg}-P</PmtInfId><PmtMtd>TRF</PmtMtd>"
        . '<ReqdExctnDt><Dt>2026-12-03</Dt></ReqdExctnDt>'
        . '<Dbtr><Nm>Demo</Nm></Dbtr>'
        . "<DbtrAcct><Id><Othr><Id>$debtor</Id></Othr></Id></DbtrAcct>"
        . '<DbtrAgt><FinInstnId><BICFI>OBKCNSH</BICFI></FinInstnId></DbtrAgt>'
        . "\n$tx</PmtInf></CstmrCdtTrfInitn></Document>\n";
}

sub post {
    my ($body, %h) = @_;
    my $type = $h{type} // ($body =~ /^\s*</ ? 'application/xml'
                                               : 'application/json');
    my $res = http_request(POST => '/v1/payment-batches',
                           ['X-OpenBank-Partner' => $h{partner} // 'demo',
                            'Content-Type' => $type,
                            $h{key} ? ('Idempotency-Key' => $h{key}) : ()],
                           $body);
    return ($res, eval { decode_json($res->body) } // {});
}

sub get {
    my ($path) = @_;
    my $res = http_request(GET => $path, ['X-OpenBank-Partner' => 'demo']);
    return ($res, eval { decode_json($res->body) } // {});
}

sub bank_state {
    my $res = http_request(GET => '/_test/state');
    return decode_json($res->body);
}

# the batch once none of its items is pending or accepted
sub final {
    my ($id) = @_;
    my ($r, $j);
    for (1 .. 200) {
        ($r, $j) = get("/v1/payment-batches/$id");
        last if $j->{status} && $j->{status} ne 'accepted';
        sleep 0.1;
    }
    return $j;
}

# the status report, read by Python's xml.etree
sub report {
    my ($id) = @_;
    my $res = http_request(GET => "/v1/payment-batches/$id/status-report",
                           ['X-OpenBank-Partner' => 'demo']);
    is $res->status, 200, 'the status report: 200';
    like scalar $res->header('Content-Type'), qr{^application/xml},
        'as application/xml';
    my $pid = open2(my $out, my $in, '/usr/bin/python3',
                    project_root() . '/t/tools/pain002.py');
    binmode $in;
    print $in $res->body;
    close $in;
    local $/;
    my $json = <$out>;
    waitpid $pid, 0;
    is $?, 0, 'xml.etree reads it';
    return eval { decode_json($json) } // {};
}

sub codes { [ map { [ $_->{index}, $_->{end_to_end_id}, $_->{code} ] }
              @{ $_[0]{errors} || [] } ] }


# --- a JSON batch: 202, each item a payment, settled
my $before = bank_state();
my $json1 = encode_json({
    debtor_account => { number => $DEMO1 },
    message_id => 'JSON-1',
    items => [ map { {
        creditor_account => { number => "622202000000020$_",
                              name => 'Payee', bank_code => 'OBKCNSH' },
        amount => { value => "$_.25", currency => 'CNY' },
        reference => "invoice $_",
        end_to_end_id => "J1-$_",
    } } 1 .. 3 ],
});
my ($r, $j) = post($json1, key => 'json-1');
is $r->status, 202, 'a JSON batch: 202' or diag $r->body;
is $j->{status}, 'accepted', 'accepted';
is $j->{count}, 3, 'count 3';
is_deeply $j->{total}, { value => '6.75', currency => 'CNY' }, 'its total';
like $j->{id}, qr/^pbt_[0-9a-f]{24}$/, 'a batch id';
is scalar $r->header('Location'), "/v1/payment-batches/$j->{id}",
    'its Location';
my $jid = $j->{id};

$j = final($jid);
is $j->{status}, 'completed', 'every item settled: completed';
is_deeply $j->{counts}, { pending => 0, accepted => 0, settled => 3,
                          rejected => 0 }, 'counts by status';
is $j->{totals}{settled}{value}, '6.75', 'totals by status';
is $j->{message_id}, 'JSON-1', 'its message_id';
is scalar @{ $j->{items} }, 3, 'three items';
my ($pr, $pj) = get("/v1/payments/$j->{items}[1]{payment_id}");
is $pr->status, 200, 'an item is a payment';
is $pj->{status}, 'settled', 'settled';
is $pj->{end_to_end_id}, 'J1-2', 'with its end_to_end_id';
is $pj->{batch_id}, $jid, 'and its batch';
is $pj->{amount}{value}, '2.25', 'and its amount';
my $after = bank_state();
is $after->{balances}{$DEMO1}, $before->{balances}{$DEMO1} - 675,
   'the debtor is debited the total';

# replay and reuse of its Idempotency-Key
($r, $j) = post(encode_json({
    debtor_account => { number => $DEMO1 },
    message_id => 'JSON-1',
    items => [ map { {
        creditor_account => { number => "622202000000020$_",
                              name => 'Payee', bank_code => 'OBKCNSH' },
        amount => { value => "$_.25", currency => 'CNY' },
        reference => "invoice $_",
        end_to_end_id => "J1-$_",
    } } 1 .. 3 ],
}), key => 'json-1');
is $r->status, 202, 'the same request and key: 202 again';
is $j->{id}, $jid, 'the same batch';
is scalar $r->header('Idempotent-Replayed'), 'true', 'replayed';
($r, $j) = post(encode_json({ debtor_account => { number => $DEMO1 },
                              items => [] }), key => 'json-1');
is $r->status, 422, 'the key with another body: 422';
is $j->{code}, 'idempotency_key_reused', 'idempotency_key_reused';
is bank_state()->{payments}, $after->{payments}, 'no payment more';
like bank_state()->{keys}{'json-1'}, qr/^sha256:[0-9a-f]{64}$/,
     'the bank keeps the SHA-256 of the request, not the request';
http_request(POST => '/_test/legacy?key=json-1', [], $json1);
($r, $j) = post($json1, key => 'json-1');
is $r->status, 202, 'a record holding the request itself still replays';
is $j->{id}, $jid, 'the same batch';

# the same message_id without the key: 409
($r, $j) = post(encode_json({
    debtor_account => { number => $DEMO1 }, message_id => 'JSON-1',
    items => [ { creditor_account => { number => '6222020000000201',
                                       name => 'P', bank_code => 'OBKCNSH' },
                 amount => { value => '1.00', currency => 'CNY' },
                 reference => 'r', end_to_end_id => 'x' } ] }));
is $r->status, 409, 'a message_id used before: 409';
is $j->{code}, 'duplicate_message', 'duplicate_message';


# --- a pain.001: settled, AC04 (closed), AC01 (unknown), AM04 (funds)
$before = bank_state();
($r, $j) = post(pain001(msg => 'XML-1', debtor => $DEMO2, items => [
    [ 'X1-A', '100.50', '6222020000000201', undef, 'inv A' ],
    [ 'X1-B', '10', '6222020000000204', undef, 'inv B' ],
    [ 'X1-C', '7.5', '6222020000000299', undef, 'inv C' ],
    [ 'X1-D', '249999.00', '6222020000000203', undef, undef ],
    [ 'X1-E', '0.01', '6222020000000202', '上海供应商有限公司',
      'inv E' ],
]));
is $r->status, 202, 'a pain.001: 202' or diag $r->body;
is $j->{count}, 5, 'count 5';
is $j->{total}{value}, '250117.01', 'the control sum';
my $xid = $j->{id};
$j = final($xid);
is $j->{status}, 'partially_settled', 'some settled, some rejected';
is_deeply [ map { [ $_->{end_to_end_id}, $_->{status}, $_->{reason_code} ] }
            @{ $j->{items} } ],
          [ [ 'X1-A', 'settled', undef ], [ 'X1-B', 'rejected', 'AC04' ],
            [ 'X1-C', 'rejected', 'AC01' ], [ 'X1-D', 'rejected', 'AM04' ],
            [ 'X1-E', 'settled', undef ] ],
          'each item with its status and ISO reason';
is_deeply $j->{counts}, { pending => 0, accepted => 0, settled => 2,
                          rejected => 3 }, 'counts';
is $j->{totals}{settled}{value}, '100.51', 'settled total';
is $j->{totals}{rejected}{value}, '250016.50', 'rejected total';

my $rep = report($xid);
is $rep->{orgnl_msg_id}, 'XML-1', 'pain.002: the original MsgId';
is $rep->{orgnl_msg_nm_id}, 'pain.001.001.09', 'and message name';
is $rep->{orgnl_nb}, '5', 'OrgnlNbOfTxs';
is $rep->{orgnl_ctrl_sum}, '250117.01', 'OrgnlCtrlSum';
is $rep->{grp_sts}, 'PART', 'GrpSts PART';
is_deeply $rep->{per_sts}, { ACSC => [ 2, '100.51' ],
                             RJCT => [ 3, '250016.50' ] },
          'NbOfTxsPerSts';
is_deeply [ map { [ @$_[0 .. 2] ] } @{ $rep->{txs} } ],
          [ [ 'X1-A', 'ACSC', undef ], [ 'X1-B', 'RJCT', 'AC04' ],
            [ 'X1-C', 'RJCT', 'AC01' ], [ 'X1-D', 'RJCT', 'AM04' ],
            [ 'X1-E', 'ACSC', undef ] ], 'TxInfAndSts of each item';
is_deeply [ map { $_->[3] } @{ $rep->{txs} } ],
          [ map { $_->{payment_id} } @{ $j->{items} } ],
          'AcctSvcrRef: the payment ids';
($pr, $pj) = get("/v1/payments/$j->{items}[3]{payment_id}");
is $pj->{reference}, 'X1-D', 'no Ustrd: the EndToEndId is the reference';
$after = bank_state();
is $after->{balances}{$DEMO2}, $before->{balances}{$DEMO2} - 10051,
   'the debtor pays only the settled items';
is $after->{balances}{'6222020000000202'},
   $before->{balances}{'6222020000000202'} + 1, 'a creditor is credited';

($r, $j) = post(pain001(msg => 'XML-1', items => [
    [ 'X2-A', '1.00', '6222020000000201', undef, 'again' ] ]),
    type => 'text/xml; charset=utf-8');
is $r->status, 409, 'the same MsgId again: 409';
is $j->{code}, 'duplicate_message', 'duplicate_message';
like $j->{detail}, qr/\Q$xid\E/, 'naming the first batch';

($r, $j) = post(pain001(msg => 'XML-1', items => [
    [ 'X2-A', '1.00', '6222020000000101', undef, 'other' ] ],
    debtor => '6222020000000101'), partner => 'other');
is $r->status, 202, 'another partner may use the same MsgId';


# --- hostile and malformed documents: 400 invalid_body, nothing booked
$before = bank_state();
my $ok_tx = [ [ 'H-1', '1.00', '6222020000000201', undef, 'h' ] ];
my $lol = '<!DOCTYPE lolz [<!ENTITY lol "lol">'
    . join('', map { my $p = $_ - 1;
                     "<!ENTITY lol$_ \"" . ("&lol$p;" x 10) . '">' } 1 .. 9)
    . ']>';
$lol =~ s/&lol0;/&lol;/g;
my $bomb = pain001(msg => 'H-BOMB', items => $ok_tx, prolog => $lol);
$bomb =~ s/<Ustrd>h</<Ustrd>&lol9;</;
my @hostile = (
    [ 'a billion laughs', $bomb, qr/DOCTYPE/ ],
    [ 'an external entity',
      pain001(msg => 'H-XXE', items => [
          [ 'H-1', '1.00', '6222020000000201', undef, '&xxe;' ] ],
          prolog => '<!DOCTYPE d [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'),
      qr/DOCTYPE/ ],
    [ 'an external DTD',
      pain001(msg => 'H-DTD', items => $ok_tx,
              prolog => '<!DOCTYPE Document SYSTEM "file:///etc/passwd">'),
      qr/DOCTYPE/ ],
    [ 'an undeclared entity',
      pain001(msg => 'H-ENT', items => [
          [ 'H-1', '1.00', '6222020000000201', undef, '&xxe;' ] ]),
      qr/undefined entity/ ],
    [ 'deep nesting',
      pain001(msg => 'H-DEEP', items => [
          [ 'H-1', '1.00', '6222020000000201', undef,
            ('<a>' x 40) . ('</a>' x 40) ] ]),
      qr/deeper than 32/ ],
    [ 'the wrong namespace',
      pain001(msg => 'H-NS', items => $ok_tx,
              ns => 'urn:iso:std:iso:20022:tech:xsd:pain.001.001.03'),
      qr/not an ISO 20022 pain\.001\.001\.09/ ],
    [ 'malformed XML', "<Document xmlns=\"$NS\"><CstmrCdtTrfInitn>\n<GrpHdr>"
      . "</CstmrCdtTrfInitn></Document>", qr/^body: line 2, column \d+: / ],
    [ 'not XML at all', "<\x00\xff", qr/^body: line 1, column \d+: / ],
    [ 'an empty body', '', qr/required/, 'application/xml' ],
);
for my $h (@hostile) {
    my ($what, $doc, $re, $type) = @$h;
    ($r, $j) = post($doc, type => $type // 'application/xml');
    is $r->status, 400, "$what: 400" or diag $r->body;
    is $j->{code}, 'invalid_body', "$what: invalid_body";
    like $j->{detail}, $re, "$what: $j->{detail}";
}
is bank_state()->{payments}, $before->{payments},
   'none of them booked a payment';


# --- content faults: 422 invalid_batch with every fault, nothing booked
my @many = map { [ sprintf('M-%05d', $_), '0.01', '6222020000000201',
                   undef, 'm' ] } 1 .. 10001;
($r, $j) = post(pain001(msg => 'M-10001', items => \@many));
is $r->status, 422, '10,001 items: 422' or diag substr $r->body, 0, 300;
is $j->{code}, 'invalid_batch', 'invalid_batch';
is_deeply codes($j), [ [ undef, undef, 'too_many_items' ] ],
          'too_many_items';

($r, $j) = post(encode_json({
    debtor_account => { number => $DEMO1 },
    items => [ map { {
        creditor_account => { number => '6222020000000201', name => 'P',
                              bank_code => 'OBKCNSH' },
        amount => { value => '0.01', currency => 'CNY' },
        reference => 'r', end_to_end_id => "J-$_" } } 1 .. 10001 ] }));
is $r->status, 422, 'a JSON batch of 10,001 items: 422';
is_deeply codes($j), [ [ undef, undef, 'too_many_items' ] ],
          'too_many_items';

($r, $j) = post(encode_json({ debtor_account => { number => $DEMO1 },
                              items => [] }));
is $r->status, 422, 'a JSON batch of no items: 422';
is_deeply codes($j), [ [ undef, undef, 'no_items' ] ], 'no_items';

($r, $j) = post(pain001(msg => 'C-1', nb => 3, items => $ok_tx));
is $r->status, 422, 'NbOfTxs disagrees: 422';
is_deeply codes($j), [ [ undef, undef, 'count_mismatch' ] ],
          'count_mismatch';

($r, $j) = post(pain001(msg => 'C-2', ctrl => '1.01', items => $ok_tx));
is $r->status, 422, 'CtrlSum disagrees: 422';
is_deeply codes($j), [ [ undef, undef, 'control_sum_mismatch' ] ],
          'control_sum_mismatch';

($r, $j) = post(pain001(msg => 'C-3', ctrl => '5.00', items => [
    [ 'B-0', '1.00', '6222020000000201', undef, 'fine' ],
    [ 'B-1', '1.234', '6222020000000201', undef, 'three decimals' ],
    [ 'B-2', '1.00', '6222020000000201', undef, 'dollars', 'USD' ],
    [ 'B-3', '1.00', '6222020000000201', undef, 'lower', 'cny' ],
    [ 'B-4', '1.00', '12ab', undef, 'bad account' ],
    [ 'B-5', '-1.00', '6222020000000201', undef, 'negative' ],
    [ 'B-0', '1.00', '6222020000000201', undef, 'twice' ],
    [ 'B-7' x 12, '1.00', '6222020000000201', undef, 'long e2e' ],
    [ 'B-8', '1.00', '6222020000000201', '', 'no name' ],
    [ 'B-9', '1.00', '6222020000000201', undef, 'x' x 141 ],
]));
is $r->status, 422, 'bad items: 422';
is $j->{code}, 'invalid_batch', 'invalid_batch';
is_deeply codes($j), [
    [ 1, 'B-1', 'invalid_amount' ],
    [ 2, 'B-2', 'currency_mismatch' ],
    [ 3, 'B-3', 'invalid_currency' ],
    [ 4, 'B-4', 'invalid_account' ],
    [ 5, 'B-5', 'invalid_amount' ],
    [ 6, 'B-0', 'duplicate_end_to_end_id' ],
    [ 7, 'B-7' x 12, 'invalid_value' ],
    [ 8, 'B-8', 'invalid_value' ],
    [ 9, 'B-9', 'invalid_value' ],
], 'every bad item, with its index and EndToEndId' or diag explain $j;

($r, $j) = post(pain001(msg => 'C-4', items => $ok_tx) =~
                s{<PmtMtd>TRF</PmtMtd>}{<PmtMtd>CHK</PmtMtd><Foo/>}r);
is $r->status, 422, 'structure faults: 422';
is_deeply codes($j), [ [ undef, undef, 'invalid_element' ],
                       [ undef, undef, 'invalid_value' ] ],
          'an unknown element and a PmtMtd that is not TRF'
    or diag explain $j;

($r, $j) = post(encode_json({
    debtor_account => { number => $DEMO1 },
    items => [
        { creditor_account => { number => '6222020000000201', name => 'P',
                                bank_code => 'OBKCNSH' },
          amount => { value => '1.00', currency => 'CNY' },
          reference => 'ok', end_to_end_id => 'J-0' },
        { creditor_account => { number => '62', name => 'P',
                                bank_code => 'OBKCNSH' },
          amount => { value => '1.0', currency => 'CNY' },
          reference => '', end_to_end_id => 'J-1', extra => 1 },
    ] }));
is $r->status, 422, 'a JSON batch with a bad item: 422';
is_deeply codes($j), [ [ 1, 'J-1', 'invalid_value' ],
                       [ 1, 'J-1', 'invalid_account' ],
                       [ 1, 'J-1', 'invalid_amount' ],
                       [ 1, 'J-1', 'invalid_value' ] ],
          'its four faults' or diag explain $j;

($r, $j) = post(pain001(msg => 'C-5', debtor => '6222020000000101',
                        items => $ok_tx));
is $r->status, 400, 'a debtor account not the partner\'s: 400';
like $j->{detail}, qr{^PmtInf/DbtrAcct: not an account of yours}, 'says so';
is bank_state()->{payments}, $before->{payments} + 0,
   'none of the refused batches booked a payment';


# --- money is conserved over a random mix of settled and rejected items
srand(16);
my @to = ('6222020000000201', '6222020000000202', '6222020000000203',
          '6222020000000204', '6222020000000299');
my @mix = map {
    [ "R-$_", cents(1 + int(rand(3_000_000))), $to[int rand @to], 'R',
      "random $_" ]
} 1 .. 60;
$before = bank_state();
($r, $j) = post(pain001(msg => 'RANDOM', debtor => $DEMO2, items => \@mix));
is $r->status, 202, 'a random mix: 202' or diag $r->body;
$j = final($j->{id});
ok $j->{counts}{settled} > 0 && $j->{counts}{rejected} > 0,
   "some settled ($j->{counts}{settled}), some rejected "
   . "($j->{counts}{rejected})";
my %codes = map { ($_->{reason_code} // 'none') => 1 } @{ $j->{items} };
ok $codes{AM04} && $codes{AC04} && $codes{AC01},
   'AM04, AC04 and AC01 among them';
$after = bank_state();
my $sum = sub { my $t = 0; $t += $_ for values %{ $_[0]{balances} }; $t };
is $sum->($after), $sum->($before), 'the sum of all balances is unchanged';
my $settled = 0;
for my $i (0 .. $#mix) {
    next unless $j->{items}[$i]{status} eq 'settled';
    my ($a, $b) = split /\./, $mix[$i][1];
    $settled += $a * 100 + $b;
}
is $after->{balances}{$DEMO2}, $before->{balances}{$DEMO2} - $settled,
   'the debtor lost what settled';
my $credited = 0;
$credited += $after->{balances}{$_} - $before->{balances}{$_} for @to[0 .. 2];
is $credited, $settled, 'the creditors gained it';
is $after->{balances}{'6222020000000204'}, 0, 'the closed account got nothing';
ok $after->{verify}, 'the ledger balances';
done_testing();
