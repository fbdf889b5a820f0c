-- A mutation fuzzer of openbank.portal.pem, the developer portal's PEM
-- public key to JWK conversion (OpenSSL from the LuaJIT FFI): from the
-- seed corpus (fuzz/corpus/pem/: RSA 2048 and 1024, EC P-256, P-521 and
-- secp256k1, Ed25519, X25519), for FUZZ_SECONDS, inputs made by flipping,
-- inserting, deleting and splicing bytes of the PEM text and of its DER
-- are converted.  It fails (exit 1, the input kept under objs/fuzz/) on
-- a Lua error or a crash (to_jwk answers every input with a JWK or nil
-- and a sentence), and on a JWK whose members are not what its kty
-- needs.
--
--   objs/lua-host fuzz/fuzz_pem.lua fuzz/corpus/pem SECONDS

package.path = "lua/?.lua;" .. package.path

-- the two functions of ngx that openbank.portal.crypto needs
local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function encode_base64(s, no_pad)
    local out = {}
    for i = 1, #s, 3 do
        local a, b, c = s:byte(i, i + 2)
        local n = a * 65536 + (b or 0) * 256 + (c or 0)
        local q = {}
        for k = 3, 0, -1 do
            local v = math.floor(n / 64 ^ k) % 64
            q[#q + 1] = B64:sub(v + 1, v + 1)
        end
        if not b then
            q[3], q[4] = "=", "="
        elseif not c then
            q[4] = "="
        end
        out[#out + 1] = table.concat(q)
    end
    local r = table.concat(out)
    return no_pad and (r:gsub("=", "")) or r
end

local function decode_base64(s)
    s = s:gsub("[^%w+/=]", "")
    local out = {}
    for i = 1, #s, 4 do
        local n, pad = 0, 0
        for k = 0, 3 do
            local ch = s:sub(i + k, i + k)
            local v = B64:find(ch, 1, true)
            if ch == "=" or ch == "" then
                pad = pad + 1
                v = 1
            end
            n = n * 64 + (v - 1)
        end
        local bytes = string.char(math.floor(n / 65536) % 256,
                                  math.floor(n / 256) % 256, n % 256)
        out[#out + 1] = bytes:sub(1, 3 - pad)
    end
    return table.concat(out)
end

ngx = { encode_base64 = encode_base64, decode_base64 = decode_base64 }

local pem = require "openbank.portal.pem"

local dir = arg[1] or "fuzz/corpus/pem"
local seconds = tonumber(arg[2] or os.getenv("FUZZ_SECONDS") or "60")

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

math.randomseed(os.time())
local random = math.random

local function bytes(s)
    local n = random(1, 8)
    for _ = 1, n do
        local op = random(1, 4)
        local i = random(1, math.max(#s, 1))
        if op == 1 then
            s = s:sub(1, i - 1) .. string.char(random(0, 255)) .. s:sub(i + 1)
        elseif op == 2 then
            s = s:sub(1, i - 1) .. s:sub(i + random(1, 16))
        elseif op == 3 then
            s = s:sub(1, i) .. string.char(random(0, 255)):rep(random(1, 64))
                .. s:sub(i + 1)
        else
            local other = seeds[random(1, #seeds)]
            local j = random(1, #other)
            s = s:sub(1, i) .. other:sub(j, j + random(1, 200)) .. s:sub(i + 1)
        end
    end
    return s
end

-- the DER inside the PEM mutated, so that OpenSSL's DER decoder and the
-- key's numbers see what a base64 flip never reaches
local function der(s)
    local head, body, tail = s:match("^(%-%-%-%-%-BEGIN [^\n]+%-%-%-%-%-\n)"
                                     .. "(.-)(\n%-%-%-%-%-END .*)$")
    if not head then
        return bytes(s)
    end
    local b = bytes(decode_base64(body))
    local lines = {}
    local enc = encode_base64(b)
    for i = 1, #enc, 64 do
        lines[#lines + 1] = enc:sub(i, i + 63)
    end
    return head .. table.concat(lines, "\n") .. tail
end

local NEEDS = {
    RSA = { "n", "e" }, EC = { "crv", "x", "y" }, OKP = { "crv", "x" },
}

local function check(input)
    local ok, jwk, err = pcall(pem.to_jwk, input)
    if not ok then
        return "error: " .. tostring(jwk)
    end
    if jwk == nil then
        if type(err) ~= "string" or err == "" then
            return "nil without a reason"
        end
        return nil
    end
    local needs = NEEDS[jwk.kty]
    if not needs then
        return "a JWK of kty " .. tostring(jwk.kty)
    end
    for _, m in ipairs(needs) do
        if type(jwk[m]) ~= "string" or not jwk[m]:match("^[%w_-]+$") then
            return "a JWK without " .. m
        end
    end
    if type(jwk.kid) ~= "string" or #jwk.kid ~= 43 then
        return "a JWK without its thumbprint"
    end
    return nil
end

for _, s in ipairs(seeds) do
    local why = check(s)
    if why then
        io.stderr:write("fuzz-pem: a seed fails: ", why, "\n")
        os.exit(1)
    end
end

local n, converted = 0, 0
local stop = os.time() + seconds
while os.time() < stop do
    local seed = seeds[random(1, #seeds)]
    local input = random(1, 2) == 1 and bytes(seed) or der(seed)
    local why = check(input)
    n = n + 1
    if why then
        os.execute("mkdir -p objs/fuzz")
        local name = string.format("objs/fuzz/pem-crash-%d.pem", os.time())
        local f = io.open(name, "wb")
        f:write(input)
        f:close()
        io.stderr:write("fuzz-pem: ", why, " (input in ", name, ")\n")
        os.exit(1)
    end
    if pem.to_jwk(input) then
        converted = converted + 1
    end
end

print(string.format("fuzz-pem: %d inputs in %d s, %d converted to a JWK",
                    n, seconds, converted))
