-- The portal's own data, in SQLite (openbank.db): organisations,
-- developer accounts, email verifications, sessions, login failures and
-- the portal's audit events.  Credentials, plans and usage are the
-- registry's, reached through the Admin API (openbank.portal.admin).
--
-- Tables of version 1 (times are integer seconds since the Unix epoch):
--
--   orgs            id ("org_" and 16 hex digits, the pages' URLs), name,
--                   status (unverified, pending, approved, rejected),
--                   partner (the registry partner once approved), plan,
--                   created_at, decided_at, decided_by
--   users           id, email (unique, case-insensitive), org_id,
--                   password (crypto.hash_password), verified, created_at
--   verifications   SHA-256 of the emailed token, user_id, expires_at
--   sessions        SHA-256 of the cookie's id, user_id or operator, the
--                   CSRF token, expires_at; one row for an anonymous
--                   visitor too, whose forms need a CSRF token
--   login_failures  "account:<email>" or "address:<ip>": failures and
--                   the end of the back-off they earned; "signup:<ip>":
--                   sign-ups of the hour that ends at locked_until
--   audit           every change made through the portal: time, actor,
--                   action, target

local db = require "openbank.db"

local ngx_var = ngx.var
local str_format = string.format


local _M = {}


local MIGRATIONS = {
    [[
CREATE TABLE orgs (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    status      TEXT NOT NULL,
    partner     TEXT UNIQUE,
    plan        TEXT,
    created_at  INTEGER NOT NULL,
    decided_at  INTEGER,
    decided_by  TEXT
) STRICT;
CREATE INDEX orgs_status ON orgs (status, created_at);

CREATE TABLE users (
    id          INTEGER PRIMARY KEY,
    email       TEXT NOT NULL UNIQUE COLLATE NOCASE,
    org_id      TEXT NOT NULL REFERENCES orgs (id),
    password    TEXT NOT NULL,
    verified    INTEGER NOT NULL DEFAULT 0,
    created_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX users_org ON users (org_id);

CREATE TABLE verifications (
    token_hash  TEXT PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id),
    expires_at  INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id_hash     TEXT PRIMARY KEY,
    user_id     INTEGER REFERENCES users (id),
    operator    TEXT,
    csrf        TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_expiry ON sessions (expires_at);

CREATE TABLE login_failures (
    key           TEXT PRIMARY KEY,
    count         INTEGER NOT NULL,
    locked_until  INTEGER NOT NULL DEFAULT 0,
    updated_at    INTEGER NOT NULL
) STRICT;
CREATE INDEX login_failures_age ON login_failures (updated_at);

CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    time    INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT NOT NULL
) STRICT;
]],
}


local function migrate_locked(conn)
    local row, err = conn:first("PRAGMA user_version")
    if not row then
        return nil, err
    end

    local from = row.user_version
    if from > #MIGRATIONS then
        return nil, str_format("portal schema version %d is newer than "
                               .. "this code's (%d)", from, #MIGRATIONS)
    end

    for v = from + 1, #MIGRATIONS do
        local ok
        ok, err = conn:exec(MIGRATIONS[v])
        if not ok then
            return nil, str_format("portal migration %d: %s", v, err)
        end
    end

    if from < #MIGRATIONS then
        return conn:exec(str_format("PRAGMA user_version = %d",
                                    #MIGRATIONS))
    end

    return true
end


local function migrate(conn)
    return conn:transaction(migrate_locked)
end


function _M.conn()
    return db.open(ngx_var.openbank_portal_db, migrate)
end


function _M.audit(conn, actor, action, target)
    return conn:run("INSERT INTO audit (time, actor, action, target) "
                    .. "VALUES (?, ?, ?, ?)", ngx.time(), actor, action,
                    target)
end


return _M
