-- The developer portal (docs/portal.md): sign-up, sign-in, the
-- organisation's pages (credentials, try-it, usage, webhooks) and the
-- operators' pages, served under /portal/ by content_by_lua:
--
--   location /portal/ {
--       content_by_lua_block { require("openbank.portal.app").handle() }
--   }
--
-- Its data is in SQLite ($openbank_portal_db, openbank.portal.store);
-- the registry's partners and credentials are changed through the Admin
-- API (openbank.portal.admin).

local admin = require "openbank.portal.admin"
local auth = require "openbank.portal.auth"
local crypto = require "openbank.portal.crypto"
local html = require "openbank.portal.html"
local store = require "openbank.portal.store"
local web = require "openbank.portal.web"

local ngx_var = ngx.var
local ngx_time = ngx.time
local h = html.h
local t = html.t
local str_match = string.match
local str_gsub = string.gsub
local str_find = string.find
local str_lower = string.lower
local concat = table.concat


local _M = {}


local VERIFY_TTL = 24 * 3600


local function utf8_len(s)
    local _, n = str_gsub(s, "[^\128-\191]", "")
    return n
end


local function base_url()
    return ngx_var.scheme .. "://" .. (ngx_var.http_host or ngx_var.host)
end


local function field_row(id, label, input, hint)
    return '<div class="field"><label for="' .. id .. '">' .. h(label)
           .. '</label>' .. input
           .. (hint and ('<p class="hint" id="' .. id .. '-hint">' .. h(hint)
                         .. '</p>') or '') .. '</div>'
end


-- pages of signed-out visitors

local function signup_form(conn, err, values)
    auth.ensure(conn)
    values = values or {}
    local body = {
        err and html.notice("error", err) or "",
        '<form method="post" action="/portal/signup" class="card narrow">',
        html.csrf_field(),
        field_row("email", t("Email"), '<input id="email" name="email" '
            .. 'type="email" autocomplete="email" required maxlength="254" '
            .. 'value="' .. h(values.email) .. '">'),
        field_row("org", t("Organisation"), '<input id="org" name="org" '
            .. 'autocomplete="organization" required maxlength="100" '
            .. 'value="' .. h(values.org) .. '">'),
        field_row("password", t("Password"), '<input id="password" '
            .. 'name="password" type="password" autocomplete="new-password" '
            .. 'required minlength="12" aria-describedby="password-hint">',
            t("At least 12 characters.")),
        '<button type="submit" class="btn primary">',
        h(t("Create an account")), '</button>',
        '<p class="alt"><a href="/portal/login">', h(t("Sign in")),
        '</a></p></form>',
    }
    return web.page({ status = err and 400 or 200, title = t("Sign up"),
                      body = concat(body) })
end


local function login_form(conn, err, status, login)
    auth.ensure(conn)
    local body = {
        err and html.notice("error", err) or "",
        '<form method="post" action="/portal/login" class="card narrow">',
        html.csrf_field(),
        field_row("login", t("Email or operator name"), '<input id="login" '
            .. 'name="login" autocomplete="username" required '
            .. 'maxlength="254" value="' .. h(login) .. '">'),
        field_row("password", t("Password"), '<input id="password" '
            .. 'name="password" type="password" '
            .. 'autocomplete="current-password" required>'),
        '<button type="submit" class="btn primary">', h(t("Sign in")),
        '</button><p class="alt"><a href="/portal/signup">',
        h(t("Create an account")), '</a></p></form>',
    }
    return web.page({ status = status or 200, title = t("Sign in"),
                      body = concat(body) })
end


local function signup(conn)
    local args = web.form()
    web.check_csrf(args)

    local email = str_lower(web.field(args, "email") or "")
    local org = str_match(web.field(args, "org") or "", "^%s*(.-)%s*$")
    local password = web.field(args, "password") or ""
    local values = { email = email, org = org }

    if #email > 254 or not str_find(email, "^[^%s@]+@[^%s@]+%.[^%s@]+$")
    then
        return signup_form(conn, "The email address is not valid.", values)
    end
    if utf8_len(org) < 2 or utf8_len(org) > 100 then
        return signup_form(conn, "The organisation's name must be 2 to 100 "
                           .. "characters.", values)
    end
    if utf8_len(password) < auth.MIN_PASSWORD or #password > 1024 then
        return signup_form(conn, "The password must be at least 12 "
                           .. "characters.", values)
    end

    if conn:first("SELECT 1 AS x FROM users WHERE email = ?", email) then
        return signup_form(conn, "An account with this email exists: sign "
                           .. "in instead.", values)
    end

    local allowed, why = auth.signup_allowed(conn)
    if not allowed then
        ngx.status = 429
        return web.page({ status = 429, title = t("Sign up"),
                          body = html.notice("error", why) })
    end

    local hash, err = crypto.hash_password(password)
    if not hash then
        ngx.log(ngx.ERR, "openbank portal: ", err)
        return web.fail(503, "The portal cannot make accounts right now.")
    end

    local token = crypto.token()
    local org_id = "org_" .. crypto.hex(crypto.random(8))
    local now = ngx_time()

    local ok
    ok, err = conn:transaction(function(c)
        local r, e = c:run("INSERT INTO orgs (id, name, status, created_at) "
                           .. "VALUES (?, ?, 'unverified', ?)", org_id, org,
                           now)
        if not r then
            return nil, e
        end
        r, e = c:run("INSERT INTO users (email, org_id, password, "
                     .. "created_at) VALUES (?, ?, ?, ?)", email, org_id,
                     hash, now)
        if not r then
            return nil, e
        end
        local uid = c:first("SELECT id FROM users WHERE email = ?", email)
        r, e = c:run("INSERT INTO verifications (token_hash, user_id, "
                     .. "expires_at) VALUES (?, ?, ?)",
                     crypto.sha256_hex(token), uid.id, now + VERIFY_TTL)
        if not r then
            return nil, e
        end
        return store.audit(c, email, "org.signup", org_id)
    end)
    if not ok then
        ngx.log(ngx.ERR, "openbank portal: sign-up: ", err)
        return web.fail(503, "The portal cannot make accounts right now.")
    end

    -- the sandbox sends no mail: the link is in the log and on the page
    local link = base_url() .. "/portal/verify?token=" .. token
    ngx.log(ngx.NOTICE, "openbank portal: verification link for ", email,
            ": ", link)

    return web.page({ title = t("Check your email"), body = concat({
        '<div class="card narrow"><p>We sent a link to <strong>', h(email),
        '</strong>. Open it to confirm the address; then the bank reviews ',
        h(org), '.</p><p class="sandbox">Sandbox: no mail is sent. ',
        'The link is here and in the gateway\'s log:</p>',
        '<p><a id="verify-link" href="', h(link), '">', h(link),
        '</a></p></div>' }) })
end


local function verify(conn)
    local token = ngx_var.arg_token
    local now = ngx_time()
    local row = token and #token == 43 and conn:first(
        "SELECT v.user_id, u.email, u.org_id FROM verifications v JOIN "
        .. "users u ON u.id = v.user_id WHERE v.token_hash = ? AND "
        .. "v.expires_at > ?", crypto.sha256_hex(token), now)
    if not row then
        return web.fail(404, "This link is not valid, or it was used "
                        .. "already, or it expired.")
    end

    local ok, err = conn:transaction(function(c)
        c:run("DELETE FROM verifications WHERE user_id = ?", row.user_id)
        c:run("UPDATE users SET verified = 1 WHERE id = ?", row.user_id)
        c:run("UPDATE orgs SET status = 'pending' WHERE id = ? AND "
              .. "status = 'unverified'", row.org_id)
        return store.audit(c, row.email, "user.verify", row.org_id)
    end)
    if not ok then
        ngx.log(ngx.ERR, "openbank portal: verify: ", err)
        return web.fail(503, "Try again in a moment.")
    end

    return web.page({ title = t("Email confirmed"), body = concat({
        '<div class="card narrow"><p>Thank you: ', h(row.email),
        ' is confirmed. The bank now reviews your organisation; you can ',
        'sign in and see where it stands.</p><p><a class="btn primary" ',
        'href="/portal/login">', h(t("Sign in")), '</a></p></div>' }) })
end


local function login(conn)
    local args = web.form()
    web.check_csrf(args)

    local name = web.field(args, "login")
    local s, status, err = auth.login(conn, name, web.field(args, "password"))
    if not s then
        return login_form(conn, err, status, name)
    end

    return web.redirect(s.operator and "/portal/ops/"
                        or ("/portal/o/" .. s.org_id .. "/"))
end


local function home(conn)
    local s = ngx.ctx.portal_session
    if s and s.operator then
        return web.redirect("/portal/ops/")
    elseif s and s.org_id then
        return web.redirect("/portal/o/" .. s.org_id .. "/")
    end

    return web.page({ title = t("Open APIs for partners of the bank"),
        class = "landing", body = concat({
        '<section class="hero"><p class="lead">',
        h(t("Accounts, payments, verifications, escrow, collections and "
            .. "statements: sign up, get approved by the bank, make your "
            .. "keys and call the sandbox in minutes.")),
        '</p><p><a class="btn primary" href="/portal/signup">',
        h(t("Sign up")), '</a> <a class="btn" href="/portal/login">',
        h(t("Sign in")), '</a></p></section>' }) })
end


-- the organisation's pages

local function org_nav(org, current)
    local base = "/portal/o/" .. org.id .. "/"
    local items = {
        { base, t("Overview"), current == "" },
        { base .. "credentials", t("Credentials"),
          current == "credentials" },
        { base .. "try", t("Try it"), current == "try" },
        { base .. "usage", t("Usage"), current == "usage" },
        { base .. "webhooks", t("Webhooks"), current == "webhooks" },
    }
    return items
end
_M.org_nav = org_nav


-- The signed-in developer's organisation if it is `id`; any other is
-- answered 404, whether it exists or not.
local function own_org(conn, id)
    local s = ngx.ctx.portal_session
    if not s or not (s.user_id or s.operator) then
        return web.redirect("/portal/login")
    end
    if not s.org_id or s.org_id ~= id then
        return web.not_found()
    end
    return conn:first("SELECT id, name, status, partner, plan FROM orgs "
                      .. "WHERE id = ?", id) or web.not_found()
end


local function waiting(org, current)
    local text
    if org.status == "rejected" then
        text = t("The bank did not approve %s.", org.name)
    else
        text = t("%s is waiting for the bank's approval: its credentials, "
                 .. "usage and try-it console open once it is approved.",
                 org.name)
    end
    return web.page({ title = t("Waiting for approval"),
                      nav = org_nav(org, current),
                      body = html.notice("info", text) })
end
_M.waiting = waiting


local function overview(conn, org)
    if org.status ~= "approved" then
        return waiting(org, "")
    end

    local res, err = admin.call("GET", "/admin/partners/" .. org.partner)
    local p = res and res.status == 200 and res.json
    if res and res.status == 404 then
        return web.page({ title = org.name, nav = org_nav(org, ""),
            body = html.notice("error", "The partner " .. org.partner
                               .. " is no longer in the gateway's registry:"
                               .. " ask the bank.") })
    end
    if not p then
        ngx.log(ngx.ERR, "openbank portal: partner ", org.partner, ": ",
                err or res.status)
        return web.fail(502, "The gateway's registry does not answer: try "
                        .. "again in a moment.")
    end

    local body = {
        p.status == "suspended" and html.notice("error", "The bank has "
            .. "suspended this organisation: every call is refused.") or "",
        '<dl class="facts card">',
        '<dt>', h(t("Organisation")), '</dt><dd>', h(org.name), '</dd>',
        '<dt>Partner</dt><dd><code>', h(p.name), '</code></dd>',
        '<dt>', h(t("Status")), '</dt><dd><span class="badge ',
        h(p.status), '">', h(p.status), '</span></dd>',
        '<dt>', h(t("Plan")), '</dt><dd>', h(p.plan), '</dd>',
        '<dt>', h(t("Scopes")), '</dt><dd>',
    }
    for _, sc in ipairs(p.scopes or {}) do
        body[#body + 1] = '<span class="chip">' .. h(sc) .. '</span> '
    end
    body[#body + 1] = '</dd><dt>client_id</dt><dd><code>'
                      .. h(p.client_id) .. '</code></dd></dl>'
    body[#body + 1] = '<p><a class="btn primary" href="credentials">'
                      .. h(t("Credentials")) .. '</a></p>'

    return web.page({ title = org.name, nav = org_nav(org, ""),
                      body = concat(body) })
end


local function tryit(conn, org)
    if org.status ~= "approved" then
        return waiting(org, "try")
    end
    web.headers(true)
    return web.page({ title = t("Try it"), nav = org_nav(org, "try"),
        class = "wide",
        styles = { "/portal/vendor/swagger-ui/swagger-ui.css" },
        scripts = { "/portal/vendor/swagger-ui/swagger-ui-bundle.js",
                    "/portal/static/tryit.js" },
        body = concat({
            '<p class="lead">', h(t("Paste one of your API keys in "
                .. "Authorize (apiKey), open an operation, then Try it "
                .. "out: the calls go to the sandbox with your key.")),
            '</p>',
            '<div id="swagger-ui" data-spec="/portal/openapi.yaml"></div>'
        }) })
end


-- The OpenAPI document, its server the portal's own origin, so that the
-- try-it console calls the gateway that serves it.
local spec_cache = {}

local function openapi()
    local path = require("openbank.db").resolve(
        ngx_var.openbank_portal_openapi or "docs/openapi.yaml")
    local text = spec_cache[path]
    if not text then
        local f = io.open(path, "r")
        if not f then
            ngx.log(ngx.ERR, "openbank portal: cannot read ", path)
            return web.not_found()
        end
        text = f:read("*a")
        f:close()
        spec_cache[path] = text
    end

    local origin = base_url()
    if not str_find(origin, "^https?://[%w.:%[%]-]+$") then
        origin = "http://127.0.0.1"
    end
    text = str_gsub(text, "\nservers:\n  %- url: [^\n]*\n",
                    "\nservers:\n  - url: " .. origin .. "\n", 1)
    ngx.header["Cache-Control"] = "no-cache"
    return web.send(200, text, "application/yaml")
end


local function lang()
    local to = ngx_var.arg_to
    if to == "zh" or to == "en" then
        web.set_cookie("obp_lang", to, 365 * 86400)
    end
    return web.redirect("/portal/")
end


-- the dispatcher

local ORG_PAGES = {
    [""] = overview,
    credentials = function(conn, org)
        return require("openbank.portal.creds").page(conn, org)
    end,
    try = tryit,
    usage = function(conn, org)
        return require("openbank.portal.usage").page(conn, org)
    end,
    webhooks = function(conn, org)
        return require("openbank.portal.webhooks").page(conn, org)
    end,
}


function _M.handle()
    ngx.ctx.portal_lang = html.lang()
    web.headers(false)

    local conn, err = store.conn()
    if not conn then
        ngx.log(ngx.ERR, "openbank portal: ", err)
        return web.fail(503, "The portal is unavailable: try again in a "
                        .. "moment.")
    end

    auth.load(conn)

    local method = ngx.req.get_method()
    local uri = ngx_var.uri
    local post = method == "POST"

    if method ~= "GET" and method ~= "HEAD" and not post then
        ngx.header["Allow"] = "GET, HEAD, POST"
        return web.fail(405, "This method is not allowed here.")
    end

    if uri == "/portal/" then
        return home(conn)
    elseif uri == "/portal/signup" then
        return post and signup(conn) or signup_form(conn)
    elseif uri == "/portal/login" then
        return post and login(conn) or login_form(conn)
    elseif uri == "/portal/verify" and not post then
        return verify(conn)
    elseif uri == "/portal/logout" and post then
        web.check_csrf(web.form())
        auth.destroy(conn)
        return web.redirect("/portal/")
    elseif uri == "/portal/lang" and not post then
        return lang()
    elseif uri == "/portal/openapi.yaml" and not post then
        return openapi()
    end

    local id, rest = str_match(uri, "^/portal/o/(org_%x+)/(.*)$")
    if id then
        local org = own_org(conn, id)
        local page = ORG_PAGES[rest]
        if page and not post then
            return page(conn, org)
        end
        if str_find(rest, "^webhooks/") then
            return require("openbank.portal.webhooks").action(conn, org,
                                                               rest, post)
        end
        return require("openbank.portal.creds").action(conn, org, rest,
                                                        post)
    end

    if str_find(uri, "^/portal/ops/") then
        return require("openbank.portal.ops").handle(conn, uri, post)
    end

    return web.not_found()
end


return _M
