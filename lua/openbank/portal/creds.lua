-- The organisation's credentials page and its actions, on the Admin
-- API's credentials of its registry partner (docs/admin.md).  A generated
-- secret is on the one page that answers its creation (Cache-Control:
-- no-store) and nowhere else: the registry keeps only its hash or seal,
-- and the list shows the hint the Admin API gives.

local admin = require "openbank.portal.admin"
local html = require "openbank.portal.html"
local json = require "openbank.json"
local pem = require "openbank.portal.pem"
local store = require "openbank.portal.store"
local web = require "openbank.portal.web"

local h = html.h
local t = html.t
local str_match = string.match
local str_find = string.find
local concat = table.concat


local _M = {}


local GENERATED = {
    api_key = "API key",
    client_secret = "Client secret",
    hmac_secret = "HMAC secret",
}

local TYPE_NAMES = {
    api_key = "API key",
    client_secret = "Client secret",
    hmac_secret = "HMAC secret",
    jwks = "JWKS (public keys)",
    certificate = "Client certificate",
}


local function nav(org)
    return require("openbank.portal.app").org_nav(org, "credentials")
end


local function who()
    return ngx.ctx.portal_session.email
end


function _M.registry_down(err, res)
    ngx.log(ngx.ERR, "openbank portal: admin API: ",
            err or ("status " .. res.status))
    return web.fail(502, "The gateway's registry does not answer: try "
                    .. "again in a moment.")
end


local registry_down = _M.registry_down


local function day(s)
    return s and s ~= json.null and str_match(s, "^(%d+%-%d+%-%d+)") or "—"
end


function _M.page(conn, org, message)
    if org.status ~= "approved" then
        return require("openbank.portal.app").waiting(org, "credentials")
    end

    local res, err = admin.call("GET", "/admin/partners/" .. org.partner
                                .. "/credentials")
    if not res or res.status ~= 200 or not res.json then
        return registry_down(err, res)
    end

    local base = "/portal/o/" .. org.id .. "/credentials"
    local list = res.json.credentials or {}
    local out = { message or "" }

    out[#out + 1] = '<section class="card"><h2>'
                    .. h(t("Your credentials")) .. '</h2>'
    if #list == 0 then
        out[#out + 1] = '<p class="empty">'
            .. h(t("No credential yet: create one below.")) .. '</p>'
    else
        out[#out + 1] = '<table class="creds"><caption class="sr">'
            .. 'Credentials</caption><thead><tr><th scope="col">'
            .. h(t("Type")) .. '</th><th scope="col">' .. h(t("Hint"))
            .. '</th><th scope="col">' .. h(t("Created")) .. '</th>'
            .. '<th scope="col">' .. h(t("Expires")) .. '</th>'
            .. '<th scope="col">' .. h(t("Last used")) .. '</th>'
            .. '<th scope="col"><span class="sr">Actions</span></th>'
            .. '</tr></thead><tbody>'
        for _, c in ipairs(list) do
            local actions = {}
            if GENERATED[c.type] then
                actions[#actions + 1] = html.button_form(base .. "/" .. c.id
                    .. "/rotate", t("Rotate"), "btn small")
            end
            actions[#actions + 1] = html.button_form(base .. "/" .. c.id
                .. "/delete", t("Delete"), "btn small danger")
            out[#out + 1] = '<tr data-credential="' .. h(c.id) .. '"><td>'
                .. h(t(TYPE_NAMES[c.type] or c.type))
                .. (c.expired == true and ' <span class="badge suspended">'
                    .. 'expired</span>' or '')
                .. '</td><td><code>' .. h(c.hint) .. '</code></td><td>'
                .. h(day(c.created_at)) .. '</td><td>'
                .. h(day(c.expires_at)) .. '</td><td>'
                .. h(day(c.last_used_at)) .. '</td><td class="actions">'
                .. concat(actions) .. '</td></tr>'
        end
        out[#out + 1] = '</tbody></table>'
    end
    out[#out + 1] = '</section>'

    -- a generated secret
    local opts = {}
    for _, ty in ipairs({ "api_key", "client_secret", "hmac_secret" }) do
        opts[#opts + 1] = '<option value="' .. ty .. '">'
                          .. h(t(GENERATED[ty])) .. '</option>'
    end
    out[#out + 1] = concat({
        '<div class="grid"><section class="card"><h2>',
        h(t("Create a secret")), '</h2>',
        '<form method="post" action="', h(base), '/new">',
        html.csrf_field(),
        '<div class="field"><label for="type">', h(t("Type")), '</label>',
        '<select id="type" name="type">', concat(opts), '</select></div>',
        '<div class="field"><label for="expires">',
        h(t("Expires (optional)")),
        '</label><input id="expires" name="expires" type="date"></div>',
        '<button type="submit" class="btn primary" id="create-secret">',
        h(t("Create")), '</button></form></section>',

        '<section class="card"><h2>', h(t("Upload public keys")), '</h2>',
        '<form method="post" action="', h(base), '/keys">',
        html.csrf_field(),
        '<div class="field"><label for="keys">',
        h(t("A JWKS or a PEM public key")),
        '</label><textarea id="keys" name="keys" rows="6" ',
        'spellcheck="false" aria-describedby="keys-hint"></textarea>',
        '<p class="hint" id="keys-hint">',
        h(t("For private_key_jwt and request signatures. Only public keys: "
            .. "never a private one.")), '</p></div>',
        '<div class="field"><label for="keys-file">', h(t("or a file")),
        '</label>',
        '<input id="keys-file" type="file" data-fill="keys" ',
        'accept=".json,.pem,.jwks,application/json"></div>',
        '<div class="field"><label for="kid">',
        h(t("Key id (kid) for a PEM key, optional")),
        '</label><input id="kid" name="kid" maxlength="128"></div>',
        '<button type="submit" class="btn">', h(t("Upload")),
        '</button></form></section>',

        '<section class="card"><h2>', h(t("Register a client certificate")),
        '</h2>',
        '<form method="post" action="', h(base), '/certificate">',
        html.csrf_field(),
        '<div class="field"><label for="cert">',
        h(t("The certificate (PEM) or its SHA-256 fingerprint")),
        '</label><textarea id="cert" name="certificate" ',
        'rows="6" spellcheck="false"></textarea></div>',
        '<div class="field"><label for="cert-file">', h(t("or a file")),
        '</label>',
        '<input id="cert-file" type="file" data-fill="cert" ',
        'accept=".pem,.crt,.cer"></div>',
        '<button type="submit" class="btn">', h(t("Register")),
        '</button></form></section></div>',
    })

    return web.page({ title = t("Credentials"), nav = nav(org),
                      body = concat(out) })
end


local function shown_once(org, c)
    local rows = {}
    local function secret(id, label, value)
        rows[#rows + 1] = html.secret_field(id, label, value)
    end

    if c.type == "api_key" then
        secret("secret", "API key (X-API-Key)", c.api_key)
    elseif c.type == "client_secret" then
        secret("client-id", "client_id", c.client_id)
        secret("secret", "client_secret", c.client_secret)
    elseif c.type == "hmac_secret" then
        secret("secret", "HMAC secret (keyid=\"hmac\")", c.hmac_secret)
    end

    return web.page({ title = "New " .. (GENERATED[c.type] or c.type),
        nav = nav(org), body = concat({
        html.notice("warning", t("Copy it now: this is the only time it is "
                    .. "shown. The bank keeps only a hash of it.")),
        '<section class="card">', concat(rows),
        '<p class="meta">Credential <code>', h(c.id), '</code>',
        c.expires_at and c.expires_at ~= json.null
            and (', expires ' .. h(c.expires_at)) or '',
        '.</p><p><a class="btn primary" href="/portal/o/', h(org.id),
        '/credentials">', h(t("Done")), '</a></p></section>' }) })
end


local function create(conn, org, body, what)
    local res, err = admin.call("POST", "/admin/partners/" .. org.partner
                                .. "/credentials", body)
    if not res then
        return registry_down(err)
    end

    if res.status == 201 and res.json then
        store.audit(conn, who(), "credential.create", org.partner .. "/"
                    .. tostring(res.json.id))
        ngx.log(ngx.NOTICE, "openbank portal: ", who(), " made credential ",
                res.json.id, " (", body.type, ") of ", org.partner)
        if GENERATED[body.type] then
            return shown_once(org, res.json)
        end
        return _M.page(conn, org, html.notice("ok", what .. " registered ("
                       .. tostring(res.json.hint) .. ")."))
    end

    local detail = res.json and res.json.detail or ("status " .. res.status)
    ngx.status = 400
    return _M.page(conn, org, html.notice("error", what .. " refused: "
                                          .. detail))
end


local function keys(conn, org, args)
    local text = web.field(args, "keys")
    if not text then
        return _M.page(conn, org, html.notice("error", "Paste a JWKS or a "
                       .. "PEM public key, or choose its file."))
    end

    local jwks
    if str_find(text, "^%s*{") then
        local doc, err = json.decode(text)
        if type(doc) ~= "table" then
            return _M.page(conn, org, html.notice("error", "This JWKS is "
                           .. "not valid JSON: " .. tostring(err)))
        end
        jwks = doc
    else
        local kid = web.field(args, "kid")
        local jwk, err = pem.to_jwk(text, kid)
        if not jwk then
            return _M.page(conn, org, html.notice("error", err))
        end
        jwks = { keys = { jwk } }
    end

    return create(conn, org, { type = "jwks", jwks = jwks }, "The keys")
end


local function certificate(conn, org, args)
    local text = web.field(args, "certificate") or ""
    local fp = str_match(text, "^%s*(%x+)%s*$")
    if fp and #fp == 64 then
        return create(conn, org, { type = "certificate",
                                   sha256 = fp:lower() }, "The certificate")
    end
    fp = str_match(text, "^%s*([%x:]+)%s*$")
    if fp and #fp == 95 then
        return create(conn, org, { type = "certificate",
                                   sha256 = fp:gsub(":", ""):lower() },
                      "The certificate")
    end
    if not str_find(text, "-----BEGIN CERTIFICATE-----", 1, true) then
        return _M.page(conn, org, html.notice("error", "This is neither a "
            .. "PEM certificate (-----BEGIN CERTIFICATE-----) nor a SHA-256 "
            .. "fingerprint (64 hex digits)."))
    end
    return create(conn, org, { type = "certificate", certificate = text },
                  "The certificate")
end


local function new(conn, org, args)
    local ty = web.field(args, "type")
    if not GENERATED[ty] then
        return _M.page(conn, org, html.notice("error", "Choose an API key, "
                       .. "a client secret or an HMAC secret."))
    end

    local body = { type = ty }
    local exp = web.field(args, "expires")
    if exp then
        if not str_match(exp, "^%d%d%d%d%-%d%d%-%d%d$") then
            return _M.page(conn, org, html.notice("error", "The expiry is "
                           .. "not a date (YYYY-MM-DD)."))
        end
        body.expires_at = exp .. "T00:00:00Z"
    end

    return create(conn, org, body, GENERATED[ty])
end


local function delete(conn, org, id)
    local res, err = admin.call("DELETE", "/admin/partners/" .. org.partner
                                .. "/credentials/" .. id)
    if not res then
        return registry_down(err)
    end
    if res.status == 404 then
        return web.not_found()
    end
    if res.status ~= 204 then
        return registry_down(nil, res)
    end
    store.audit(conn, who(), "credential.delete", org.partner .. "/" .. id)
    ngx.log(ngx.NOTICE, "openbank portal: ", who(), " deleted credential ",
            id, " of ", org.partner)
    return web.redirect("/portal/o/" .. org.id .. "/credentials")
end


-- Rotation makes a new credential of the same type and keeps the old
-- one until it is deleted, so that clients can move without a refusal.
local function rotate(conn, org, id)
    local res, err = admin.call("GET", "/admin/partners/" .. org.partner
                                .. "/credentials")
    if not res or res.status ~= 200 or not res.json then
        return registry_down(err, res)
    end
    for _, c in ipairs(res.json.credentials or {}) do
        if c.id == id and GENERATED[c.type] then
            return create(conn, org, { type = c.type }, GENERATED[c.type])
        end
    end
    return web.not_found()
end


-- The fields of a POST to an organisation's page, its CSRF token
-- checked; anything else is answered here.
function _M.form(org, post)
    if not post then
        return web.not_found()
    end
    if org.status ~= "approved" then
        return web.not_found()
    end

    local args = web.form()
    if not args then
        return web.fail(413, "The form is too large.")
    end
    web.check_csrf(args)
    return args
end


function _M.action(conn, org, rest, post)
    local args = _M.form(org, post)

    if rest == "credentials/new" then
        return new(conn, org, args)
    elseif rest == "credentials/keys" then
        return keys(conn, org, args)
    elseif rest == "credentials/certificate" then
        return certificate(conn, org, args)
    end

    local id, what = str_match(rest, "^credentials/(cred_[%w]+)/(%a+)$")
    if what == "delete" then
        return delete(conn, org, id)
    elseif what == "rotate" then
        return rotate(conn, org, id)
    end

    return web.not_found()
end


return _M
