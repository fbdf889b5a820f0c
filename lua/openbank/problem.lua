-- Errors as application/problem+json (RFC 9457), CONTRACT §3.1:
--
--   {"type": "urn:openbank:problem:not_found", "title": "Not found",
--    "status": 404, "detail": "...", "code": "not_found",
--    "request_id": "..."}
--
-- A handler refuses a request with `return nil, problem.err(code, detail)`;
-- the router sends it with problem.send().  Each code has one status.

local json = require "openbank.json"

local ngx_header = ngx.header
local ngx_log = ngx.log
local ngx_print = ngx.print
local ngx_ERR = ngx.ERR
local pairs = pairs
local tostring = tostring


local _M = {}


-- code -> { status, title }: the codes of CONTRACT §3.1 that the bank can
-- give (the rest are the gateway's).  Each title is the gateway's for the
-- same code (ngx_http_openbank_problem.c; t/problem_titles.t compares
-- them).
local PROBLEMS = {
    invalid_request         = { 400, "Invalid request" },
    invalid_body            = { 400, "Invalid body" },
    idempotency_key_missing = { 400, "Idempotency key missing" },
    invalid_token           = { 401, "Invalid credential" },
    not_found               = { 404, "Not found" },
    method_not_allowed      = { 405, "Method not allowed" },
    idempotency_in_flight   = { 409, "Idempotent request in flight" },
    invalid_state           = { 409, "Invalid state" },
    duplicate_message       = { 409, "Duplicate message" },
    payload_too_large       = { 413, "Payload too large" },
    idempotency_key_reused  = { 422, "Idempotency key reused" },
    invalid_batch           = { 422, "Invalid batch" },
    rate_limited            = { 429, "Rate limited" },
    internal_error          = { 500, "Internal error" },
    upstream_unavailable    = { 503, "Upstream unavailable" },
}


function _M.known(code)
    return PROBLEMS[code] ~= nil
end


function _M.status(code)
    local p = PROBLEMS[code]
    return p and p[1]
end


-- The value a handler returns, after nil, to refuse a request; `extra`
-- an optional table of members added to the problem (invalid_batch's
-- errors).
function _M.err(code, detail, extra)
    return { code = code, detail = detail, extra = extra }
end


-- Sends the problem `code` with `detail`.  `headers` is an optional flat
-- array { name1, value1, name2, value2, ... }; `extra` a table of more
-- members (never type, title, status, detail, code or request_id).
function _M.send(code, detail, request_id, headers, extra)
    local p = PROBLEMS[code]
    if not p then
        ngx_log(ngx_ERR, "openbank bank: unknown problem code \"",
                tostring(code), "\"")
        code = "upstream_unavailable"
        p = PROBLEMS[code]
    end

    local status = p[1]

    local obj = {}
    if extra then
        for k, v in pairs(extra) do
            obj[k] = v
        end
    end
    obj.type = "urn:openbank:problem:" .. code
    obj.title = p[2]
    obj.status = status
    obj.detail = detail or p[2]
    obj.code = code
    obj.request_id = request_id or ""

    local body = json.encode(obj)

    ngx.status = status
    ngx_header["Content-Type"] = "application/problem+json"
    ngx_header["Cache-Control"] = "no-store"

    if status == 401 then
        ngx_header["WWW-Authenticate"] = 'Bearer error="invalid_token"'
    end

    if headers then
        for i = 1, #headers, 2 do
            ngx_header[headers[i]] = headers[i + 1]
        end
    end

    ngx_header["Content-Length"] = #body
    ngx_print(body)
end


return _M
