-- The sandbox bank's events (docs/webhooks.md, "Events"): each move of
-- a payment, escrow, batch or collection that a partner is told of is a
-- row of bank_events, written in the same transaction as the move, so
-- that no move is without its event and no event without its move.  The
-- settlement timer posts the rows, oldest first, to the gateway's
-- openbank_events_ingest ($openbank_bank_events: host:port or
-- unix:/path, with the location /internal/events), and deletes each
-- once the gateway answered 202: the gateway has it durably then.  A row
-- is claimed for 30 s before it is posted, so that two workers never
-- post it twice at once; a gateway that is down is tried again at the
-- next tick.  An event the gateway refuses (4xx) is logged and dropped.

local json = require "openbank.json"
local util = require "openbank.util"

local ngx_log = ngx.log
local ngx_ERR = ngx.ERR
local ngx_WARN = ngx.WARN
local ngx_socket_tcp = ngx.socket.tcp
local str_find = string.find
local str_match = string.match
local tonumber = tonumber

local _M = {}

local CLAIM = 30000     -- ms a claimed row is left to its worker
local BATCH = 100       -- rows posted a tick at most
local PAUSE = 5000      -- ms without posting after the gateway failed

local paused_until = 0  -- this worker's

local SQL_INSERT = [[
INSERT INTO bank_events (partner, type, data, created_at)
VALUES (?, ?, ?, ?)]]

local SQL_DUE = [[
SELECT seq, partner, type, data FROM bank_events
WHERE claimed_at IS NULL OR claimed_at <= ?
ORDER BY seq LIMIT ?]]

local SQL_CLAIM = [[
UPDATE bank_events SET claimed_at = ?
WHERE seq = ? AND (claimed_at IS NULL OR claimed_at <= ?)]]

local SQL_DONE = [[DELETE FROM bank_events WHERE seq = ?]]

local SQL_RELEASE = [[UPDATE bank_events SET claimed_at = NULL WHERE seq = ?]]


-- Inside the move's transaction: the event of `partner`, `data` the
-- object as its GET shows it.
function _M.emit(conn, partner, type, data)
    return conn:run(SQL_INSERT, partner, type, json.encode(data),
                    util.now_ms())
end


local function claim(conn, now)
    local rows, err = conn:query(SQL_DUE, now - CLAIM, BATCH)
    if not rows then
        return nil, err
    end

    local mine = {}
    for i = 1, #rows do
        local n
        n, err = conn:run(SQL_CLAIM, now, rows[i].seq, now - CLAIM)
        if not n then
            return nil, err
        end
        if n == 1 then
            mine[#mine + 1] = rows[i]
        end
    end

    return mine
end


local function connect(target)
    local sock = ngx_socket_tcp()
    sock:settimeouts(2000, 5000, 5000)

    local ok, err
    if str_find(target, "^unix:") then
        ok, err = sock:connect(target)
    else
        local host, port = str_match(target, "^([^:]+):(%d+)$")
        if not host then
            return nil, "$openbank_bank_events is not host:port or unix:path"
        end
        ok, err = sock:connect(host, tonumber(port))
    end

    if not ok then
        return nil, err
    end

    return sock
end


-- one event to the ingest on a kept-alive connection: its status, or
-- nil, err (the connection is then closed)
local function post(sock, row)
    local body = '{"partner":' .. json.encode(row.partner) .. ',"type":'
                 .. json.encode(row.type) .. ',"data":' .. row.data .. '}'

    local ok, err = sock:send("POST /internal/events HTTP/1.1\r\n"
                              .. "Host: openbank-gateway\r\n"
                              .. "Content-Type: application/json\r\n"
                              .. "Content-Length: " .. #body .. "\r\n\r\n"
                              .. body)
    if not ok then
        sock:close()
        return nil, err
    end

    local line
    line, err = sock:receive("*l")
    local status = line and tonumber(str_match(line, "^HTTP/1%.%d (%d%d%d)"))
    if not status then
        sock:close()
        return nil, err or "not an HTTP answer"
    end

    -- the headers, then the body, so that the connection can be reused
    local length = 0
    repeat
        line, err = sock:receive("*l")
        if not line then
            sock:close()
            return nil, err
        end
        local n = str_match(line, "^[Cc]ontent%-[Ll]ength:%s*(%d+)")
        if n then
            length = tonumber(n)
        end
    until line == ""

    if length > 0 then
        ok, err = sock:receive(length)
        if not ok then
            sock:close()
            return nil, err
        end
    end

    return status
end


-- From the settlement timer: the claimed rows posted, oldest first.
function _M.flush(conn, target)
    if not target or target == "" or util.now_ms() < paused_until then
        return true
    end

    local rows, err = conn:transaction(claim, util.now_ms())
    if not rows then
        return nil, err
    end

    if #rows == 0 then
        return true
    end

    local sock
    sock, err = connect(target)

    for i = 1, #rows do
        local row = rows[i]
        local status
        if sock then
            status, err = post(sock, row)
        end

        if status == 202 then
            conn:run(SQL_DONE, row.seq)

        elseif status and status >= 400 and status < 500 then
            ngx_log(ngx_ERR, "openbank bank: the gateway refused event ",
                    row.type, " of ", row.partner, ": ", status,
                    "; dropped")
            conn:run(SQL_DONE, row.seq)

        else
            ngx_log(ngx_WARN, "openbank bank: events to ", target, ": ",
                    err or status, "; tried again in ", PAUSE / 1000, " s")
            paused_until = util.now_ms() + PAUSE
            for j = i, #rows do
                conn:run(SQL_RELEASE, rows[j].seq)
            end
            if sock and status then
                sock:close()
            end
            return true
        end
    end

    sock:setkeepalive(10000, 2)

    return true
end


return _M
