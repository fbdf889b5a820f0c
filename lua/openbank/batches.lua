-- Payment batches (docs/erp.md): POST /v1/payment-batches,
-- GET /v1/payment-batches/{id}, GET /v1/payment-batches/{id}/status-report.
--
-- A batch is a JSON document or an ISO 20022 pain.001.001.09
-- (Content-Type application/xml; openbank.xml parses it, openbank.pain001
-- maps it).  It is checked whole before anything is booked: every fault of
-- every item is reported at once (422 invalid_batch with `errors`), and a
-- batch with a fault books nothing.  An accepted batch (202) is one row of
-- payment_batches and one payment per item (openbank.payments), all
-- inserted in the request's transaction; each payment then goes pending ->
-- accepted -> settled, or rejected, on its own.
--
-- The batch's status follows its items: `accepted` while any is pending or
-- accepted, then `completed` (every item settled), `partially_settled`
-- (some settled, some rejected) or `rejected` (every item rejected).

local accounts = require "openbank.accounts"
local json = require "openbank.json"
local money = require "openbank.money"
local pain001 = require "openbank.pain001"
local problem = require "openbank.problem"
local schema = require "openbank.schema"
local util = require "openbank.util"
local xml = require "openbank.xml"

local ngx_var = ngx.var
local next = next
local pairs = pairs
local re_find = ngx.re.find
local str_format = string.format
local str_sub = string.sub
local tbl_concat = table.concat
local tbl_sort = table.sort
local tostring = tostring
local type = type
local iso = util.iso
local to_json = money.to_json
local escape = xml.escape


local _M = {}


local MAX_ITEMS = pain001.MAX_ITEMS

local NS_PAIN002 = "urn:iso:std:iso:20022:tech:xsd:pain.002.001.10"

local SQL_BATCH_INSERT = [[
INSERT INTO payment_batches (id, partner, message_id, pmt_inf_id, format,
                             debtor, currency, count, total, ctrl_sum,
                             created_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)]]

local SQL_BATCH_GET = [[
SELECT * FROM payment_batches WHERE id = ? AND partner = ?]]

local SQL_MESSAGE = [[
SELECT id FROM payment_batches WHERE partner = ? AND message_id = ?]]

local SQL_ITEM_INSERT = [[
INSERT INTO payments (id, partner, debtor, creditor, creditor_name,
                      creditor_bank_code, amount, currency, reference,
                      status, created_at, batch, batch_index, end_to_end_id)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)]]

local SQL_BY_STATUS = [[
SELECT status, COUNT(*) AS n, SUM(amount) AS total FROM payments
WHERE batch = ? GROUP BY status]]

local SQL_ITEMS = [[
SELECT p.id, p.batch_index, p.end_to_end_id, p.status, p.reason, p.amount,
       p.currency, a.status AS creditor_status
FROM payments AS p LEFT JOIN accounts AS a ON a.number = p.creditor
WHERE p.batch = ? ORDER BY p.batch_index]]


local FIELDS = { debtor_account = true, items = true, message_id = true }
local ITEM_FIELDS = {
    creditor_account = true, amount = true, reference = true,
    end_to_end_id = true,
}

local STATUSES = { "pending", "accepted", "settled", "rejected" }

-- ISO 20022 ExternalStatusReason1Code of each rejection
local function reason_code(reason, creditor_status)
    if reason == "insufficient_funds" then
        return "AM04"
    end
    if reason == "invalid_account" then
        if creditor_status == "closed" then
            return "AC04"
        end
        if creditor_status == "blocked" then
            return "AC06"
        end
    end
    return "AC01"
end

_M.reason_code = reason_code

local TX_STATUS = {
    pending = "PDNG", accepted = "ACCP", settled = "ACSC", rejected = "RJCT",
}

local GROUP_STATUS = {
    accepted = "ACCP", completed = "ACSC", partially_settled = "PART",
    rejected = "RJCT",
}


local function put(out, s)
    out[#out + 1] = s
end


local function fault(b, index, e2e, code, detail)
    local errs = b.errors
    if #errs < 1000 then
        errs[#errs + 1] = { index = index, end_to_end_id = e2e, code = code,
                            detail = detail }
    end
end


local MSG_RE = [[^[\x21-\x7e]{1,35}\z]]

-- a JSON batch, as openbank.pain001 maps a pain.001
local function from_json(data)
    local obj = json.decode(data)
    if type(obj) ~= "table" or obj[1] ~= nil then
        return nil, problem.err("invalid_body", "body: must be a JSON object")
    end

    local ok, err = util.only(obj, FIELDS)
    if not ok then
        return nil, err
    end

    local debtor
    debtor, err = util.account(obj.debtor_account, "debtor_account", false)
    if not debtor then
        return nil, err
    end

    if obj.message_id ~= nil and (type(obj.message_id) ~= "string"
                                  or not re_find(obj.message_id, MSG_RE,
                                                 "jo"))
    then
        return nil, problem.err("invalid_body", "message_id: must be 1 to "
                                .. "35 visible ASCII characters")
    end

    local list = obj.items
    if type(list) ~= "table" or (next(list) ~= nil and list[1] == nil) then
        return nil, problem.err("invalid_body", "items: must be an array "
                                .. "of payments")
    end

    local b = { errors = {}, items = {}, message_id = obj.message_id,
                debtor = debtor.number, format = "json" }

    local n = #list
    if n > MAX_ITEMS then
        fault(b, nil, nil, "too_many_items", "items: " .. n
              .. " payments, at most " .. MAX_ITEMS)
        b.too_many = n
        return b
    end

    for i = 1, n do
        local v = list[i]
        local index = i - 1
        local name = "items[" .. index .. "]"
        local it = { index = index, creditor = {} }
        b.items[i] = it

        if type(v) ~= "table" or v[1] ~= nil then
            fault(b, index, nil, "invalid_value", name
                  .. ": must be an object")
        else
            local e2e = v.end_to_end_id
            if type(e2e) == "string" and #e2e >= 1 and #e2e <= 35
               and re_find(e2e, MSG_RE, "jo")
            then
                it.end_to_end_id = e2e
            else
                fault(b, index, type(e2e) == "string"
                                and str_sub(e2e, 1, 140) or nil,
                      "invalid_value", name .. ".end_to_end_id: must be 1 "
                      .. "to 35 visible ASCII characters")
                e2e = nil
            end

            for k in pairs(v) do
                if not ITEM_FIELDS[k] then
                    fault(b, index, e2e, "invalid_value", name .. "."
                          .. str_sub(tostring(k), 1, 64)
                          .. ": unknown field")
                end
            end

            local cr, perr = util.account(v.creditor_account,
                                          name .. ".creditor_account", true)
            if cr then
                it.creditor = cr
            else
                fault(b, index, e2e, "invalid_account", perr.detail)
            end

            local minor, cur = money.parse(v.amount, name .. ".amount")
            if minor then
                it.amount, it.currency = minor, cur
            else
                fault(b, index, e2e, "invalid_amount", cur)
            end

            ok, perr = util.text(v.reference, name .. ".reference", 140)
            if ok then
                it.reference = v.reference
            else
                fault(b, index, e2e, "invalid_value", perr.detail)
            end
        end
    end

    return b
end


local function from_xml(data)
    local root, err, line, col = xml.parse(data)
    if not root then
        return nil, problem.err("invalid_body", str_format(
                                "body: line %d, column %d: %s",
                                line or 0, col or 0, err))
    end

    local b
    b, err = pain001.map(root)
    if not b then
        return nil, problem.err("invalid_body", "body: " .. err)
    end

    b.format = "pain.001.001.09"
    return b
end


-- application/xml, text/xml, application/<anything>+xml
local XML_TYPE_RE = [[^\s*(application|text)/([a-z0-9.-]+\+)?xml\s*(;|\z)]]

local function is_xml(ctype)
    return ctype and re_find(ctype, XML_TYPE_RE, "joi")
end


-- the checks of the whole batch, after those of its items
local function check(conn, partner, b)
    local n = #b.items
    if n == 0 and not b.too_many then
        fault(b, nil, nil, "no_items", "the batch has no payments")
    end

    if b.nb_of_txs and b.nb_of_txs ~= n and not b.too_many then
        fault(b, nil, nil, "count_mismatch", "GrpHdr/NbOfTxs is "
              .. b.nb_of_txs .. " but the document has " .. n
              .. " CdtTrfTxInf")
    end

    local currency
    if b.debtor then
        local a, err = accounts.get(conn, b.debtor)
        if err then
            return nil, err
        end
        if not a or a.partner ~= partner or a.kind ~= "customer" then
            return nil, problem.err("invalid_body", (b.format == "json"
                                    and "debtor_account.number"
                                    or "PmtInf/DbtrAcct")
                                    .. ": not an account of yours")
        end
        currency = a.currency
    end

    local seen = {}
    local total = 0
    local complete = true
    for i = 1, n do
        local it = b.items[i]
        local e2e = it.end_to_end_id
        if e2e then
            if seen[e2e] then
                fault(b, it.index, e2e, "duplicate_end_to_end_id",
                      "EndToEndId " .. e2e .. " is also that of item "
                      .. seen[e2e])
            else
                seen[e2e] = it.index
            end
        end

        if it.currency then
            if not money.known_currency(it.currency) then
                fault(b, it.index, e2e, "invalid_currency", "currency "
                      .. it.currency .. " is not a currency the bank keeps")
            elseif currency and it.currency ~= currency then
                fault(b, it.index, e2e, "currency_mismatch", "currency "
                      .. it.currency .. ": the debtor account holds "
                      .. currency)
            end
        end

        if it.amount then
            total = total + it.amount
        else
            complete = false
        end

        it.creditor.bank_code = it.creditor.bank_code or schema.BANK_CODE
        it.reference = it.reference or e2e
    end

    if complete and total > money.MAX_VALUE then
        fault(b, nil, nil, "invalid_amount", "the total of the batch is "
              .. "larger than the bank keeps")
    end

    if complete and not b.too_many and b.ctrl_sum ~= nil
       and b.ctrl_sum ~= total
    then
        fault(b, nil, nil, "control_sum_mismatch", "GrpHdr/CtrlSum is not "
              .. "the sum of the amounts, " .. money.format(total))
    end

    b.total = total
    b.currency = currency
    return true
end


local function by_index(a, b)
    local x, y = a.index or -1, b.index or -1
    if x ~= y then
        return x < y
    end
    return a.seq < b.seq
end


local function refuse(b)
    local errs = b.errors
    for i = 1, #errs do
        errs[i].seq = i
    end
    tbl_sort(errs, by_index)

    local list = {}
    for i = 1, #errs do
        local e = errs[i]
        list[i] = {
            index = e.index or json.null,
            end_to_end_id = e.end_to_end_id or json.null,
            code = e.code,
            detail = e.detail,
        }
    end

    return nil, problem.err("invalid_batch", #errs == 1
                            and "The batch has a fault; nothing was booked."
                            or "The batch has " .. #errs .. " faults; "
                               .. "nothing was booked.",
                            { errors = json.array(list) })
end


-- POST /v1/payment-batches (runs inside the request's transaction)
function _M.create(req)
    local data = util.body()
    if not data or data == "" then
        return nil, problem.err("invalid_body", "body: a JSON batch or a "
                                .. "pain.001.001.09 document is required")
    end

    local b, err
    if is_xml(ngx_var.content_type) then
        b, err = from_xml(data)
    else
        b, err = from_json(data)
    end
    if not b then
        return nil, err
    end

    local conn = req.db
    local ok
    ok, err = check(conn, req.partner, b)
    if not ok then
        return nil, err
    end

    if #b.errors > 0 then
        return refuse(b)
    end

    if b.message_id then
        local row
        row, err = conn:first(SQL_MESSAGE, req.partner, b.message_id)
        if err then
            return nil, err
        end
        if row then
            return nil, problem.err("duplicate_message", "MsgId "
                                    .. b.message_id .. " is that of batch "
                                    .. row.id .. ".")
        end
    end

    local id
    id, err = util.id("pbt_")
    if not id then
        return nil, err
    end

    local now = util.now_ms()
    local n = #b.items
    ok, err = conn:run(SQL_BATCH_INSERT, id, req.partner, b.message_id,
                       b.pmt_inf_id, b.format, b.debtor, b.currency, n,
                       b.total, b.ctrl_sum, now)
    if not ok then
        return nil, err
    end

    local debtor, partner = b.debtor, req.partner
    for i = 1, n do
        local it = b.items[i]
        local pid
        pid, err = util.id("pay_")
        if not pid then
            return nil, err
        end

        local cr = it.creditor
        ok, err = conn:run(SQL_ITEM_INSERT, pid, partner, debtor, cr.number,
                           cr.name, cr.bank_code, it.amount, it.currency,
                           it.reference, now, id, it.index, it.end_to_end_id)
        if not ok then
            return nil, err
        end
    end

    return 202, {
        id = id,
        status = "accepted",
        count = n,
        total = to_json(b.total, b.currency),
    }, { "Location", "/v1/payment-batches/" .. id }
end


local function load(req)
    local bt, err = req.db:first(SQL_BATCH_GET, req.params.id, req.partner)
    if err then
        return nil, err
    end
    if not bt then
        return nil, problem.err("not_found", "No payment batch "
                                .. str_sub(req.params.id, 1, 64) .. ".")
    end

    local rows
    rows, err = req.db:query(SQL_BY_STATUS, bt.id)
    if not rows then
        return nil, err
    end

    local counts, totals = {}, {}
    for i = 1, #STATUSES do
        counts[STATUSES[i]] = 0
        totals[STATUSES[i]] = 0
    end
    for i = 1, #rows do
        counts[rows[i].status] = rows[i].n
        totals[rows[i].status] = rows[i].total
    end

    local status
    if counts.pending + counts.accepted > 0 then
        status = "accepted"
    elseif counts.rejected == 0 then
        status = "completed"
    elseif counts.settled == 0 then
        status = "rejected"
    else
        status = "partially_settled"
    end

    return bt, status, counts, totals
end


-- GET /v1/payment-batches/{id}
function _M.get(req)
    local bt, status, counts, totals = load(req)
    if not bt then
        return nil, status
    end

    local items, err = req.db:query(SQL_ITEMS, bt.id)
    if not items then
        return nil, err
    end

    local list = {}
    for i = 1, #items do
        local p = items[i]
        list[i] = {
            index = p.batch_index,
            end_to_end_id = p.end_to_end_id,
            payment_id = p.id,
            status = p.status,
            reason = p.reason,
            reason_code = p.reason and reason_code(p.reason,
                                                   p.creditor_status),
        }
    end

    local tot = {}
    for i = 1, #STATUSES do
        local k = STATUSES[i]
        tot[k] = to_json(totals[k], bt.currency)
    end

    return 200, {
        id = bt.id,
        status = status,
        format = bt.format,
        message_id = bt.message_id or json.null,
        debtor_account = { number = bt.debtor },
        count = bt.count,
        total = to_json(bt.total, bt.currency),
        counts = counts,
        totals = tot,
        created_at = iso(bt.created_at),
        items = json.array(list),
    }
end


-- GET /v1/payment-batches/{id}/status-report: pain.002.001.10
function _M.report(req)
    local bt, status, counts, totals = load(req)
    if not bt then
        return nil, status
    end

    local items, err = req.db:query(SQL_ITEMS, bt.id)
    if not items then
        return nil, err
    end

    local out = {}

    local msg = bt.message_id or bt.id
    put(out, '<?xml version="1.0" encoding="UTF-8"?>\n')
    put(out, '<Document xmlns="' .. NS_PAIN002 .. '">\n')
    put(out, "<CstmrPmtStsRpt>\n<GrpHdr><MsgId>STS-")
    put(out, escape(bt.id))
    put(out, "</MsgId><CreDtTm>")
    put(out, iso(util.now_ms()))
    put(out, "</CreDtTm><DbtrAgt><FinInstnId><Othr><Id>")
    put(out, schema.BANK_CODE)
    put(out, "</Id></Othr></FinInstnId></DbtrAgt></GrpHdr>\n")
    put(out, "<OrgnlGrpInfAndSts><OrgnlMsgId>")
    put(out, escape(msg))
    put(out, "</OrgnlMsgId><OrgnlMsgNmId>pain.001.001.09</OrgnlMsgNmId>")
    put(out, "<OrgnlCreDtTm>")
    put(out, iso(bt.created_at))
    put(out, "</OrgnlCreDtTm><OrgnlNbOfTxs>")
    put(out, tostring(bt.count))
    put(out, "</OrgnlNbOfTxs><OrgnlCtrlSum>")
    put(out, money.format(bt.total))
    put(out, "</OrgnlCtrlSum><GrpSts>")
    put(out, GROUP_STATUS[status])
    put(out, "</GrpSts>")
    for i = 1, #STATUSES do
        local s = STATUSES[i]
        if counts[s] > 0 then
            put(out, "<NbOfTxsPerSts><DtldNbOfTxs>")
            put(out, tostring(counts[s]))
            put(out, "</DtldNbOfTxs><DtldSts>")
            put(out, TX_STATUS[s])
            put(out, "</DtldSts><DtldCtrlSum>")
            put(out, money.format(totals[s]))
            put(out, "</DtldCtrlSum></NbOfTxsPerSts>")
        end
    end
    put(out, "</OrgnlGrpInfAndSts>\n<OrgnlPmtInfAndSts><OrgnlPmtInfId>")
    put(out, escape(bt.pmt_inf_id or bt.id))
    put(out, "</OrgnlPmtInfId>\n")

    for i = 1, #items do
        local p = items[i]
        put(out, "<TxInfAndSts><OrgnlEndToEndId>")
        put(out, escape(p.end_to_end_id))
        put(out, "</OrgnlEndToEndId><TxSts>")
        put(out, TX_STATUS[p.status])
        put(out, "</TxSts>")
        if p.status == "rejected" then
            put(out, "<StsRsnInf><Rsn><Cd>")
            put(out, reason_code(p.reason, p.creditor_status))
            put(out, "</Cd></Rsn><AddtlInf>")
            put(out, p.reason)
            put(out, "</AddtlInf></StsRsnInf>")
        end
        put(out, "<AcctSvcrRef>")
        put(out, p.id)
        put(out, "</AcctSvcrRef></TxInfAndSts>\n")
    end

    put(out, "</OrgnlPmtInfAndSts>\n</CstmrPmtStsRpt>\n</Document>\n")

    return 200, tbl_concat(out), { "Content-Type", "application/xml" }
end


return _M
