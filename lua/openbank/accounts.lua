-- GET /v1/accounts: the partner's accounts with balance and available
-- (CONTRACT §3.6), in account-number order.

local json = require "openbank.json"
local money = require "openbank.money"

local to_json = money.to_json


local _M = {}


local SQL_LIST = [[
SELECT number, name, bank_code, currency, balance, held
FROM accounts
WHERE partner = ? AND kind = 'customer' AND status <> 'closed'
ORDER BY number]]


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
