-- Errors as application/problem+json (RFC 9457), docs/errors.md:
--
--   {"type": "urn:openbank:problem:not_found", "title": "Not found",
--    "status": 404, "detail": "...", "code": "not_found",
--    "request_id": "..."}
--
-- A handler refuses a request with `return nil, problem.err(code, detail)`;
-- the router sends it with problem.send().  Each code has one status.

local ffi = require "ffi"
local json = require "openbank.json"

local ngx_header = ngx.header
local ngx_log = ngx.log
local ngx_print = ngx.print
local ngx_ERR = ngx.ERR
local pairs = pairs
local tostring = tostring


local _M = {}


-- code -> status: the codes of docs/errors.md that the bank can give (the
-- rest are the gateway's).  Their titles are the gateway's, from its one
-- table (ngx_http_openbank_problem.c), read once through LuaJIT's FFI.
local STATUS = {
    invalid_request         = 400,
    invalid_body            = 400,
    idempotency_key_missing = 400,
    invalid_token           = 401,
    not_found               = 404,
    method_not_allowed      = 405,
    idempotency_in_flight   = 409,
    invalid_state           = 409,
    duplicate_message       = 409,
    payload_too_large       = 413,
    idempotency_key_reused  = 422,
    invalid_batch           = 422,
    rate_limited            = 429,
    internal_error          = 500,
    upstream_unavailable    = 503,
}

ffi.cdef[[
const char *ngx_http_openbank_problem_title(const char *code);
]]

local TITLE = {}
for code in pairs(STATUS) do
    local title = ffi.C.ngx_http_openbank_problem_title(code)
    if title == nil then
        error("openbank bank: the gateway has no problem code " .. code)
    end
    TITLE[code] = ffi.string(title)
end


function _M.known(code)
    return STATUS[code] ~= nil
end


function _M.status(code)
    return STATUS[code]
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
    local status = STATUS[code]
    if not status then
        ngx_log(ngx_ERR, "openbank bank: unknown problem code \"",
                tostring(code), "\"")
        code = "upstream_unavailable"
        status = STATUS[code]
    end

    local title = TITLE[code]

    local obj = {}
    if extra then
        for k, v in pairs(extra) do
            obj[k] = v
        end
    end
    obj.type = "urn:openbank:problem:" .. code
    obj.title = title
    obj.status = status
    obj.detail = detail or title
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
