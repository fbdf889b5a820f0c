# openbank.money and openbank.json: amounts as exact integers of minor
# units, strictly parsed, and JSON with real empty arrays.

use lib 't/lib';
use OpenBank::Test;

repeat_each(2);
run_tests();

__DATA__

=== TEST 1: parse accepts exactly two decimals, positive, no sign
--- config
location = /t {
    content_by_lua_block {
        local money = require "openbank.money"
        for _, v in ipairs({ "1250.00", "0.01", "0.10", "1.00",
                             "9999999999999.99" }) do
            ngx.say(v, " -> ", string.format("%d", money.parse_value(v)))
        end
    }
}
--- request
GET /t
--- response_body
1250.00 -> 125000
0.01 -> 1
0.10 -> 10
1.00 -> 100
9999999999999.99 -> 999999999999999
--- no_error_log
[error]



=== TEST 2: parse refuses everything else
--- config
location = /t {
    content_by_lua_block {
        local money = require "openbank.money"
        for _, v in ipairs({ "0.00", "1250", "1250.0", "1250.000", "01.00",
                             "+1.00", "-1.00", "1e3", " 1.00", "1.00 ",
                             "1,000.00", ".50", "10000000000000.00",
                             "1.5e2", "0x10.00", "", "1.00\n" }) do
            local minor, err = money.parse_value(v)
            ngx.say(string.format("%q", v), " -> ", tostring(minor), ": ",
                    err)
        end
        ngx.say(tostring(money.parse_value(1250)))
        ngx.say(tostring(money.parse_value(nil)))
    }
}
--- request
GET /t
--- response_body
"0.00" -> nil: must be greater than zero
"1250" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
"1250.0" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
"1250.000" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
"01.00" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
"+1.00" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
"-1.00" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
"1e3" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
" 1.00" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
"1.00 " -> nil: must be a string with exactly two decimals, e.g. "1250.00"
"1,000.00" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
".50" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
"10000000000000.00" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
"1.5e2" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
"0x10.00" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
"" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
"1.00\
" -> nil: must be a string with exactly two decimals, e.g. "1250.00"
nil
nil
--- no_error_log
[error]



=== TEST 3: amount objects: currency known, errors name the field
--- config
location = /t {
    content_by_lua_block {
        local function E(_, err) return err end   -- nil, err -> err
        local money = require "openbank.money"
        ngx.say(money.parse({ value = "1250.00", currency = "CNY" }))
        ngx.say(money.parse({ value = "1250.00", currency = "USD" }))
        ngx.say(E(money.parse({ value = "1250.00",
                                        currency = "JPY" })))
        ngx.say(E(money.parse({ value = "1250.00",
                                        currency = "cny" })))
        ngx.say(E(money.parse({ value = "1250.00" })))
        ngx.say(E(money.parse({ value = 1250, currency = "CNY" },
                                      "payment.amount")))
        ngx.say(E(money.parse("1250.00 CNY")))
    }
}
--- request
GET /t
--- response_body
125000CNY
125000USD
amount.currency "JPY" is not a currency the bank keeps
amount.currency "cny" is not a currency the bank keeps
amount.currency must be an ISO 4217 code, e.g. "CNY"
payment.amount.value must be a string with exactly two decimals, e.g. "1250.00"
amount must be an object with value and currency
--- no_error_log
[error]



=== TEST 4: format: signed, exact, integers only
--- config
location = /t {
    content_by_lua_block {
        local money = require "openbank.money"
        for _, m in ipairs({ 0, 5, 50, 100, 125000, -5, -125001,
                             999999999999999, 9007199254740991 }) do
            ngx.say(string.format("%d", m), " -> ", money.format(m))
        end
        ngx.say(tostring(money.format(1.5)))
        ngx.say(tostring(money.format(9007199254740994)))
        ngx.say(tostring(money.format("100")))
        local j = money.to_json(125000, "CNY")
        ngx.say(j.value, " ", j.currency)
    }
}
--- request
GET /t
--- response_body
0 -> 0.00
5 -> 0.05
50 -> 0.50
100 -> 1.00
125000 -> 1250.00
-5 -> -0.05
-125001 -> -1250.01
999999999999999 -> 9999999999999.99
9007199254740991 -> 90071992547409.91
nil
nil
nil
1250.00 CNY
--- no_error_log
[error]



=== TEST 5: json: empty arrays are [], "/" is not escaped, NUL refused
--- config
location = /t {
    content_by_lua_block {
        local function E(_, err) return err end   -- nil, err -> err
        local json = require "openbank.json"
        ngx.say(json.encode({ list = json.array({}) }))
        ngx.say(json.encode({ list = json.array({ 1, 2 }) }))
        ngx.say(json.encode({ "a/b", "c\\/d", "上海" }))
        ngx.say(json.decode(json.encode({ "c\\/d" }))[1])
        ngx.say(E(json.decode('["\\u0000"]')))
        ngx.say(E(json.decode('{"a":')))
    }
}
--- request
GET /t
--- response_body
{"list":[]}
{"list":[1,2]}
["a/b","c\\/d","上海"]
c\/d
NUL characters are not allowed
Expected value but found T_END at character 6
--- no_error_log
[error]
