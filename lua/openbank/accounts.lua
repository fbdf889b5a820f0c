-- GET /v1/accounts: the partner's accounts with balance and available
-- (docs/integrators.md), in account-number order; and the one lookup of an
-- account (get()) and the one check that a partner may spend from one
-- (own()), for payments and escrows.

local json = require "openbank.json"
local money = require "openbank.money"
local problem = require "openbank.problem"

local to_json = money.to_json


local _M = {}


local SQL_LIST = [[
SELECT number, name, bank_code, currency, balance, held
FROM accounts
WHERE partner = ? AND kind = 'customer' AND status <> 'closed'
ORDER BY number]]

local SQL_ACCOUNT = [[
SELECT number, partner, kind, name, bank_code, currency, balance, held,
       status
FROM accounts WHERE number = ?]]


-- The account `number`: its row, nil if there is none, or nil, err.
function _M.get(conn, number)
    return conn:first(SQL_ACCOUNT, number)
end


-- The account `number` that `partner` debits, in `currency`: its row, or
-- nil and the invalid_body problem naming the `role` of the account
-- ("debtor", "payer": the body's field <role>_account), or nil, err.
function _M.own(conn, partner, number, currency, role)
    local a, err = conn:first(SQL_ACCOUNT, number)
    if err then
        return nil, err
    end

    if not a or a.partner ~= partner then
        return nil, problem.err("invalid_body", role .. "_account.number: "
                                .. "not an account of yours")
    end

    if a.currency ~= currency then
        return nil, problem.err("invalid_body", "amount.currency: the "
                                .. role .. " account holds " .. a.currency)
    end

    return a
end


-- req: { partner, request_id, db, params, method, path } (openbank.bank)
function _M.list(req)
    local rows, err = req.db:query(SQL_LIST, req.partner)
    if not rows then
        return nil, err
    end

    local list = {}
    for i = 1, #rows do
        local r = rows[i]

        local balance, berr = to_json(r.balance, r.currency)
        local available, aerr = to_json(r.balance - r.held, r.currency)
        if not balance or not available then
            return nil, "account " .. r.number .. ": " .. (berr or aerr)
        end

        list[i] = {
            number = r.number,
            name = r.name,
            bank_code = r.bank_code,
            balance = balance,
            available = available,
        }
    end

    return 200, { accounts = json.array(list) }
end


return _M
