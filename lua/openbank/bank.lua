-- The sandbox bank: an HTTP bank core in Lua on SQLite, behind the gateway.
--
--   server {
--       listen  unix:run/bank.sock;
--       set $openbank_bank_db  run/bank.sqlite3;   # relative to the prefix
--       location / {
--           content_by_lua_block { require("openbank.bank").handle() }
--       }
--   }
--
-- The bank listens on a private socket and trusts the gateway's
-- X-OpenBank-Partner header to say who calls; it answers 401 invalid_token
-- to a request without one or with a partner it does not know.
--
-- A handler is function(req) with req = { partner, request_id, db (the
-- openbank.db connection), params (the route's {name}s, or nil), method,
-- path }, and returns one of:
--
--   status, body [, headers]        body a Lua table sent as JSON; headers a
--                                   flat array { name1, value1, ... }
--   nil, problem.err(code, detail)  a problem of docs/errors.md
--   nil, "message"                  an internal failure: logged, and
--                                   answered 503 upstream_unavailable
--
-- A Lua error outside a handler (a fault of the bank's own code) is logged
-- and answered 500 internal_error, as a problem too.

local accounts = require "openbank.accounts"
local collections = require "openbank.collections"
local batches = require "openbank.batches"
local db = require "openbank.db"
local escrows = require "openbank.escrows"
local ffi = require "ffi"
local json = require "openbank.json"
local payments = require "openbank.payments"
local problem = require "openbank.problem"
local router = require "openbank.router"
local schema = require "openbank.schema"
local statements = require "openbank.statements"
local util = require "openbank.util"
local verifications = require "openbank.verifications"

local ngx_header = ngx.header
local ngx_log = ngx.log
local ngx_print = ngx.print
local ngx_var = ngx.var
local ngx_ERR = ngx.ERR
local re_find = ngx.re.find
local req_get_method = ngx.req.get_method
local pcall = pcall
local ngx_sleep = ngx.sleep
local str_sub = string.sub
local str_format = string.format
local tbl_concat = table.concat
local tonumber = tonumber
local tostring = tostring
local type = type


local _M = {}


-- The bank's API.  `{name}` matches one path segment and arrives in
-- req.params.name.  For instance:
--
--   { "POST", "/v1/payments",                  payments.create },
--   { "GET",  "/v1/payments",                  payments.list },
--   { "GET",  "/v1/payments/{id}",             payments.get },
--   { "POST", "/v1/account-verifications",     verifications.create },
--   { "POST", "/v1/escrows",                   escrows.create },
--   { "GET",  "/v1/escrows/{id}",              escrows.get },
--   { "POST", "/v1/escrows/{id}/fund",         escrows.fund },
--   { "GET",  "/v1/statements",                statements.get },
local routes = router.new({
    { "GET", "/v1/accounts", accounts.list },
    { "POST", "/v1/payments", payments.create },
    { "GET", "/v1/payments", payments.list },
    { "GET", "/v1/payments/{id}", payments.get },
    { "POST", "/v1/account-verifications", verifications.create },
    { "POST", "/v1/escrows", escrows.create },
    { "GET", "/v1/escrows/{id}", escrows.get },
    { "POST", "/v1/escrows/{id}/fund", escrows.fund },
    { "POST", "/v1/escrows/{id}/release", escrows.release },
    { "POST", "/v1/escrows/{id}/refund", escrows.refund },
    { "POST", "/v1/escrows/{id}/dispute", escrows.dispute },
    { "POST", "/v1/escrows/{id}/cancel", escrows.cancel },
    { "GET", "/v1/statements", statements.get },
    { "POST", "/v1/mandates", collections.create_mandate },
    { "GET", "/v1/mandates/{id}", collections.get_mandate },
    { "DELETE", "/v1/mandates/{id}", collections.revoke },
    { "POST", "/v1/mandates/{id}/authorise", collections.authorise },
    { "POST", "/v1/collections", collections.create_collection },
    { "GET", "/v1/collections/{id}", collections.get_collection },
    { "POST", "/v1/payment-batches", batches.create },
    { "GET", "/v1/payment-batches/{id}", batches.get },
    { "GET", "/v1/payment-batches/{id}/status-report", batches.report },
})


-- The bank's own idempotency keys: a POST with an Idempotency-Key runs in
-- one transaction with the key's record, so a duplicate that reaches the
-- bank (the gateway lost its record in a crash) gets the first answer
-- again and never makes a second payment.  The request (method, path with
-- query, body) must be byte for byte the same, else 422
-- idempotency_key_reused.  Refusals (4xx problems) roll back and are not
-- kept: the same request gets the same refusal again.
--
-- A key lives KEY_TTL_MS from its first request, as the gateway's do
-- (docs/idempotency.md): past that, the same key is a new request and its
-- record is replaced in the same transaction.  Every POST's transaction
-- also deletes up to PURGE_BATCH expired records, oldest first (through
-- the index on created_at): a POST adds at most one record and removes up
-- to PURGE_BATCH, so the table holds little more than a day of keys and no
-- POST pays for a large backlog.  A refused POST rolls its deletions back
-- with the rest; the next one makes them.
local KEY_TTL_MS = 24 * 60 * 60 * 1000
local PURGE_BATCH = 100

_M.KEY_TTL_MS = KEY_TTL_MS
_M.PURGE_BATCH = PURGE_BATCH

local SQL_KEY_GET = [[
SELECT request, status, body, location, created_at FROM idempotency_keys
WHERE partner = ? AND key = ?]]

local SQL_KEY_PUT = [[
INSERT OR REPLACE INTO idempotency_keys (partner, key, request, status,
                                         body, location, created_at)
VALUES (?, ?, ?, ?, ?, ?, ?)]]

local SQL_KEY_PURGE = [[
DELETE FROM idempotency_keys WHERE rowid IN (
    SELECT rowid FROM idempotency_keys WHERE created_at <= ?
    ORDER BY created_at LIMIT ?)]]

local KEY_RE = [[^[\x21-\x7e]{1,255}\z]]


-- A key's record keeps the SHA-256 of its request ("sha256:" and 64 hex
-- digits), not the request: a payment batch is megabytes.  Records that
-- hold the request itself still compare.
if not pcall(ffi.typeof, "struct openbank_sha256_probe") then
    ffi.cdef[[
struct openbank_sha256_probe { int unused; };
unsigned char *SHA256(const unsigned char *d, size_t n, unsigned char *md);
]]
end

local sha_buf = ffi.new("unsigned char[32]")
local sha_hex = {}
local HEX_OF = {}
for i = 0, 255 do
    HEX_OF[i] = str_format("%02x", i)
end

local function fingerprint(text)
    ffi.C.SHA256(text, #text, sha_buf)
    for i = 1, 32 do
        sha_hex[i] = HEX_OF[sha_buf[i - 1]]
    end
    return "sha256:" .. tbl_concat(sha_hex)
end


local function request_text(method)
    return method .. " " .. ngx_var.request_uri .. "\n" .. (util.body() or "")
end


local function run_post(conn, req, handler, key, text, now)
    local ok, err = conn:run(SQL_KEY_PURGE, now - KEY_TTL_MS, PURGE_BATCH)
    if not ok then
        return nil, err
    end

    if key then
        local row
        row, err = conn:first(SQL_KEY_GET, req.partner, key)
        if err then
            return nil, err
        end

        -- an expired key is a new one: its record is replaced below
        if row and now - row.created_at < KEY_TTL_MS then
            if row.request ~= text.digest and row.request ~= text.raw then
                return nil, problem.err("idempotency_key_reused",
                                        "This Idempotency-Key was used "
                                        .. "with another request.")
            end

            return "replay", row
        end
    end

    local status, body, headers = handler(req)
    if not status then
        return nil, body, headers
    end

    local s
    s, err = json.encode(body)
    if not s then
        return nil, "cannot encode the response: " .. tostring(err)
    end

    if key then
        local location
        if headers then
            for i = 1, #headers, 2 do
                if headers[i] == "Location" then
                    location = headers[i + 1]
                end
            end
        end

        ok, err = conn:run(SQL_KEY_PUT, req.partner, key, text.digest,
                           status, s,
                           location, now)
        if not ok then
            return nil, err
        end
    end

    return status, s, headers
end


local function run_handler(_, handler, req)
    return handler(req)
end


local PARTNER_RE = [[^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}\z]]
local REQUEST_ID_RE = [[^[\x21-\x7e]{1,200}\z]]

local SQL_PARTNER = [[SELECT id FROM partners WHERE id = ?]]

local RETRY_AFTER = { "Retry-After", "1" }


local function unavailable(request_id, err)
    ngx_log(ngx_ERR, "openbank bank: ", err)
    return problem.send("upstream_unavailable",
                        "The bank could not complete the request; "
                        .. "retry later.", request_id, RETRY_AFTER)
end


local function send(status, body, headers)
    local s, err = body, nil
    if type(body) ~= "string" then
        s, err = json.encode(body)
    end
    if not s then
        return nil, "cannot encode the response: " .. tostring(err)
    end

    ngx.status = status
    ngx_header["Content-Type"] = "application/json"
    ngx_header["Cache-Control"] = "no-store"

    if headers then
        for i = 1, #headers, 2 do
            ngx_header[headers[i]] = headers[i + 1]
        end
    end

    ngx_header["Content-Length"] = #s
    ngx_print(s)
    return true
end


local function handle()
    local request_id = ngx_var.http_x_request_id
    if request_id then
        if re_find(request_id, REQUEST_ID_RE, "jo") then
            ngx_header["X-Request-ID"] = request_id
        else
            request_id = nil
        end
    end

    local partner = ngx_var.http_x_openbank_partner
    if not partner then
        return problem.send("invalid_token", "The request names no partner.",
                            request_id)
    end

    if not re_find(partner, PARTNER_RE, "jo") then
        return problem.send("invalid_token",
                            "The partner name is malformed.", request_id)
    end

    local path = ngx_var.openbank_bank_db
    if not path or path == "" then
        return unavailable(request_id, "set $openbank_bank_db to the "
                                       .. "sandbox bank's database file")
    end

    local conn, err = db.open(path, schema.migrate)
    if not conn then
        return unavailable(request_id, err)
    end

    -- this worker's settlement and expiry timer
    payments.tick(path, util.settle_delay_ms(), ngx_var.openbank_bank_events)

    local row
    row, err = conn:first(SQL_PARTNER, partner)
    if err then
        return unavailable(request_id, err)
    end

    if not row and ngx_var.openbank_bank_open_accounts == "on" then
        ngx.update_time()
        row, err = conn:transaction(function(c)
            if c:first(SQL_PARTNER, partner) then
                return true
            end
            return schema.open_partner(c, partner,
                                       math.floor(ngx.now() * 1000))
        end)
        if not row then
            return unavailable(request_id, err)
        end
        ngx.log(ngx.NOTICE, "openbank bank: opened a sandbox account for ",
                "partner \"", partner, "\"")
    end

    if not row then
        return problem.send("invalid_token", "Partner \"" .. partner
                            .. "\" is not known to the bank.", request_id)
    end

    local method = req_get_method()
    local uri = ngx_var.uri
    local handler, params, allow = routes:match(method, uri)

    if not handler then
        if allow then
            return problem.send("method_not_allowed",
                                str_sub(uri, 1, 200) .. " does not allow "
                                .. str_sub(method, 1, 20) .. "; allowed: "
                                .. allow .. ".",
                                request_id, { "Allow", allow })
        end

        return problem.send("not_found", "There is no resource at "
                            .. str_sub(uri, 1, 200) .. ".", request_id)
    end

    local req = {
        partner = partner,
        request_id = request_id,
        db = conn,
        params = params,
        method = method,
        path = uri,
    }

    local ok, status, body, headers

    if method == "POST" then
        local key = ngx_var.http_idempotency_key
        if key and not re_find(key, KEY_RE, "jo") then
            return problem.send("invalid_request", "Idempotency-Key must "
                                .. "be 1 to 255 visible ASCII characters.",
                                request_id)
        end

        -- tests: hold a POST before the bank acts, to crash the gateway
        -- while it is in flight
        local hold = tonumber(ngx_var.openbank_bank_debug_delay)
        if hold and hold > 0 then
            ngx.log(ngx.NOTICE, "bank: holding the POST ", hold,
                    " s (openbank_bank_debug_delay)")
            ngx_sleep(hold)
        end

        local text
        if key then
            local raw = request_text(method)
            text = { raw = raw, digest = fingerprint(raw) }
        end

        ok, status, body, headers = pcall(conn.transaction, conn, run_post,
                                          req, handler, key, text,
                                          util.now_ms())
        if ok and status == "replay" then
            local hdrs = { "Idempotent-Replayed", "true" }
            if body.location then
                hdrs[3] = "Location"
                hdrs[4] = body.location
            end
            status, body, headers = body.status, body.body, hdrs
        end


    else
        local now = util.now_ms()
        ok, err = payments.advance(conn, now, util.settle_delay_ms())
        if ok then
            ok, err = escrows.advance(conn, now)
        end
        if ok then
            ok, err = collections.advance(conn, now, util.settle_delay_ms())
        end
        if not ok then
            return unavailable(request_id, err)
        end

        if method == "DELETE" then
            -- a move of state, in one transaction
            ok, status, body, headers = pcall(conn.transaction, conn,
                                              run_handler, handler, req)
        else
            ok, status, body, headers = pcall(handler, req)
        end
    end

    if not ok then
        return unavailable(request_id, method .. " " .. uri .. ": "
                                       .. tostring(status))
    end

    if not status then
        if type(body) == "table" and problem.known(body.code) then
            return problem.send(body.code, body.detail, request_id,
                                type(headers) == "table" and headers or nil,
                                body.extra)
        end

        return unavailable(request_id, method .. " " .. uri .. ": "
                                       .. tostring(body))
    end

    ok, err = send(status, body, headers)
    if not ok then
        return unavailable(request_id, method .. " " .. uri .. ": " .. err)
    end
end


function _M.handle()
    local ok, err = pcall(handle)
    if ok then
        return
    end

    ngx_log(ngx_ERR, "openbank bank: ", req_get_method(), " ",
            ngx_var.uri, ": ", tostring(err))

    if ngx.headers_sent then
        return ngx.exit(ngx.ERROR)
    end

    local request_id = ngx_var.http_x_request_id
    if request_id and not re_find(request_id, REQUEST_ID_RE, "jo") then
        request_id = nil
    end

    return problem.send("internal_error", "The bank failed to handle the "
                        .. "request.", request_id)
end


return _M
