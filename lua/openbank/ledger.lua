-- The double-entry ledger.
--
-- Money moves only by posting a transaction: a row of `transactions` and
-- two or more `entries` whose signed amounts (minor units; + credits the
-- account, - debits it) add up to zero in each currency.  The database
-- keeps every account's balance equal to the sum of its entries (trigger
-- entries_apply), refuses an entry in another currency than its account,
-- refuses to change or delete entries, and refuses a customer account's
-- balance below what is held on it (schema.lua).  What it cannot check per
-- row, that a transaction balances, post() checks before writing and
-- verify() checks over the whole ledger.
--
--   local ok, err = ledger.post(conn, {
--       id = "txn_...", kind = "payment", reference = "pay_...",
--       description = "...", booked_at = now_ms,
--       legs = {
--           { account = debtor,   amount = -125000, currency = "CNY" },
--           { account = creditor, amount =  125000, currency = "CNY" },
--       },
--   })
--
-- post() must run inside conn:transaction().

local type = type


local _M = {}


local SQL_TXN = [[
INSERT INTO transactions (id, kind, reference, description, booked_at)
VALUES (?, ?, ?, ?, ?)]]

local SQL_ENTRY = [[
INSERT INTO entries (txn_id, account, amount, currency, booked_at,
                     description)
VALUES (?, ?, ?, ?, ?, ?)]]


function _M.post(conn, txn)
    if not conn:in_transaction() then
        return nil, "ledger.post outside a transaction"
    end

    local legs = txn.legs
    local n = legs and #legs or 0
    if n < 2 then
        return nil, "a ledger transaction needs at least two entries"
    end

    -- Balanced per currency; at most a handful of legs and currencies.
    local currencies, sums, ncur = {}, {}, 0
    for i = 1, n do
        local leg = legs[i]
        local amount = leg.amount

        if type(amount) ~= "number" or amount % 1 ~= 0 or amount == 0 then
            return nil, "entry " .. i .. ": amount must be a non-zero "
                        .. "integer of minor units"
        end

        local cur = leg.currency
        local j = 1
        while j <= ncur and currencies[j] ~= cur do
            j = j + 1
        end

        if j > ncur then
            ncur = j
            currencies[j] = cur
            sums[j] = 0
        end

        sums[j] = sums[j] + amount
    end

    for j = 1, ncur do
        if sums[j] ~= 0 then
            return nil, "transaction " .. txn.id .. " does not balance in "
                        .. currencies[j]
        end
    end

    local ok, err, rc = conn:run(SQL_TXN, txn.id, txn.kind, txn.reference,
                                 txn.description, txn.booked_at)
    if not ok then
        return nil, err, rc
    end

    for i = 1, n do
        local leg = legs[i]
        ok, err, rc = conn:run(SQL_ENTRY, txn.id, leg.account, leg.amount,
                               leg.currency, txn.booked_at,
                               leg.description or txn.description)
        if not ok then
            return nil, err, rc
        end
    end

    return true
end


local SQL_UNBALANCED = [[
SELECT txn_id, currency, SUM(amount) AS total
FROM entries
GROUP BY txn_id, currency
HAVING SUM(amount) <> 0
LIMIT 1]]

local SQL_DRIFT = [[
SELECT a.number, a.balance, COALESCE(e.total, 0) AS total
FROM accounts AS a
LEFT JOIN (SELECT account, SUM(amount) AS total
           FROM entries GROUP BY account) AS e
       ON e.account = a.number
WHERE a.balance <> COALESCE(e.total, 0)
LIMIT 1]]

local SQL_EMPTY_TXN = [[
SELECT t.id
FROM transactions AS t
WHERE NOT EXISTS (SELECT 1 FROM entries WHERE txn_id = t.id)
LIMIT 1]]


-- Checks the whole ledger: every transaction balances per currency, has
-- entries, and every account's balance is the sum of its entries.
-- Returns true, or nil and what is wrong.
function _M.verify(conn)
    local row, err = conn:first(SQL_UNBALANCED)
    if err then
        return nil, err
    end
    if row then
        return nil, "transaction " .. row.txn_id .. " does not balance in "
                    .. row.currency .. " (" .. row.total .. ")"
    end

    row, err = conn:first(SQL_DRIFT)
    if err then
        return nil, err
    end
    if row then
        return nil, "account " .. row.number .. " has balance "
                    .. row.balance .. " but its entries sum to " .. row.total
    end

    row, err = conn:first(SQL_EMPTY_TXN)
    if err then
        return nil, err
    end
    if row then
        return nil, "transaction " .. row.id .. " has no entries"
    end

    return true
end


return _M
