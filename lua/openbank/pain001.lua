-- ISO 20022 pain.001.001.09 (CustomerCreditTransferInitiationV09) to a
-- payment batch: the subset of docs/erp.md, checked against the message
-- definition's names, cardinalities and types.
--
--   local batch, err = pain001.map(root)   -- root: openbank.xml's tree
--
-- err (nil batch): the document is not a pain.001.001.09 at all (another
-- root element or namespace): 400 invalid_body.  Otherwise the batch
--
--   { message_id, pmt_inf_id, debtor (account number), nb_of_txs,
--     ctrl_sum (minor units or nil; false when it has more than two
--     decimals), items = { { end_to_end_id, amount (minor units),
--     currency, creditor = { number, name, bank_code }, reference } },
--     errors = { { index, end_to_end_id, code, detail } } }
--
-- with every fault found in errors (index: the 0-based position of the
-- CdtTrfTxInf in the document, nil for a fault of the group or payment
-- information).  A batch with errors is refused whole (422 invalid_batch).
--
-- Plain Lua (no ngx.*), so that fuzz/fuzz_xml.lua runs it outside nginx.

local pairs = pairs
local setmetatable = setmetatable
local str_find = string.find
local str_gsub = string.gsub
local str_match = string.match
local str_sub = string.sub
local tonumber = tonumber


local _M = {}


local NS = "urn:iso:std:iso:20022:tech:xsd:pain.001.001.09"

_M.NS = NS

_M.MAX_ITEMS = 10000


-- The elements of each level: name -> { min, max } (max 0: unbounded).
-- Names of the message definition this mapping does not use are allowed
-- with their cardinality and otherwise ignored.
local DOCUMENT = {
    CstmrCdtTrfInitn = { 1, 1 },
}

local INITN = {
    GrpHdr = { 1, 1 },
    PmtInf = { 1, 1 },
    SplmtryData = { 0, 0 },
}

local GRPHDR = {
    MsgId = { 1, 1 },
    CreDtTm = { 1, 1 },
    Authstn = { 0, 2 },
    NbOfTxs = { 1, 1 },
    CtrlSum = { 0, 1 },
    InitgPty = { 1, 1 },
    FwdgAgt = { 0, 1 },
}

local PMTINF = {
    PmtInfId = { 1, 1 },
    PmtMtd = { 1, 1 },
    BtchBookg = { 0, 1 },
    NbOfTxs = { 0, 1 },
    CtrlSum = { 0, 1 },
    PmtTpInf = { 0, 1 },
    ReqdExctnDt = { 1, 1 },
    PoolgAdjstmntDt = { 0, 1 },
    Dbtr = { 1, 1 },
    DbtrAcct = { 1, 1 },
    DbtrAgt = { 1, 1 },
    DbtrAgtAcct = { 0, 1 },
    InstrForDbtrAgt = { 0, 1 },
    UltmtDbtr = { 0, 1 },
    ChrgBr = { 0, 1 },
    ChrgsAcct = { 0, 1 },
    ChrgsAcctAgt = { 0, 1 },
    CdtTrfTxInf = { 1, 0 },
}

local TXINF = {
    PmtId = { 1, 1 },
    PmtTpInf = { 0, 1 },
    Amt = { 1, 1 },
    XchgRateInf = { 0, 1 },
    ChrgBr = { 0, 1 },
    ChqInstr = { 0, 1 },
    UltmtDbtr = { 0, 1 },
    IntrmyAgt1 = { 0, 1 },
    IntrmyAgt1Acct = { 0, 1 },
    IntrmyAgt2 = { 0, 1 },
    IntrmyAgt2Acct = { 0, 1 },
    IntrmyAgt3 = { 0, 1 },
    IntrmyAgt3Acct = { 0, 1 },
    CdtrAgt = { 0, 1 },
    CdtrAgtAcct = { 0, 1 },
    -- 0..1 in the message definition; the bank needs the creditor's name
    -- and account
    Cdtr = { 1, 1 },
    CdtrAcct = { 1, 1 },
    UltmtCdtr = { 0, 1 },
    InstrForCdtrAgt = { 0, 0 },
    InstrForDbtrAgt = { 0, 1 },
    Purp = { 0, 1 },
    RgltryRptg = { 0, 10 },
    Tax = { 0, 1 },
    RltdRmtInf = { 0, 10 },
    RmtInf = { 0, 1 },
    SplmtryData = { 0, 0 },
}

local PMTID = { InstrId = { 0, 1 }, EndToEndId = { 1, 1 }, UETR = { 0, 1 } }
local AMT = { InstdAmt = { 1, 1 } }
local ACCT = { Id = { 1, 1 }, Tp = { 0, 1 }, Ccy = { 0, 1 }, Nm = { 0, 1 },
               Prxy = { 0, 1 } }
local ACCTID = { IBAN = { 0, 1 }, Othr = { 0, 1 } }
local OTHR = { Id = { 1, 1 }, SchmeNm = { 0, 1 }, Issr = { 0, 1 } }
local PARTY = { Nm = { 0, 1 }, PstlAdr = { 0, 1 }, Id = { 0, 1 },
                CtryOfRes = { 0, 1 }, CtctDtls = { 0, 1 } }
local AGENT = { FinInstnId = { 1, 1 }, BrnchId = { 0, 1 } }
local FININSTNID = { BICFI = { 0, 1 }, ClrSysMmbId = { 0, 1 },
                     LEI = { 0, 1 }, Nm = { 0, 1 }, PstlAdr = { 0, 1 },
                     Othr = { 0, 1 } }
local RMTINF = { Ustrd = { 0, 0 }, Strd = { 0, 0 } }


-- each spec's required names, in a list (no pairs() per element)
local SPECS = { DOCUMENT, INITN, GRPHDR, PMTINF, TXINF, PMTID, AMT, ACCT,
                ACCTID, OTHR, PARTY, AGENT, FININSTNID, RMTINF }
local REQUIRED = {}
for i = 1, #SPECS do
    local list = {}
    for name, s in pairs(SPECS[i]) do
        if s[1] > 0 then
            list[#list + 1] = name
        end
    end
    table.sort(list)
    REQUIRED[SPECS[i]] = list
end


-- Max35Text / Max140Text: 1 to max characters (UTF-8), no surrounding
-- element structure
local function utf8_len(s)
    local _, n = str_gsub(s, "[^\128-\191]", "")
    return n
end


local Batch = {}
Batch.__index = Batch


function Batch:fault(index, e2e, code, detail)
    local errs = self.errors
    -- a hostile document must not build an unbounded list of faults
    if #errs >= 1000 then
        return
    end
    errs[#errs + 1] = { index = index, end_to_end_id = e2e, code = code,
                        detail = detail }
end


-- The children of el per spec: name -> element (max 1) or list; records
-- unknown, foreign, missing and repeated elements as faults at `where`.
function Batch:fields(el, spec, where, index, e2e)
    local got = {}
    local counts = {}

    for i = 1, #el do
        local c = el[i]
        local s = spec[c.name]
        if c.ns ~= NS then
            self:fault(index, e2e, "invalid_element", where .. "/" .. c.name
                       .. ": not in the namespace " .. NS)
        elseif not s then
            self:fault(index, e2e, "invalid_element", where .. "/" .. c.name
                       .. ": not an element of pain.001.001.09 here")
        else
            local n = (counts[c.name] or 0) + 1
            counts[c.name] = n
            if s[2] == 1 then
                if n == 2 then
                    self:fault(index, e2e, "invalid_element", where .. "/"
                               .. c.name .. ": at most once")
                end
                got[c.name] = got[c.name] or c
            else
                if s[2] > 1 and n == s[2] + 1 then
                    self:fault(index, e2e, "invalid_element", where .. "/"
                               .. c.name .. ": at most " .. s[2] .. " times")
                end
                local list = got[c.name]
                if not list then
                    list = {}
                    got[c.name] = list
                end
                list[#list + 1] = c
            end
        end
    end

    local req = REQUIRED[spec]
    for i = 1, #req do
        local name = req[i]
        if not counts[name] then
            self:fault(index, e2e, "invalid_element", where .. "/" .. name
                       .. ": required")
        end
    end

    return got
end


-- the text of a leaf element: no child elements
function Batch:leaf(el, where, index, e2e)
    if not el then
        return nil
    end

    if el[1] then
        self:fault(index, e2e, "invalid_element", where
                   .. ": must hold text, not elements")
        return nil
    end

    return el.text
end


function Batch:text(el, where, max, index, e2e)
    local s = self:leaf(el, where, index, e2e)
    if not s then
        return nil
    end

    local n = utf8_len(s)
    if n < 1 or n > max or str_find(s, "^%s") or str_find(s, "%s$") then
        self:fault(index, e2e, "invalid_value", where .. ": must be 1 to "
                   .. max .. " characters, without surrounding spaces")
        return nil
    end

    return s
end


-- a decimal of the message definition -> minor units, with at most
-- `frac` fraction digits; nil, detail
local function decimal(s, frac)
    local int, dec = str_match(s, "^(%d+)%.?(%d*)$")
    if not int or (dec == "" and str_sub(s, -1) == ".") then
        return nil, "must be a decimal number, e.g. 1250.00"
    end

    if #dec > frac then
        return nil, "has more than " .. frac .. " fraction digits"
    end

    int = int:gsub("^0+", "")
    if #int > 13 then
        return nil, "is too large"
    end

    dec = dec .. ("00"):sub(1, 2 - #dec)
    return (tonumber(int) or 0) * 100 + tonumber(dec)
end

_M.decimal = decimal


-- an account: Id/Othr/Id (the bank's account numbers) or Id/IBAN
function Batch:account(el, where, index, e2e)
    local f = self:fields(el, ACCT, where, index, e2e)
    if not f.Id then
        return nil
    end

    local id = self:fields(f.Id, ACCTID, where .. "/Id", index, e2e)
    local number
    if id.Othr then
        local o = self:fields(id.Othr, OTHR, where .. "/Id/Othr", index, e2e)
        number = self:text(o.Id, where .. "/Id/Othr/Id", 34, index, e2e)
    elseif id.IBAN then
        number = self:leaf(id.IBAN, where .. "/Id/IBAN", index, e2e)
    else
        self:fault(index, e2e, "invalid_element", where
                   .. "/Id: IBAN or Othr is required")
        return nil
    end

    if number and not str_find(number, "^%d%d%d%d%d%d+$") or number
       and #number > 34
    then
        self:fault(index, e2e, "invalid_account", where
                   .. ": the account number must be 6 to 34 digits")
        return nil
    end

    return number
end


local function item(b, tx, index)
    local where = "CdtTrfTxInf[" .. index .. "]"

    -- the EndToEndId first, to name the item in its faults
    local e2e
    for i = 1, #tx do
        local c = tx[i]
        if c.name == "PmtId" and c.ns == NS then
            for j = 1, #c do
                if c[j].name == "EndToEndId" and c[j].ns == NS
                   and not c[j][1]
                then
                    e2e = c[j].text
                end
            end
        end
    end
    if e2e and (#e2e > 140 or e2e == "") then
        e2e = nil
    end

    local f = b:fields(tx, TXINF, where, index, e2e)
    local it = { index = index }

    if f.PmtId then
        local p = b:fields(f.PmtId, PMTID, where .. "/PmtId", index, e2e)
        it.end_to_end_id = b:text(p.EndToEndId, where .. "/PmtId/EndToEndId",
                                  35, index, e2e)
    end

    if f.Amt then
        local a = b:fields(f.Amt, AMT, where .. "/Amt", index, e2e)
        local el = a.InstdAmt
        local v = b:leaf(el, where .. "/Amt/InstdAmt", index, e2e)
        if v then
            local ccy = el.attrs.Ccy
            if not ccy or not str_find(ccy, "^%u%u%u$") then
                b:fault(index, e2e, "invalid_currency", where
                        .. "/Amt/InstdAmt: the Ccy attribute must be an "
                        .. "ISO 4217 code of 3 capital letters")
            else
                it.currency = ccy
            end

            local minor, err = decimal(v, 2)
            if not minor then
                b:fault(index, e2e, "invalid_amount", where
                        .. "/Amt/InstdAmt " .. err)
            elseif minor <= 0 then
                b:fault(index, e2e, "invalid_amount", where
                        .. "/Amt/InstdAmt must be greater than zero")
            else
                it.amount = minor
            end
        end
    end

    local cr = { bank_code = nil }
    it.creditor = cr

    if f.Cdtr then
        local p = b:fields(f.Cdtr, PARTY, where .. "/Cdtr", index, e2e)
        if not p.Nm then
            b:fault(index, e2e, "invalid_element", where
                    .. "/Cdtr/Nm: required")
        end
        cr.name = b:text(p.Nm, where .. "/Cdtr/Nm", 140, index, e2e)
    end

    if f.CdtrAcct then
        cr.number = b:account(f.CdtrAcct, where .. "/CdtrAcct", index, e2e)
    end

    if f.CdtrAgt then
        local a = b:fields(f.CdtrAgt, AGENT, where .. "/CdtrAgt", index, e2e)
        if a.FinInstnId then
            local fi = b:fields(a.FinInstnId, FININSTNID,
                                where .. "/CdtrAgt/FinInstnId", index, e2e)
            local bic = b:leaf(fi.BICFI, where .. "/CdtrAgt/FinInstnId/BICFI",
                               index, e2e)
            if bic then
                if not str_find(bic, "^[%u%d][%u%d][%u%d][%u%d]")
                   or str_find(bic, "[^%u%d]") or #bic > 11
                then
                    b:fault(index, e2e, "invalid_value", where
                            .. "/CdtrAgt/FinInstnId/BICFI: must be 4 to 11 "
                            .. "capital letters or digits")
                else
                    cr.bank_code = bic
                end
            end
        end
    end

    if f.RmtInf then
        local r = b:fields(f.RmtInf, RMTINF, where .. "/RmtInf", index, e2e)
        if r.Ustrd then
            it.reference = b:text(r.Ustrd[1], where .. "/RmtInf/Ustrd", 140,
                                  index, e2e)
        end
    end

    return it
end


function _M.map(root)
    if root.name ~= "Document" or root.ns ~= NS then
        return nil, "the document is not an ISO 20022 pain.001.001.09 "
                    .. "(root element Document in the namespace " .. NS
                    .. ")"
    end

    local b = setmetatable({ errors = {}, items = {} }, Batch)

    local d = b:fields(root, DOCUMENT, "Document")
    if not d.CstmrCdtTrfInitn then
        return b
    end

    local top = b:fields(d.CstmrCdtTrfInitn, INITN, "CstmrCdtTrfInitn")

    if top.GrpHdr then
        local g = b:fields(top.GrpHdr, GRPHDR, "GrpHdr")
        b.message_id = b:text(g.MsgId, "GrpHdr/MsgId", 35)

        local n = b:leaf(g.NbOfTxs, "GrpHdr/NbOfTxs")
        if n then
            if not str_find(n, "^%d+$") or #n > 15 then
                b:fault(nil, nil, "invalid_value",
                        "GrpHdr/NbOfTxs: must be 1 to 15 digits")
            else
                b.nb_of_txs = tonumber(n)
            end
        end

        local cs = b:leaf(g.CtrlSum, "GrpHdr/CtrlSum")
        if cs then
            local minor, err = decimal(cs, 17)
            if not minor then
                b:fault(nil, nil, "invalid_value", "GrpHdr/CtrlSum " .. err)
            else
                -- more than 2 decimals that are not zeros: no sum of
                -- amounts in minor units equals it
                local frac = str_match(cs, "%.%d%d(%d*)$")
                if frac and str_find(frac, "[1-9]") then
                    b.ctrl_sum = false
                else
                    b.ctrl_sum = decimal(str_match(cs, "^%d+%.?%d?%d?"), 2)
                end
            end
        end
    end

    local pmt = top.PmtInf
    if not pmt then
        return b
    end

    local p = b:fields(pmt, PMTINF, "PmtInf")
    b.pmt_inf_id = b:text(p.PmtInfId, "PmtInf/PmtInfId", 35)

    local mtd = b:leaf(p.PmtMtd, "PmtInf/PmtMtd")
    if mtd and mtd ~= "TRF" then
        b:fault(nil, nil, "invalid_value",
                "PmtInf/PmtMtd: must be TRF (credit transfer)")
    end

    if p.DbtrAcct then
        b.debtor = b:account(p.DbtrAcct, "PmtInf/DbtrAcct")
    end

    local txs = p.CdtTrfTxInf
    if txs then
        if #txs > _M.MAX_ITEMS then
            b:fault(nil, nil, "too_many_items", "PmtInf: "
                    .. #txs .. " CdtTrfTxInf, at most " .. _M.MAX_ITEMS)
            b.too_many = #txs
            return b
        end

        for i = 1, #txs do
            b.items[i] = item(b, txs[i], i - 1)
        end
    end

    return b
end


return _M
