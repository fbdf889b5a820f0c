-- The portal's client of the Admin API (docs/admin.md) and of
-- openbank_status, over a cosocket to the gateway's own loopback
-- listener (docs/architecture.md says why not a subrequest).
--
--   local admin = require "openbank.portal.admin"
--   local res, err = admin.call("POST", "/admin/partners", {name = ...})
--   -- res.status, res.json (decoded body, or nil), res.body
--
-- The address is $openbank_portal_admin ("127.0.0.1:8080"), the key the
-- first line of the file $openbank_portal_admin_key_file, read once per
-- worker.  The key never goes into a log line: errors name the path and
-- the status only.

local json = require "openbank.json"
local pdb = require "openbank.db"

local ngx_var = ngx.var
local io_open = io.open
local str_format = string.format
local str_match = string.match
local str_lower = string.lower
local tonumber = tonumber
local concat = table.concat


local _M = {}


local TIMEOUT_MS = 5000
local MAX_BODY = 16 * 1024 * 1024

local keys = {}      -- path -> key, this worker's


local function admin_key()
    local path = ngx_var.openbank_portal_admin_key_file
    if not path or path == "" then
        return nil, "$openbank_portal_admin_key_file is not set"
    end

    path = pdb.resolve(path)
    local key = keys[path]
    if key then
        return key
    end

    local f, err = io_open(path, "r")
    if not f then
        return nil, "cannot read the admin key file: " .. err
    end
    key = f:read("*l")
    f:close()

    key = key and str_match(key, "^%s*(%S+)%s*$")
    if not key then
        return nil, "the admin key file \"" .. path .. "\" is empty"
    end

    keys[path] = key
    return key
end


local function read_response(sock)
    local line, err = sock:receive("*l")
    if not line then
        return nil, "reading the status line: " .. err
    end

    local status = tonumber(str_match(line, "^HTTP/1%.%d (%d%d%d)"))
    if not status then
        return nil, "bad status line"
    end

    local len, chunked
    while true do
        line, err = sock:receive("*l")
        if not line then
            return nil, "reading the headers: " .. err
        end
        if line == "" then
            break
        end
        local name, value = str_match(line, "^([^:]+):%s*(.-)%s*$")
        if name then
            name = str_lower(name)
            if name == "content-length" then
                len = tonumber(value)
            elseif name == "transfer-encoding"
                   and str_lower(value) == "chunked"
            then
                chunked = true
            end
        end
    end

    local body
    if chunked then
        local parts = {}
        local total = 0
        while true do
            line, err = sock:receive("*l")
            if not line then
                return nil, "reading a chunk: " .. err
            end
            local n = tonumber(str_match(line, "^(%x+)"), 16)
            if not n then
                return nil, "bad chunk size"
            end
            if n == 0 then
                sock:receive("*l")
                break
            end
            total = total + n
            if total > MAX_BODY then
                return nil, "answer too large"
            end
            local part
            part, err = sock:receive(n)
            if not part then
                return nil, "reading a chunk: " .. err
            end
            parts[#parts + 1] = part
            sock:receive("*l")
        end
        body = concat(parts)

    elseif len then
        if len > MAX_BODY then
            return nil, "answer too large"
        end
        body, err = len > 0 and sock:receive(len) or ""
        if not body then
            return nil, "reading the body: " .. err
        end

    else
        body, err = sock:receive("*a")
        if not body then
            return nil, "reading the body: " .. err
        end
    end

    return { status = status, body = body, json = json.decode(body) }
end


-- One request; `body` a table (sent as JSON) or nil.  Returns the
-- response, or nil and why it could not be had.
function _M.call(method, path, body, opts)
    local addr = ngx_var.openbank_portal_admin
    if not addr or addr == "" then
        return nil, "$openbank_portal_admin is not set"
    end
    local host, port = str_match(addr, "^([^:]+):(%d+)$")
    if not host then
        return nil, "$openbank_portal_admin is not host:port"
    end

    local headers = { method, " ", path, " HTTP/1.1\r\nHost: ", addr,
                      "\r\nConnection: close\r\n" }
    if not (opts and opts.no_key) then
        local key, err = admin_key()
        if not key then
            return nil, err
        end
        headers[#headers + 1] = "Authorization: Bearer " .. key .. "\r\n"
    end

    local payload = ""
    if body then
        payload = json.encode(body)
        headers[#headers + 1] = "Content-Type: application/json\r\n"
    end
    headers[#headers + 1] = "Content-Length: " .. #payload .. "\r\n\r\n"
    headers[#headers + 1] = payload

    local sock = ngx.socket.tcp()
    sock:settimeout(TIMEOUT_MS)

    local ok, err = sock:connect(host, tonumber(port))
    if not ok then
        return nil, str_format("connect %s: %s", addr, err)
    end

    ok, err = sock:send(headers)
    if not ok then
        sock:close()
        return nil, str_format("%s %s: %s", method, path, err)
    end

    local res
    res, err = read_response(sock)
    sock:close()
    if not res then
        return nil, str_format("%s %s: %s", method, path, err)
    end

    return res
end


return _M
