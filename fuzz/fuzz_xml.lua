-- A mutation fuzzer of openbank.xml and openbank.pain001: from the seed
-- corpus (fuzz/corpus/xml/), for FUZZ_SECONDS, inputs made by flipping,
-- inserting, deleting, duplicating and splicing bytes and XML fragments
-- are parsed and mapped.  It fails (exit 1, the input kept under
-- objs/fuzz/) on any Lua error (the parser and the mapping answer every
-- input with a value or nil, err, never an error) and on an input that
-- takes longer than MAX_SECONDS.
--
--   objs/lua-host fuzz/fuzz_xml.lua fuzz/corpus/xml SECONDS
--
-- (make fuzz-xml: objs/lua-host is a LuaJIT interpreter on the LuaJIT
-- nginx uses, fuzz/lua_host.c; lxp and cjson come from LUA_CPATH.)

package.path = "lua/?.lua;" .. package.path

local xml = require "openbank.xml"
local pain001 = require "openbank.pain001"

local dir = arg[1] or "fuzz/corpus/xml"
local seconds = tonumber(arg[2] or os.getenv("FUZZ_SECONDS") or "60")
local MAX_SECONDS = 2

local seeds = {}
local ls = io.popen('ls "' .. dir .. '"')
for name in ls:lines() do
    local f = io.open(dir .. "/" .. name, "rb")
    if f then
        seeds[#seeds + 1] = f:read("*a")
        f:close()
    end
end
ls:close()
assert(#seeds > 0, "no seeds in " .. dir)

local FRAGMENTS = {
    "<", ">", "</", "/>", "&", "&amp;", "&#0;", "&#x10FFFF;", "<!DOCTYPE a>",
    "<!ENTITY e 'x'>", "<![CDATA[", "]]>", "<?pi?>", "<!--", "-->",
    ' xmlns="urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"', ' Ccy="CNY"',
    "<CdtTrfTxInf>", "</CdtTrfTxInf>", "<PmtInf>", "<GrpHdr>", "<Ustrd>",
    "<InstdAmt Ccy=\"CNY\">1.00</InstdAmt>", "9999999999999999.99", "-0",
    "\0", "\255\254", "\239\187\191", string.rep("<a>", 33), "x:y",
    ' xmlns:x="u"', "<EndToEndId>E</EndToEndId>", "\r\n", "''", '"',
}

math.randomseed(os.time())
local random = math.random

local VALUES = {
    "", "0", "-1", "1.234", "1.2", "00001.00", "9999999999999.99",
    "99999999999999", "1e3", " 1.00", "CNY", "cny", "E2E-1",
    string.rep("x", 36), string.rep("y", 141), "6222020000000201", "12ab",
    "&amp;&lt;", "<![CDATA[1.00]]>", "\226\130\172", "TRF", "CHK",
}

-- the text of one element (between a > and the next <) replaced
local function retext(s)
    local from = random(1, #s)
    local i = s:find(">[^<]*<", from)
    if not i then
        return s
    end
    local j = s:find("<", i + 1, true)
    return s:sub(1, i) .. VALUES[random(#VALUES)] .. s:sub(j)
end

-- one whole element (from a < that opens one to its >...</...>) doubled
-- or dropped
local function reelement(s)
    local from = random(1, #s)
    local i, _, name = s:find("<(%a+)[^>]*>", from)
    if not i then
        return s
    end
    local _, k = s:find("</" .. name .. ">", i, true)
    if not k then
        return s
    end
    if random(2) == 1 then
        return s:sub(1, k) .. s:sub(i, k) .. s:sub(k + 1)
    end
    return s:sub(1, i - 1) .. s:sub(k + 1)
end

local function mutate(s)
    local n = random(1, 3)
    for _ = 1, n do
        local len = #s
        local op = random(1, 9)
        local i = random(1, len + 1)
        if op >= 7 and len > 0 then
            s = op == 7 and reelement(s) or retext(s)
        elseif op == 1 and len > 0 then
            local b = string.char(random(0, 255))
            s = s:sub(1, i - 1) .. b .. s:sub(i + 1)
        elseif op == 2 then
            s = s:sub(1, i - 1) .. FRAGMENTS[random(#FRAGMENTS)] .. s:sub(i)
        elseif op == 3 and len > 0 then
            local j = math.min(len, i + random(0, 64))
            s = s:sub(1, i - 1) .. s:sub(j + 1)
        elseif op == 4 and len > 0 and len < 200000 then
            local j = math.min(len, i + random(0, 256))
            s = s:sub(1, j) .. s:sub(i, j) .. s:sub(j + 1)
        elseif op == 5 then
            local o = seeds[random(#seeds)]
            local k = random(1, #o + 1)
            s = s:sub(1, i - 1) .. o:sub(k, k + random(0, 512)) .. s:sub(i)
        else
            s = s:sub(1, i - 1)
        end
    end
    return s
end

local parsed, mapped = 0, 0

local function run(input)
    local root, err, line, col = xml.parse(input)
    if not root then
        assert(type(err) == "string" and type(line) == "number"
               and type(col) == "number", "parse: not nil, err, line, col")
        return
    end
    parsed = parsed + 1
    local b, merr = pain001.map(root)
    if b then
        mapped = mapped + 1
        assert(type(b.errors) == "table" and type(b.items) == "table")
    else
        assert(type(merr) == "string")
    end
end

local function fail(input, why)
    os.execute("mkdir -p objs/fuzz")
    local path = "objs/fuzz/xml-crash-" .. os.time() .. ".xml"
    local f = io.open(path, "wb")
    f:write(input)
    f:close()
    io.stderr:write("fuzz_xml: ", why, "\n  input kept in ", path, "\n")
    os.exit(1)
end

local start = os.time()
local runs = 0
local pool = {}
for i = 1, #seeds do
    pool[i] = seeds[i]
end

while os.time() - start < seconds do
    local input = mutate(pool[random(#pool)] or seeds[random(#seeds)])
    local t0 = os.clock()
    local ok, err = pcall(run, input)
    local took = os.clock() - t0
    if not ok then
        fail(input, "Lua error: " .. tostring(err))
    end
    if took > MAX_SECONDS then
        fail(input, string.format("%.2f s for one input", took))
    end
    runs = runs + 1
    -- well-formed inputs seed further mutations
    if #input < 100000 and xml.parse(input) then
        pool[#seeds + random(0, 255)] = input
    end
end

print(string.format("fuzz_xml: %d inputs in %d s (%d well-formed, %d "
                    .. "mapped to a batch), no error", runs,
                    os.time() - start, parsed, mapped))
