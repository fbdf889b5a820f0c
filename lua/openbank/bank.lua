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
--   nil, problem.err(code, detail)  a problem of CONTRACT §3.1
--   nil, "message"                  an internal failure: logged, and
--                                   answered 503 upstream_unavailable

local accounts = require "openbank.accounts"
local db = require "openbank.db"
local json = require "openbank.json"
local problem = require "openbank.problem"
local router = require "openbank.router"
local schema = require "openbank.schema"

local ngx_header = ngx.header
local ngx_log = ngx.log
local ngx_print = ngx.print
local ngx_var = ngx.var
local ngx_ERR = ngx.ERR
local re_find = ngx.re.find
local req_get_method = ngx.req.get_method
local pcall = pcall
local str_sub = string.sub
local tostring = tostring
local type = type


local _M = {}


-- The bank's API.  `{name}` matches one path segment and arrives in
-- req.params.name.  Issue 6 adds, for instance:
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
})


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
    local s, err = json.encode(body)
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


function _M.handle()
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

    local row
    row, err = conn:first(SQL_PARTNER, partner)
    if err then
        return unavailable(request_id, err)
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

    local ok, status, body, headers = pcall(handler, req)
    if not ok then
        return unavailable(request_id, method .. " " .. uri .. ": "
                                       .. tostring(status))
    end

    if not status then
        if type(body) == "table" and problem.known(body.code) then
            return problem.send(body.code, body.detail, request_id)
        end

        return unavailable(request_id, method .. " " .. uri .. ": "
                                       .. tostring(body))
    end

    ok, err = send(status, body, headers)
    if not ok then
        return unavailable(request_id, method .. " " .. uri .. ": " .. err)
    end
end


return _M
