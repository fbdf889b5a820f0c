-- SQLite through the LuaJIT FFI, for the sandbox bank.
--
--   local db = require "openbank.db"
--   local conn, err = db.open("run/bank.sqlite3", schema.migrate)
--   local rows, err = conn:query("SELECT ... WHERE partner = ?", partner)
--   local row, err  = conn:first("SELECT ... WHERE number = ?", number)
--   local n, err    = conn:run("UPDATE ... SET held = held + ? WHERE ...", ...)
--   local ok, err   = conn:transaction(fn, arg1, arg2)  -- fn(conn, arg1, arg2)
--
-- Values only ever travel as bound parameters (`?`); SQL text is a constant
-- of the calling code, which is also what makes the per-connection cache of
-- prepared statements bounded.  Every function returns nil, err (and the
-- SQLite result code, see db.CONSTRAINT etc.) on failure.
--
-- One connection per database path per worker process, opened on first use
-- and kept for the worker's life.  SQLite calls block the worker: the bank's
-- statements and transactions are short, and a writer waits at most
-- BUSY_TIMEOUT_MS for another worker's write transaction.
--
-- Durability: journal_mode=WAL with synchronous=FULL.  WAL lets the workers
-- read while one of them writes.  With synchronous=NORMAL a WAL database
-- stays consistent but may lose the last committed transactions on a power
-- failure or OS crash; this database holds money and the bank answers "201
-- pending" only after COMMIT, so every COMMIT is fsynced (FULL), at the cost
-- of one fsync per write transaction.

local ffi = require "ffi"
local bit = require "bit"

local C_NULL = nil
local band = bit.band
local ffi_new = ffi.new
local ffi_string = ffi.string
local ffi_gc = ffi.gc
local ngx_log = ngx.log
local ngx_null = ngx.null
local ngx_WARN = ngx.WARN
local select = select
local setmetatable = setmetatable
local str_find = string.find
local str_format = string.format
local str_sub = string.sub
local tonumber = tonumber
local tostring = tostring
local type = type
local pairs = pairs
local pcall = pcall
local unpack = unpack
local get_phase = ngx.get_phase


local _M = {}


local BUSY_TIMEOUT_MS = 5000
local JOURNAL_RETRY_MS = 10

-- Integers outside +-(2^53 - 1) do not survive the trip into a Lua number.
local MAX_EXACT = 9007199254740991

-- Prepared statements kept per connection; beyond this (only reachable if
-- some code built SQL text dynamically) statements are prepared and
-- finalized per call instead of cached.
local MAX_CACHED_STMTS = 256


if not pcall(ffi.typeof, "struct sqlite3") then
    ffi.cdef[[
typedef struct sqlite3 sqlite3;
typedef struct sqlite3_stmt sqlite3_stmt;
typedef long long sqlite3_int64;
typedef void (*sqlite3_destructor_type)(void *);

const char *sqlite3_libversion(void);
int sqlite3_open_v2(const char *filename, sqlite3 **ppDb, int flags,
                    const char *zVfs);
int sqlite3_close_v2(sqlite3 *db);
int sqlite3_busy_timeout(sqlite3 *db, int ms);
int sqlite3_extended_result_codes(sqlite3 *db, int onoff);
const char *sqlite3_errmsg(sqlite3 *db);
const char *sqlite3_errstr(int rc);
int sqlite3_exec(sqlite3 *db, const char *sql, void *callback, void *arg,
                 char **errmsg);
void sqlite3_free(void *p);
int sqlite3_get_autocommit(sqlite3 *db);
int sqlite3_sleep(int ms);
int sqlite3_changes(sqlite3 *db);
sqlite3_int64 sqlite3_last_insert_rowid(sqlite3 *db);

int sqlite3_prepare_v2(sqlite3 *db, const char *zSql, int nByte,
                       sqlite3_stmt **ppStmt, const char **pzTail);
int sqlite3_bind_parameter_count(sqlite3_stmt *stmt);
int sqlite3_bind_int64(sqlite3_stmt *stmt, int i, sqlite3_int64 v);
int sqlite3_bind_text(sqlite3_stmt *stmt, int i, const char *v, int n,
                      sqlite3_destructor_type d);
int sqlite3_bind_null(sqlite3_stmt *stmt, int i);
int sqlite3_step(sqlite3_stmt *stmt);
int sqlite3_reset(sqlite3_stmt *stmt);
int sqlite3_clear_bindings(sqlite3_stmt *stmt);
int sqlite3_finalize(sqlite3_stmt *stmt);
int sqlite3_column_count(sqlite3_stmt *stmt);
const char *sqlite3_column_name(sqlite3_stmt *stmt, int i);
int sqlite3_column_type(sqlite3_stmt *stmt, int i);
sqlite3_int64 sqlite3_column_int64(sqlite3_stmt *stmt, int i);
double sqlite3_column_double(sqlite3_stmt *stmt, int i);
const unsigned char *sqlite3_column_text(sqlite3_stmt *stmt, int i);
const void *sqlite3_column_blob(sqlite3_stmt *stmt, int i);
int sqlite3_column_bytes(sqlite3_stmt *stmt, int i);
]]
end


-- libsqlite3.so comes with libsqlite3-dev, libsqlite3.so.0 with the
-- runtime package alone.
local lib, load_err
do
    local ok, l = pcall(ffi.load, "sqlite3")
    if not ok then
        ok, l = pcall(ffi.load, "libsqlite3.so.0")
    end

    if ok then
        lib = l
    else
        load_err = "cannot load libsqlite3: " .. tostring(l)
    end
end


local SQLITE_OK = 0
local SQLITE_ROW = 100
local SQLITE_DONE = 101
local SQLITE_CANTOPEN = 14

local SQLITE_INTEGER = 1
local SQLITE_FLOAT = 2
local SQLITE_TEXT = 3
local SQLITE_BLOB = 4

local SQLITE_OPEN_READWRITE = 0x00000002
local SQLITE_OPEN_CREATE = 0x00000004
local SQLITE_OPEN_NOMUTEX = 0x00008000   -- one worker, one thread

-- Primary result codes, for callers: `if rc == db.CONSTRAINT then`.
_M.BUSY = 5
_M.LOCKED = 6
_M.CONSTRAINT = 19

local TRANSIENT = ffi.cast("sqlite3_destructor_type", -1)

local db_pp = ffi_new("sqlite3 *[1]")
local stmt_pp = ffi_new("sqlite3_stmt *[1]")
local tail_pp = ffi_new("const char *[1]")
local errmsg_pp = ffi_new("char *[1]")


local conns = {}    -- resolved path -> connection, this worker's


local conn_mt = {}
conn_mt.__index = conn_mt


local function sqlite_error(self, what, rc)
    local msg
    if self.db ~= C_NULL then
        msg = ffi_string(lib.sqlite3_errmsg(self.db))
    else
        msg = ffi_string(lib.sqlite3_errstr(rc))
    end

    return str_format("sqlite %s: %s (%d)", what, msg, rc)
end


local function finalize(stmt)
    ffi_gc(stmt, nil)
    lib.sqlite3_finalize(stmt)
end


local function prepare(self, sql)
    local rc = lib.sqlite3_prepare_v2(self.db, sql, #sql, stmt_pp, tail_pp)
    if rc ~= SQLITE_OK then
        return nil, sqlite_error(self, "prepare", rc), band(rc, 0xff)
    end

    local stmt = stmt_pp[0]
    if stmt == C_NULL then
        return nil, "sqlite prepare: empty statement"
    end

    ffi_gc(stmt, lib.sqlite3_finalize)

    -- One statement per call: the rest of the text must be blank.
    local tail = ffi_string(tail_pp[0])
    if str_find(tail, "%S") then
        finalize(stmt)
        return nil, "sqlite prepare: more than one statement in \""
                    .. str_sub(sql, 1, 60) .. "\""
    end

    local ncol = lib.sqlite3_column_count(stmt)
    local names = {}
    for i = 1, ncol do
        names[i] = ffi_string(lib.sqlite3_column_name(stmt, i - 1))
    end

    return {
        stmt = stmt,
        ncol = ncol,
        names = names,
        nparams = lib.sqlite3_bind_parameter_count(stmt),
    }
end


local function get_stmt(self, sql)
    local entry = self.stmts[sql]
    if entry then
        return entry, true
    end

    local err, rc
    entry, err, rc = prepare(self, sql)
    if not entry then
        return nil, err, rc
    end

    if self.nstmts < MAX_CACHED_STMTS then
        self.stmts[sql] = entry
        self.nstmts = self.nstmts + 1
        return entry, true
    end

    return entry, false
end


local function release_stmt(entry, cached)
    local stmt = entry.stmt
    lib.sqlite3_reset(stmt)
    lib.sqlite3_clear_bindings(stmt)
    if not cached then
        finalize(stmt)
    end
end


local function bind(self, entry, n, ...)
    local stmt = entry.stmt

    if n ~= entry.nparams then
        return nil, str_format("sqlite bind: %d values for %d parameters",
                               n, entry.nparams)
    end

    for i = 1, n do
        local v = select(i, ...)
        local tv = type(v)
        local rc

        if tv == "string" then
            rc = lib.sqlite3_bind_text(stmt, i, v, #v, TRANSIENT)

        elseif tv == "number" then
            -- Integers only: the bank has no use for floating point.
            if v % 1 ~= 0 or v > MAX_EXACT or v < -MAX_EXACT then
                return nil, str_format("sqlite bind: parameter %d is not "
                                       .. "an exact integer", i)
            end
            rc = lib.sqlite3_bind_int64(stmt, i, v)

        elseif tv == "nil" or v == ngx_null then
            rc = lib.sqlite3_bind_null(stmt, i)

        elseif tv == "boolean" then
            rc = lib.sqlite3_bind_int64(stmt, i, v and 1 or 0)

        elseif tv == "cdata" then   -- int64_t
            rc = lib.sqlite3_bind_int64(stmt, i, v)

        else
            return nil, str_format("sqlite bind: parameter %d has type %s",
                                   i, tv)
        end

        if rc ~= SQLITE_OK then
            return nil, sqlite_error(self, "bind", rc), band(rc, 0xff)
        end
    end

    return true
end


local function column(stmt, i)
    local t = lib.sqlite3_column_type(stmt, i)

    if t == SQLITE_INTEGER then
        local v = lib.sqlite3_column_int64(stmt, i)
        if v > MAX_EXACT or v < -MAX_EXACT then
            return nil, "sqlite: integer column out of the exact range"
        end
        return tonumber(v)

    elseif t == SQLITE_TEXT then
        local p = lib.sqlite3_column_text(stmt, i)
        return ffi_string(p, lib.sqlite3_column_bytes(stmt, i))

    elseif t == SQLITE_BLOB then
        local p = lib.sqlite3_column_blob(stmt, i)
        return ffi_string(p, lib.sqlite3_column_bytes(stmt, i))

    elseif t == SQLITE_FLOAT then
        return lib.sqlite3_column_double(stmt, i)
    end

    return nil   -- NULL
end


-- Runs one statement to completion.  With `rows` a table, every result row
-- is appended to it as a table keyed by column name; with `first`, only
-- the first row is kept (the statement still runs to completion, so that a
-- write with RETURNING is complete).
local function execute(self, sql, rows, first, n, ...)
    if self.db == C_NULL then
        return nil, "sqlite: connection is closed"
    end

    local entry, cached, rc = get_stmt(self, sql)
    if not entry then
        return nil, cached, rc
    end

    local ok, err
    ok, err, rc = bind(self, entry, n, ...)
    if not ok then
        release_stmt(entry, cached)
        return nil, err, rc
    end

    local stmt = entry.stmt
    local names = entry.names
    local ncol = entry.ncol
    local nrows = 0

    while true do
        rc = lib.sqlite3_step(stmt)

        if rc == SQLITE_ROW then
            if rows and (not first or nrows == 0) then
                local row = {}
                for i = 1, ncol do
                    local v, cerr = column(stmt, i - 1)
                    if cerr then
                        release_stmt(entry, cached)
                        return nil, cerr
                    end
                    row[names[i]] = v
                end
                nrows = nrows + 1
                rows[nrows] = row
            end

        elseif rc == SQLITE_DONE then
            break

        else
            err = sqlite_error(self, "step", rc)
            release_stmt(entry, cached)
            return nil, err, band(rc, 0xff)
        end
    end

    release_stmt(entry, cached)
    return true
end


-- All result rows, as an array (empty when there are none).
function conn_mt.query(self, sql, ...)
    local rows = {}
    local ok, err, rc = execute(self, sql, rows, false, select("#", ...), ...)
    if not ok then
        return nil, err, rc
    end

    return rows
end


-- The first result row; nil and no error when there is none.
function conn_mt.first(self, sql, ...)
    local rows = {}
    local ok, err, rc = execute(self, sql, rows, true, select("#", ...), ...)
    if not ok then
        return nil, err, rc
    end

    return rows[1]
end


-- A statement without result rows: returns the number of rows changed and
-- the last inserted rowid.
function conn_mt.run(self, sql, ...)
    local ok, err, rc = execute(self, sql, nil, false, select("#", ...), ...)
    if not ok then
        return nil, err, rc
    end

    return lib.sqlite3_changes(self.db),
           tonumber(lib.sqlite3_last_insert_rowid(self.db))
end


-- Constant SQL text, possibly several statements, no parameters and no
-- result rows: schema definitions.  Never pass values here.
function conn_mt.exec(self, sql)
    if self.db == C_NULL then
        return nil, "sqlite: connection is closed"
    end

    local rc = lib.sqlite3_exec(self.db, sql, nil, nil, errmsg_pp)
    if rc ~= SQLITE_OK then
        local msg
        if errmsg_pp[0] ~= C_NULL then
            msg = ffi_string(errmsg_pp[0])
            lib.sqlite3_free(errmsg_pp[0])
            errmsg_pp[0] = nil
        else
            msg = ffi_string(lib.sqlite3_errstr(rc))
        end
        return nil, str_format("sqlite exec: %s (%d)", msg, rc),
               band(rc, 0xff)
    end

    return true
end


function conn_mt.in_transaction(self)
    return self.db ~= C_NULL and lib.sqlite3_get_autocommit(self.db) == 0
end


local function pack(...)
    return { n = select("#", ...), ... }
end


-- Savepoint names by depth: constant SQL text, no values.
local SAVEPOINT, RELEASE, ROLLBACK_TO = {}, {}, {}
for i = 1, 16 do
    SAVEPOINT[i] = "SAVEPOINT openbank_" .. i
    RELEASE[i] = "RELEASE openbank_" .. i
    ROLLBACK_TO[i] = "ROLLBACK TO openbank_" .. i
end


-- Runs fn(conn, ...) in a transaction and returns what fn returns.
--
-- The outermost call is BEGIN IMMEDIATE: it takes the database's write
-- lock at once (waiting up to BUSY_TIMEOUT_MS for another worker), so that
-- what fn reads cannot change before it writes.  A nested call is a
-- SAVEPOINT, so functions that need a transaction compose.
--
-- fn commits by returning a true first value, and rolls back by returning
-- nil or false (`return nil, err`: transaction returns nil, err, with err
-- passed through as it is, string or table) or by raising an error
-- (transaction returns nil and the message).
--
-- fn must not yield (no cosocket, ngx.sleep, ngx.location.capture): the
-- connection is shared by every request of the worker, and another request
-- would run its statements inside this transaction.
function conn_mt.transaction(self, fn, ...)
    if self.db == C_NULL then
        return nil, "sqlite: connection is closed"
    end

    local depth = self.depth + 1
    if depth > #SAVEPOINT then
        return nil, "sqlite: transactions nested too deep"
    end

    local ok, err, rc
    if depth == 1 then
        ok, err, rc = self:exec("BEGIN IMMEDIATE")
    else
        ok, err, rc = self:exec(SAVEPOINT[depth])
    end

    if not ok then
        return nil, err, rc
    end

    self.depth = depth

    local res = pack(pcall(fn, self, ...))

    self.depth = depth - 1

    if res[1] and res[2] then
        if depth == 1 then
            ok, err, rc = self:exec("COMMIT")
        else
            ok, err, rc = self:exec(RELEASE[depth])
        end

        if ok then
            return unpack(res, 2, res.n)
        end

    elseif res[1] then
        err = res[3]      -- fn returned nil, err
        rc = res[4]

    else
        err = tostring(res[2])   -- fn raised an error
    end

    if depth == 1 then
        if self:in_transaction() then
            local rok, rerr = self:exec("ROLLBACK")
            if not rok then
                ngx_log(ngx_WARN, "openbank db: ", rerr)
            end
        end

    else
        self:exec(ROLLBACK_TO[depth])
        self:exec(RELEASE[depth])
    end

    return nil, err, rc
end


function conn_mt.close(self)
    if self.db == C_NULL then
        return true
    end

    local stmts = self.stmts
    for sql, entry in pairs(stmts) do
        finalize(entry.stmt)
        stmts[sql] = nil
    end
    self.nstmts = 0

    local db = self.db
    self.db = C_NULL
    ffi_gc(db, nil)

    local rc = lib.sqlite3_close_v2(db)
    if conns[self.path] == self then
        conns[self.path] = nil
    end

    if rc ~= SQLITE_OK then
        return nil, str_format("sqlite close: %s (%d)",
                               ffi_string(lib.sqlite3_errstr(rc)), rc)
    end

    return true
end


-- A relative path is relative to nginx's prefix (-p), like every other
-- path in nginx.conf.
function _M.resolve(path)
    if str_sub(path, 1, 1) == "/" then
        return path
    end

    local prefix = ngx.config.prefix()
    if str_sub(prefix, -1) ~= "/" then
        prefix = prefix .. "/"
    end

    return prefix .. path
end


local function configure(conn)
    local row, err, rc

    -- Before anything that may need a lock: switching a fresh database to
    -- WAL takes an exclusive lock, which another worker may hold.
    lib.sqlite3_busy_timeout(conn.db, BUSY_TIMEOUT_MS)
    lib.sqlite3_extended_result_codes(conn.db, 1)

    -- The busy handler does not cover every case here: when two workers
    -- open a fresh database at once, both hold a shared lock and want an
    -- exclusive one, and SQLite answers one of them SQLITE_BUSY at once
    -- rather than deadlock.  Retry, blocking (this runs once per worker).
    for _ = 1, BUSY_TIMEOUT_MS / JOURNAL_RETRY_MS do
        row, err, rc = conn:first("PRAGMA journal_mode = WAL")
        if row or rc ~= _M.BUSY then
            break
        end
        lib.sqlite3_sleep(JOURNAL_RETRY_MS)
    end

    if not row then
        return nil, err or "sqlite: journal_mode gave no answer", rc
    end

    if row.journal_mode ~= "wal" then
        ngx_log(ngx_WARN, "openbank db: ", conn.path, " is in journal mode \"",
                row.journal_mode, "\", not wal: workers will wait for each ",
                "other's reads")
    end

    local ok
    ok, err, rc = conn:exec("PRAGMA synchronous = FULL")
    if not ok then
        return nil, err, rc
    end

    ok, err, rc = conn:exec("PRAGMA foreign_keys = ON")
    if not ok then
        return nil, err, rc
    end

    return true
end


-- The worker's connection to the database at `path`, opened on first use.
-- `on_open(conn)`, when given, runs once after the connection is opened
-- (schema migrations); if it fails the connection is closed and the next
-- call tries again.
function _M.open(path, on_open)
    if not lib then
        return nil, load_err
    end

    if type(path) ~= "string" or path == "" then
        return nil, "no database path"
    end

    path = _M.resolve(path)

    local conn = conns[path]
    if conn then
        return conn
    end

    -- A connection must not cross a fork: the master's would be shared by
    -- every worker.
    if get_phase() == "init" then
        return nil, "open the database in the workers, not in init_by_lua"
    end

    local rc = lib.sqlite3_open_v2(path, db_pp, SQLITE_OPEN_READWRITE
                                                + SQLITE_OPEN_CREATE
                                                + SQLITE_OPEN_NOMUTEX, nil)
    local db = db_pp[0]
    if rc ~= SQLITE_OK then
        local msg = db ~= C_NULL and ffi_string(lib.sqlite3_errmsg(db))
                    or ffi_string(lib.sqlite3_errstr(rc))
        if db ~= C_NULL then
            lib.sqlite3_close_v2(db)
        end
        if rc == SQLITE_CANTOPEN then
            -- the usual cause: nginx started as root runs its workers as
            -- `user` (nobody), who cannot write the directory
            msg = msg .. ", or its directory, cannot be written by the "
                  .. "worker's user"
        end
        return nil, str_format("sqlite open \"%s\": %s (%d)", path, msg, rc)
    end

    conn = setmetatable({
        db = ffi_gc(db, lib.sqlite3_close_v2),
        path = path,
        stmts = {},
        nstmts = 0,
        depth = 0,
    }, conn_mt)

    local ok, err = configure(conn)
    if ok and on_open then
        ok, err = on_open(conn)
    end

    if not ok then
        conn:close()
        return nil, str_format("\"%s\": %s", path, tostring(err))
    end

    conns[path] = conn
    return conn
end


function _M.version()
    if not lib then
        return nil, load_err
    end

    return ffi_string(lib.sqlite3_libversion())
end


return _M
