# openbank.db (SQLite through the LuaJIT FFI), openbank.ledger and
# openbank.router, on their own: bound parameters, transactions and
# savepoints, the ledger's invariants, the route table.

use lib 't/lib';
use OpenBank::Test;

repeat_each(2);
run_tests();

__DATA__

=== TEST 1: bound parameters, integers, NULL, one connection per path
--- config
location = /t {
    content_by_lua_block {
        local function E(_, err) return err end   -- nil, err -> err
        local db = require "openbank.db"
        local path = "$TEST_NGINX_SERVROOT/t1.sqlite3"
        local conn = assert(db.open(path))
        ngx.say("cached: ", db.open(path) == conn)
        assert(conn:exec([[
            DROP TABLE IF EXISTS t;
            CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT UNIQUE,
                            n INTEGER) STRICT]]))
        local evil = "x'); DROP TABLE t; --"
        ngx.say("insert: ", conn:run("INSERT INTO t (s, n) VALUES (?, ?)",
                                     evil, 9007199254740991))
        local row = conn:first("SELECT s, n FROM t WHERE s = ?", evil)
        ngx.say(row.s, " ", string.format("%d", row.n))
        ngx.say("null: ", conn:run("INSERT INTO t (s, n) VALUES (?, ?)",
                                   nil, ngx.null))
        ngx.say("none: ", tostring(conn:first(
            "SELECT s FROM t WHERE s = ?", "nothing")))
        local rows = conn:query("SELECT id FROM t ORDER BY id")
        ngx.say("rows: ", #rows)
        local _, err, rc = conn:run("INSERT INTO t (s) VALUES (?)", evil)
        ngx.say("unique: ", rc == db.CONSTRAINT, " ", err)
        ngx.say("float: ", E(conn:run(
            "INSERT INTO t (n) VALUES (?)", 1.5)))
        ngx.say("arity: ", E(conn:run(
            "INSERT INTO t (n) VALUES (?)")))
        ngx.say("two statements: ", E(conn:run(
            "SELECT 1; SELECT 2")))
        ngx.say("journal: ", conn:first("PRAGMA journal_mode").journal_mode)
        ngx.say("synchronous: ",
                conn:first("PRAGMA synchronous").synchronous)
        ngx.say("foreign keys: ",
                conn:first("PRAGMA foreign_keys").foreign_keys)
    }
}
--- request
GET /t
--- response_body
cached: true
insert: 11
x'); DROP TABLE t; -- 9007199254740991
null: 12
none: nil
rows: 2
unique: true sqlite step: UNIQUE constraint failed: t.s (2067)
float: sqlite bind: parameter 1 is not an exact integer
arity: sqlite bind: 0 values for 1 parameters
two statements: sqlite prepare: more than one statement in "SELECT 1; SELECT 2"
journal: wal
synchronous: 2
foreign keys: 1
--- no_error_log
[error]



=== TEST 2: transactions: commit, rollback on nil/err and on error, savepoints
--- config
location = /t {
    content_by_lua_block {
        local db = require "openbank.db"
        local conn = assert(db.open("$TEST_NGINX_SERVROOT/t2.sqlite3"))
        assert(conn:exec([[
            DROP TABLE IF EXISTS t;
            CREATE TABLE t (s TEXT PRIMARY KEY) STRICT]]))
        local function has(s)
            return conn:first("SELECT s FROM t WHERE s = ?", s) ~= nil
        end

        local r, err = conn:transaction(function(c)
            c:run("INSERT INTO t VALUES (?)", "a")
            return nil, { code = "invalid_state" }
        end)
        ngx.say("nil, err: ", tostring(r), " ", err.code, " ", has("a"))

        r, err = conn:transaction(function(c)
            c:run("INSERT INTO t VALUES (?)", "b")
            error("boom")
        end)
        ngx.say("error: ", tostring(r), " ", err:match("boom"), " ",
                has("b"))

        local x, y = conn:transaction(function(c)
            c:run("INSERT INTO t VALUES (?)", "outer")
            local ok = c:transaction(function(c2)
                c2:run("INSERT INTO t VALUES (?)", "inner")
                return nil, "no"
            end)
            ngx.say("inner: ", tostring(ok), " ", c:in_transaction())
            return "x", "y"
        end)
        ngx.say("commit: ", x, y, " ", has("outer"), " ", has("inner"),
                " ", conn:in_transaction())
    }
}
--- request
GET /t
--- response_body
nil, err: nil invalid_state false
error: nil boom false
inner: nil true
commit: xy true false false
--- no_error_log
[error]



=== TEST 3: the ledger refuses unbalanced, foreign-currency and overdrawing postings
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location = /t {
    content_by_lua_block {
        local function E(_, err) return err end   -- nil, err -> err
        local db = require "openbank.db"
        local ledger = require "openbank.ledger"
        local schema = require "openbank.schema"
        local conn = assert(db.open(ngx.var.openbank_bank_db, schema.migrate))
        local function txn(from, to, amount_from, amount_to, cur)
            return {
                id = "txn_test", kind = "test", description = "test",
                booked_at = 0,
                legs = {
                    { account = from, amount = amount_from, currency = cur },
                    { account = to, amount = amount_to, currency = cur },
                },
            }
        end
        local A, B = "6222020000000101", "6222020000000201"
        ngx.say(E(ledger.post(conn, txn(A, B, -1, 1, "CNY"))))
        ngx.say(E(conn:transaction(ledger.post,
                                           txn(A, B, -1, 2, "CNY"))))
        ngx.say(E(conn:transaction(ledger.post,
                                           txn(A, B, -1, 1, "USD"))))
        ngx.say(E(conn:transaction(ledger.post,
                                           txn(A, B, -5000001, 5000001,
                                               "CNY"))))
        ngx.say(E(conn:transaction(ledger.post,
                                           txn("6222029999999999", B, -1, 1,
                                               "CNY"))))
        ngx.say("verify: ", tostring(ledger.verify(conn)))
        ngx.say(conn:first("SELECT COUNT(*) AS n FROM entries").n)
    }
}
--- request
GET /t
--- response_body
ledger.post outside a transaction
transaction txn_test does not balance in CNY
sqlite step: entry currency differs from its account (1811)
sqlite step: CHECK constraint failed: kind = 'internal' OR balance >= held (275)
sqlite step: FOREIGN KEY constraint failed (787)
verify: true
12
--- no_error_log
[error]



=== TEST 4: a balanced posting moves money and keeps the ledger consistent
--- no_repeat
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location = /t {
    content_by_lua_block {
        local db = require "openbank.db"
        local ledger = require "openbank.ledger"
        local schema = require "openbank.schema"
        local conn = assert(db.open(ngx.var.openbank_bank_db, schema.migrate))
        local A, B = "6222020000000101", "6222020000000201"
        assert(conn:transaction(ledger.post, {
            id = "txn_t4", kind = "test", description = "test",
            booked_at = 1,
            legs = {
                { account = A, amount = -1050, currency = "CNY" },
                { account = B, amount = 1050, currency = "CNY" },
            },
        }))
        for _, n in ipairs({ A, B }) do
            ngx.say(n, " ", conn:first(
                "SELECT balance FROM accounts WHERE number = ?", n).balance)
        end
        ngx.say("verify: ", tostring(ledger.verify(conn)))
    }
}
--- request
GET /t
--- response_body
6222020000000101 4998950
6222020000000201 8001050
verify: true
--- no_error_log
[error]



=== TEST 5: the router: literal paths, {params}, Allow, load-time errors
--- config
location = /t {
    content_by_lua_block {
        local router = require "openbank.router"
        local function h1() return "list" end
        local function h2() return "get" end
        local function h3() return "fund" end
        local r = router.new({
            { "GET",  "/v1/payments",           h1 },
            { "POST", "/v1/payments",           h1 },
            { "GET",  "/v1/payments/{id}",      h2 },
            { "POST", "/v1/escrows/{id}/fund",  h3 },
        })
        local h, p, allow = r:match("GET", "/v1/payments/pay_123")
        ngx.say(h(), " ", p.id)
        h, p, allow = r:match("POST", "/v1/escrows/esc_9/fund")
        ngx.say(h(), " ", p.id)
        h, p, allow = r:match("DELETE", "/v1/payments")
        ngx.say(tostring(h), " ", allow)
        h, p, allow = r:match("GET", "/v1/escrows/esc_9/fund")
        ngx.say(tostring(h), " ", allow)
        ngx.say(tostring(r:match("GET", "/v1/payments/")))
        ngx.say(tostring(r:match("GET", "/v1/payments/a/b")))
        ngx.say(pcall(router.new, { { "GET", "/x", h1 },
                                    { "GET", "/x", h2 } }))
        ngx.say(pcall(router.new, { { "GET", "/x.y/{id}", h1 } }))
        ngx.say(pcall(router.new, { { "FETCH", "/x", h1 } }))
    }
}
--- request
GET /t
--- response_body_like
^get pay_123
fund esc_9
nil GET, POST
nil POST
nil
nil
false.*given twice
false.*regex characters in a path
false.*unknown method "FETCH"
$
--- no_error_log
[error]
