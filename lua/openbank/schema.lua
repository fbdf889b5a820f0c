-- The sandbox bank's schema, its migrations and its seed data.
--
-- The schema version is the database's PRAGMA user_version: version N means
-- MIGRATIONS[1..N] have run.  migrate() runs the missing ones, in one
-- BEGIN IMMEDIATE transaction that first reads user_version, so when every
-- worker opens a fresh database at once exactly one of them creates and
-- seeds it and the others, waiting on the write lock, find it done.
--
-- To grow the schema (payments, idempotency keys, escrows, ...) append a
-- migration; never edit one that has shipped:
--
--   MIGRATIONS[2] = function(conn)
--       return conn:exec([[ CREATE TABLE payments (...) STRICT; ... ]])
--   end
--
-- Tables of version 1:
--
--   partners      the gateway's partners (id = its partner name, the
--                 X-OpenBank-Partner header)
--   accounts      every account the bank keeps: partners' accounts
--                 (partner set), other customers' (partner NULL, kind
--                 'customer': payees, verification targets) and the bank's
--                 own (kind 'internal': the equity/funding account that
--                 opening balances come from; later escrow holdings and
--                 clearing).  balance = booked minor units = SUM(entries);
--                 held = minor units reserved (pending payments),
--                 available = balance - held.
--   transactions  one row per ledger transaction (kind, the reference of
--                 the business object it books, description, booked_at)
--   entries       its legs: account, signed amount in minor units (+ credit,
--                 - debit), currency, booked_at, description; they sum to
--                 zero per transaction and currency (openbank.ledger)
--
-- Times are integer milliseconds since the Unix epoch, UTC.

local ledger = require "openbank.ledger"
local money = require "openbank.money"

local math_floor = math.floor
local ngx_log = ngx.log
local ngx_NOTICE = ngx.NOTICE
local ngx_now = ngx.now
local ngx_update_time = ngx.update_time
local pairs = pairs
local str_format = string.format


local _M = {}


local V1 = [[
CREATE TABLE partners (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE accounts (
    number      TEXT PRIMARY KEY,
    partner     TEXT REFERENCES partners (id),
    kind        TEXT NOT NULL DEFAULT 'customer'
                CHECK (kind IN ('customer', 'internal')),
    name        TEXT NOT NULL,
    bank_code   TEXT NOT NULL,
    currency    TEXT NOT NULL CHECK (length(currency) = 3),
    balance     INTEGER NOT NULL DEFAULT 0,
    held        INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
    status      TEXT NOT NULL DEFAULT 'active'
                CHECK (status IN ('active', 'blocked', 'closed')),
    created_at  INTEGER NOT NULL,
    -- A customer account never goes below what is held on it (so never
    -- below zero): release a hold before booking the payment it held for.
    -- Internal accounts (equity) may be negative.
    CHECK (kind = 'internal' OR balance >= held),
    CHECK (kind = 'customer' OR partner IS NULL)
) STRICT;

CREATE INDEX accounts_by_partner ON accounts (partner, number);

CREATE TABLE transactions (
    id          TEXT PRIMARY KEY,
    kind        TEXT NOT NULL,
    reference   TEXT,
    description TEXT NOT NULL,
    booked_at   INTEGER NOT NULL
) STRICT;

CREATE INDEX transactions_by_reference ON transactions (reference);

CREATE TABLE entries (
    id          INTEGER PRIMARY KEY,
    txn_id      TEXT NOT NULL REFERENCES transactions (id),
    account     TEXT NOT NULL REFERENCES accounts (number),
    amount      INTEGER NOT NULL CHECK (amount <> 0),
    currency    TEXT NOT NULL,
    booked_at   INTEGER NOT NULL,
    description TEXT NOT NULL
) STRICT;

CREATE INDEX entries_by_account ON entries (account, booked_at, id);
CREATE INDEX entries_by_txn ON entries (txn_id);

CREATE TRIGGER entries_currency BEFORE INSERT ON entries
WHEN EXISTS (SELECT 1 FROM accounts
             WHERE number = NEW.account AND currency <> NEW.currency)
BEGIN
    SELECT RAISE(ABORT, 'entry currency differs from its account');
END;

CREATE TRIGGER entries_apply AFTER INSERT ON entries
BEGIN
    UPDATE accounts SET balance = balance + NEW.amount
    WHERE number = NEW.account;
END;

CREATE TRIGGER entries_no_update BEFORE UPDATE ON entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are immutable');
END;

CREATE TRIGGER entries_no_delete BEFORE DELETE ON entries
BEGIN
    SELECT RAISE(ABORT, 'ledger entries are immutable');
END;

CREATE TRIGGER transactions_no_update BEFORE UPDATE ON transactions
BEGIN
    SELECT RAISE(ABORT, 'ledger transactions are immutable');
END;

CREATE TRIGGER transactions_no_delete BEFORE DELETE ON transactions
BEGIN
    SELECT RAISE(ABORT, 'ledger transactions are immutable');
END;
]]


local BANK_CODE = "OBKCNSH"

_M.BANK_CODE = BANK_CODE

-- The bank's funding account per currency: opening balances are booked
-- against it, so that balance == SUM(entries) from the first day.
_M.EQUITY = { CNY = "INT-EQUITY-CNY" }


local SEED = {
    partners = {
        { "demo", "Demo Trading Co., Ltd." },
        { "other", "Other Industries Ltd." },
    },

    -- number, partner, name, currency, opening balance, status.  demo's
    -- accounts are those of conf/demo/credentials.json.
    accounts = {
        { "6222020000000001", "demo", "Demo Trading Co., Ltd.",
          "CNY", "1000000.00" },
        { "6222020000000002", "demo", "Demo Trading Co., Ltd.",
          "CNY", "250000.00" },
        { "6222020000000101", "other", "Other Industries Ltd.",
          "CNY", "50000.00" },

        -- Other customers of the bank: payees and verification targets.
        { "6222020000000201", nil, "Shanghai Supplier Co., Ltd.",
          "CNY", "80000.00" },
        { "6222020000000202", nil, "上海供应商有限公司",
          "CNY", "120000.00" },
        { "6222020000000203", nil, "Beijing Logistics Ltd.",
          "CNY", "30000.00" },
        { "6222020000000204", nil, "Hangzhou Dormant Trading Co., Ltd.",
          "CNY", nil, "closed" },
    },
}


local SQL_PARTNER = [[
INSERT INTO partners (id, name, created_at) VALUES (?, ?, ?)]]

local SQL_ACCOUNT = [[
INSERT INTO accounts (number, partner, kind, name, bank_code, currency,
                      status, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?)]]


local function seed(conn, now)
    local ok, err

    for i = 1, #SEED.partners do
        local p = SEED.partners[i]
        ok, err = conn:run(SQL_PARTNER, p[1], p[2], now)
        if not ok then
            return nil, err
        end
    end

    for cur, number in pairs(_M.EQUITY) do
        ok, err = conn:run(SQL_ACCOUNT, number, nil, "internal",
                           "OpenBank sandbox funding (equity)", BANK_CODE,
                           cur, "active", now)
        if not ok then
            return nil, err
        end
    end

    for i = 1, #SEED.accounts do
        local a = SEED.accounts[i]
        local number, currency, opening = a[1], a[4], a[5]

        ok, err = conn:run(SQL_ACCOUNT, number, a[2], "customer", a[3],
                           BANK_CODE, currency, a[6] or "active", now)
        if not ok then
            return nil, err
        end

        if opening then
            local minor
            minor, err = money.parse_value(opening)
            if not minor then
                return nil, "seed " .. number .. ": " .. err
            end

            ok, err = ledger.post(conn, {
                id = "txn_opening_" .. number,
                kind = "opening",
                reference = number,
                description = "Opening balance",
                booked_at = now,
                legs = {
                    { account = _M.EQUITY[currency], amount = -minor,
                      currency = currency },
                    { account = number, amount = minor,
                      currency = currency },
                },
            })
            if not ok then
                return nil, err
            end
        end
    end

    return true
end


-- A partner the gateway vouches for and the bank does not know yet (a
-- registry partner, made through the Admin API or the developer portal):
-- the sandbox opens it one CNY account of OPEN_BALANCE, numbered
-- 62220210 and 8 digits.  Runs inside the caller's transaction.
local OPEN_BALANCE = "100000.00"

function _M.open_partner(conn, partner, now)
    local ok, err = conn:run(SQL_PARTNER, partner, partner, now)
    if not ok then
        return nil, err
    end

    local row
    row, err = conn:first("SELECT COUNT(*) AS n FROM accounts WHERE "
                          .. "number LIKE '62220210%'")
    if not row then
        return nil, err
    end

    local number = str_format("62220210%08d", row.n + 1)
    ok, err = conn:run(SQL_ACCOUNT, number, partner, "customer", partner,
                       BANK_CODE, "CNY", "active", now)
    if not ok then
        return nil, err
    end

    return ledger.post(conn, {
        id = "txn_opening_" .. number,
        kind = "opening",
        reference = number,
        description = "Opening balance",
        booked_at = now,
        legs = {
            { account = _M.EQUITY.CNY, amount = -money.parse_value(
                  OPEN_BALANCE), currency = "CNY" },
            { account = number, amount = money.parse_value(OPEN_BALANCE),
              currency = "CNY" },
        },
    })
end


-- Version 2: payments, the bank's own idempotency keys,
-- escrows and their history, verification attempts, and the escrow
-- holding account of each currency.
--
--   payments          seq orders them (newest first = seq descending:
--                     the cursor of GET /v1/payments); status pending ->
--                     accepted -> settled, or rejected with a reason
--   idempotency_keys  (partner, key) unique: a duplicate POST that passed
--                     the gateway (say, after it lost its record) gets the
--                     first answer again, never a second payment
--   escrows           the state machine of docs/integrators.md; amount,
--                     released and refunded in minor units; held = amount
--                     - released - refunded is on the escrow holding account while
--                     funded, partially_released or disputed
--   escrow_events     every move, for GET /v1/escrows/{id}
--   verifications     attempts per (partner, account) against enumeration
local V2 = [[
CREATE TABLE payments (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    partner     TEXT NOT NULL REFERENCES partners (id),
    debtor      TEXT NOT NULL REFERENCES accounts (number),
    creditor    TEXT NOT NULL,
    creditor_name TEXT NOT NULL,
    creditor_bank_code TEXT NOT NULL,
    amount      INTEGER NOT NULL CHECK (amount > 0),
    currency    TEXT NOT NULL,
    reference   TEXT NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('pending', 'accepted', 'settled',
                                  'rejected')),
    reason      TEXT,
    created_at  INTEGER NOT NULL,
    accepted_at INTEGER,
    settled_at  INTEGER,
    rejected_at INTEGER,
    CHECK ((status = 'rejected') = (reason IS NOT NULL))
) STRICT;

CREATE INDEX payments_by_partner ON payments (partner, seq);
CREATE INDEX payments_due ON payments (status, created_at);

CREATE TABLE idempotency_keys (
    partner     TEXT NOT NULL,
    key         TEXT NOT NULL,
    request     TEXT NOT NULL,
    status      INTEGER NOT NULL,
    body        TEXT NOT NULL,
    location    TEXT,
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (partner, key)
) STRICT;

CREATE TABLE escrows (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    partner     TEXT NOT NULL REFERENCES partners (id),
    payer       TEXT NOT NULL REFERENCES accounts (number),
    payee       TEXT NOT NULL REFERENCES accounts (number),
    amount      INTEGER NOT NULL CHECK (amount > 0),
    released    INTEGER NOT NULL DEFAULT 0 CHECK (released >= 0),
    refunded    INTEGER NOT NULL DEFAULT 0 CHECK (refunded >= 0),
    currency    TEXT NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('awaiting_funding', 'funded',
                                  'partially_released', 'released',
                                  'refunded', 'cancelled', 'disputed',
                                  'expired')),
    milestones  TEXT,
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    CHECK (released + refunded <= amount)
) STRICT;

CREATE INDEX escrows_due ON escrows (status, expires_at);

CREATE TABLE escrow_events (
    id          INTEGER PRIMARY KEY,
    escrow      TEXT NOT NULL REFERENCES escrows (id),
    event       TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status   TEXT NOT NULL,
    amount      INTEGER,
    at          INTEGER NOT NULL
) STRICT;

CREATE INDEX escrow_events_by_escrow ON escrow_events (escrow, id);

CREATE TABLE verifications (
    id          INTEGER PRIMARY KEY,
    partner     TEXT NOT NULL,
    account     TEXT NOT NULL,
    result      TEXT NOT NULL,
    at          INTEGER NOT NULL
) STRICT;

CREATE INDEX verifications_by_account ON verifications (partner, account, at);
]]

-- Version 3: the bank's idempotency keys expire (24 hours, as the
-- gateway's), and are deleted oldest first, a bounded batch at a time
-- (openbank.bank): an index on their creation time.
local V3 = [[
CREATE INDEX idempotency_keys_by_age ON idempotency_keys (created_at);
]]

-- Version 4: direct-debit mandates and the collections made under them
-- (openbank.collections).
--
--   mandates     the partner (creditor) may collect from payer into
--                creditor, up to max_amount a collection, until
--                expires_at; status pending_authorisation -> active ->
--                revoked or expired
--   collections  seq orders them; status pending -> settled, or failed
--                with a reason
local V4_COLLECTIONS = [[
CREATE TABLE mandates (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    partner     TEXT NOT NULL REFERENCES partners (id),
    payer       TEXT NOT NULL REFERENCES accounts (number),
    creditor    TEXT NOT NULL REFERENCES accounts (number),
    max_amount  INTEGER NOT NULL CHECK (max_amount > 0),
    currency    TEXT NOT NULL,
    reference   TEXT NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('pending_authorisation', 'active',
                                  'revoked', 'expired')),
    expires_at  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL,
    authorised_at INTEGER,
    revoked_at  INTEGER,
    expired_at  INTEGER
) STRICT;

CREATE INDEX mandates_due ON mandates (status, expires_at);

CREATE TABLE collections (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    partner     TEXT NOT NULL REFERENCES partners (id),
    mandate     TEXT NOT NULL REFERENCES mandates (id),
    payer       TEXT NOT NULL REFERENCES accounts (number),
    creditor    TEXT NOT NULL REFERENCES accounts (number),
    amount      INTEGER NOT NULL CHECK (amount > 0),
    currency    TEXT NOT NULL,
    reference   TEXT NOT NULL,
    status      TEXT NOT NULL
                CHECK (status IN ('pending', 'settled', 'failed')),
    reason      TEXT,
    created_at  INTEGER NOT NULL,
    settled_at  INTEGER,
    failed_at   INTEGER,
    CHECK ((status = 'failed') = (reason IS NOT NULL))
) STRICT;

CREATE INDEX collections_due ON collections (status, created_at);
]]

-- Version 5: payment batches (docs/erp.md).
--
--   payment_batches  one row per accepted batch: its partner, the MsgId of
--                    its pain.001 (or the JSON batch's message_id), unique
--                    per partner; the debtor account, count and total
--   payments         gain the batch, the item's position in it and its
--                    EndToEndId; a batch's items are payments like any
--                    other, settled or rejected one by one
local V5_BATCHES = [[
CREATE TABLE payment_batches (
    seq         INTEGER PRIMARY KEY,
    id          TEXT NOT NULL UNIQUE,
    partner     TEXT NOT NULL REFERENCES partners (id),
    message_id  TEXT,
    pmt_inf_id  TEXT,
    format      TEXT NOT NULL CHECK (format IN ('json', 'pain.001.001.09')),
    debtor      TEXT NOT NULL REFERENCES accounts (number),
    currency    TEXT NOT NULL,
    count       INTEGER NOT NULL CHECK (count > 0),
    total       INTEGER NOT NULL CHECK (total > 0),
    ctrl_sum    INTEGER,
    created_at  INTEGER NOT NULL,
    UNIQUE (partner, message_id)
) STRICT;

ALTER TABLE payments ADD COLUMN batch TEXT;
ALTER TABLE payments ADD COLUMN batch_index INTEGER;
ALTER TABLE payments ADD COLUMN end_to_end_id TEXT;

CREATE INDEX payments_by_batch ON payments (batch, batch_index);
]]


-- The escrow holding account per currency: the money of every funded
-- escrow, and nothing else.
-- Version 6: the events the bank posts to the gateway's webhooks
-- (openbank.webhooks): a row until the gateway answered 202 for it.
local V6_EVENTS = [[
CREATE TABLE bank_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    partner     TEXT NOT NULL,
    type        TEXT NOT NULL,
    data        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    claimed_at  INTEGER
) STRICT;
]]


_M.ESCROW = { CNY = "INT-ESCROW-CNY" }


local MIGRATIONS = {
    -- 1: accounts, ledger, seed data.
    function(conn, now)
        local ok, err = conn:exec(V1)
        if not ok then
            return nil, err
        end

        return seed(conn, now)
    end,

    -- 2: payments, idempotency keys, escrows, verifications.
    function(conn, now)
        local ok, err = conn:exec(V2)
        if not ok then
            return nil, err
        end

        for cur, number in pairs(_M.ESCROW) do
            ok, err = conn:run(SQL_ACCOUNT, number, nil, "internal",
                               "OpenBank escrow holdings", BANK_CODE, cur,
                               "active", now)
            if not ok then
                return nil, err
            end
        end

        return true
    end,

    -- 3: idempotency keys by age, for their expiry.
    function(conn)
        return conn:exec(V3)
    end,

    -- 4: mandates and collections.
    function(conn)
        return conn:exec(V4_COLLECTIONS)
    end,

    -- 5: payment batches.
    function(conn)
        return conn:exec(V5_BATCHES)
    end,

    -- 6: the events for the gateway's webhooks.
    function(conn)
        return conn:exec(V6_EVENTS)
    end,
}

_M.VERSION = #MIGRATIONS


local function migrate_locked(conn)
    local row, err = conn:first("PRAGMA user_version")
    if not row then
        return nil, err or "no user_version"
    end

    local from = row.user_version
    local to = #MIGRATIONS

    if from > to then
        return nil, str_format("database schema version %d is newer than "
                               .. "this code's (%d)", from, to)
    end

    if from == to then
        return true
    end

    ngx_update_time()
    local now = math_floor(ngx_now() * 1000)

    for v = from + 1, to do
        local ok
        ok, err = MIGRATIONS[v](conn, now)
        if not ok then
            return nil, str_format("migration %d: %s", v, err)
        end
    end

    local ok
    ok, err = ledger.verify(conn)
    if not ok then
        return nil, "ledger after migration: " .. err
    end

    -- PRAGMA takes no bound parameters; `to` is this file's constant.
    ok, err = conn:exec(str_format("PRAGMA user_version = %d", to))
    if not ok then
        return nil, err
    end

    ngx_log(ngx_NOTICE, "openbank bank: ", conn.path, ": schema version ",
            from, " -> ", to, from == 0 and " (created and seeded)" or "")

    return true
end


-- db.open()'s on_open: brings the database to this code's schema version.
function _M.migrate(conn)
    return conn:transaction(migrate_locked)
end


return _M
