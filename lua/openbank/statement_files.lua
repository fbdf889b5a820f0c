-- A day's statement as a file (docs/erp.md): GET
-- /v1/statements?date=&format=camt053 | mt940 | csv.
--
--   camt053  ISO 20022 camt.053.001.08, one Stmt per account:
--            application/xml
--   mt940    SWIFT MT940, one message per account, in SWIFT's x
--            character set, lines of at most 65 characters: text/plain
--   csv      RFC 4180 in UTF-8 with a byte order mark (for Excel), CRLF
--            lines: a header row, then per account an opening line, a
--            line per entry and a closing line with the count and the
--            totals: text/csv
--
-- Each has the same entries as the JSON statement (openbank.statements):
-- an entry's AcctSvcrRef, MT940 bank reference and CSV entry_id are its
-- `id` there, and opening + entries = closing in every format.
--
-- Files are built as arrays of strings joined once (table.concat), so a
-- day of 10,000 entries costs time linear in its size.

local money = require "openbank.money"
local schema = require "openbank.schema"
local util = require "openbank.util"

local math_floor = math.floor
local money_format = money.format
local now_ms = util.now_ms
local os_date = os.date
local str_byte = string.byte
local str_find = string.find
local str_format = string.format
local str_gsub = string.gsub
local str_sub = string.sub
local tbl_concat = table.concat
local tonumber = tonumber


local _M = {}


local BANK_CODE = schema.BANK_CODE
local REPLACEMENT = "\239\191\189"


-- s with every control character a space and every byte that is not part
-- of a well-formed UTF-8 character U+FFFD: text fit for XML and CSV.
local function clean(s)
    if not s then
        return ""
    end

    if not str_find(s, "[%z\1-\31\127-\255]") then
        return s
    end

    local out, n, i, len = {}, 0, 1, #s
    while i <= len do
        local b = str_byte(s, i)
        local l, lo, hi = 0, 0x80, 0xbf

        if b < 0x20 or b == 0x7f then
            n = n + 1
            out[n] = " "
            i = i + 1

        elseif b < 0x80 then
            local j = str_find(s, "[%z\1-\31\127-\255]", i) or len + 1
            n = n + 1
            out[n] = str_sub(s, i, j - 1)
            i = j

        else
            if b >= 0xc2 and b <= 0xdf then
                l = 2
            elseif b >= 0xe0 and b <= 0xef then
                l = 3
                if b == 0xe0 then
                    lo = 0xa0
                elseif b == 0xed then
                    hi = 0x9f
                end
            elseif b >= 0xf0 and b <= 0xf4 then
                l = 4
                if b == 0xf0 then
                    lo = 0x90
                elseif b == 0xf4 then
                    hi = 0x8f
                end
            end

            local ok = l > 0 and i + l - 1 <= len
            if ok then
                local c = str_byte(s, i + 1)
                ok = c >= lo and c <= hi
                for k = 2, l - 1 do
                    c = str_byte(s, i + k)
                    ok = ok and c >= 0x80 and c <= 0xbf
                end
            end

            n = n + 1
            if ok then
                out[n] = str_sub(s, i, i + l - 1)
                i = i + l
            else
                out[n] = REPLACEMENT
                i = i + 1
            end
        end
    end

    return tbl_concat(out, "", 1, n)
end

_M.clean = clean


local XML_ESCAPES = {
    ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
}

local function xml(s)
    s = clean(s)
    if str_find(s, '[&<>"]') then
        s = str_gsub(s, '[&<>"]', XML_ESCAPES)
    end
    return s
end


-- times in the bank's timezone
local function local_date(ms, tz)
    return os_date("!%Y-%m-%d", math_floor(ms / 1000) + tz)
end

local function local_datetime(ms, tz, tzname)
    return os_date("!%Y-%m-%dT%H:%M:%S", math_floor(ms / 1000) + tz)
           .. str_format(".%03d", ms % 1000) .. tzname
end


local function unsigned(minor)
    return money_format(minor < 0 and -minor or minor)
end


-- ISO 20022 camt.053.001.08 ------------------------------------------------

local function camt_balance(b, n, code, minor, currency, date)
    b[n + 1] = "<Bal><Tp><CdOrPrtry><Cd>"
    b[n + 2] = code
    b[n + 3] = "</Cd></CdOrPrtry></Tp><Amt Ccy=\""
    b[n + 4] = currency
    b[n + 5] = "\">"
    b[n + 6] = unsigned(minor)
    b[n + 7] = "</Amt><CdtDbtInd>"
    b[n + 8] = minor < 0 and "DBIT" or "CRDT"
    b[n + 9] = "</CdtDbtInd><Dt><Dt>"
    b[n + 10] = date
    b[n + 11] = "</Dt></Dt></Bal>\n"
    return n + 11
end


local function camt053(st, created)
    local tz, tzname, date = st.tz, st.tzname, st.date
    local compact = str_gsub(date, "-", "")
    local b = {
        '<?xml version="1.0" encoding="UTF-8"?>\n',
        '<Document xmlns="urn:iso:std:iso:20022:tech:xsd:camt.053.001.08">\n',
        "<BkToCstmrStmt>\n<GrpHdr><MsgId>STMT-", compact, "-",
        str_format("%d", created), "</MsgId><CreDtTm>",
        local_datetime(created, tz, tzname), "</CreDtTm></GrpHdr>\n",
    }
    local n = #b
    local from = local_datetime(st.from, tz, tzname)
    local to = local_datetime(st.to - 1, tz, tzname)

    for i = 1, #st.accounts do
        local a = st.accounts[i]
        local cur = a.currency
        local es = a.entries
        local closing, credits, debits, ncredits = a.opening, 0, 0, 0
        for j = 1, #es do
            local amount = es[j].amount
            closing = closing + amount
            if amount > 0 then
                credits = credits + amount
                ncredits = ncredits + 1
            else
                debits = debits - amount
            end
        end

        local net = credits - debits
        local tail = {
            "<Stmt>\n<Id>STMT-", compact, "-", a.number, "</Id><CreDtTm>",
            local_datetime(created, tz, tzname), "</CreDtTm>",
            "<FrToDt><FrDtTm>", from, "</FrDtTm><ToDtTm>", to,
            "</ToDtTm></FrToDt>\n",
            "<Acct><Id><Othr><Id>", a.number, "</Id></Othr></Id><Ccy>", cur,
            "</Ccy><Svcr><FinInstnId><Othr><Id>", BANK_CODE,
            "</Id></Othr></FinInstnId></Svcr></Acct>\n",
        }
        for k = 1, #tail do
            b[n + k] = tail[k]
        end
        n = n + #tail

        n = camt_balance(b, n, "OPBD", a.opening, cur, date)
        n = camt_balance(b, n, "CLBD", closing, cur, date)

        tail = {
            "<TxsSummry><TtlNtries><NbOfNtries>", str_format("%d", #es),
            "</NbOfNtries><Sum>", money_format(credits + debits),
            "</Sum><TtlNetNtry><Amt>", unsigned(net), "</Amt><CdtDbtInd>",
            net < 0 and "DBIT" or "CRDT", "</CdtDbtInd></TtlNetNtry>",
            "</TtlNtries><TtlCdtNtries><NbOfNtries>",
            str_format("%d", ncredits), "</NbOfNtries><Sum>",
            money_format(credits), "</Sum></TtlCdtNtries><TtlDbtNtries>",
            "<NbOfNtries>", str_format("%d", #es - ncredits),
            "</NbOfNtries><Sum>", money_format(debits),
            "</Sum></TtlDbtNtries></TxsSummry>\n",
        }
        for k = 1, #tail do
            b[n + k] = tail[k]
        end
        n = n + #tail

        for j = 1, #es do
            local e = es[j]
            local id = str_format("%d", e.id)
            local ind = e.amount < 0 and "DBIT" or "CRDT"
            local amt = unsigned(e.amount)

            b[n + 1] = "<Ntry><NtryRef>"
            b[n + 2] = id
            b[n + 3] = "</NtryRef><Amt Ccy=\""
            b[n + 4] = cur
            b[n + 5] = "\">"
            b[n + 6] = amt
            b[n + 7] = "</Amt><CdtDbtInd>"
            b[n + 8] = ind
            b[n + 9] = "</CdtDbtInd><Sts><Cd>BOOK</Cd></Sts><BookgDt><DtTm>"
            b[n + 10] = local_datetime(e.booked_at, tz, tzname)
            b[n + 11] = "</DtTm></BookgDt><ValDt><Dt>"
            b[n + 12] = date
            b[n + 13] = "</Dt></ValDt><AcctSvcrRef>"
            b[n + 14] = id
            b[n + 15] = "</AcctSvcrRef><BkTxCd><Prtry><Cd>"
            b[n + 16] = xml(e.kind)
            b[n + 17] = "</Cd><Issr>"
            b[n + 18] = BANK_CODE
            b[n + 19] = "</Issr></Prtry></BkTxCd><NtryDtls><TxDtls><Refs>"
                        .. "<AcctSvcrRef>"
            b[n + 20] = id
            b[n + 21] = "</AcctSvcrRef><EndToEndId>"
            b[n + 22] = xml(e.reference or "NOTPROVIDED")
            b[n + 23] = "</EndToEndId><TxId>"
            b[n + 24] = xml(e.txn_id)
            b[n + 25] = "</TxId></Refs><Amt Ccy=\""
            b[n + 26] = cur
            b[n + 27] = "\">"
            b[n + 28] = amt
            b[n + 29] = "</Amt><CdtDbtInd>"
            b[n + 30] = ind
            b[n + 31] = "</CdtDbtInd></TxDtls></NtryDtls><AddtlNtryInf>"
            b[n + 32] = xml(e.description)
            b[n + 33] = "</AddtlNtryInf></Ntry>\n"
            n = n + 33
        end

        n = n + 1
        b[n] = "</Stmt>\n"
    end

    b[n + 1] = "</BkToCstmrStmt>\n</Document>\n"
    return tbl_concat(b, "", 1, n + 1)
end


-- SWIFT MT940 --------------------------------------------------------------

-- text in SWIFT's x character set (a-z A-Z 0-9 / - ? : ( ) . , ' + and
-- space): a character outside it is "?" ("_" is "-")
local function swift(s)
    s = clean(s)
    s = str_gsub(s, "[\192-\255][\128-\191]*", "?")
    s = str_gsub(s, "_", "-")
    return (str_gsub(s, "[^%w/%-%?:%(%)%.,'%+ ]", "?"))
end


-- "1250.00" -> "1250,00"
local function swift_amount(minor)
    return (str_gsub(unsigned(minor), "%.", ","))
end


local function swift_balance(tag, minor, yymmdd, currency)
    return tag .. (minor < 0 and "D" or "C") .. yymmdd .. currency
           .. swift_amount(minor) .. "\r\n"
end


-- SWIFT's codes of the transaction type in :61:
local TYPES = {
    payment = "NTRF", collection = "NDDT", opening = "NMSC",
}


-- :86: as up to 6 lines of 65 characters; no line begins with ":" or "-"
-- (a field tag, the end of the message)
local function narrative(b, n, text)
    text = swift(text)
    local pos, lines = 1, 0
    while pos <= #text and lines < 6 do
        local width = lines == 0 and 61 or 65
        local line = str_sub(text, pos, pos + width - 1)
        pos = pos + width
        if lines > 0 then
            local c = str_sub(line, 1, 1)
            if c == ":" or c == "-" then
                line = "." .. str_sub(line, 2)
            end
            n = n + 1
            b[n] = line .. "\r\n"
        else
            n = n + 1
            b[n] = ":86:" .. line .. "\r\n"
        end
        lines = lines + 1
    end

    return n
end


local function mt940(st)
    local tz, date = st.tz, st.date
    local yymmdd = str_sub(date, 3, 4) .. str_sub(date, 6, 7)
                   .. str_sub(date, 9, 10)
    local mmdd = str_sub(yymmdd, 3)
    local day = tonumber(os_date("!%j", math_floor(st.from / 1000) + tz))
    local b, n = {}, 0

    for i = 1, #st.accounts do
        local a = st.accounts[i]
        local cur = a.currency
        local es = a.entries
        local balance = a.opening

        n = n + 1
        b[n] = ":20:STMT" .. str_gsub(date, "-", "") .. "\r\n"
               .. ":25:" .. BANK_CODE .. "/" .. a.number .. "\r\n"
               .. str_format(":28C:%05d/001\r\n", day)
               .. swift_balance(":60F:", balance, yymmdd, cur)

        for j = 1, #es do
            local e = es[j]
            balance = balance + e.amount
            n = n + 1
            b[n] = ":61:" .. yymmdd .. mmdd .. (e.amount < 0 and "D" or "C")
                   .. swift_amount(e.amount) .. (TYPES[e.kind] or "NMSC")
                   .. "NONREF//" .. str_format("%d", e.id) .. "\r\n"
                   .. str_sub(swift(e.txn_id), 1, 34) .. "\r\n"
            n = narrative(b, n, e.description)
        end

        n = n + 1
        b[n] = swift_balance(":62F:", balance, yymmdd, cur) .. "-\r\n"
    end

    return tbl_concat(b, "", 1, n)
end


-- CSV ------------------------------------------------------------------------

local CSV_HEADER = "record,account,currency,booking_date,booked_at,"
                   .. "entry_id,transaction_id,kind,reference,description,"
                   .. "debit,credit,balance,count\r\n"

-- a text cell: quoted when it holds a comma, a quote or a line break, and
-- a leading = + - @ (a formula to a spreadsheet) behind a '
local function cell(s)
    s = clean(s)
    local c = str_byte(s, 1)
    if c == 61 or c == 43 or c == 45 or c == 64 then
        s = "'" .. s
    end
    if str_find(s, '[,"\r\n]') then
        s = '"' .. str_gsub(s, '"', '""') .. '"'
    end
    return s
end


local function csv(st)
    local tz, tzname, date = st.tz, st.tzname, st.date
    local b = { "\239\187\191", CSV_HEADER }
    local n = 2

    for i = 1, #st.accounts do
        local a = st.accounts[i]
        local head = a.number .. "," .. a.currency .. "," .. date .. ","
        local es = a.entries
        local balance, credits, debits = a.opening, 0, 0

        n = n + 1
        b[n] = "opening," .. head .. ",,,,,Opening balance,,,"
               .. money_format(balance) .. ",\r\n"

        for j = 1, #es do
            local e = es[j]
            local amount = e.amount
            local debit, credit = "", ""
            balance = balance + amount
            if amount > 0 then
                credits = credits + amount
                credit = money_format(amount)
            else
                debits = debits - amount
                debit = money_format(-amount)
            end

            n = n + 1
            b[n] = "entry," .. head
                   .. local_datetime(e.booked_at, tz, tzname) .. ","
                   .. str_format("%d", e.id) .. "," .. cell(e.txn_id) .. ","
                   .. cell(e.kind) .. "," .. cell(e.reference) .. ","
                   .. cell(e.description) .. "," .. debit .. "," .. credit
                   .. "," .. money_format(balance) .. ",\r\n"
        end

        n = n + 1
        b[n] = "closing," .. head .. ",,,,,Closing balance,"
               .. money_format(debits) .. "," .. money_format(credits) .. ","
               .. money_format(balance) .. "," .. str_format("%d", #es)
               .. "\r\n"
    end

    return tbl_concat(b, "", 1, n)
end


local KINDS = {
    camt053 = { camt053, "application/xml; charset=utf-8", "xml" },
    mt940 = { mt940, "text/plain; charset=utf-8", "sta" },
    csv = { csv, "text/csv; charset=utf-8", "csv" },
}


-- st: { date, account ("" for all), from, to (unix ms), tz (seconds east
-- of UTC), tzname ("+08:00"), accounts = { { number, currency, opening,
-- entries = rows of openbank.statements' SQL_ENTRIES } } }
-- -> 200, the file, its headers
function _M.render(format, st)
    local k = KINDS[format]
    local body = k[1](st, now_ms())
    local name = "statement-" .. st.date
                 .. (st.account ~= "" and "-" .. st.account or "")
                 .. "." .. k[3]

    return 200, body, {
        "Content-Type", k[2],
        "Content-Disposition", 'attachment; filename="' .. name .. '"',
    }
end


return _M
