-- Escrows (docs/integrators.md): POST /v1/escrows, GET /v1/escrows/{id},
-- POST /v1/escrows/{id}/fund | release | refund | dispute | cancel.
--
-- The state machine (anything else is 409 invalid_state):
--
--   awaiting_funding --fund--> funded            payer -> escrow holding
--   awaiting_funding --cancel--> cancelled        no money moves
--   awaiting_funding --(expires_at)--> expired    no money moves
--   funded | partially_released --release--> partially_released | released
--                                                 escrow holding -> payee
--   funded | partially_released | disputed --refund--> refunded
--                                                 what is held -> payer
--   funded | partially_released --dispute--> disputed
--   disputed --release--> partially_released | released (resolution)
--   funded | partially_released --(expires_at)--> expired
--                                                 what is held -> payer
--
-- A disputed escrow does not expire: it waits for a release or a refund.
-- The escrow holding account (schema.ESCROW) holds exactly the sum of
-- amount - released - refunded over the escrows that are funded,
-- partially_released or disputed; every move is one balanced ledger
-- transaction, so money never appears or vanishes.

local accounts = require "openbank.accounts"
local json = require "openbank.json"
local ledger = require "openbank.ledger"
local money = require "openbank.money"
local problem = require "openbank.problem"
local schema = require "openbank.schema"
local util = require "openbank.util"
local webhooks = require "openbank.webhooks"

local account = accounts.get
local iso = util.iso
local json_array = json.array
local json_decode = json.decode
local json_encode = json.encode
local money_parse = money.parse
local now_ms = util.now_ms
local ngx_req = ngx.req
local problem_err = problem.err
local util_body_object = util.body_object
local util_only = util.only
local util_text = util.text
local worker_pid = ngx.worker.pid
local to_json = money.to_json
local next = next
local tostring = tostring
local type = type


local _M = {}


local SQL_INSERT = [[
INSERT INTO escrows (id, partner, payer, payee, amount, currency, status,
                     milestones, expires_at, created_at, updated_at)
VALUES (?, ?, ?, ?, ?, ?, 'awaiting_funding', ?, ?, ?, ?)]]

local SQL_GET = [[SELECT * FROM escrows WHERE id = ? AND partner = ?]]

local SQL_EVENT = [[
INSERT INTO escrow_events (escrow, event, from_status, to_status, amount, at)
VALUES (?, ?, ?, ?, ?, ?)]]

local SQL_EVENTS = [[
SELECT event, from_status, to_status, amount, at
FROM escrow_events WHERE escrow = ? ORDER BY id]]

local SQL_UPDATE = [[
UPDATE escrows SET status = ?, released = ?, refunded = ?, milestones = ?,
                   updated_at = ?
WHERE id = ? AND status = ?]]

local SQL_DUE = [[
SELECT * FROM escrows
WHERE status IN ('awaiting_funding', 'funded', 'partially_released')
  AND expires_at <= ?
ORDER BY seq LIMIT 200]]

local SQL_ANY_DUE = [[
SELECT 1 AS due FROM escrows
WHERE status IN ('awaiting_funding', 'funded', 'partially_released')
  AND expires_at <= ?
LIMIT 1]]


local MAX_MILESTONES = 20
local MAX_LIFETIME_MS = 366 * 86400 * 1000

local CREATE_FIELDS = {
    payer_account = true, payee_account = true, amount = true,
    expires_at = true, milestones = true,
}


local function view(conn, e)
    local events, err = conn:query(SQL_EVENTS, e.id)
    if not events then
        return nil, err
    end

    local history = {}
    for i = 1, #events do
        local ev = events[i]
        history[i] = {
            event = ev.event,
            from = ev.from_status,
            to = ev.to_status,
            amount = ev.amount and to_json(ev.amount, e.currency) or nil,
            at = iso(ev.at),
        }
    end

    local milestones
    if e.milestones then
        milestones = json_decode(e.milestones)
        for i = 1, #milestones do
            milestones[i].amount = to_json(milestones[i].amount, e.currency)
        end
        milestones = json_array(milestones)
    end

    local held = 0
    if e.status == "funded" or e.status == "partially_released"
       or e.status == "disputed"
    then
        held = e.amount - e.released - e.refunded
    end

    return {
        id = e.id,
        status = e.status,
        payer_account = { number = e.payer },
        payee_account = { number = e.payee },
        amount = to_json(e.amount, e.currency),
        released = to_json(e.released, e.currency),
        refunded = to_json(e.refunded, e.currency),
        held = to_json(held, e.currency),
        milestones = milestones,
        expires_at = iso(e.expires_at),
        created_at = iso(e.created_at),
        updated_at = iso(e.updated_at),
        history = json_array(history),
    }
end


local function holding(e)
    return schema.ESCROW[e.currency]
end


-- the moves partners are told of (openbank.webhooks)
local TOLD = {
    funded = true, partially_released = true, released = true,
    refunded = true, disputed = true, cancelled = true, expired = true,
}


-- one move: new status, amounts, the ledger, the history
local function move(conn, e, event, to, released, refunded, amount,
                    milestones, now)
    local n, err = conn:run(SQL_UPDATE, to, released, refunded,
                            milestones or e.milestones, now, e.id, e.status)
    if not n then
        return nil, err
    end

    if n ~= 1 then
        return nil, "escrow " .. e.id .. " changed under the transaction"
    end

    local ok
    ok, err = conn:run(SQL_EVENT, e.id, event, e.status, to, amount, now)
    if not ok then
        return nil, err
    end

    -- the partner's webhook event, in the same transaction
    if not TOLD[to] then
        return ok
    end

    local moved = conn:first(SQL_GET, e.id, e.partner)
    local v
    if moved then
        v, err = view(conn, moved)
    end
    if not v then
        return nil, err or "escrow " .. e.id .. " is gone"
    end

    return webhooks.emit(conn, e.partner, "escrow." .. to, v)
end


local txn_seq = 0

local function txn_n()
    txn_seq = txn_seq + 1
    return tostring(worker_pid()) .. "_" .. txn_seq
end


local function ledger_move(conn, e, kind, amount, from, to, now)
    return ledger.post(conn, {
        id = "txn_" .. e.id .. "_" .. kind .. "_" .. txn_n(),
        kind = "escrow_" .. kind,
        reference = e.id,
        description = "Escrow " .. e.id .. ": " .. kind,
        booked_at = now,
        legs = {
            { account = from, amount = -amount, currency = e.currency },
            { account = to, amount = amount, currency = e.currency },
        },
    })
end


local function expire(conn, e, now)
    local remaining = e.amount - e.released - e.refunded
    local refunded = e.refunded

    if e.status ~= "awaiting_funding" and remaining > 0 then
        local ok, err = ledger_move(conn, e, "expiry", remaining,
                                    holding(e), e.payer, now)
        if not ok then
            return nil, err
        end
        refunded = refunded + remaining
    else
        remaining = nil
    end

    return move(conn, e, "expire", "expired", e.released, refunded,
                remaining, nil, now)
end


local function step(conn, now)
    local rows, err = conn:query(SQL_DUE, now)
    if not rows then
        return nil, err
    end

    for i = 1, #rows do
        local ok
        ok, err = expire(conn, rows[i], now)
        if not ok then
            return nil, err
        end
    end

    return true
end


-- Expires every escrow whose time has come (timer and before reads).
function _M.advance(conn, now)
    local row, err = conn:first(SQL_ANY_DUE, now)
    if err then
        return nil, err
    end

    if not row then
        return true
    end

    return conn:transaction(step, now)
end


function _M.create(req)
    local obj, err = util_body_object(CREATE_FIELDS)
    if not obj then
        return nil, err
    end

    local ok

    local payer
    payer, err = util.account(obj.payer_account, "payer_account", false)
    if not payer then
        return nil, err
    end

    local payee
    payee, err = util.account(obj.payee_account, "payee_account", false)
    if not payee then
        return nil, err
    end

    local amount, currency = money_parse(obj.amount, "amount")
    if not amount then
        return nil, problem_err("invalid_body", currency)
    end

    local now = now_ms()
    local expires = util.parse_datetime(obj.expires_at)
    if not expires then
        return nil, problem_err("invalid_body", "expires_at: must be an "
                                .. "RFC 3339 date-time")
    end

    if expires <= now or expires > now + MAX_LIFETIME_MS then
        return nil, problem_err("invalid_body", "expires_at: must be in "
                                .. "the future, within 366 days")
    end

    local milestones
    if obj.milestones ~= nil then
        local ms = obj.milestones
        if type(ms) ~= "table" or #ms == 0 or #ms > MAX_MILESTONES
           or next(ms, #ms > 0 and #ms or nil) ~= nil
        then
            return nil, problem_err("invalid_body", "milestones: must be "
                                    .. "an array of 1 to " .. MAX_MILESTONES
                                    .. " milestones")
        end

        local sum = 0
        milestones = {}
        for i = 1, #ms do
            local f = "milestones[" .. (i - 1) .. "]"
            local m = ms[i]
            if type(m) ~= "table" then
                return nil, problem_err("invalid_body", f
                                        .. ": must be an object")
            end

            ok, err = util_only(m, { name = true, amount = true }, f .. ".")
            if not ok then
                return nil, err
            end

            ok, err = util_text(m.name, f .. ".name", 140)
            if not ok then
                return nil, err
            end

            local n, c = money_parse(m.amount, f .. ".amount")
            if not n then
                return nil, problem_err("invalid_body", c)
            end

            if c ~= currency then
                return nil, problem_err("invalid_body", f .. ".amount."
                                        .. "currency: must be the escrow's")
            end

            for j = 1, #milestones do
                if milestones[j].name == m.name then
                    return nil, problem_err("invalid_body", f .. ".name: "
                                            .. "given twice")
                end
            end

            sum = sum + n
            milestones[i] = { name = m.name, amount = n, released = false }
        end

        if sum ~= amount then
            return nil, problem_err("invalid_body", "milestones: their "
                                    .. "amounts must add up to amount")
        end
    end

    local conn = req.db
    local a
    a, err = accounts.own(conn, req.partner, payer.number, currency, "payer")
    if not a then
        return nil, err
    end

    if not schema.ESCROW[currency] then
        return nil, problem_err("invalid_body", "amount.currency: the "
                                .. "payer account holds " .. a.currency)
    end

    local b
    b, err = account(conn, payee.number)
    if err then
        return nil, err
    end

    if not b or b.kind ~= "customer" or b.status ~= "active"
       or b.currency ~= currency or b.number == a.number
    then
        return nil, problem_err("invalid_body", "payee_account.number: "
                                .. "no active account of this bank in "
                                .. currency .. " other than the payer")
    end

    local id
    id, err = util.id("esc_")
    if not id then
        return nil, err
    end

    local ms_json
    if milestones then
        ms_json, err = json_encode(milestones)
        if not ms_json then
            return nil, err
        end
    end

    ok, err = conn:run(SQL_INSERT, id, req.partner, payer.number,
                       payee.number, amount, currency, ms_json, expires,
                       now, now)
    if not ok then
        return nil, err
    end

    ok, err = conn:run(SQL_EVENT, id, "create", "awaiting_funding",
                       "awaiting_funding", amount, now)
    if not ok then
        return nil, err
    end

    local e = conn:first(SQL_GET, id, req.partner)
    local v
    v, err = view(conn, e)
    if not v then
        return nil, err
    end

    return 201, v, { "Location", "/v1/escrows/" .. id }
end


local function load(req, now)
    local conn = req.db
    local ok, err = _M.advance(conn, now)
    if not ok then
        return nil, err
    end

    local e
    e, err = conn:first(SQL_GET, req.params.id, req.partner)
    if err then
        return nil, err
    end

    if not e then
        return nil, problem_err("not_found", "No escrow "
                                .. req.params.id:sub(1, 64) .. ".")
    end

    return e
end


function _M.get(req)
    local e, err = load(req, now_ms())
    if not e then
        return nil, err
    end

    local v
    v, err = view(req.db, e)
    if not v then
        return nil, err
    end

    return 200, v
end


-- an optional JSON body: {} or nothing; `fields` the ones allowed
local function optional_body(fields)
    ngx_req.read_body()
    local data = ngx_req.get_body_data()
    if (not data or data == "") and not ngx_req.get_body_file() then
        return {}
    end

    local obj, err = util_body_object(fields)
    if not obj then
        return nil, err
    end

    local ok

    return obj
end


-- The actions: each one function(conn, e, obj, now) that makes its move
-- on the escrow e (its state already checked) and returns true, or nil
-- and a problem or an error.

local function fund(conn, e, obj, now)
    local a, err = account(conn, e.payer)
    if not a then
        return nil, err or "payer account vanished"
    end

    if a.status ~= "active" or a.balance - a.held < e.amount then
        return nil, problem_err("invalid_state", "The payer account's "
                                .. "available balance does not cover the "
                                .. "escrow.")
    end

    local ok
    ok, err = ledger_move(conn, e, "fund", e.amount, e.payer, holding(e),
                          now)
    if not ok then
        return nil, err
    end

    return move(conn, e, "fund", "funded", 0, 0, e.amount, nil, now)
end


local function cancel(conn, e, obj, now)
    return move(conn, e, "cancel", "cancelled", 0, 0, nil, nil, now)
end


local function dispute(conn, e, obj, now)
    return move(conn, e, "dispute", "disputed", e.released, e.refunded,
                nil, nil, now)
end


local function refund(conn, e, obj, now)
    local remaining = e.amount - e.released - e.refunded
    local ok, err = ledger_move(conn, e, "refund", remaining, holding(e),
                                e.payer, now)
    if not ok then
        return nil, err
    end

    return move(conn, e, "refund", "refunded", e.released,
                e.refunded + remaining, remaining, nil, now)
end


-- the amount of a release by amount: what is asked, or nil and a problem
local function release_amount(e, obj, remaining)
    local amount, cur = money_parse(obj.amount, "amount")
    if not amount then
        return nil, problem_err("invalid_body", cur)
    end

    if cur ~= e.currency then
        return nil, problem_err("invalid_body", "amount.currency: must be "
                                .. e.currency)
    end

    if amount > remaining then
        return nil, problem_err("invalid_body", "amount: exceeds what the "
                                .. "escrow holds")
    end

    return amount
end


-- a release by milestone: its amount and the milestones with it
-- released (JSON), or nil and a problem
local function release_milestone(e, obj, remaining)
    if type(obj.milestone) ~= "string" or not e.milestones then
        return nil, problem_err("invalid_body", "milestone: must name a "
                                .. "milestone of this escrow")
    end

    local ms = json_decode(e.milestones)
    local found
    for i = 1, #ms do
        if ms[i].name == obj.milestone then
            found = ms[i]
        end
    end

    if not found then
        return nil, problem_err("invalid_body", "milestone: must name a "
                                .. "milestone of this escrow")
    end

    if found.released then
        return nil, problem_err("invalid_state", "Milestone already "
                                .. "released.")
    end

    if found.amount > remaining then
        return nil, problem_err("invalid_state", "The escrow no longer "
                                .. "holds the milestone's amount.")
    end

    found.released = true
    return found.amount, json_encode(ms)
end


-- a release of `amount`, of a `milestone`, or else of all it holds
local function release(conn, e, obj, now)
    local remaining = e.amount - e.released - e.refunded
    local amount = remaining
    local ms_json, err

    if obj.amount ~= nil and obj.milestone ~= nil then
        return nil, problem_err("invalid_body", "amount: give either "
                                .. "amount or milestone")
    end

    if obj.amount ~= nil then
        amount, err = release_amount(e, obj, remaining)
        if not amount then
            return nil, err
        end

    elseif obj.milestone ~= nil then
        amount, ms_json = release_milestone(e, obj, remaining)
        if not amount then
            return nil, ms_json
        end
    end

    local released = e.released + amount
    local to = (released + e.refunded == e.amount) and "released"
               or "partially_released"

    local ok
    ok, err = ledger_move(conn, e, "release", amount, holding(e), e.payee,
                          now)
    if not ok then
        return nil, err
    end

    return move(conn, e, "release", to, released, e.refunded, amount,
                ms_json, now)
end


-- name -> the action: its function, the body fields it takes, the states
-- it leaves and the word of its refusal ("cannot be funded")
local ACTIONS = {
    fund = { run = fund, fields = {}, done = "funded",
             from = { awaiting_funding = true } },
    cancel = { run = cancel, fields = {}, done = "cancelled",
               from = { awaiting_funding = true } },
    release = { run = release, fields = { amount = true, milestone = true },
                done = "released",
                from = { funded = true, partially_released = true,
                         disputed = true } },
    refund = { run = refund, fields = { reason = true }, done = "refunded",
               from = { funded = true, partially_released = true,
                        disputed = true } },
    dispute = { run = dispute, fields = { reason = true }, done = "disputed",
                from = { funded = true, partially_released = true } },
}


-- POST /v1/escrows/{id}/<name>: the body, the state, the move, the view
local function act(req, name)
    local action = ACTIONS[name]
    local obj, err = optional_body(action.fields)
    if not obj then
        return nil, err
    end

    if obj.reason ~= nil then
        local ok
        ok, err = util_text(obj.reason, "reason", 500)
        if not ok then
            return nil, err
        end
    end

    local now = now_ms()
    local conn = req.db
    local e
    e, err = load(req, now)
    if not e then
        return nil, err
    end

    if not action.from[e.status] then
        return nil, problem_err("invalid_state", "An escrow that is "
                                .. e.status .. " cannot be " .. action.done
                                .. ".")
    end

    local ok
    ok, err = action.run(conn, e, obj, now)
    if not ok then
        return nil, err
    end

    e = conn:first(SQL_GET, e.id, req.partner)

    local v
    v, err = view(conn, e)
    if not v then
        return nil, err
    end

    return 200, v
end


function _M.fund(req)
    return act(req, "fund")
end


function _M.release(req)
    return act(req, "release")
end


function _M.refund(req)
    return act(req, "refund")
end


function _M.dispute(req)
    return act(req, "dispute")
end


function _M.cancel(req)
    return act(req, "cancel")
end


return _M
