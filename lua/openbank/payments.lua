-- Payments (docs/integrators.md): POST /v1/payments, GET /v1/payments/{id},
-- GET /v1/payments.
--
-- A payment is created `pending` (201).  After half the settlement delay
-- ($openbank_bank_settle_delay, seconds) it is checked: the creditor
-- account must exist (else rejected, account_not_found), be active, in
-- this bank and currency and not the debtor (else invalid_account), and
-- the debtor's available balance must cover it (else insufficient_funds);
-- if so it is `accepted` and the amount is held on the debtor account.
-- After the whole delay it is `settled`: the hold is released and the
-- ledger books debtor -amount, creditor +amount in one transaction.
--
-- The steps run from a recurring ngx.timer of each worker (tick()), and
-- also before every read (advance()), so that a read never shows a state
-- older than the clock allows, even right after a restart.

local accounts = require "openbank.accounts"
local ledger = require "openbank.ledger"
local json = require "openbank.json"
local money = require "openbank.money"
local problem = require "openbank.problem"
local util = require "openbank.util"
local webhooks = require "openbank.webhooks"

local ngx_decode_base64 = ngx.decode_base64
local ngx_encode_base64 = ngx.encode_base64
local ngx_log = ngx.log
local ngx_ERR = ngx.ERR
local ngx_timer_every = ngx.timer.every
local re_match = ngx.re.match
local math_floor = math.floor
local math_min = math.min
local ngx_get_uri_args = ngx.req.get_uri_args
local pairs = pairs
local tonumber = tonumber
local tostring = tostring
local type = type
local to_json = money.to_json
local iso = util.iso
local account = accounts.get


local _M = {}


local SQL_INSERT = [[
INSERT INTO payments (id, partner, debtor, creditor, creditor_name,
                      creditor_bank_code, amount, currency, reference,
                      status, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?)]]

local SQL_GET = [[
SELECT * FROM payments WHERE id = ? AND partner = ?]]

local SQL_DUE_PENDING = [[
SELECT * FROM payments WHERE status = 'pending' AND created_at <= ?
ORDER BY seq LIMIT 1000]]

local SQL_DUE_ACCEPTED = [[
SELECT * FROM payments WHERE status = 'accepted' AND created_at <= ?
ORDER BY seq LIMIT 1000]]

local SQL_ANY_DUE = [[
SELECT 1 AS due FROM payments
WHERE (status = 'pending' AND created_at <= ?)
   OR (status = 'accepted' AND created_at <= ?)
LIMIT 1]]

local SQL_REJECT = [[
UPDATE payments SET status = 'rejected', reason = ?, rejected_at = ?
WHERE seq = ? AND status = 'pending']]

local SQL_ACCEPT = [[
UPDATE payments SET status = 'accepted', accepted_at = ?
WHERE seq = ? AND status = 'pending']]

local SQL_SETTLE = [[
UPDATE payments SET status = 'settled', settled_at = ?
WHERE seq = ? AND status = 'accepted']]

local SQL_HOLD = [[
UPDATE accounts SET held = held + ? WHERE number = ?]]

local SQL_LIST = [[
SELECT * FROM payments
WHERE partner = ? AND seq < ? AND created_at >= ? AND created_at < ?
  AND (? = '' OR status = ?)
ORDER BY seq DESC LIMIT ?]]


local STATUSES = {
    pending = true, accepted = true, settled = true, rejected = true,
}

local FIELDS = {
    debtor_account = true, creditor_account = true, amount = true,
    reference = true,
}


local function view(p)
    return {
        id = p.id,
        status = p.status,
        reason = p.reason,
        debtor_account = { number = p.debtor },
        creditor_account = {
            number = p.creditor,
            name = p.creditor_name,
            bank_code = p.creditor_bank_code,
        },
        amount = to_json(p.amount, p.currency),
        reference = p.reference,
        created_at = iso(p.created_at),
        accepted_at = iso(p.accepted_at),
        settled_at = iso(p.settled_at),
        rejected_at = iso(p.rejected_at),
        batch_id = p.batch,
        end_to_end_id = p.end_to_end_id,
    }
end


-- the checks of acceptance: nil (accept) or the reason of a rejection
local function check(conn, p)
    local debtor, err = account(conn, p.debtor)
    if err then
        return nil, err
    end

    local creditor
    creditor, err = account(conn, p.creditor)
    if err then
        return nil, err
    end

    if not creditor or creditor.kind ~= "customer" then
        return "account_not_found"
    end

    if creditor.status ~= "active" or debtor.status ~= "active"
       or creditor.bank_code ~= p.creditor_bank_code
       or creditor.currency ~= p.currency
       or creditor.number == debtor.number
    then
        return "invalid_account"
    end

    if debtor.balance - debtor.held < p.amount then
        return "insufficient_funds"
    end

    return false
end


local SQL_BATCH_LEFT = [[
SELECT status, COUNT(*) AS n FROM payments WHERE batch = ? GROUP BY status]]


-- a batch whose last payment is settled or rejected: completed
local function batch_done(conn, p)
    local rows, err = conn:query(SQL_BATCH_LEFT, p.batch)
    if not rows then
        return nil, err
    end

    local counts = { pending = 0, accepted = 0, settled = 0, rejected = 0 }
    for i = 1, #rows do
        counts[rows[i].status] = rows[i].n
    end

    if counts.pending + counts.accepted > 0 then
        return true
    end

    local status = "partially_settled"
    if counts.rejected == 0 then
        status = "completed"
    elseif counts.settled == 0 then
        status = "rejected"
    end

    return webhooks.emit(conn, p.partner, "payment_batch.completed", {
        id = p.batch, status = status,
        settled = counts.settled, rejected = counts.rejected,
    })
end


-- the event of a move, in its transaction (openbank.webhooks); a batch
-- whose payment reached its end is in `batches`, checked once a step
local function tell(conn, p, type, batches)
    local q, err = conn:first(SQL_GET, p.id, p.partner)
    if not q then
        return nil, err or "payment " .. p.id .. " is gone"
    end

    if q.batch and q.status ~= "accepted" then
        batches[q.batch] = q
    end

    return webhooks.emit(conn, p.partner, type, view(q))
end


local function batches_done(conn, batches)
    for _, p in pairs(batches) do
        local ok, err = batch_done(conn, p)
        if not ok then
            return nil, err
        end
    end

    return true
end


local function step(conn, now, delay)
    local half = now - math_floor(delay / 2)
    local batches = {}

    local rows, err = conn:query(SQL_DUE_PENDING, half)
    if not rows then
        return nil, err
    end

    for i = 1, #rows do
        local p = rows[i]
        local reason
        reason, err = check(conn, p)
        if reason == nil then
            return nil, err
        end

        local ok
        if reason then
            ok, err = conn:run(SQL_REJECT, reason, now, p.seq)
            if ok then
                ok, err = tell(conn, p, "payment.rejected", batches)
            end
        else
            ok, err = conn:run(SQL_HOLD, p.amount, p.debtor)
            if ok then
                ok, err = conn:run(SQL_ACCEPT, now, p.seq)
            end
            if ok then
                ok, err = tell(conn, p, "payment.accepted", batches)
            end
        end

        if not ok then
            return nil, err
        end
    end

    rows, err = conn:query(SQL_DUE_ACCEPTED, now - delay)
    if not rows then
        return nil, err
    end

    for i = 1, #rows do
        local p = rows[i]
        local ok
        ok, err = conn:run(SQL_HOLD, -p.amount, p.debtor)
        if ok then
            ok, err = ledger.post(conn, {
                id = "txn_" .. p.id,
                kind = "payment",
                reference = p.id,
                description = "Payment " .. p.id .. ": " .. p.reference,
                booked_at = now,
                legs = {
                    { account = p.debtor, amount = -p.amount,
                      currency = p.currency },
                    { account = p.creditor, amount = p.amount,
                      currency = p.currency },
                },
            })
        end

        if ok then
            ok, err = conn:run(SQL_SETTLE, now, p.seq)
        end

        if ok then
            ok, err = tell(conn, p, "payment.settled", batches)
        end

        if not ok then
            return nil, err
        end
    end

    return batches_done(conn, batches)
end


-- Moves every payment whose time has come one or two steps on.
function _M.advance(conn, now, delay)
    local row, err = conn:first(SQL_ANY_DUE, now - math_floor(delay / 2),
                                now - delay)
    if err then
        return nil, err
    end

    if not row then
        return true
    end

    return conn:transaction(step, now, delay)
end


local function on_timer(premature, path, delay, events)
    if premature then
        return
    end

    local db = require "openbank.db"
    local schema = require "openbank.schema"

    local conn, err = db.open(path, schema.migrate)
    if conn then
        local ok
        ok, err = _M.advance(conn, util.now_ms(), delay)
        if ok then
            local escrows = require "openbank.escrows"
            ok, err = escrows.advance(conn, util.now_ms())
        end
        if ok then
            local collections = require "openbank.collections"
            ok, err = collections.advance(conn, util.now_ms(), delay)
        end
        if ok then
            ok, err = webhooks.flush(conn, events)
        end
        if ok then
            return
        end
    end

    ngx_log(ngx_ERR, "openbank bank: settlement timer: ", err)
end


-- One recurring timer per worker and database moves payments on and
-- expires escrows (TICK seconds apart), so the number of timers never
-- grows with the number of payments; reads advance too (advance()).
local TICK = 0.2
local ticking = {}

function _M.tick(path, delay, events)
    if ticking[path] then
        return
    end

    local ok, err = ngx_timer_every(TICK, on_timer, path, delay, events)
    if not ok then
        ngx_log(ngx_ERR, "openbank bank: settlement timer: ", err)
        return
    end

    ticking[path] = true
end


-- POST /v1/payments (runs inside the request's transaction, bank.lua)
function _M.create(req)
    local obj, err = util.body_object(FIELDS)
    if not obj then
        return nil, err
    end

    local ok

    local debtor
    debtor, err = util.account(obj.debtor_account, "debtor_account", false)
    if not debtor then
        return nil, err
    end

    local creditor
    creditor, err = util.account(obj.creditor_account, "creditor_account",
                                 true)
    if not creditor then
        return nil, err
    end

    local amount, currency = money.parse(obj.amount, "amount")
    if not amount then
        return nil, problem.err("invalid_body", currency)
    end

    ok, err = util.text(obj.reference, "reference", 140)
    if not ok then
        return nil, err
    end

    local conn = req.db
    ok, err = accounts.own(conn, req.partner, debtor.number, currency,
                           "debtor")
    if not ok then
        return nil, err
    end

    local id
    id, err = util.id("pay_")
    if not id then
        return nil, err
    end

    local now = util.now_ms()
    ok, err = conn:run(SQL_INSERT, id, req.partner, debtor.number,
                       creditor.number, creditor.name, creditor.bank_code,
                       amount, currency, obj.reference, now)
    if not ok then
        return nil, err
    end

    local p
    p, err = conn:first(SQL_GET, id, req.partner)
    if not p then
        return nil, err or "payment vanished"
    end


    return 201, view(p), { "Location", "/v1/payments/" .. id }
end


function _M.get(req)
    local p, err = req.db:first(SQL_GET, req.params.id, req.partner)
    if err then
        return nil, err
    end

    if not p then
        return nil, problem.err("not_found", "No payment "
                                .. req.params.id:sub(1, 64) .. ".")
    end

    return 200, view(p)
end


local function bad(name, what)
    return nil, problem.err("invalid_request", name .. ": " .. what)
end


-- cursors: "p1." and the base64 of the last seq seen; opaque to partners
local function encode_cursor(seq)
    return "p1." .. ngx_encode_base64(tostring(seq))
end


local function decode_cursor(c)
    local m = re_match(c, [[^p1\.([A-Za-z0-9+/=]{1,24})\z]], "jo")
    if not m then
        return nil
    end

    local s = ngx_decode_base64(m[1])
    if not s or not re_match(s, [[^[1-9][0-9]{0,15}\z]], "jo") then
        return nil
    end

    return tonumber(s)
end


local function time_param(v, name, tz, day_end)
    if v == nil then
        return nil
    end

    local t = util.parse_datetime(v)
    if t then
        return t
    end

    t = util.parse_date(v, tz)
    if t then
        return day_end and t + 86400000 or t
    end

    return false
end


-- GET /v1/payments?from=&to=&status=&limit=&cursor=
function _M.list(req)
    local args = ngx_get_uri_args(16)
    local tz = util.timezone()

    for k, v in pairs(args) do
        if type(v) ~= "string" then
            return bad(tostring(k), "must be given once, with a value")
        end
    end

    local from = time_param(args.from, "from", tz, false)
    if from == false then
        return bad("from", "must be an RFC 3339 date-time or a date")
    end

    local to = time_param(args.to, "to", tz, true)
    if to == false then
        return bad("to", "must be an RFC 3339 date-time or a date")
    end

    local status = args.status or ""
    if status ~= "" and not STATUSES[status] then
        return bad("status", "must be pending, accepted, settled or "
                             .. "rejected")
    end

    local limit = 20
    if args.limit then
        limit = tonumber(args.limit)
        if not limit or limit % 1 ~= 0 or limit < 1 or limit > 100
           or not re_match(args.limit, [[^[0-9]+\z]], "jo")
        then
            return bad("limit", "must be an integer from 1 to 100")
        end
    end

    local before = 9007199254740991
    if args.cursor then
        before = decode_cursor(args.cursor)
        if not before then
            return bad("cursor", "is not a cursor this API gave")
        end
    end

    local rows, err = req.db:query(SQL_LIST, req.partner, before,
                                   from or 0, to or 9007199254740991,
                                   status, status, limit + 1)
    if not rows then
        return nil, err
    end

    local list = {}
    for i = 1, math_min(#rows, limit) do
        list[i] = view(rows[i])
    end

    local next_cursor
    if #rows > limit then
        next_cursor = encode_cursor(rows[limit].seq)
    end

    return 200, { payments = json.array(list),
                  next_cursor = next_cursor or json.null }
end


return _M
