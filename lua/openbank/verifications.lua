-- Account verification (confirmation of payee), POST
-- /v1/account-verifications: {"account": {number, name, bank_code}} ->
-- {"result": "match" | "close_match" | "no_match" | "account_not_found",
--  "matched_name": <the name on the account, close_match only>}.
--
-- Names are compared after normalisation (normalise() below):
--   1. full-width forms (U+FF01..U+FF5E) become ASCII, the ideographic
--      space U+3000 a space;
--   2. ASCII letters are lowercased;
--   3. punctuation and spaces separate words and are then dropped
--      (ASCII punctuation, CJK punctuation U+3000..U+303F, the middle
--      dot U+00B7);
--   4. trailing company suffixes are dropped, repeatedly: the words co,
--      company, corp, corporation, inc, incorporated, llc, plc, ltd,
--      limited, gmbh, and the endings 股份有限公司, 有限责任公司, 有限公司,
--      公司, 集团.
-- Equal normalised names are a `match`.  Otherwise the Levenshtein
-- distance d between the two, in characters (code points), gives a
-- `close_match` when d <= 2 and d <= 20% of the longer name's length
-- (so one edit from 5 characters on, two from 10 on); else `no_match`.
--
-- Against enumeration: each partner may make at most ATTEMPTS (5)
-- verifications of one account number that do not match within 24 hours;
-- further attempts are 429 rate_limited until the oldest is a day old.
-- An unknown account counts as an attempt like any other.

local problem = require "openbank.problem"
local util = require "openbank.util"

local math_floor = math.floor
local math_max = math.max
local math_min = math.min
local str_byte = string.byte
local str_char = string.char
local str_lower = string.lower
local tbl_concat = table.concat
local tostring = tostring


local _M = {}


local ATTEMPTS = 5
local WINDOW_MS = 86400 * 1000

_M.ATTEMPTS = ATTEMPTS


local SQL_ACCOUNT = [[
SELECT number, name, bank_code, status, kind
FROM accounts WHERE number = ?]]

local SQL_FAILED = [[
SELECT COUNT(*) AS n, MIN(at) AS oldest FROM verifications
WHERE partner = ? AND account = ? AND at > ? AND result <> 'match']]

local SQL_INSERT = [[
INSERT INTO verifications (partner, account, result, at) VALUES (?, ?, ?, ?)]]


-- UTF-8 -> array of code points, or nil for invalid UTF-8
local function decode(s)
    local cps, n, i, len = {}, 0, 1, #s

    while i <= len do
        local c = str_byte(s, i)
        local cp, extra

        if c < 0x80 then
            cp, extra = c, 0
        elseif c >= 0xc2 and c < 0xe0 then
            cp, extra = c - 0xc0, 1
        elseif c >= 0xe0 and c < 0xf0 then
            cp, extra = c - 0xe0, 2
        elseif c >= 0xf0 and c < 0xf5 then
            cp, extra = c - 0xf0, 3
        else
            return nil
        end

        for k = 1, extra do
            local cc = str_byte(s, i + k)
            if not cc or cc < 0x80 or cc > 0xbf then
                return nil
            end
            cp = cp * 64 + (cc - 0x80)
        end

        if (extra == 2 and cp < 0x800) or (extra == 3 and cp < 0x10000)
           or cp > 0x10ffff or (cp >= 0xd800 and cp <= 0xdfff)
        then
            return nil
        end

        n = n + 1
        cps[n] = cp
        i = i + extra + 1
    end

    return cps
end


local function encode(cp)
    if cp < 0x80 then
        return str_char(cp)
    elseif cp < 0x800 then
        return str_char(0xc0 + math_floor(cp / 64), 0x80 + cp % 64)
    elseif cp < 0x10000 then
        return str_char(0xe0 + math_floor(cp / 4096),
                        0x80 + math_floor(cp / 64) % 64, 0x80 + cp % 64)
    end

    return str_char(0xf0 + math_floor(cp / 262144),
                    0x80 + math_floor(cp / 4096) % 64,
                    0x80 + math_floor(cp / 64) % 64, 0x80 + cp % 64)
end


local function is_separator(cp)
    return (cp < 0x80 and not ((cp >= 0x30 and cp <= 0x39)
                               or (cp >= 0x61 and cp <= 0x7a)))
           or (cp >= 0x3000 and cp <= 0x303f) or cp == 0xb7
end


local WORD_SUFFIXES = {
    co = true, company = true, corp = true, corporation = true,
    inc = true, incorporated = true, llc = true, plc = true, ltd = true,
    limited = true, gmbh = true,
}

-- longest first
local CJK_SUFFIXES = {
    decode("股份有限公司"), decode("有限责任公司"), decode("有限公司"),
    decode("公司"), decode("集团"),
}


-- A name -> array of code points of its normalised form, or nil.
local function normalise(name)
    local cps = decode(name)
    if not cps then
        return nil
    end

    -- words: runs of non-separators, after width folding and lowercase
    local words, word = {}, {}
    for i = 1, #cps + 1 do
        local cp = cps[i] or 0x20

        if cp >= 0xff01 and cp <= 0xff5e then
            cp = cp - 0xfee0
        elseif cp == 0x3000 then
            cp = 0x20
        end

        if cp >= 0x41 and cp <= 0x5a then
            cp = cp + 0x20
        end

        if is_separator(cp) then
            if #word > 0 then
                words[#words + 1] = word
                word = {}
            end
        else
            word[#word + 1] = cp
        end
    end

    -- trailing company words
    while #words > 1 do
        local w = words[#words]
        local s = {}
        for i = 1, #w do
            s[i] = w[i] < 0x80 and str_char(w[i]) or "\0"
        end

        if not WORD_SUFFIXES[tbl_concat(s)] then
            break
        end

        words[#words] = nil
    end

    local out = {}
    for i = 1, #words do
        local w = words[i]
        for j = 1, #w do
            out[#out + 1] = w[j]
        end
    end

    -- trailing Chinese company endings
    local again = true
    while again do
        again = false
        for k = 1, #CJK_SUFFIXES do
            local suf = CJK_SUFFIXES[k]
            local n = #out - #suf
            if n > 0 then
                local same = true
                for j = 1, #suf do
                    if out[n + j] ~= suf[j] then
                        same = false
                        break
                    end
                end

                if same then
                    for j = #out, n + 1, -1 do
                        out[j] = nil
                    end
                    again = true
                    break
                end
            end
        end
    end

    return out
end


local function distance(a, b)
    local la, lb = #a, #b
    if la == 0 then
        return lb
    end
    if lb == 0 then
        return la
    end

    local prev, cur = {}, {}
    for j = 0, lb do
        prev[j] = j
    end

    for i = 1, la do
        cur[0] = i
        local ai = a[i]
        for j = 1, lb do
            local cost = (ai == b[j]) and 0 or 1
            cur[j] = math_min(prev[j] + 1, cur[j - 1] + 1,
                              prev[j - 1] + cost)
        end
        prev, cur = cur, prev
    end

    return prev[lb]
end


-- "match", "close_match" or "no_match" for two names
function _M.compare(given, actual)
    local a = normalise(given)
    local b = normalise(actual)
    if not a or not b or #a == 0 or #b == 0 then
        return "no_match"
    end

    local d = distance(a, b)
    if d == 0 then
        return "match"
    end

    local longer = math_max(#a, #b)
    if d <= 2 and d <= math_floor(longer * 0.2) then
        return "close_match"
    end

    return "no_match"
end


function _M.normalised(name)
    local cps = normalise(name)
    if not cps then
        return nil
    end

    local s = {}
    for i = 1, #cps do
        s[i] = encode(cps[i])
    end

    return tbl_concat(s)
end


function _M.create(req)
    local obj, err = util.body_object({ account = true })
    if not obj then
        return nil, err
    end

    local ok

    local acct
    acct, err = util.account(obj.account, "account", true)
    if not acct then
        return nil, err
    end

    if not decode(acct.name) then
        return nil, problem.err("invalid_body", "account.name: must be "
                                .. "UTF-8")
    end

    local conn = req.db
    local now = util.now_ms()

    local row
    row, err = conn:first(SQL_FAILED, req.partner, acct.number,
                          now - WINDOW_MS)
    if not row then
        return nil, err
    end

    if row.n >= ATTEMPTS then
        local retry = math_floor((row.oldest + WINDOW_MS - now) / 1000) + 1
        return nil, problem.err("rate_limited", "Too many verifications "
                                .. "of this account that did not match; "
                                .. "retry in " .. retry .. " seconds."),
               { "Retry-After", tostring(retry) }
    end

    local a
    a, err = conn:first(SQL_ACCOUNT, acct.number)
    if err then
        return nil, err
    end

    local result, matched
    if not a or a.kind ~= "customer" or a.status == "closed"
       or a.bank_code ~= acct.bank_code
    then
        result = "account_not_found"
    else
        result = _M.compare(acct.name, a.name)
        if result == "close_match" then
            matched = a.name
        end
    end

    ok, err = conn:run(SQL_INSERT, req.partner, acct.number, result, now)
    if not ok then
        return nil, err
    end

    return 200, { result = result, matched_name = matched }
end


return _M
