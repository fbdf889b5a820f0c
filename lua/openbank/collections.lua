-- Mandates and collections (代收, docs/erp.md):
-- POST /v1/mandates, GET /v1/mandates/{id}, POST /v1/mandates/{id}/authorise,
-- DELETE /v1/mandates/{id}, POST /v1/collections, GET /v1/collections/{id}.
--
-- The partner is the creditor: a mandate lets it collect from a payer's
-- account (an account of another customer of the bank, never one of the
-- partner's own) into its own creditor account (the body's
-- creditor_account, else the partner's first account in the mandate's
-- currency).  max_amount bounds each collection.
--
-- A mandate's states (anything else is 409 invalid_state):
--
--   pending_authorisation --authorise--> active     the payer agrees
--   pending_authorisation | active --DELETE--> revoked
--   pending_authorisation | active --(expires_at)--> expired
--
-- A collection is created `pending` (201) on an active mandate (on one the
-- payer has not authorised yet it is 409 invalid_state).  After the
-- settlement delay it is checked against the mandate as it is then and the
-- payer's available balance, in this order: revoked (mandate_revoked),
-- expired (mandate_expired), amount above max_amount (over_limit), payer
-- or creditor account no longer active (invalid_account), available
-- balance short (insufficient_funds): `failed` with that reason, and no
-- money moves; else `settled`, and one ledger transaction books payer
-- -amount, creditor +amount.
--
-- The steps run from the settlement timer of openbank.payments (tick())
-- and before every read (advance()).

local accounts = require "openbank.accounts"
local ledger = require "openbank.ledger"
local money = require "openbank.money"
local problem = require "openbank.problem"
local util = require "openbank.util"
local webhooks = require "openbank.webhooks"

local account = accounts.get
local accounts_own = accounts.own
local iso = util.iso
local ledger_post = ledger.post
local money_parse = money.parse
local now_ms = util.now_ms
local problem_err = problem.err
local to_json = money.to_json
local util_account = util.account
local util_body_object = util.body_object
local util_id = util.id
local util_parse_datetime = util.parse_datetime
local util_text = util.text
local re_find = ngx.re.find
local type = type


local _M = {}


local SQL_MANDATE_INSERT = [[
INSERT INTO mandates (id, partner, payer, creditor, max_amount, currency,
                      reference, status, expires_at, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, 'pending_authorisation', ?, ?)]]

local SQL_MANDATE_GET = [[
SELECT * FROM mandates WHERE id = ? AND partner = ?]]

local SQL_MANDATE_MOVE = [[
UPDATE mandates SET status = ?, authorised_at = COALESCE(?, authorised_at),
                    revoked_at = COALESCE(?, revoked_at),
                    expired_at = COALESCE(?, expired_at)
WHERE id = ? AND status = ?]]

local SQL_MANDATES_EXPIRE = [[
UPDATE mandates SET status = 'expired', expired_at = ?
WHERE status IN ('pending_authorisation', 'active') AND expires_at <= ?]]

local SQL_FIRST_ACCOUNT = [[
SELECT number FROM accounts
WHERE partner = ? AND kind = 'customer' AND status = 'active'
  AND currency = ?
ORDER BY number LIMIT 1]]

local SQL_COLLECTION_INSERT = [[
INSERT INTO collections (id, partner, mandate, payer, creditor, amount,
                         currency, reference, status, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)]]

local SQL_COLLECTION_GET = [[
SELECT * FROM collections WHERE id = ? AND partner = ?]]

local SQL_DUE = [[
SELECT c.*, m.status AS mandate_status, m.max_amount, m.expires_at
FROM collections AS c JOIN mandates AS m ON m.id = c.mandate
WHERE c.status = 'pending' AND c.created_at <= ?
ORDER BY c.seq LIMIT 200]]

local SQL_ANY_DUE = [[
SELECT 1 AS due FROM collections WHERE status = 'pending' AND created_at <= ?
UNION ALL
SELECT 1 FROM mandates
WHERE status IN ('pending_authorisation', 'active') AND expires_at <= ?
LIMIT 1]]

local SQL_FAIL = [[
UPDATE collections SET status = 'failed', reason = ?, failed_at = ?
WHERE seq = ? AND status = 'pending']]

local SQL_SETTLE = [[
UPDATE collections SET status = 'settled', settled_at = ?
WHERE seq = ? AND status = 'pending']]


-- a mandate lives at most ten years
local MAX_LIFETIME_MS = 3660 * 86400 * 1000

local MANDATE_FIELDS = {
    payer_account = true, creditor_account = true, max_amount = true,
    expires_at = true, reference = true,
}

local COLLECTION_FIELDS = {
    mandate_id = true, amount = true, reference = true,
}

local ID_RE = [[^(?:mdt|col)_[0-9a-f]{24}\z]]


local function mandate_view(m)
    return {
        id = m.id,
        status = m.status,
        payer_account = { number = m.payer },
        creditor_account = { number = m.creditor },
        max_amount = to_json(m.max_amount, m.currency),
        reference = m.reference,
        expires_at = iso(m.expires_at),
        created_at = iso(m.created_at),
        authorised_at = iso(m.authorised_at),
        revoked_at = iso(m.revoked_at),
        expired_at = iso(m.expired_at),
    }
end


local function collection_view(c)
    return {
        id = c.id,
        status = c.status,
        reason = c.reason,
        mandate_id = c.mandate,
        payer_account = { number = c.payer },
        creditor_account = { number = c.creditor },
        amount = to_json(c.amount, c.currency),
        reference = c.reference,
        created_at = iso(c.created_at),
        settled_at = iso(c.settled_at),
        failed_at = iso(c.failed_at),
    }
end


-- the reason a due collection fails, or false: it settles
local function check(conn, c, now)
    if c.mandate_status == "revoked" then
        return "mandate_revoked"
    end

    if c.mandate_status == "expired" or c.expires_at <= now then
        return "mandate_expired"
    end

    if c.amount > c.max_amount then
        return "over_limit"
    end

    local payer, err = account(conn, c.payer)
    if err then
        return nil, err
    end

    local creditor
    creditor, err = account(conn, c.creditor)
    if err then
        return nil, err
    end

    if not payer or not creditor or payer.status ~= "active"
       or creditor.status ~= "active"
    then
        return "invalid_account"
    end

    if payer.balance - payer.held < c.amount then
        return "insufficient_funds"
    end

    return false
end


local function step(conn, now, delay)
    local ok, err = conn:run(SQL_MANDATES_EXPIRE, now, now)
    if not ok then
        return nil, err
    end

    local rows
    rows, err = conn:query(SQL_DUE, now - delay)
    if not rows then
        return nil, err
    end

    for i = 1, #rows do
        local c = rows[i]
        local reason
        reason, err = check(conn, c, now)
        if reason == nil then
            return nil, err
        end

        local told = "collection.settled"

        if reason then
            told = "collection.failed"
            ok, err = conn:run(SQL_FAIL, reason, now, c.seq)

        else
            ok, err = ledger_post(conn, {
                id = "txn_" .. c.id,
                kind = "collection",
                reference = c.id,
                description = "Collection " .. c.id .. ": " .. c.reference,
                booked_at = now,
                legs = {
                    { account = c.payer, amount = -c.amount,
                      currency = c.currency },
                    { account = c.creditor, amount = c.amount,
                      currency = c.currency },
                },
            })
            if ok then
                ok, err = conn:run(SQL_SETTLE, now, c.seq)
            end
        end

        if ok then
            local moved
            moved, err = conn:first(SQL_COLLECTION_GET, c.id, c.partner)
            if moved then
                ok, err = webhooks.emit(conn, c.partner, told,
                                        collection_view(moved))
            else
                ok, err = nil, err or "collection " .. c.id .. " is gone"
            end
        end

        if not ok then
            return nil, err
        end
    end

    return true
end


-- Expires mandates and settles or fails every collection whose time has
-- come.
function _M.advance(conn, now, delay)
    local row, err = conn:first(SQL_ANY_DUE, now - delay, now)
    if err then
        return nil, err
    end

    if not row then
        return true
    end

    return conn:transaction(step, now, delay)
end


local function no_mandate(id)
    return nil, problem_err("not_found", "No mandate " .. id:sub(1, 64)
                            .. ".")
end


-- The partner's mandate `id` as it is at `now` (expired once past
-- expires_at, written so), or nil, problem.
local function load_mandate(conn, partner, id, now)
    if type(id) ~= "string" or not re_find(id, ID_RE, "jo") then
        return no_mandate(type(id) == "string" and id or "")
    end

    local m, err = conn:first(SQL_MANDATE_GET, id, partner)
    if err then
        return nil, err
    end

    if not m then
        return no_mandate(id)
    end

    if (m.status == "pending_authorisation" or m.status == "active")
       and m.expires_at <= now
    then
        local ok
        ok, err = conn:run(SQL_MANDATE_MOVE, "expired", nil, nil, now, m.id,
                           m.status)
        if not ok then
            return nil, err
        end

        m.status = "expired"
        m.expired_at = now
    end

    return m
end


-- POST /v1/mandates (inside the request's transaction, bank.lua)
function _M.create_mandate(req)
    local obj, err = util_body_object(MANDATE_FIELDS)
    if not obj then
        return nil, err
    end

    local ok

    local payer
    payer, err = util_account(obj.payer_account, "payer_account", false)
    if not payer then
        return nil, err
    end

    local creditor
    if obj.creditor_account ~= nil then
        creditor, err = util_account(obj.creditor_account,
                                     "creditor_account", false)
        if not creditor then
            return nil, err
        end
    end

    local max, currency = money_parse(obj.max_amount, "max_amount")
    if not max then
        return nil, problem_err("invalid_body", currency)
    end

    local now = now_ms()
    local expires = util_parse_datetime(obj.expires_at)
    if not expires then
        return nil, problem_err("invalid_body", "expires_at: must be an "
                                .. "RFC 3339 date-time")
    end

    if expires <= now or expires > now + MAX_LIFETIME_MS then
        return nil, problem_err("invalid_body", "expires_at: must be in "
                                .. "the future and within ten years")
    end

    ok, err = util_text(obj.reference, "reference", 140)
    if not ok then
        return nil, err
    end

    local conn = req.db
    local creditor_number
    if creditor then
        local a
        a, err = accounts_own(conn, req.partner, creditor.number, currency,
                              "creditor")
        if not a then
            return nil, err
        end
        creditor_number = a.number

    else
        local row
        row, err = conn:first(SQL_FIRST_ACCOUNT, req.partner, currency)
        if err then
            return nil, err
        end
        if not row then
            return nil, problem_err("invalid_body", "max_amount.currency: "
                                    .. "you have no account in " .. currency)
        end
        creditor_number = row.number
    end

    -- one answer for every payer the bank cannot debit under a mandate,
    -- so that mandates do not tell which accounts exist
    local a
    a, err = account(conn, payer.number)
    if err then
        return nil, err
    end

    if not a or a.kind ~= "customer" or a.status ~= "active"
       or a.partner == req.partner or a.currency ~= currency
       or (payer.bank_code and payer.bank_code ~= a.bank_code)
    then
        return nil, problem_err("invalid_body", "payer_account.number: not "
                                .. "an account of another customer of the "
                                .. "bank in " .. currency)
    end

    local id
    id, err = util_id("mdt_")
    if not id then
        return nil, err
    end

    ok, err = conn:run(SQL_MANDATE_INSERT, id, req.partner, a.number,
                       creditor_number, max, currency, obj.reference,
                       expires, now)
    if not ok then
        return nil, err
    end

    local m
    m, err = conn:first(SQL_MANDATE_GET, id, req.partner)
    if not m then
        return nil, err or "mandate vanished"
    end

    return 201, mandate_view(m), { "Location", "/v1/mandates/" .. id }
end


function _M.get_mandate(req)
    local m, err = load_mandate(req.db, req.partner, req.params.id,
                                now_ms())
    if not m then
        return nil, err
    end

    return 200, mandate_view(m)
end


local function move(req, from, to, stamp)
    local conn = req.db
    local now = now_ms()

    local m, err = load_mandate(conn, req.partner, req.params.id, now)
    if not m then
        return nil, err
    end

    if not from[m.status] then
        return nil, problem_err("invalid_state", "A mandate that is "
                                .. m.status .. " cannot be " .. stamp
                                .. ".")
    end

    local ok
    ok, err = conn:run(SQL_MANDATE_MOVE, to,
                       to == "active" and now or nil,
                       to == "revoked" and now or nil, nil, m.id, m.status)
    if not ok then
        return nil, err
    end

    m, err = conn:first(SQL_MANDATE_GET, m.id, req.partner)
    if not m then
        return nil, err or "mandate vanished"
    end

    return 200, mandate_view(m)
end


local AUTHORISABLE = { pending_authorisation = true }
local REVOCABLE = { pending_authorisation = true, active = true }


-- POST /v1/mandates/{id}/authorise: the sandbox's stand-in for the payer
-- agreeing to the mandate at their bank.
function _M.authorise(req)
    return move(req, AUTHORISABLE, "active", "authorised")
end


-- DELETE /v1/mandates/{id}
function _M.revoke(req)
    return move(req, REVOCABLE, "revoked", "revoked")
end


-- POST /v1/collections (inside the request's transaction, bank.lua)
function _M.create_collection(req)
    local obj, err = util_body_object(COLLECTION_FIELDS)
    if not obj then
        return nil, err
    end

    local ok

    if type(obj.mandate_id) ~= "string" then
        return nil, problem_err("invalid_body", "mandate_id: must be the "
                                .. "id of a mandate")
    end

    local amount, currency = money_parse(obj.amount, "amount")
    if not amount then
        return nil, problem_err("invalid_body", currency)
    end

    ok, err = util_text(obj.reference, "reference", 140)
    if not ok then
        return nil, err
    end

    local conn = req.db
    local now = now_ms()
    local m
    m, err = load_mandate(conn, req.partner, obj.mandate_id, now)
    if not m then
        return nil, err
    end

    if m.status == "pending_authorisation" then
        return nil, problem_err("invalid_state", "The payer has not "
                                .. "authorised the mandate yet.")
    end

    if currency ~= m.currency then
        return nil, problem_err("invalid_body", "amount.currency: the "
                                .. "mandate is in " .. m.currency)
    end

    local id
    id, err = util_id("col_")
    if not id then
        return nil, err
    end

    ok, err = conn:run(SQL_COLLECTION_INSERT, id, req.partner, m.id, m.payer,
                       m.creditor, amount, currency, obj.reference, now)
    if not ok then
        return nil, err
    end

    local c
    c, err = conn:first(SQL_COLLECTION_GET, id, req.partner)
    if not c then
        return nil, err or "collection vanished"
    end

    return 201, collection_view(c), { "Location", "/v1/collections/" .. id }
end


function _M.get_collection(req)
    local id = req.params.id
    local c, err = req.db:first(SQL_COLLECTION_GET, id, req.partner)
    if err then
        return nil, err
    end

    if not c then
        return nil, problem_err("not_found", "No collection "
                                .. id:sub(1, 64) .. ".")
    end

    return 200, collection_view(c)
end


return _M
