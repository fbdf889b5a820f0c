-- Statements (docs/integrators.md), GET /v1/statements?date=YYYY-MM-DD
-- [&account=NUMBER]: the entries booked on the partner's accounts during
-- that day in the bank's timezone ($openbank_bank_timezone, +08:00 by
-- default), per account, with the opening balance (the sum of every entry
-- before the day), the closing balance (opening + the day's entries) and
-- each entry's balance after it.  closing - opening = credits - debits,
-- always: both come from the same ledger rows.
--
-- &format=camt053 | mt940 | csv gives the same statement as a file
-- (openbank.statement_files; docs/erp.md); json, the default, as above.

local json = require "openbank.json"
local files = require "openbank.statement_files"
local money = require "openbank.money"
local problem = require "openbank.problem"
local util = require "openbank.util"

local to_json = money.to_json
local iso = util.iso
local ngx_get_uri_args = ngx.req.get_uri_args
local type = type


local _M = {}


local SQL_ACCOUNTS = [[
SELECT number, currency FROM accounts
WHERE partner = ? AND kind = 'customer' AND (? = '' OR number = ?)
ORDER BY number]]

local SQL_OPENING = [[
SELECT COALESCE(SUM(amount), 0) AS total FROM entries
WHERE account = ? AND booked_at < ?]]

local SQL_ENTRIES = [[
SELECT e.id, e.txn_id, e.amount, e.booked_at, e.description,
       t.kind, t.reference
FROM entries AS e JOIN transactions AS t ON t.id = e.txn_id
WHERE e.account = ? AND e.booked_at >= ? AND e.booked_at < ?
ORDER BY e.booked_at, e.id]]


-- An account's statement for the JSON answer: its entries with the
-- balance after each.
local function json_account(a, opening, es)
    local balance = opening
    local credits, debits = 0, 0

    local entries = {}
    for j = 1, #es do
        local e = es[j]
        balance = balance + e.amount
        if e.amount > 0 then
            credits = credits + e.amount
        else
            debits = debits - e.amount
        end

        entries[j] = {
            id = e.id,
            transaction_id = e.txn_id,
            kind = e.kind,
            reference = e.reference,
            description = e.description,
            direction = e.amount > 0 and "credit" or "debit",
            amount = to_json(e.amount, a.currency),
            balance_after = to_json(balance, a.currency),
            booked_at = iso(e.booked_at),
        }
    end

    return {
        number = a.number,
        opening_balance = to_json(opening, a.currency),
        closing_balance = to_json(balance, a.currency),
        total_credits = to_json(credits, a.currency),
        total_debits = to_json(debits, a.currency),
        entries = json.array(entries),
    }
end


local FORMATS = { json = true, camt053 = true, mt940 = true, csv = true }


function _M.get(req)
    local args = ngx_get_uri_args(8)
    local tz, tzname = util.timezone()

    local format = args.format or "json"
    if type(format) ~= "string" or not FORMATS[format] then
        return nil, problem.err("invalid_request", "format: must be one of "
                                .. "json, camt053, mt940, csv")
    end

    if type(args.date) ~= "string" then
        return nil, problem.err("invalid_request", "date: required, as "
                                .. "YYYY-MM-DD")
    end

    local start = util.parse_date(args.date, tz)
    if not start then
        return nil, problem.err("invalid_request", "date: must be a "
                                .. "calendar date YYYY-MM-DD")
    end

    local account = args.account or ""
    if type(account) ~= "string" then
        return nil, problem.err("invalid_request", "account: given twice")
    end

    local stop = start + 86400 * 1000
    local conn = req.db

    local rows, err = conn:query(SQL_ACCOUNTS, req.partner, account, account)
    if not rows then
        return nil, err
    end

    if account ~= "" and #rows == 0 then
        return nil, problem.err("not_found", "No account " .. account:sub(1,
                                34) .. " of yours.")
    end

    local out = {}
    for i = 1, #rows do
        local a = rows[i]
        local row
        row, err = conn:first(SQL_OPENING, a.number, start)
        if not row then
            return nil, err
        end

        local es
        es, err = conn:query(SQL_ENTRIES, a.number, start, stop)
        if not es then
            return nil, err
        end

        if format == "json" then
            out[i] = json_account(a, row.total, es)
        else
            out[i] = { number = a.number, currency = a.currency,
                       opening = row.total, entries = es }
        end
    end

    if format ~= "json" then
        return files.render(format, {
            date = args.date,
            account = account,
            from = start,
            to = stop,
            tz = tz,
            tzname = tzname,
            accounts = out,
        })
    end

    return 200, {
        date = args.date,
        timezone = tzname,
        from = iso(start),
        to = iso(stop),
        accounts = json.array(out),
    }
end


return _M
