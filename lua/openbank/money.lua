-- Money: integer minor units inside the bank, strings on the wire.
--
-- On the wire an amount is {"value": "1250.00", "currency": "CNY"}
-- (docs/openapi.yaml, Amount): the value is a string with exactly two decimals, the currency an
-- ISO 4217 code.  Inside the bank it is an integer count of minor units
-- (125000 fen).  There is no floating point anywhere in the conversion: the
-- value is parsed from its digits and printed from its digits.
--
-- Lua numbers are doubles, which hold every integer up to 2^53 exactly.  The
-- parser accepts at most 13 integer digits, so the largest amount is
-- 9999999999999.99 (999999999999999 minor units, below 2^53); sums of such
-- amounts stay exact as long as they stay below 2^53 (about 90 trillion in a
-- two-decimal currency), which openbank.db checks when it reads an integer.

local re_match = ngx.re.match
local str_format = string.format
local str_rep = string.rep
local str_sub = string.sub
local tonumber = tonumber
local type = type


local _M = {}


-- The largest integer a double holds exactly.
local MAX_EXACT = 9007199254740991

-- The currencies the bank keeps, all with two minor digits: the contract
-- fixes two decimals, so currencies with another exponent (JPY, KRW: 0;
-- BHD, KWD: 3) are deliberately absent.
local CURRENCIES = {
    AUD = true, CAD = true, CHF = true, CNY = true, EUR = true,
    GBP = true, HKD = true, NZD = true, SGD = true, USD = true,
}

local VALUE_RE = [[^(0|[1-9][0-9]{0,12})\.([0-9]{2})\z]]

_M.MAX_VALUE = 999999999999999


function _M.known_currency(code)
    return type(code) == "string" and CURRENCIES[code] == true
end


-- "1250.00" -> 125000.  Strictly: digits, one dot, exactly two decimals,
-- no sign, no leading zeros, no exponent, no spaces, greater than zero.
-- (Patterns end in \z: PCRE's $ also matches before a final newline.)
function _M.parse_value(value)
    if type(value) ~= "string" then
        return nil, "must be a string with exactly two decimals, "
                    .. "e.g. \"1250.00\""
    end

    local m = re_match(value, VALUE_RE, "jo")
    if not m then
        return nil, "must be a string with exactly two decimals, "
                    .. "e.g. \"1250.00\""
    end

    local minor = tonumber(m[1]) * 100 + tonumber(m[2])
    if minor <= 0 then
        return nil, "must be greater than zero"
    end

    return minor
end


-- {"value": "1250.00", "currency": "CNY"} -> 125000, "CNY".  The error
-- names the field, under `name` (default "amount"), for 400 invalid_body:
-- "amount.value must be greater than zero".
function _M.parse(amount, name)
    name = name or "amount"

    if type(amount) ~= "table" then
        return nil, name .. " must be an object with value and currency"
    end

    local currency = amount.currency
    if type(currency) ~= "string" then
        return nil, name .. ".currency must be an ISO 4217 code, e.g. \"CNY\""
    end

    if not CURRENCIES[currency] then
        return nil, name .. ".currency \"" .. str_sub(currency, 1, 8)
                    .. "\" is not a currency the bank keeps"
    end

    local minor, err = _M.parse_value(amount.value)
    if not minor then
        return nil, name .. ".value " .. err
    end

    return minor, currency
end


-- 125000 -> "1250.00"; -5 -> "-0.05".  Signed, for balances and ledger
-- entries.  Returns nil, err for anything that is not an exact integer.
function _M.format(minor)
    if type(minor) ~= "number" or minor % 1 ~= 0
       or minor > MAX_EXACT or minor < -MAX_EXACT
    then
        return nil, "not an integer amount of minor units"
    end

    local sign = ""
    if minor < 0 then
        sign = "-"
        minor = -minor
    end

    local digits = str_format("%d", minor)
    local n = #digits
    if n < 3 then
        digits = str_rep("0", 3 - n) .. digits
    end

    return sign .. str_sub(digits, 1, -3) .. "." .. str_sub(digits, -2)
end


-- 125000, "CNY" -> {value = "1250.00", currency = "CNY"}
function _M.to_json(minor, currency)
    local value, err = _M.format(minor)
    if not value then
        return nil, err
    end

    return { value = value, currency = currency }
end


return _M
