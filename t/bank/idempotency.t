# The sandbox bank's own idempotency keys expire 24 hours after their
# first request, as the gateway's do (docs/idempotency.md): a younger key
# replays, an older one is a new payment, and every POST deletes expired
# records a bounded batch at a time.  Time is moved by ageing the kept
# records (their created_at), as if the clock had moved on.  The bank is
# reached directly, as the gateway reaches it.

use lib 't/lib';
use OpenBank::Test;
use JSON::PP qw(decode_json);

my $JSON = JSON::PP->new->canonical;

my $HOUR = 3600 * 1000;
my $DAY = 24 * $HOUR;

my $config = <<'EOT';
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
set $openbank_bank_settle_delay 0;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
# the clock moves on for a key: its record is made older by ?ms
location = /_test/age {
    content_by_lua_block {
        local db = require "openbank.db"
        local conn = assert(db.open(ngx.var.openbank_bank_db))
        assert(conn:run("UPDATE idempotency_keys SET created_at = "
                        .. "created_at - ? WHERE key = ?",
                        tonumber(ngx.var.arg_ms), ngx.var.arg_key))
    }
}
# n expired records of partner demo, ageing from 25 hours on
location = /_test/fill {
    content_by_lua_block {
        local db = require "openbank.db"
        local conn = assert(db.open(ngx.var.openbank_bank_db))
        ngx.update_time()
        local now = math.floor(ngx.now() * 1000)
        assert(conn:transaction(function(c)
            for i = 1, tonumber(ngx.var.arg_n) do
                assert(c:run("INSERT INTO idempotency_keys (partner, key, "
                             .. "request, status, body, created_at) "
                             .. "VALUES ('demo', ?, 'x', 201, '{}', ?)",
                             ngx.var.arg_prefix .. i,
                             now - 25 * 3600 * 1000 - i))
            end
            return true
        end))
    }
}
# the records: all, those older than 24 hours, and one key's presence
location = /_test/keys {
    content_by_lua_block {
        local db = require "openbank.db"
        local conn = assert(db.open(ngx.var.openbank_bank_db))
        ngx.update_time()
        local now = math.floor(ngx.now() * 1000)
        local all = conn:first("SELECT COUNT(*) AS n FROM idempotency_keys")
        local old = conn:first("SELECT COUNT(*) AS n FROM idempotency_keys "
                               .. "WHERE created_at <= ?",
                               now - 24 * 3600 * 1000)
        ngx.say(all.n, " ", old.n)
    }
}
location = /_test/payments {
    content_by_lua_block {
        local db = require "openbank.db"
        local conn = assert(db.open(ngx.var.openbank_bank_db))
        ngx.say(conn:first("SELECT COUNT(*) AS n FROM payments WHERE "
                           .. "reference = ?", ngx.var.arg_reference).n)
    }
}
# back to schema version 2: no index on the keys' age, nor the tables of
# later versions
location = /_test/downgrade {
    content_by_lua_block {
        local db = require "openbank.db"
        local conn = assert(db.open(ngx.var.openbank_bank_db))
        assert(conn:exec("DROP INDEX idempotency_keys_by_age"))
        assert(conn:exec("DROP TABLE collections"))
        assert(conn:exec("DROP TABLE mandates"))
        -- and the later versions' tables and columns
        assert(conn:exec("DROP TABLE payment_batches"))
        assert(conn:exec("DROP TABLE bank_events"))
        assert(conn:exec("DROP INDEX payments_by_batch"))
        for _, c in ipairs({ "batch", "batch_index", "end_to_end_id" }) do
            assert(conn:exec("ALTER TABLE payments DROP COLUMN " .. c))
        end
        assert(conn:exec("PRAGMA user_version = 2"))
    }
}
location = /_test/index {
    content_by_lua_block {
        local db = require "openbank.db"
        local conn = assert(db.open(ngx.var.openbank_bank_db))
        local v = conn:first("PRAGMA user_version").user_version
        local plan = conn:query("EXPLAIN QUERY PLAN SELECT rowid FROM "
                                .. "idempotency_keys WHERE created_at <= 1 "
                                .. "ORDER BY created_at LIMIT 100")
        local d = {}
        for _, r in ipairs(plan) do d[#d + 1] = r.detail end
        ngx.say(v, " ", table.concat(d, "; "))
    }
}
EOT

start_nginx({ config => $config });

my $seq = 0;

sub pay {
    my ($key, %o) = @_;
    my $body = $JSON->encode({
        debtor_account => { number => '6222020000000001' },
        creditor_account => { number => '6222020000000201',
                              name => 'Shanghai Supplier Co., Ltd.',
                              bank_code => 'OBKCNSH' },
        amount => { value => $o{value} // '1.00', currency => 'CNY' },
        reference => $o{reference} // 'idem-ttl',
    });
    my $res = http_request(POST => '/v1/payments',
                           ['X-OpenBank-Partner' => 'demo',
                            'Content-Type' => 'application/json',
                            defined $key ? ('Idempotency-Key' => $key) : ()],
                           $body);
    my $json = eval { decode_json($res->body) } // {};
    return ($res, $json);
}

sub get_text {
    my $res = http_request(GET => $_[0]);
    is $res->status, 200, "GET $_[0]" or diag $res->body;
    my $b = $res->body;
    chomp $b;
    return $b;
}

sub age { get_text("/_test/age?key=$_[0]&ms=$_[1]") }
sub keys_left { get_text('/_test/keys') }
sub payments_of { get_text("/_test/payments?reference=$_[0]") }

my $PLAN = 'INDEX idempotency_keys_by_age (created_at<?)';
my $BY_AGE = qr/^\d+ SEARCH idempotency_keys USING (?:COVERING )?\Q$PLAN\E$/;


# --- a key younger than 24 hours replays
my ($r, $j) = pay('ttl-young', reference => 'ttl-young');
is $r->status, 201, 'a new key: 201';
my $first = $j->{id};
like $first, qr/^pay_/, 'a payment id';
ok !defined $r->header('Idempotent-Replayed'), 'not a replay';

age('ttl-young', $DAY - 60_000);
($r, $j) = pay('ttl-young', reference => 'ttl-young');
is $r->status, 201, '23 h 59 min later: 201 again';
is $j->{id}, $first, 'the same payment';
is scalar $r->header('Idempotent-Replayed'), 'true', 'replayed';
is payments_of('ttl-young'), 1, 'the bank made one payment';

($r, $j) = pay('ttl-young', reference => 'ttl-young', value => '2.00');
is $r->status, 422, 'another body within 24 hours: 422';
is $j->{code}, 'idempotency_key_reused', 'idempotency_key_reused';


# --- a key older than 24 hours is a new payment
($r, $j) = pay('ttl-old', reference => 'ttl-old');
is $r->status, 201, 'a new key: 201';
$first = $j->{id};

age('ttl-old', $DAY + 1000);
($r, $j) = pay('ttl-old', reference => 'ttl-old');
is $r->status, 201, '24 h 1 s later: 201';
isnt $j->{id}, $first, 'a new payment';
ok !defined $r->header('Idempotent-Replayed'), 'not a replay';
is scalar $r->header('Location'), "/v1/payments/$j->{id}", 'its Location';
is payments_of('ttl-old'), 2, 'the bank made a second payment';
my $second = $j->{id};

($r, $j) = pay('ttl-old', reference => 'ttl-old');
is $r->status, 201, 'and the key is kept again from then on';
is $j->{id}, $second, 'the second payment replays';
is scalar $r->header('Idempotent-Replayed'), 'true', 'replayed';
is payments_of('ttl-old'), 2, 'no third payment';

# exactly 24 hours is expired too (the gateway's records: expire <= now)
age('ttl-old', $DAY);
($r, $j) = pay('ttl-old', reference => 'ttl-old', value => '3.00');
is $r->status, 201, '24 h later, another body: a new payment, not 422';
isnt $j->{id}, $second, 'a third payment';
is payments_of('ttl-old'), 3, 'the bank made it';


# --- expired records are deleted, 100 per POST, oldest first
is keys_left(), '2 0', 'two live keys, none expired';
get_text('/_test/fill?n=250&prefix=old-');
is keys_left(), '252 250', '250 expired records';

($r) = pay(undef, reference => 'ttl-purge');
is $r->status, 201, 'a POST without a key';
is keys_left(), '152 150', 'it deleted 100 of them';

($r) = pay('ttl-purge-1', reference => 'ttl-purge');
is $r->status, 201, 'a POST with a new key';
is keys_left(), '53 50', '100 more deleted, its own key kept';

# a refused POST changes nothing, deletions included
my $res = http_request(POST => '/v1/payments',
                       ['X-OpenBank-Partner' => 'demo',
                        'Idempotency-Key' => 'ttl-refused'], '{}');
is $res->status, 400, 'a refused POST: 400';
is keys_left(), '53 50', 'rolled back: nothing deleted, no key kept';

($r) = pay('ttl-purge-1', reference => 'ttl-purge');
is scalar $r->header('Idempotent-Replayed'), 'true', 'a replay';
is keys_left(), '3 0', 'deletes the last 50';
like get_text('/_test/index'), $BY_AGE,
     'schema version 6: the deletion uses the index on created_at';


# --- a database of version 2 gets the index, its keys kept
get_text('/_test/downgrade');
stop_nginx();
my $offset = error_log_offset();
start_nginx({ config => $config });
($r, $j) = pay('ttl-old', reference => 'ttl-old', value => '3.00');
is $r->status, 201, 'after the upgrade';
is scalar $r->header('Idempotent-Replayed'), 'true', 'a kept key replays';
like error_log_since($offset), qr/schema version 2 -> 6/,
     'the schema went from version 2 to 6';
like get_text('/_test/index'), $BY_AGE, 'with the index';

stop_nginx();
done_testing();
