-- The usage page: the partner's calls per day and product over the last
-- 30 days, its refusals by reason, and its quotas' use against their
-- limits, drawn as SVG on the server (pictures, no script).
--
-- Data: GET /admin/partners/{name}/usage?from=&to= (docs/admin.md), the
-- usage history; and openbank_status for the quotas' counters and the
-- plan's rate.  The days are the gateway's ($openbank_portal_timezone,
-- the offset of openbank_timezone).

local admin = require "openbank.portal.admin"
local html = require "openbank.portal.html"
local web = require "openbank.portal.web"

local ngx_var = ngx.var
local h = html.h
local t = html.t
local str_format = string.format
local str_match = string.match
local str_sub = string.sub
local concat = table.concat
local math_max = math.max
local math_floor = math.floor
local math_min = math.min
local os_date = os.date
local tonumber = tonumber


local _M = {}


local DAYS = 30

-- colour-blind-safe (Okabe-Ito), one per product in the order first seen
local COLOURS = { "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9",
                  "#D55E00", "#F0E442", "#000000" }


local function tz_offset()
    local sign, hh, mm = str_match(ngx_var.openbank_portal_timezone or "",
                                   "^([+-])(%d%d):(%d%d)$")
    if not sign then
        return 0
    end
    local off = tonumber(hh) * 3600 + tonumber(mm) * 60
    return sign == "-" and -off or off
end


-- the last DAYS dates, oldest first, in the gateway's time zone
function _M.days(now)
    local base = (now or ngx.time()) + tz_offset()
    local out = {}
    for i = DAYS - 1, 0, -1 do
        out[#out + 1] = os_date("!%Y-%m-%d", base - i * 86400)
    end
    return out
end


local function num(n)
    local s = tostring(math_floor(n))
    local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
    return (out:gsub("^,", ""))
end


-- The axis's top: 4 ticks of a round whole number (1, 1.5, 2, 2.5, 3, 4,
-- 5, 6 or 8 times a power of ten) that reach v.
local STEPS = { 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8 }

local function nice_max(v)
    local tick = math_max(v / 4, 1)
    local mag = 10 ^ math_floor(math.log10(tick))
    while true do
        for _, m in ipairs(STEPS) do
            local step = m * mag
            if step >= tick and step % 1 == 0 then
                return 4 * step
            end
        end
        mag = mag * 10
    end
end


-- Calls per day, stacked by product.
function _M.calls_chart(days, by_day, products)
    local W, H, L, R, T, B = 760, 280, 56, 28, 16, 40
    local pw, ph = W - L - R, H - T - B
    local max = 0
    for _, d in ipairs(days) do
        local sum = 0
        for _, p in ipairs(products) do
            sum = sum + ((by_day[d] or {})[p] or 0)
        end
        max = math_max(max, sum)
    end
    local top = nice_max(max)
    local bw = pw / #days

    local out = { '<svg class="chart" id="calls-chart" viewBox="0 0 ', W,
        ' ', H, '" role="img" aria-labelledby="calls-title calls-desc" ',
        'xmlns="http://www.w3.org/2000/svg"><title id="calls-title">',
        h(t("Calls per day and product, last 30 days")), '</title>',
        '<desc id="calls-desc">', num(max), ' calls on the busiest day',
        '</desc>' }

    for i = 0, 4 do
        local y = T + ph - ph * i / 4
        out[#out + 1] = str_format('<line class="grid" x1="%d" x2="%d" '
            .. 'y1="%.1f" y2="%.1f"/><text class="axis" x="%d" y="%.1f" '
            .. 'text-anchor="end">%s</text>', L, W - R, y, y, L - 6, y + 4,
            num(top * i / 4))
    end

    for i, d in ipairs(days) do
        local x = L + (i - 1) * bw
        local y = T + ph
        for k, p in ipairs(products) do
            local v = (by_day[d] or {})[p] or 0
            if v > 0 then
                local bh = ph * v / top
                y = y - bh
                out[#out + 1] = str_format('<rect class="bar" '
                    .. 'data-date="%s" data-product="%s" data-calls="%d" '
                    .. 'x="%.1f" y="%.1f" width="%.1f" height="%.1f" '
                    .. 'fill="%s"><title>%s %s: %s</title></rect>', d, h(p),
                    v, x + 2, y, math_max(bw - 4, 1), bh,
                    COLOURS[(k - 1) % #COLOURS + 1], d, h(p), num(v))
            end
        end
        if (#days - i) % 5 == 0 then
            out[#out + 1] = str_format('<text class="axis" x="%.1f" y="%d" '
                .. 'text-anchor="middle">%s</text>', x + bw / 2, H - B + 18,
                str_sub(d, 6))
        end
    end

    out[#out + 1] = str_format('<line class="base" x1="%d" x2="%d" y1="%d" '
                               .. 'y2="%d"/></svg>', L, W - R, T + ph, T + ph)

    out[#out + 1] = '<ul class="legend">'
    for k, p in ipairs(products) do
        out[#out + 1] = '<li><svg class="swatch" viewBox="0 0 10 10" '
            .. 'aria-hidden="true"><rect width="10" height="10" fill="'
            .. COLOURS[(k - 1) % #COLOURS + 1] .. '"/></svg>' .. h(p)
            .. '</li>'
    end
    out[#out + 1] = '</ul>'

    return concat(out)
end


-- Horizontal bars: label, value, and a second text per row.
local function hbars(id, title, rows, colour)
    local W, rowh, L = 760, 30, 190
    local H = math_max(#rows, 1) * rowh + 8
    local max = 1
    for _, r in ipairs(rows) do
        max = math_max(max, r.max or r.value)
    end

    local out = { '<svg class="chart" id="', id, '" viewBox="0 0 ', W, ' ',
        H, '" role="img" aria-labelledby="', id, '-title" ',
        'xmlns="http://www.w3.org/2000/svg"><title id="', id, '-title">',
        h(title), '</title>' }

    if #rows == 0 then
        out[#out + 1] = '<text class="axis" x="8" y="22">None.</text>'
    end

    for i, r in ipairs(rows) do
        local y = (i - 1) * rowh + 4
        local full = W - L - 250
        local w = full * math_min(r.value / (r.max or max), 1)
        out[#out + 1] = str_format('<text class="label" x="%d" y="%d" '
            .. 'text-anchor="end">%s</text>', L - 8, y + 17, h(r.label))
        if r.max then
            out[#out + 1] = str_format('<rect class="track" x="%d" y="%d" '
                .. 'width="%d" height="%d" rx="3"/>', L, y + 4, full,
                rowh - 12)
        end
        out[#out + 1] = str_format('<rect class="bar" data-name="%s" '
            .. 'data-value="%d" x="%d" y="%d" width="%.1f" height="%d" '
            .. 'rx="3" fill="%s"><title>%s: %s</title></rect>', h(r.label),
            r.value, L, y + 4, math_max(w, r.value > 0 and 2 or 0),
            rowh - 12, r.colour or colour, h(r.label), h(r.text))
        out[#out + 1] = str_format('<text class="value" x="%d" y="%d">%s'
            .. '</text>', L + full + 8, y + 17, h(r.text))
    end
    out[#out + 1] = '</svg>'

    return concat(out)
end
_M.hbars = hbars


function _M.page(conn, org)
    local nav = require("openbank.portal.app").org_nav(org, "usage")
    if org.status ~= "approved" then
        return require("openbank.portal.app").waiting(org, "usage")
    end

    local days = _M.days()
    local today = days[#days]
    local month = str_sub(today, 1, 7)
    local out = {}

    -- without from and to: the 30 days to today of the gateway's time
    -- zone, every day present; its dates are the chart's
    local res, err = admin.call("GET", "/admin/partners/" .. org.partner
                                .. "/usage")
    if res and res.status == 200 and res.json
       and type(res.json.days) == "table" and #res.json.days > 0
    then
        local ds = {}
        for _, d in ipairs(res.json.days) do
            if type(d) == "table" and type(d.date) == "string" then
                ds[#ds + 1] = d.date
            end
        end
        if #ds > 0 then
            days, today = ds, ds[#ds]
            month = str_sub(today, 1, 7)
        end
    end

    local by_day, products, seen, refusals = {}, {}, {}, {}
    local today_calls, month_calls = {}, {}
    if res and res.status == 200 and res.json
       and type(res.json.days) == "table"
    then
        for _, d in ipairs(res.json.days) do
            if type(d) == "table" and type(d.date) == "string"
               and type(d.products) == "table"
            then
                local row = {}
                by_day[d.date] = row
                for p, u in pairs(d.products) do
                    if type(u) == "table" then
                        local calls = tonumber(u.calls) or 0
                        row[p] = calls
                        if not seen[p] then
                            seen[p] = true
                            products[#products + 1] = p
                        end
                        if d.date == today then
                            today_calls[p] = (today_calls[p] or 0) + calls
                        end
                        if str_sub(d.date, 1, 7) == month then
                            month_calls[p] = (month_calls[p] or 0) + calls
                        end
                        for reason, n in pairs(type(u.refused) == "table"
                                               and u.refused or {})
                        do
                            refusals[reason] = (refusals[reason] or 0)
                                               + (tonumber(n) or 0)
                        end
                    end
                end
            end
        end
        table.sort(products)

    elseif res and res.status == 404 then
        out[#out + 1] = html.notice("info", t("The gateway keeps no usage "
            .. "history yet: the charts fill in once it does."))
    else
        ngx.log(ngx.ERR, "openbank portal: usage of ", org.partner, ": ",
                err or ("status " .. res.status))
        out[#out + 1] = html.notice("error", "The usage history cannot be "
                                    .. "read now.")
    end

    out[#out + 1] = '<section class="card"><h2>'
        .. h(t("Calls per day and product, last 30 days")) .. '</h2>'
        .. _M.calls_chart(days, by_day, products) .. '</section>'

    local rrows = {}
    for reason, n in pairs(refusals) do
        if n > 0 then
            rrows[#rrows + 1] = { label = reason, value = n, text = num(n) }
        end
    end
    table.sort(rrows, function(a, b)
        return a.value > b.value or (a.value == b.value
                                     and a.label < b.label)
    end)
    out[#out + 1] = '<section class="card"><h2>'
        .. h(t("Refusals by reason, last 30 days")) .. '</h2>'
        .. hbars("refusals-chart", t("Refusals by reason, last 30 days"),
                 rrows, "#D55E00") .. '</section>'

    -- the quotas' counters and the plan's rate
    local st = admin.call("GET", "/openbank/status?partner=" .. org.partner,
                          nil, { no_key = true })
    local mine
    if st and st.status == 200 and st.json then
        for _, p in ipairs(st.json.partners or {}) do
            if p.name == org.partner then
                mine = p
                break
            end
        end
    end

    out[#out + 1] = '<section class="card"><h2>' .. h(t("Quota use"))
                    .. '</h2>'
    if mine then
        local qrows = {}
        for _, q in ipairs(mine.quotas or {}) do
            local used, limit = tonumber(q.used) or 0, tonumber(q.limit) or 0
            local pct = limit > 0 and math_floor(used * 100 / limit) or 0
            local win = q.window == "day" and "today" or "this month"
            local other = q.window == "day" and month_calls[q.product]
            qrows[#qrows + 1] = {
                label = q.product .. " (" .. win .. ")",
                value = used, max = math_max(limit, 1),
                colour = pct >= 90 and "#D55E00" or "#0072B2",
                text = num(used) .. " / " .. num(limit) .. " (" .. pct
                       .. "%)" .. (other and other > 0 and (", "
                       .. num(other) .. " this month") or ""),
            }
        end
        out[#out + 1] = hbars("quota-chart", t("Quota use"), qrows)
        local r = mine.rate or {}
        out[#out + 1] = '<p class="meta" id="rate">' .. h(t("Plan")) .. ' '
            .. h(mine.plan) .. ': ' .. h(num(tonumber(r.limit) or 0))
            .. ' requests per ' .. (tonumber(r.period) == 60 and 'minute'
                                   or 'second')
            .. ', bursts of ' .. h(num(tonumber(r.burst) or 0)) .. '.</p>'
    else
        out[#out + 1] = html.notice("error", "The quotas' counters cannot "
                                    .. "be read now.")
    end
    out[#out + 1] = '</section>'

    local total = 0
    for _, n in pairs(today_calls) do
        total = total + n
    end
    out[#out + 1] = '<p class="meta" id="today">'
                    .. h(t("Today (%s): %s calls.", today, num(total)))
                    .. '</p>'

    return web.page({ title = t("Usage"), nav = nav, body = concat(out) })
end


return _M
