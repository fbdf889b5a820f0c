# Statements as files (docs/erp.md) through the gateway of conf/nginx.conf:
# GET /v1/statements?date=&format=camt053 | mt940 | csv, each parsed here
# by code independent of the bank's (Python's xml.etree for camt.053, a
# small MT940 and CSV parser below) and reconciled against the JSON
# statement and the ledger: the same entries, opening + entries = closing.
# Also: the headers, the bank's timezone, text that needs escaping, an
# unknown format, and a day of 10,000 entries in camt.053 within 1 s.

use strict;
use warnings;
use lib 't/lib';
use OpenBank::Gateway;
use Test::More;
use JSON::PP;
use POSIX qw(strftime);
use Time::HiRes qw(sleep time);
use File::Temp qw(tempfile);
use Encode qw(decode encode);

my $PY = '/usr/bin/python3';
plan skip_all => "no $PY" unless -x $PY;

my $OWN = '6222020000000001';

# a few ledger transactions between the demo account and a supplier's,
# booked at ?at (unix ms) + i, with descriptions that need escaping
my $FILL = <<'CONF';
location = /_test/fill {
            content_by_lua_block {
                local db = require "openbank.db"
                local ledger = require "openbank.ledger"
                local conn = assert(db.open(ngx.var.openbank_bank_db))
                local n = tonumber(ngx.var.arg_n)
                local at = tonumber(ngx.var.arg_at)
                local texts = {
                    'Invoice 1 & 2 <ok> "quoted"',
                    "上海供应商, 货款",
                    '=HYPERLINK("http://x"), with, commas',
                    "-minus first; under_score; :colon",
                    "line\nbreak and tab\there",
                    string.rep("long text ", 40),
                }
                assert(conn:transaction(function(c)
                    for i = 1, n do
                        local amount = (i % 3 + 1) * 1001
                        if i % 2 == 0 then amount = -amount + 7 end
                        assert(ledger.post(c, {
                            id = "txn_fill_" .. at .. "_" .. i,
                            kind = i % 2 == 0 and "payment" or "collection",
                            reference = "ref_" .. i,
                            description = texts[i % #texts + 1],
                            booked_at = at + i,
                            legs = {
                                { account = "6222020000000001",
                                  amount = amount, currency = "CNY" },
                                { account = "6222020000000201",
                                  amount = -amount, currency = "CNY" },
                            },
                        }))
                    end
                    return true
                end))
                ngx.say("ok")
            }
        }
        
CONF

my $gw = OpenBank::Gateway->new('stmtfiles', settle_delay => 0.2,
                                edit => sub {
    my ($conf) = @_;
    $conf =~ s/(location = \/_test\/ledger \{)/$FILL$1/ or die;
    return $conf;
});
$gw->start;

sub cents {
    my ($v) = @_;
    my $neg = $v =~ s/^-//;
    $v =~ s/[.,]//;
    return ($neg ? -1 : 1) * ($v + 0);
}

# unix ms of a local (+08:00) date's midnight
sub midnight {
    my ($y, $m, $d) = split /-/, $_[0];
    require Time::Local;
    return (Time::Local::timegm(0, 0, 0, $d, $m - 1, $y) - 8 * 3600) * 1000;
}

sub fill {
    my ($n, $at) = @_;
    my $r = $gw->ledger("/_test/fill?n=$n&at=$at");
    is($r, "ok\n", "filled $n entries");
}

# --- parsers, independent of the bank's code

# camt.053 through Python's xml.etree: per Stmt, the account, balances and
# entries
my $CAMT_PY = <<'PY';
import json, sys
import xml.etree.ElementTree as ET
NS = {'c': 'urn:iso:std:iso:20022:tech:xsd:camt.053.001.08'}
root = ET.parse(sys.argv[1]).getroot()
assert root.tag == '{%s}Document' % NS['c'], root.tag
def signed(el):
    amt = el.find('c:Amt', NS)
    ind = el.find('c:CdtDbtInd', NS).text
    assert ind in ('CRDT', 'DBIT'), ind
    return {'value': ('-' if ind == 'DBIT' else '') + amt.text,
            'ccy': amt.get('Ccy')}
out = {'msgid': root.find('c:BkToCstmrStmt/c:GrpHdr/c:MsgId', NS).text,
       'stmts': []}
for st in root.findall('c:BkToCstmrStmt/c:Stmt', NS):
    s = {'account': st.find('c:Acct/c:Id/c:Othr/c:Id', NS).text,
         'ccy': st.find('c:Acct/c:Ccy', NS).text, 'bal': {}, 'entries': [],
         'count': st.find('c:TxsSummry/c:TtlNtries/c:NbOfNtries', NS).text}
    for b in st.findall('c:Bal', NS):
        code = b.find('c:Tp/c:CdOrPrtry/c:Cd', NS).text
        s['bal'][code] = dict(signed(b), date=b.find('c:Dt/c:Dt', NS).text)
    for e in st.findall('c:Ntry', NS):
        tx = e.find('c:NtryDtls/c:TxDtls', NS)
        s['entries'].append(dict(signed(e),
            sts=e.find('c:Sts/c:Cd', NS).text,
            booked=e.find('c:BookgDt/c:DtTm', NS).text,
            value_date=e.find('c:ValDt/c:Dt', NS).text,
            ref=e.find('c:AcctSvcrRef', NS).text,
            kind=e.find('c:BkTxCd/c:Prtry/c:Cd', NS).text,
            tx_ref=tx.find('c:Refs/c:AcctSvcrRef', NS).text,
            e2e=tx.find('c:Refs/c:EndToEndId', NS).text,
            txid=tx.find('c:Refs/c:TxId', NS).text,
            info=e.find('c:AddtlNtryInf', NS).text))
    out['stmts'].append(s)
json.dump(out, sys.stdout)
PY

sub parse_camt {
    my ($xml) = @_;
    my ($fh, $file) = tempfile(UNLINK => 1);
    binmode $fh;
    print $fh $xml;
    close $fh;
    my ($pfh, $pyfile) = tempfile(UNLINK => 1, SUFFIX => '.py');
    print $pfh $CAMT_PY;
    close $pfh;
    my $json = `$PY $pyfile $file`;
    is($?, 0, 'camt.053: Python parses it') or return;
    return decode_json($json);
}

# MT940: fields by tag; :61: with its supplementary line, :86: with its
# continuation lines
my $X_LINE = qr{^[a-zA-Z0-9/\-?:().,'+ ]*$};

sub parse_mt940 {
    my ($text) = @_;
    my @lines = split /\r\n/, $text, -1;
    is(pop @lines, '', 'MT940: ends with CRLF');
    my @bad = grep { length > 65 || !/$X_LINE/ } @lines;
    ok(!@bad, "MT940: lines of at most 65 characters of SWIFT's x set")
        or diag(join "\n", @bad[0 .. ($#bad > 4 ? 4 : $#bad)]);
    ok($text !~ /\n(?<!\r\n)/, 'MT940: every line ends with CRLF');
    my (@msgs, $m, $last);
    for my $l (@lines) {
        if ($l eq '-') { push @msgs, $m; undef $m; next }
        if ($l =~ /^:(\d\d[A-Z]?):(.*)$/) {
            my ($tag, $v) = ($1, $2);
            $m //= { entries => [] };
            if ($tag eq '61') {
                $v =~ /^(\d{6})(\d{4})?(C|D)(\d+,\d{2})N([A-Z0-9]{3})
                        (\w+)\/\/(\w+)$/x
                    or do { fail("MT940 :61: $v"); next };
                push @{ $m->{entries} }, { value_date => $1, mark => $3,
                    value => ($3 eq 'D' ? '-' : '') . $4, type => $5,
                    owner_ref => $6, ref => $7, narrative => '' };
                $last = 'supp';
            } elsif ($tag eq '86') {
                $m->{entries}[-1]{narrative} = $v;
                $last = '86';
            } else {
                $m->{$tag} = $v;
                $last = $tag;
            }
        } elsif ($last eq 'supp') {
            $m->{entries}[-1]{supplementary} = $l;
            $last = '61done';
        } elsif ($last eq '86') {
            $m->{entries}[-1]{narrative} .= $l;
        } else {
            fail("MT940: a stray line: $l");
        }
    }
    ok(!$m, 'MT940: every message ends with -');
    return \@msgs;
}

sub mt940_balance {
    my ($v) = @_;
    $v =~ /^(C|D)(\d{6})([A-Z]{3})(\d+,\d{2})$/ or return;
    return { value => ($1 eq 'D' ? '-' : '') . $4, date => $2, ccy => $3 };
}

# CSV after RFC 4180: quoted cells with "" inside, CRLF between records
sub parse_csv {
    my ($bytes) = @_;
    is(substr($bytes, 0, 3), "\xef\xbb\xbf", 'CSV: starts with a UTF-8 BOM');
    my $text = decode('UTF-8', substr($bytes, 3), Encode::FB_CROAK);
    my (@rows, @row, $cell);
    my $i = 0;
    my $n = length $text;
    while ($i < $n) {
        my $c = substr($text, $i, 1);
        if ($c eq '"') {
            my $j = $i + 1;
            $cell = '';
            while (1) {
                my $q = index($text, '"', $j);
                die "unterminated quote" if $q < 0;
                $cell .= substr($text, $j, $q - $j);
                if (substr($text, $q + 1, 1) eq '"') {
                    $cell .= '"';
                    $j = $q + 2;
                } else {
                    $i = $q + 1;
                    last;
                }
            }
        } else {
            my ($cell_text) = substr($text, $i) =~ /^([^,\r\n"]*)/;
            $cell = $cell_text;
            $i += length $cell_text;
        }
        push @row, $cell;
        my $sep = substr($text, $i, 1);
        if ($sep eq ',') {
            $i++;
        } elsif (substr($text, $i, 2) eq "\r\n") {
            push @rows, [@row];
            @row = ();
            $i += 2;
        } else {
            die "bad CSV at $i: " . substr($text, $i, 20);
        }
    }
    die "no CRLF at the end" if @row;
    return \@rows;
}

sub fetch {
    my ($date, $format, %o) = @_;
    my $q = "/v1/statements?date=$date"
            . ($format ? "&format=$format" : '')
            . ($o{account} ? "&account=$o{account}" : '');
    my $r = $gw->get($q);
    is($r->{status}, 200, "GET $q") or diag($r->{content});
    return $r;
}

# --- reconcile one day in every format
sub reconcile {
    my ($date, $what) = @_;
    my $json = fetch($date)->{json};
    my %acct = map { $_->{number} => $_ } @{ $json->{accounts} };
    ok(scalar keys %acct, "$what: the JSON statement has accounts");
    my $yymmdd = substr($date, 2, 2) . substr($date, 5, 2) . substr($date, 8);
    my $ids = sub { join ',', map { $_->{id} } @{ $_[0]{entries} } };

    # camt.053
    my $r = fetch($date, 'camt053');
    is($r->{headers}{'content-type'}, 'application/xml; charset=utf-8',
       'camt.053: Content-Type');
    is($r->{headers}{'content-disposition'},
       "attachment; filename=\"statement-$date.xml\"",
       'camt.053: Content-Disposition');
    my $camt = parse_camt($r->{content});
    is(scalar @{ $camt->{stmts} }, scalar keys %acct,
       "$what: camt.053 has a Stmt per account");
    for my $s (@{ $camt->{stmts} }) {
        my $j = $acct{ $s->{account} } or fail("no account $s->{account}");
        my $es = $s->{entries};
        is(cents($s->{bal}{OPBD}{value}), cents($j->{opening_balance}{value}),
           "camt.053 $s->{account}: OPBD = JSON opening");
        is(cents($s->{bal}{CLBD}{value}), cents($j->{closing_balance}{value}),
           '... CLBD = JSON closing');
        my $sum = 0;
        $sum += cents($_->{value}) for @$es;
        is(cents($s->{bal}{OPBD}{value}) + $sum, cents($s->{bal}{CLBD}{value}),
           '... OPBD + entries = CLBD');
        is($s->{bal}{OPBD}{date}, $date, '... the balances dated the day');
        is($s->{count}, scalar @$es, '... NbOfNtries');
        is(join(',', map { $_->{ref} } @$es), $ids->($j),
           '... the JSON entries, AcctSvcrRef = id, in order');
        my @jes = @{ $j->{entries} };
        my @diff = grep {
            my ($c, $e) = ($es->[$_], $jes[$_]);
            cents($c->{value}) != cents($e->{amount}{value})
            || ($c->{value} =~ /^-/ xor $e->{direction} eq 'debit')
            || $c->{ccy} ne 'CNY' || $c->{sts} ne 'BOOK'
            || $c->{value_date} ne $date
            || substr($c->{booked}, 0, 10) ne $date
            || $c->{booked} !~ /\+08:00$/
            || $c->{tx_ref} ne $e->{id} || $c->{txid} ne $e->{transaction_id}
            || $c->{e2e} ne ($e->{reference} // 'NOTPROVIDED')
            || $c->{kind} ne $e->{kind}
            || $c->{info} ne $e->{description} =~ s/[\x00-\x1f]/ /gr
        } 0 .. $#$es;
        ok(!@diff, '... each entry as in JSON: amount, sign, status, dates, '
                   . 'refs, text') or diag(explain([$es->[$diff[0]],
                                                     $jes[$diff[0]]]));
    }

    # MT940
    $r = fetch($date, 'mt940');
    is($r->{headers}{'content-type'}, 'text/plain; charset=utf-8',
       'MT940: Content-Type');
    is($r->{headers}{'content-disposition'},
       "attachment; filename=\"statement-$date.sta\"",
       'MT940: Content-Disposition');
    my $msgs = parse_mt940($r->{content});
    is(scalar @$msgs, scalar keys %acct, "$what: an MT940 message per account");
    for my $m (@$msgs) {
        my ($bank, $number) = split m{/}, $m->{25};
        is($bank, 'OBKCNSH', "MT940 :25: the bank");
        my $j = $acct{$number} or fail("no account $number");
        like($m->{20}, qr/^[A-Za-z0-9]{1,16}$/, '... :20: 16x');
        like($m->{'28C'}, qr/^\d{1,5}(\/\d{1,5})?$/, '... :28C:');
        my $open = mt940_balance($m->{'60F'});
        my $close = mt940_balance($m->{'62F'});
        ok($open && $close, '... :60F: and :62F:');
        is(cents($open->{value}), cents($j->{opening_balance}{value}),
           '... :60F: = JSON opening');
        is(cents($close->{value}), cents($j->{closing_balance}{value}),
           '... :62F: = JSON closing');
        is("$open->{date} $open->{ccy}", "$yymmdd CNY", '... dated, in CNY');
        my $sum = 0;
        $sum += cents($_->{value}) for @{ $m->{entries} };
        is(cents($open->{value}) + $sum, cents($close->{value}),
           '... :60F: + :61: = :62F:');
        is(join(',', map { $_->{ref} } @{ $m->{entries} }), $ids->($j),
           '... the JSON entries, bank reference = id');
        my @jes = @{ $j->{entries} };
        my @diff = grep {
            my ($t, $e) = ($m->{entries}[$_], $jes[$_]);
            cents($t->{value}) != cents($e->{amount}{value})
            || ($t->{mark} eq 'D' xor $e->{direction} eq 'debit')
            || $t->{value_date} ne $yymmdd
            || $t->{supplementary} ne $e->{transaction_id} =~ tr/_/-/r
            || $t->{narrative} eq ''
        } 0 .. $#jes;
        ok(!@diff, '... each :61: as in JSON') or diag(explain(
            [$m->{entries}[$diff[0]], $jes[$diff[0]]]));
    }

    # CSV
    $r = fetch($date, 'csv');
    is($r->{headers}{'content-type'}, 'text/csv; charset=utf-8',
       'CSV: Content-Type');
    is($r->{headers}{'content-disposition'},
       "attachment; filename=\"statement-$date.csv\"",
       'CSV: Content-Disposition');
    my $rows = parse_csv($r->{content});
    my $head = shift @$rows;
    is(join(',', @$head), 'record,account,currency,booking_date,booked_at,'
       . 'entry_id,transaction_id,kind,reference,description,debit,credit,'
       . 'balance,count', 'CSV: the header row');
    my @bad = grep { @$_ != @$head } @$rows;
    ok(!@bad, 'CSV: every line has the header\'s cells');
    my %h;
    @h{@$head} = 0 .. $#$head;
    my %per;
    for my $row (@$rows) {
        push @{ $per{ $row->[$h{account}] } }, $row;
    }
    is(scalar keys %per, scalar keys %acct, "$what: CSV lines per account");
    for my $number (sort keys %per) {
        my @l = @{ $per{$number} };
        my $j = $acct{$number};
        my ($open, $close) = (shift @l, pop @l);
        is($open->[$h{record}], 'opening', "CSV $number: an opening line");
        is($close->[$h{record}], 'closing', '... a closing line');
        is(cents($open->[$h{balance}]), cents($j->{opening_balance}{value}),
           '... opening = JSON');
        is(cents($close->[$h{balance}]), cents($j->{closing_balance}{value}),
           '... closing = JSON');
        is($close->[$h{count}], scalar @l, '... the count');
        my ($dr, $cr, $bal) = (0, 0, cents($open->[$h{balance}]));
        my $running = 1;
        for my $e (@l) {
            $dr += cents($e->[$h{debit}] || '0.00');
            $cr += cents($e->[$h{credit}] || '0.00');
            $bal += cents($e->[$h{credit}] || '0.00')
                    - cents($e->[$h{debit}] || '0.00');
            $running &&= $bal == cents($e->[$h{balance}]);
        }
        ok($running, '... each line\'s balance is the running balance');
        is($dr, cents($close->[$h{debit}]), '... total debits');
        is($cr, cents($close->[$h{credit}]), '... total credits');
        is(cents($open->[$h{balance}]) + $cr - $dr, cents($close->[$h{balance}]),
           '... opening + credits - debits = closing');
        is(join(',', map { $_->[$h{entry_id}] } @l), $ids->($j),
           '... the JSON entries');
        my @jes = @{ $j->{entries} };
        my @diff = grep {
            my ($c, $e) = ($l[$_], $jes[$_]);
            my $text = $e->{description} =~ s/[\x00-\x1f]/ /gr;
            $text = "'$text" if $text =~ /^[=+\-@]/;
            $c->[$h{description}] ne $text
            || $c->[$h{transaction_id}] ne $e->{transaction_id}
            || $c->[$h{booking_date}] ne $date
            || cents($c->[$h{balance}]) != cents($e->{balance_after}{value})
        } 0 .. $#jes;
        ok(!@diff, '... each line as in JSON, text intact')
            or diag(explain([$l[$diff[0]], $jes[$diff[0]]]));
    }

    return $json;
}

# --- today: a payment and a collection, booked by the bank
my $today = strftime('%Y-%m-%d', gmtime(time + 8 * 3600));
my $p = $gw->post('/v1/payments', {
    debtor_account => { number => $OWN },
    creditor_account => { number => '6222020000000202',
                          name => "\x{4e0a}\x{6d77}", bank_code => 'OBKCNSH' },
    amount => { value => '12.34', currency => 'CNY' },
    reference => 'stmt & <files>',
}, 'Idempotency-Key' => "stmt-$$-1");
is($p->{status}, 201, 'a payment');
my $md = $gw->post('/v1/mandates', {
    payer_account => { number => '6222020000000203' },
    max_amount => { value => '100.00', currency => 'CNY' },
    expires_at => strftime('%Y-%m-%dT%H:%M:%SZ', gmtime(time + 3600)),
    reference => 'statement test',
}, 'Idempotency-Key' => "stmt-$$-2")->{json}{id};
$gw->post("/v1/mandates/$md/authorise", '', 'Idempotency-Key' => "stmt-$$-3");
my $col = $gw->post('/v1/collections', {
    mandate_id => $md, amount => { value => '56.78', currency => 'CNY' },
    reference => 'invoice, "quoted"',
}, 'Idempotency-Key' => "stmt-$$-4");
is($col->{status}, 201, 'a collection');
for (1 .. 50) {
    last if ($gw->get("/v1/collections/$col->{json}{id}")->{json}{status}
             // '') ne 'pending'
            && $gw->get("/v1/payments/$p->{json}{id}")->{json}{status}
               eq 'settled';
    sleep 0.1;
}
my $j = reconcile($today, 'today');
my ($own) = grep { $_->{number} eq $OWN } @{ $j->{accounts} };
ok((grep { $_->{kind} eq 'collection' } @{ $own->{entries} }),
   'the collection is on the statement');

# --- a day in the past with text that needs escaping, and the bank's
# timezone: 00:00:00.500 local is on the day, 23:59:59 the day before not
my $day = '2026-01-10';
my $m = midnight($day);
fill(12, $m);
fill(1, $m - 2000);
fill(1, $m + 86400_000 + 5);
$j = reconcile($day, 'escaping');
my ($a) = grep { $_->{number} eq $OWN } @{ $j->{accounts} };
is(scalar @{ $a->{entries} }, 12, "the day's entries, in the bank's timezone");
my $camt = fetch($day, 'camt053', account => $OWN);
is($camt->{headers}{'content-disposition'},
   "attachment; filename=\"statement-$day-$OWN.xml\"", 'one account: its name');
like(decode('UTF-8', $camt->{content}), qr/\x{4e0a}\x{6d77}\x{4f9b}/,
     'camt.053 keeps Chinese text as UTF-8');
like($camt->{content}, qr/Invoice 1 &amp; 2 &lt;ok&gt; &quot;quoted&quot;/,
     'camt.053 escapes & < > "');
my $csv = fetch($day, 'csv')->{content};
like($csv, qr/,"'=HYPERLINK\(""http:\/\/x""\), with, commas",/,
     'CSV: a formula is text, quotes doubled, commas quoted');
my $mt = fetch($day, 'mt940')->{content};
like($mt, qr/^:86:\?+, \?\?\r$/m, 'MT940: Chinese is ? in the x set');
like($mt, qr/under-score/, "MT940: _ is -");

# --- a quiet day: balances only
$j = reconcile('2026-01-20', 'a quiet day');

# --- unknown formats
for my $q ('format=pdf', 'format=', 'format=CAMT053', 'format=csv&format=csv') {
    my $r = $gw->get("/v1/statements?date=$day&$q");
    is($r->{status}, 400, "$q: 400");
    is($r->{json}{code}, 'invalid_request', '... invalid_request');
    like($r->{json}{detail}, qr/^format: .*camt053, mt940, csv/,
         '... naming the formats') or diag($r->{content});
}
my $r = $gw->get('/v1/statements?format=csv');
is($r->{status}, 400, 'a file needs a date too');

# --- 10,000 entries in a day: camt.053 within a second
my $big = '2026-02-01';
fill(10_000, midnight($big) + 1000);
my $t0 = time;
$r = $gw->get("/v1/statements?date=$big&format=camt053&account=$OWN");
my $took = time - $t0;
is($r->{status}, 200, '10,000 entries: 200');
ok($took <= 1, sprintf('10,000 entries in camt.053 in %.3f s (<= 1 s)',
                       $took));
diag(sprintf('camt.053 of 10,000 entries: %.3f s, %d bytes', $took,
             length $r->{content}));
my $parsed = parse_camt($r->{content});
my $s = $parsed->{stmts}[0];
is(scalar @{ $s->{entries} }, 10_000, '... 10,000 Ntry');
my $sum = 0;
$sum += cents($_->{value}) for @{ $s->{entries} };
is(cents($s->{bal}{OPBD}{value}) + $sum, cents($s->{bal}{CLBD}{value}),
   '... OPBD + entries = CLBD');
for my $f ('mt940', 'csv', '') {
    $t0 = time;
    $r = $gw->get("/v1/statements?date=$big&account=$OWN"
                  . ($f ? "&format=$f" : ''));
    diag(sprintf('%s of 10,000 entries: %.3f s', $f || 'json', time - $t0));
    is($r->{status}, 200, ($f || 'json') . ' of 10,000 entries: 200');
}

# the ledger agrees with itself after all this
is($gw->ledger->{verify}, 'ok', 'the ledger verifies');

$gw->check_log;
$gw->stop;
done_testing();
