-- Small helpers of the bank's capabilities: identifiers, times in the
-- bank's timezone, the request body, field validation for 400 invalid_body.

local ffi = require "ffi"
local json = require "openbank.json"
local problem = require "openbank.problem"

local ffi_new = ffi.new
local ffi_string = ffi.string
local math_floor = math.floor
local ngx_now = ngx.now
local ngx_update_time = ngx.update_time
local ngx_var = ngx.var
local os_date = os.date
local re_match = ngx.re.match
local re_find = ngx.re.find
local str_format = string.format
local str_byte = string.byte
local tbl_concat = table.concat
local io_open = io.open
local ngx_req = ngx.req
local str_sub = string.sub
local tonumber = tonumber
local tostring = tostring
local type = type
local pairs = pairs
local pcall = pcall


local _M = {}


if not pcall(ffi.typeof, "struct openbank_rand_probe") then
    ffi.cdef[[
struct openbank_rand_probe { int unused; };
int RAND_bytes(unsigned char *buf, int num);
]]
end

local rand_buf = ffi_new("unsigned char[16]")
local HEX = "0123456789abcdef"


-- "pay_" .. 24 hexadecimal digits of randomness (OpenSSL, which nginx
-- links).
function _M.id(prefix)
    if ffi.C.RAND_bytes(rand_buf, 12) ~= 1 then
        return nil, "RAND_bytes failed"
    end

    local s = ffi_string(rand_buf, 12)
    local out = {}
    for i = 1, 12 do
        local b = str_byte(s, i)
        local hi = math_floor(b / 16)
        out[i] = str_sub(HEX, hi + 1, hi + 1)
                 .. str_sub(HEX, b % 16 + 1, b % 16 + 1)
    end

    return prefix .. tbl_concat(out)
end


function _M.now_ms()
    ngx_update_time()
    return math_floor(ngx_now() * 1000)
end


-- 1700000000123 -> "2023-11-14T22:13:20.123Z"
function _M.iso(ms)
    if not ms then
        return nil
    end

    local sec = math_floor(ms / 1000)
    return os_date("!%Y-%m-%dT%H:%M:%S", sec)
           .. str_format(".%03dZ", ms % 1000)
end


local function days_from_civil(y, m, d)
    if m <= 2 then
        y = y - 1
    end

    local era = math_floor(y / 400)
    local yoe = y - era * 400
    local mp = (m + 9) % 12
    local doy = math_floor((153 * mp + 2) / 5) + d - 1
    local doe = yoe * 365 + math_floor(yoe / 4) - math_floor(yoe / 100) + doy

    return era * 146097 + doe - 719468
end

_M.days_from_civil = days_from_civil


local function valid_date(y, m, d)
    local mdays = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 }
    if y % 4 == 0 and (y % 100 ~= 0 or y % 400 == 0) then
        mdays[2] = 29
    end

    return y >= 1970 and y <= 9999 and m >= 1 and m <= 12 and d >= 1
           and d <= mdays[m]
end


local DATETIME_RE = [[^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})]]
                    .. [[(?:\.(\d{1,3}))?(Z|[+-]\d{2}:\d{2})\z]]
local DATE_RE = [[^(\d{4})-(\d{2})-(\d{2})\z]]


-- RFC 3339 date-time -> unix ms, or nil
function _M.parse_datetime(s)
    if type(s) ~= "string" then
        return nil
    end

    local m = re_match(s, DATETIME_RE, "jo")
    if not m then
        return nil
    end

    local y, mo, d = tonumber(m[1]), tonumber(m[2]), tonumber(m[3])
    local h, mi, se = tonumber(m[4]), tonumber(m[5]), tonumber(m[6])
    if not valid_date(y, mo, d) or h > 23 or mi > 59 or se > 59 then
        return nil
    end

    local frac = 0
    if m[7] then
        frac = tonumber(m[7] .. str_sub("000", #m[7] + 1))
    end

    local offset = 0
    if m[8] ~= "Z" then
        local oh = tonumber(str_sub(m[8], 2, 3))
        local om = tonumber(str_sub(m[8], 5, 6))
        if oh > 14 or om > 59 then
            return nil
        end
        offset = (oh * 3600 + om * 60) * (str_sub(m[8], 1, 1) == "-"
                                          and -1 or 1)
    end

    return ((days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se)
            - offset) * 1000 + frac
end


-- "2026-11-23" -> unix ms of its midnight in the bank's timezone
function _M.parse_date(s, tz_offset)
    if type(s) ~= "string" then
        return nil
    end

    local m = re_match(s, DATE_RE, "jo")
    if not m then
        return nil
    end

    local y, mo, d = tonumber(m[1]), tonumber(m[2]), tonumber(m[3])
    if not valid_date(y, mo, d) then
        return nil
    end

    return (days_from_civil(y, mo, d) * 86400 - tz_offset) * 1000
end


-- The bank's timezone ($openbank_bank_timezone, "+08:00" by default, as
-- openbank_timezone of the gateway): seconds east of UTC, and its name.
function _M.timezone()
    local tz = ngx_var.openbank_bank_timezone
    if not tz or tz == "" then
        tz = "+08:00"
    end

    if tz == "UTC" or tz == "Z" then
        return 0, "+00:00"
    end

    local m = re_match(tz, [[^([+-])(\d{2}):(\d{2})\z]], "jo")
    if not m then
        return 8 * 3600, "+08:00"
    end

    local off = tonumber(m[2]) * 3600 + tonumber(m[3]) * 60
    return m[1] == "-" and -off or off, tz
end


-- The settlement delay ($openbank_bank_settle_delay, seconds, default 2):
-- a payment is accepted after half of it and settled after all of it.
function _M.settle_delay_ms()
    local v = tonumber(ngx_var.openbank_bank_settle_delay)
    if not v or v < 0 or v > 3600 then
        v = 2
    end

    return math_floor(v * 1000)
end


-- The request body as it came (in memory or in nginx's temporary file),
-- or nil when there is none.
function _M.body()
    ngx_req.read_body()

    local data = ngx_req.get_body_data()
    if not data then
        local file = ngx_req.get_body_file()
        if file then
            local f = io_open(file, "rb")
            if f then
                data = f:read("*a")
                f:close()
            end
        end
    end

    return data
end


-- The request body as a JSON object with no field outside "allowed", or
-- nil, problem (400 invalid_body).
function _M.body_object(allowed)
    local data = _M.body()
    if not data or data == "" then
        return nil, problem.err("invalid_body",
                                "body: a JSON object is required")
    end

    local obj = json.decode(data)
    if type(obj) ~= "table" or obj[1] ~= nil then
        return nil, problem.err("invalid_body",
                                "body: must be a JSON object")
    end

    local ok, err = _M.only(obj, allowed)
    if not ok then
        return nil, err
    end

    return obj
end


-- Refuses fields the endpoint does not know: a typo must not pass for an
-- omitted optional field.
function _M.only(obj, allowed, prefix)
    for k in pairs(obj) do
        if type(k) ~= "string" or not allowed[k] then
            return nil, problem.err("invalid_body", (prefix or "")
                                    .. tostring(k) .. ": unknown field")
        end
    end

    return true
end


local NUMBER_RE = [[^[0-9]{6,34}\z]]
local BANK_CODE_RE = [[^[A-Z0-9]{4,11}\z]]


-- An account object {number, name, bank_code}; `need_name` requires
-- the name and bank code (a counterparty), else only the number.
function _M.account(v, field, need_name)
    if type(v) ~= "table" or v[1] ~= nil then
        return nil, problem.err("invalid_body", field
                                .. ": must be an object with number, name "
                                .. "and bank_code")
    end

    local ok, err = _M.only(v, { number = true, name = true,
                                 bank_code = true }, field .. ".")
    if not ok then
        return nil, err
    end

    if type(v.number) ~= "string" or not re_find(v.number, NUMBER_RE, "jo")
    then
        return nil, problem.err("invalid_body", field
                                .. ".number: must be 6 to 34 digits")
    end

    if v.name ~= nil or need_name then
        if type(v.name) ~= "string" or #v.name == 0 or #v.name > 140 then
            return nil, problem.err("invalid_body", field
                                    .. ".name: must be 1 to 140 bytes")
        end
    end

    if v.bank_code ~= nil or need_name then
        if type(v.bank_code) ~= "string"
           or not re_find(v.bank_code, BANK_CODE_RE, "jo")
        then
            return nil, problem.err("invalid_body", field
                                    .. ".bank_code: must be 4 to 11 "
                                    .. "capital letters or digits")
        end
    end

    return v
end


function _M.text(v, field, max, optional)
    if v == nil and optional then
        return true
    end

    if type(v) ~= "string" or #v == 0 or #v > max then
        return nil, problem.err("invalid_body", field .. ": must be a "
                                .. "string of 1 to " .. max .. " bytes")
    end

    return v
end


return _M
