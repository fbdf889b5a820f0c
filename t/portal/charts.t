# The usage page's charts as the server draws them (openbank.portal.usage):
# 30 days of 5 products are 150 stacked bars whose heights are the calls
# against the axis's top, each with its date, product and count; a day
# without calls draws nothing; the horizontal bars of quotas are their
# use against the limit, capped at the full track.

use lib 't/lib';
use OpenBank::Test;

repeat_each(1);
run_tests();

__DATA__

=== TEST 1: 30 days of 5 products: 150 bars, heights in proportion
--- config
location = /t {
    content_by_lua_block {
        local usage = require "openbank.portal.usage"
        local days, by_day = {}, {}
        local products = { "accounts", "escrow", "payments", "statements",
                           "verification" }
        for i = 1, 30 do
            local d = string.format("2026-11-%02d", i)
            days[i] = d
            by_day[d] = {}
            for k, p in ipairs(products) do
                by_day[d][p] = i * k
            end
        end
        local svg = usage.calls_chart(days, by_day, products)
        local n = select(2, svg:gsub('<rect class="bar"', ""))
        ngx.say("bars ", n)
        -- the busiest day: 30 * (1+2+3+4+5) = 450 calls; ticks of 150
        local h = svg:match('data%-date="2026%-11%-30" data%-product='
                            .. '"verification" data%-calls="150" x="[%d.]+" '
                            .. 'y="[%d.]+" width="[%d.]+" height="([%d.]+)"')
        ngx.say("height of 150 calls ", h)
        for v in svg:gmatch('text%-anchor="end">([%d,]+)</text>') do
            ngx.print(v, " ")
        end
        ngx.say()
        ngx.say("legend ", select(2, svg:gsub('<li><svg class="swatch"', "")))
        ngx.say("title ", svg:match("<title id=\"calls%-title\">(.-)</title>"))
    }
}
--- request
GET /t
--- response_body
bars 150
height of 150 calls 56.0
0 150 300 450 600 
legend 5
title Calls per day and product, last 30 days
--- no_error_log
[error]

=== TEST 2: a day without calls draws no bar, and no data draws none
--- config
location = /t {
    content_by_lua_block {
        local usage = require "openbank.portal.usage"
        local svg = usage.calls_chart({ "2026-12-01", "2026-12-02" },
            { ["2026-12-02"] = { payments = 3 } }, { "payments" })
        ngx.say(select(2, svg:gsub('<rect class="bar"', "")), " ",
                svg:match('data%-date="([%d-]+)"'))
        svg = usage.calls_chart({ "2026-12-01" }, {}, {})
        ngx.say(select(2, svg:gsub('<rect class="bar"', "")))
    }
}
--- request
GET /t
--- response_body
1 2026-12-02
0
--- no_error_log
[error]

=== TEST 3: a quota bar is its use against the limit, capped at the track
--- config
location = /t {
    content_by_lua_block {
        local usage = require "openbank.portal.usage"
        local svg = usage.hbars("q", "Quota use", {
            { label = "payments (today)", value = 250, max = 1000,
              text = "250 / 1,000" },
            { label = "escrow (today)", value = 1500, max = 1000,
              text = "1,500 / 1,000" },
        }, "#0072B2")
        local track = svg:match('<rect class="track" x="%d+" y="%d+" '
                                .. 'width="(%d+)"')
        for name, w in svg:gmatch('data%-name="([^"]+)" data%-value="%d+" '
                                  .. 'x="%d+" y="%d+" width="([%d.]+)"') do
            ngx.say(name, " ", tonumber(w) / tonumber(track))
        end
        ngx.say(svg:find("<title>payments (today): 250 / 1,000</title>",
                         1, true) ~= nil)
    }
}
--- request
GET /t
--- response_body
payments (today) 0.25
escrow (today) 1
true
--- no_error_log
[error]
