-- JSON for the bank, on lua-cjson (cjson.safe: errors are nil, err).
--
-- Debian's lua-cjson (2.1.0, package lua-cjson) encodes every empty Lua
-- table as an object, {}, and has neither OpenResty's cjson.empty_array
-- nor cjson.array_mt.  A list that may be empty goes through json.array():
-- with OpenResty's cjson it gets array_mt; with Debian's, an empty list is
-- replaced by a sentinel string that encode() turns into [] afterwards.
--
-- The sentinel is a string holding a NUL byte, which cjson writes as the
-- escape \u0000; decode() refuses any document with a NUL byte or a \u0000
-- escape, and the bank's own data never holds one, so "\u0000[]" (quotes
-- included) cannot appear in an encoded document except for a sentinel.

local cjson = require "cjson.safe"

local cjson_encode = cjson.encode
local cjson_decode = cjson.decode
local next = next
local setmetatable = setmetatable
local str_find = string.find
local str_gsub = string.gsub
local type = type


local _M = {}


_M.null = cjson.null

cjson.decode_max_depth(32)
cjson.encode_max_depth(32)

local array_mt = cjson.array_mt    -- OpenResty's lua-cjson only

local EMPTY = "\0[]"
local EMPTY_ENCODED = [["\u0000[]"]]


-- Marks `t` as a JSON array, so that an empty one is [] and not {}.
-- Use the returned value.
function _M.array(t)
    if array_mt then
        return setmetatable(t, array_mt)
    end

    if next(t) == nil then
        return EMPTY
    end

    return t
end


function _M.encode(value)
    local s, err = cjson_encode(value)
    if not s then
        return nil, err
    end

    if not array_mt and str_find(s, EMPTY_ENCODED, 1, true) then
        s = str_gsub(s, [["\u0000%[%]"]], "[]")
    end

    -- lua-cjson writes "/" as "\/".  Every "/" of its output is escaped
    -- and so preceded by exactly that backslash: dropping it is exact.
    if str_find(s, "\\/", 1, true) then
        s = str_gsub(s, "\\/", "/")
    end

    return s
end


-- A JSON text -> Lua value.  Refuses NUL bytes and \u0000 escapes (see
-- above; no field of the bank's API has a use for them).
function _M.decode(s)
    if type(s) ~= "string" then
        return nil, "not a string"
    end

    if str_find(s, "\0", 1, true) or str_find(s, "\\u0000", 1, true) then
        return nil, "NUL characters are not allowed"
    end

    return cjson_decode(s)
end


return _M
