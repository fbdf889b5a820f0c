-- Sessions, logins and their back-off, and the bank's operators.
--
-- A session is a random 32-byte id in the obp_session cookie; the
-- database keeps only its SHA-256, with the CSRF token of its forms.  An
-- anonymous visitor gets one on the first page with a form, so that
-- sign-up and login are CSRF-protected too; signing in replaces it with
-- a new one (no session fixation).
--
-- Back-off: 5 failed logins of one account, or from one address, lock
-- that account or address out for 15 minutes; while locked, a login is
-- refused without its password being looked at, right or wrong.
--
-- Operators are the lines "name:scrypt$..." of the file
-- $openbank_portal_operators (docs/portal.md says how to make one).

local crypto = require "openbank.portal.crypto"
local web = require "openbank.portal.web"
local pdb = require "openbank.db"
local t = require("openbank.portal.html").t

local ngx_var = ngx.var
local ngx_time = ngx.time
local io_open = io.open
local str_find = string.find
local str_lower = string.lower
local str_match = string.match


local _M = {}


_M.MAX_FAILURES = 5
_M.BACKOFF = 15 * 60
_M.SESSION_TTL = 8 * 3600
_M.MIN_PASSWORD = 12

-- verified when the name is unknown, so that an unknown account takes
-- the time of a known one
local DUMMY_HASH


local function session_row(conn, id)
    return conn:first("SELECT s.id_hash, s.user_id, s.operator, s.csrf, "
        .. "s.expires_at, u.email, u.org_id FROM sessions s LEFT JOIN "
        .. "users u ON u.id = s.user_id WHERE s.id_hash = ? AND "
        .. "s.expires_at > ?", crypto.sha256_hex(id), ngx_time())
end


-- The request's session (ngx.ctx.portal_session), or nil.
function _M.load(conn)
    local id = ngx_var["cookie_" .. web.COOKIE]
    if not id or #id ~= 43 then
        return nil
    end

    local row = session_row(conn, id)
    if not row then
        return nil
    end

    local s = {
        id_hash = row.id_hash,
        csrf = row.csrf,
        user_id = row.user_id,
        email = row.email,
        org_id = row.org_id,
        operator = row.operator,
        who = row.operator and (row.operator .. " (operator)") or row.email,
    }
    if not s.user_id and not s.operator then
        s.who = nil
    end
    ngx.ctx.portal_session = s
    return s
end


local function create(conn, user_id, operator)
    local id = crypto.token()
    local csrf = crypto.token()
    local now = ngx_time()

    -- the expired sessions go as new ones come
    conn:run("DELETE FROM sessions WHERE expires_at <= ?", now)

    local ok, err = conn:run("INSERT INTO sessions (id_hash, user_id, "
        .. "operator, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, "
        .. "?)", crypto.sha256_hex(id), user_id, operator, csrf, now,
        now + _M.SESSION_TTL)
    if not ok then
        return nil, err
    end

    web.set_cookie(web.COOKIE, id)
    local s = { csrf = csrf, user_id = user_id, operator = operator,
                id_hash = crypto.sha256_hex(id) }
    ngx.ctx.portal_session = s
    return s
end


-- The session of a page with a form: the visitor's, or a new anonymous
-- one.
function _M.ensure(conn)
    local s = ngx.ctx.portal_session
    if s then
        return s
    end
    return create(conn, nil, nil)
end


function _M.destroy(conn)
    local s = ngx.ctx.portal_session
    if s then
        conn:run("DELETE FROM sessions WHERE id_hash = ?", s.id_hash)
    end
    ngx.ctx.portal_session = nil
    web.set_cookie(web.COOKIE, "", 0)
end


local function locked(conn, key, now)
    local row = conn:first("SELECT count, locked_until, updated_at FROM "
                           .. "login_failures WHERE key = ?", key)
    if row and row.locked_until > now then
        return row.locked_until - now
    end
    return nil
end


local function fail(conn, key, now)
    -- failures that earn nothing any more go, so that logins with made-up
    -- names do not grow the table without bound
    conn:run("DELETE FROM login_failures WHERE updated_at < ? AND "
             .. "locked_until < ?", now - _M.BACKOFF, now)

    local row = conn:first("SELECT count, locked_until, updated_at FROM "
                           .. "login_failures WHERE key = ?", key)
    local count = 1
    -- failures older than a back-off period are forgotten
    if row and row.locked_until <= now and now - row.updated_at < _M.BACKOFF
    then
        count = row.count + 1
    end
    local until_ = count >= _M.MAX_FAILURES and now + _M.BACKOFF or 0
    if row and row.locked_until > now then
        until_ = row.locked_until
    end

    conn:run("INSERT INTO login_failures (key, count, locked_until, "
        .. "updated_at) VALUES (?, ?, ?, ?) ON CONFLICT (key) DO UPDATE SET "
        .. "count = excluded.count, locked_until = excluded.locked_until, "
        .. "updated_at = excluded.updated_at", key,
        count >= _M.MAX_FAILURES and 0 or count, until_, now)
end


-- At most MAX_SIGNUPS sign-ups an hour from one address: each costs a
-- scrypt hash and makes an organisation for the operators to review.  A
-- row "signup:<ip>" counts them until its locked_until, the window's end.
_M.MAX_SIGNUPS = 10
_M.SIGNUP_WINDOW = 3600

function _M.signup_allowed(conn)
    local now = ngx_time()
    local key = "signup:" .. (ngx_var.remote_addr or "")
    local row = conn:first("SELECT count, locked_until FROM login_failures "
                           .. "WHERE key = ?", key)
    if row and row.locked_until > now then
        if row.count >= _M.MAX_SIGNUPS then
            ngx.header["Retry-After"] = row.locked_until - now
            return nil, t("Too many sign-ups from your address: try again "
                          .. "in %s minutes.",
                          math.ceil((row.locked_until - now) / 60))
        end
        conn:run("UPDATE login_failures SET count = count + 1, updated_at "
                 .. "= ? WHERE key = ?", now, key)
        return true
    end

    conn:run("INSERT INTO login_failures (key, count, locked_until, "
        .. "updated_at) VALUES (?, 1, ?, ?) ON CONFLICT (key) DO UPDATE SET "
        .. "count = 1, locked_until = excluded.locked_until, updated_at = "
        .. "excluded.updated_at", key, now + _M.SIGNUP_WINDOW, now)
    return true
end


local function operator_hash(name)
    local path = ngx_var.openbank_portal_operators
    if not path or path == "" then
        return nil
    end

    local f = io_open(pdb.resolve(path), "r")
    if not f then
        ngx.log(ngx.ERR, "openbank portal: cannot read the operators file ",
                pdb.resolve(path))
        return nil
    end

    local found
    for line in f:lines() do
        local n, hash = str_match(line, "^%s*([%w._-]+):(%S+)%s*$")
        if n and n == name then
            found = hash
            break
        end
    end
    f:close()
    return found
end


-- Checks a login; returns the new session, or nil and the status and
-- text of the refusal.
function _M.login(conn, login, password)
    local now = ngx_time()
    login = str_lower(login or "")
    local akey = "account:" .. login
    local ikey = "address:" .. (ngx_var.remote_addr or "")

    local wait = locked(conn, akey, now) or locked(conn, ikey, now)
    if wait then
        ngx.header["Retry-After"] = wait
        ngx.log(ngx.NOTICE, "openbank portal: login of \"", login,
                "\" refused: back-off after ", _M.MAX_FAILURES,
                " failures")
        return nil, 429, t("Too many failed sign-ins: try again in %s "
                           .. "minutes.", math.ceil(wait / 60))
    end

    if not DUMMY_HASH then
        DUMMY_HASH = crypto.hash_password(crypto.token())
    end

    local user, operator, hash
    if str_find(login, "@", 1, true) then
        user = conn:first("SELECT id, email, org_id, password, verified "
                          .. "FROM users WHERE email = ?", login)
        hash = user and user.password
    else
        hash = operator_hash(login)
        operator = hash and login
    end

    local ok = crypto.verify_password(password or "", hash or DUMMY_HASH)
    if not ok or not (user or operator) then
        fail(conn, akey, now)
        fail(conn, ikey, now)
        ngx.log(ngx.NOTICE, "openbank portal: failed login of \"", login,
                "\" from ", ngx_var.remote_addr)
        return nil, 403, t("The email or the password is wrong.")
    end

    if user and user.verified ~= 1 then
        return nil, 403, "Confirm your email first: open the link we sent "
                         .. "you."
    end

    conn:run("DELETE FROM login_failures WHERE key = ?", akey)
    local old = ngx.ctx.portal_session
    if old then
        conn:run("DELETE FROM sessions WHERE id_hash = ?", old.id_hash)
    end

    local s, err = create(conn, user and user.id, operator)
    if not s then
        return nil, 503, err
    end
    s.email = user and user.email
    s.org_id = user and user.org_id
    ngx.log(ngx.NOTICE, "openbank portal: \"", login, "\" signed in")
    return s
end


return _M
