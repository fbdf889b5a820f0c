# The sandbox bank, directly (not through the gateway): partner
# identification, GET /v1/accounts, routing errors, the seed data and its
# ledger, and the first open of a fresh database by several workers.

use lib 't/lib';
use OpenBank::Test;

repeat_each(2);
run_tests();

__DATA__

=== TEST 1: demo's accounts, in number order, with balance and available
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/accounts
--- more_headers
X-OpenBank-Partner: demo
X-Request-ID: 4a6c2f0e-8d1b-4c3a-9e57-0b2f6d8a1c33
--- error_code: 200
--- response_headers
Content-Type: application/json
Cache-Control: no-store
X-Request-ID: 4a6c2f0e-8d1b-4c3a-9e57-0b2f6d8a1c33
--- response_json
{"accounts": [
    {"number": "6222020000000001", "name": "Demo Trading Co., Ltd.",
     "bank_code": "OBKCNSH",
     "balance": {"value": "1000000.00", "currency": "CNY"},
     "available": {"value": "1000000.00", "currency": "CNY"}},
    {"number": "6222020000000002", "name": "Demo Trading Co., Ltd.",
     "bank_code": "OBKCNSH",
     "balance": {"value": "250000.00", "currency": "CNY"},
     "available": {"value": "250000.00", "currency": "CNY"}}
]}
--- no_error_log
[error]



=== TEST 2: other sees only its own account
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/accounts
--- more_headers
X-OpenBank-Partner: other
--- error_code: 200
--- response_json
{"accounts": [
    {"number": "6222020000000101", "name": "Other Industries Ltd.",
     "bank_code": "OBKCNSH",
     "balance": {"value": "50000.00", "currency": "CNY"},
     "available": {"value": "50000.00", "currency": "CNY"}}
]}
--- no_error_log
[error]



=== TEST 3: the query string changes nothing
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/accounts?partner=demo
--- more_headers
X-OpenBank-Partner: other
--- error_code: 200
--- response_json
{"accounts": [{"number": "6222020000000101"}]}
--- no_error_log
[error]



=== TEST 4: no partner header: 401 invalid_token, problem+json
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/accounts
--- error_code: 401
--- response_headers
Content-Type: application/problem+json
WWW-Authenticate: Bearer error="invalid_token"
!X-Request-ID
--- response_json
{"type": "urn:openbank:problem:invalid_token", "title": "Invalid credential",
 "status": 401, "detail": "~\\S", "code": "invalid_token",
 "request_id": ""}
--- no_error_log
[error]



=== TEST 5: a partner the bank does not know: 401, request id echoed
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/accounts
--- more_headers
X-OpenBank-Partner: acme
X-Request-ID: req-5
--- error_code: 401
--- response_headers
X-Request-ID: req-5
--- response_json
{"code": "invalid_token", "status": 401, "request_id": "req-5",
 "detail": "~acme"}
--- no_error_log
[error]



=== TEST 6: a malformed partner name: 401 without a lookup
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/accounts
--- more_headers
X-OpenBank-Partner: demo' OR '1'='1
--- error_code: 401
--- response_json
{"code": "invalid_token", "status": 401}
--- no_error_log
[error]



=== TEST 7: partner check comes before routing
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/nothing-here
--- error_code: 401
--- response_json
{"code": "invalid_token"}
--- no_error_log
[error]



=== TEST 8: unknown path: 404 not_found
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/nothing-here
--- more_headers
X-OpenBank-Partner: demo
X-Request-ID: req-8
--- error_code: 404
--- response_headers
Content-Type: application/problem+json
--- response_json
{"type": "urn:openbank:problem:not_found", "title": "Not found",
 "status": 404, "detail": "~/v1/nothing-here", "code": "not_found",
 "request_id": "req-8"}
--- no_error_log
[error]



=== TEST 9: a trailing slash is another path
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/accounts/
--- more_headers
X-OpenBank-Partner: demo
--- error_code: 404
--- response_json
{"code": "not_found"}
--- no_error_log
[error]



=== TEST 10: POST on a GET route: 405 method_not_allowed with Allow
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
POST /v1/accounts
{"number": "6222020000000009"}
--- more_headers
X-OpenBank-Partner: demo
Content-Type: application/json
--- error_code: 405
--- response_headers
Allow: GET
Content-Type: application/problem+json
--- response_json
{"type": "urn:openbank:problem:method_not_allowed",
 "title": "Method not allowed", "status": 405,
 "code": "method_not_allowed", "detail": "~POST", "request_id": ""}
--- no_error_log
[error]



=== TEST 11: DELETE: 405 too
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
DELETE /v1/accounts
--- more_headers
X-OpenBank-Partner: demo
--- error_code: 405
--- response_headers
Allow: GET
Content-Type: application/problem+json
--- response_json
{"code": "method_not_allowed", "title": "Method not allowed"}
--- no_error_log
[error]



=== TEST 12: a request id that is not one visible-ASCII token is not echoed
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/nothing-here
--- more_headers
X-OpenBank-Partner: demo
X-Request-ID: two words
--- error_code: 404
--- response_headers
!X-Request-ID
--- response_json
{"request_id": ""}
--- no_error_log
[error]



=== TEST 13: without $openbank_bank_db: 503 upstream_unavailable, logged
--- config
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/accounts
--- more_headers
X-OpenBank-Partner: demo
--- error_code: 503
--- response_headers
Retry-After: 1
--- response_json
{"code": "upstream_unavailable", "status": 503}
--- error_log
set $openbank_bank_db



=== TEST 14: the seed's ledger: balance == sum of entries, funded by equity
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location = /t {
    content_by_lua_block {
        local db = require "openbank.db"
        local ledger = require "openbank.ledger"
        local schema = require "openbank.schema"
        local conn = assert(db.open(ngx.var.openbank_bank_db, schema.migrate))
        ngx.say("verify: ", tostring(ledger.verify(conn)))
        local v = conn:first("PRAGMA user_version")
        ngx.say("version: ", v.user_version)
        local rows = conn:query([[
            SELECT a.number, a.kind, a.partner, a.name, a.balance,
                   (SELECT COALESCE(SUM(amount), 0) FROM entries
                    WHERE account = a.number) AS total
            FROM accounts AS a ORDER BY a.number]])
        for _, r in ipairs(rows) do
            ngx.say(r.number, " ", r.kind, " ", r.partner or "-", " ",
                    r.balance, " ", r.total, " ", r.name)
        end
        local t = conn:first([[SELECT COUNT(*) AS n, SUM(amount) AS s
                               FROM entries]])
        ngx.say("entries: ", t.n, " sum ", t.s)
    }
}
--- request
GET /t
--- response_body
verify: true
version: 6
6222020000000001 customer demo 100000000 100000000 Demo Trading Co., Ltd.
6222020000000002 customer demo 25000000 25000000 Demo Trading Co., Ltd.
6222020000000101 customer other 5000000 5000000 Other Industries Ltd.
6222020000000201 customer - 8000000 8000000 Shanghai Supplier Co., Ltd.
6222020000000202 customer - 12000000 12000000 上海供应商有限公司
6222020000000203 customer - 3000000 3000000 Beijing Logistics Ltd.
6222020000000204 customer - 0 0 Hangzhou Dormant Trading Co., Ltd.
INT-EQUITY-CNY internal - -153000000 -153000000 OpenBank sandbox funding (equity)
INT-ESCROW-CNY internal - 0 0 OpenBank escrow holdings
entries: 12 sum 0
--- no_error_log
[error]



=== TEST 15: ledger entries cannot be changed or deleted
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location = /t {
    content_by_lua_block {
        local function E(_, err) return err end   -- nil, err -> err
        local db = require "openbank.db"
        local schema = require "openbank.schema"
        local conn = assert(db.open(ngx.var.openbank_bank_db, schema.migrate))
        ngx.say(E(conn:run("UPDATE entries SET amount = amount + 1")))
        ngx.say(E(conn:run("DELETE FROM entries")))
        ngx.say(E(conn:run(
            "UPDATE accounts SET balance = -1 WHERE number = ?",
            "6222020000000101")))
    }
}
--- request
GET /t
--- response_body_like
^[^\n]*ledger entries are immutable[^\n]*
[^\n]*ledger entries are immutable[^\n]*
[^\n]*CHECK constraint failed
--- no_error_log
[error]



=== TEST 16: after a restart the database is reused, not seeded again
--- restart
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/accounts
--- more_headers
X-OpenBank-Partner: other
--- error_code: 200
--- response_json
{"accounts": [{"number": "6222020000000101",
               "balance": {"value": "50000.00", "currency": "CNY"}}]}
--- no_error_log
[error]
schema version



=== TEST 17: four workers open a fresh database at once: seeded once
--- no_repeat
--- workers: 4
--- init
unlink glob("$TEST_NGINX_SERVROOT/race.sqlite3*");
--- http_config
init_worker_by_lua_block {
    local db = require "openbank.db"
    local schema = require "openbank.schema"
    local conn, err = db.open("$TEST_NGINX_SERVROOT/race.sqlite3",
                              schema.migrate)
    if not conn then
        ngx.log(ngx.ERR, "race open: ", err)
    end
}
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/race.sqlite3;
location = /t {
    content_by_lua_block {
        local db = require "openbank.db"
        local conn = assert(db.open(ngx.var.openbank_bank_db))
        local function count(t)
            return conn:first("SELECT COUNT(*) AS n FROM " .. t).n
        end
        ngx.say(count("partners"), " partners, ", count("accounts"),
                " accounts, ", count("transactions"), " transactions, ",
                count("entries"), " entries")
        ngx.say("verify: ", tostring(require("openbank.ledger").verify(conn)))
        local seeded = 0
        for line in io.lines(ngx.config.prefix() .. "logs/error.log") do
            if line:find("race.sqlite3: schema version 0 -> 6", 1, true) then
                seeded = seeded + 1
            end
        end
        ngx.say("seeded ", seeded, " time(s)")
    }
}
--- request
GET /t
--- response_body
2 partners, 9 accounts, 6 transactions, 12 entries
verify: true
seeded 1 time(s)
--- error_log
schema version 0 -> 6 (created and seeded)
--- no_error_log
[error]



=== TEST 18: GET on a POST-only route with a parameter: 405, Allow: POST
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/escrows/esc_0123/fund
--- more_headers
X-OpenBank-Partner: demo
X-Request-ID: req-18
--- error_code: 405
--- response_headers
Allow: POST
Content-Type: application/problem+json
--- response_json
{"type": "urn:openbank:problem:method_not_allowed",
 "title": "Method not allowed", "status": 405,
 "code": "method_not_allowed",
 "detail": "/v1/escrows/esc_0123/fund does not allow GET; allowed: POST.",
 "request_id": "req-18"}
--- no_error_log
[error]



=== TEST 19: PUT on a path of two methods: Allow lists both
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
PUT /v1/payments
{}
--- more_headers
X-OpenBank-Partner: demo
--- error_code: 405
--- response_headers
Allow: GET, POST
Content-Type: application/problem+json
--- response_json
{"code": "method_not_allowed", "status": 405}
--- no_error_log
[error]



=== TEST 20: a fault of the bank's own code: 500 internal_error, logged
--- http_config
init_by_lua_block {
    require("openbank.payments").tick = function()
        error("tick exploded")
    end
}
--- config
set $openbank_bank_db $TEST_NGINX_SERVROOT/bank.sqlite3;
location / {
    content_by_lua_block { require("openbank.bank").handle() }
}
--- request
GET /v1/accounts
--- more_headers
X-OpenBank-Partner: demo
X-Request-ID: req-20
--- error_code: 500
--- response_headers
Content-Type: application/problem+json
Cache-Control: no-store
X-Request-ID: req-20
--- response_json
{"type": "urn:openbank:problem:internal_error", "title": "Internal error",
 "status": 500, "code": "internal_error",
 "detail": "The bank failed to handle the request.",
 "request_id": "req-20"}
--- error_log
openbank bank: GET /v1/accounts:
tick exploded
