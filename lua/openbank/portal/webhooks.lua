-- The organisation's webhooks page and its actions, on the Admin API's
-- webhook endpoints of its registry partner (docs/admin.md, "Webhook
-- endpoints"): the list, an endpoint added (its whsec_ secret on the one
-- page that answers it, Cache-Control: no-store, and nowhere else), a
-- test ping, a deletion.  Forms, CSRF and the organisation's isolation
-- are the credentials page's (openbank.portal.creds).

local admin = require "openbank.portal.admin"
local creds = require "openbank.portal.creds"
local html = require "openbank.portal.html"
local json = require "openbank.json"
local store = require "openbank.portal.store"
local web = require "openbank.portal.web"

local h = html.h
local t = html.t
local str_match = string.match
local str_gmatch = string.gmatch
local str_find = string.find
local concat = table.concat


local _M = {}


local function nav(org)
    return require("openbank.portal.app").org_nav(org, "webhooks")
end


local function who()
    return ngx.ctx.portal_session.email
end


local function path(org, rest)
    return "/admin/partners/" .. org.partner .. "/webhook-endpoints"
           .. (rest or "")
end


local function day(s)
    return s and s ~= json.null and str_match(s, "^(%d+%-%d+%-%d+)") or "—"
end


-- enabled, failing (deliveries fail, not yet disabled), or disabled
local function status_badge(ep)
    if ep.status == "disabled" then
        return '<span class="badge suspended">' .. h(t("disabled"))
               .. '</span>'
    end
    if ep.failing_since and ep.failing_since ~= json.null then
        return '<span class="badge failing" title="' .. h(ep.failing_since)
               .. '">' .. h(t("failing since %s", day(ep.failing_since)))
               .. '</span>'
    end
    return '<span class="badge">' .. h(t("enabled")) .. '</span>'
end


function _M.page(conn, org, message, status, values)
    if org.status ~= "approved" then
        return require("openbank.portal.app").waiting(org, "webhooks")
    end

    local res, err = admin.call("GET", path(org))
    if res and res.status == 404 and res.json
       and str_find(res.json.detail or "", "event notifications", 1, true)
    then
        return web.page({ title = t("Webhooks"), nav = nav(org),
            body = html.notice("info", t("This gateway sends no event "
                                         .. "notifications.")) })
    end
    if not res or res.status ~= 200 or not res.json then
        return creds.registry_down(err, res)
    end

    values = values or {}
    local base = "/portal/o/" .. org.id .. "/webhooks"
    local list = res.json.data or {}
    local out = { message or "" }

    out[#out + 1] = '<section class="card"><h2>'
                    .. h(t("Your webhook endpoints")) .. '</h2>'
    if #list == 0 then
        out[#out + 1] = '<p class="empty">'
            .. h(t("No endpoint yet: add one below.")) .. '</p>'
    else
        out[#out + 1] = '<table class="creds"><caption class="sr">'
            .. h(t("Webhook endpoints")) .. '</caption><thead><tr>'
            .. '<th scope="col">URL</th><th scope="col">' .. h(t("Events"))
            .. '</th><th scope="col">' .. h(t("Status")) .. '</th>'
            .. '<th scope="col">' .. h(t("Created")) .. '</th>'
            .. '<th scope="col"><span class="sr">Actions</span></th>'
            .. '</tr></thead><tbody>'
        for _, ep in ipairs(list) do
            local events = {}
            for _, e in ipairs(ep.events or {}) do
                events[#events + 1] = '<span class="chip">' .. h(e)
                                      .. '</span>'
            end
            out[#out + 1] = '<tr data-endpoint="' .. h(ep.id) .. '"><td>'
                .. '<code>' .. h(ep.url) .. '</code></td><td>'
                .. concat(events, " ") .. '</td><td>' .. status_badge(ep)
                .. '</td><td>' .. h(day(ep.created)) .. '</td>'
                .. '<td class="actions">'
                .. html.button_form(base .. "/" .. ep.id .. "/test",
                                    t("Send a test"), "btn small")
                .. html.button_form(base .. "/" .. ep.id .. "/delete",
                                    t("Delete"), "btn small danger")
                .. '</td></tr>'
        end
        out[#out + 1] = '</tbody></table>'
    end
    out[#out + 1] = '</section>'

    out[#out + 1] = concat({
        '<section class="card"><h2>', h(t("Add an endpoint")), '</h2>',
        '<form method="post" action="', h(base), '/new">',
        html.csrf_field(),
        '<div class="field"><label for="url">URL</label>',
        '<input id="url" name="url" type="url" required maxlength="2048" ',
        'placeholder="https://erp.example.com/hooks/openbank" value="',
        h(values.url), '" aria-describedby="url-hint">',
        '<p class="hint" id="url-hint">',
        h(t("https://, to a public address of yours.")), '</p></div>',
        '<div class="field"><label for="events">', h(t("Events")),
        '</label><input id="events" name="events" required value="',
        h(values.events or "*"), '" aria-describedby="events-hint">',
        '<p class="hint" id="events-hint">',
        h(t("Event types or prefixes, separated by spaces: payment.*, "
            .. "escrow.released, or * for every event.")), '</p></div>',
        '<button type="submit" class="btn primary" id="add-endpoint">',
        h(t("Add")), '</button></form></section>',
    })

    return web.page({ status = status, title = t("Webhooks"),
                      nav = nav(org), body = concat(out) })
end


local function shown_once(org, ep)
    return web.page({ title = t("New webhook endpoint"), nav = nav(org),
        body = concat({
        html.notice("warning", t("Copy the signing secret now: this is "
                    .. "the only time it is shown. Verify each delivery's "
                    .. "signature with it.")),
        '<section class="card">',
        html.secret_field("secret", t("Signing secret"), ep.secret),
        '<p class="meta">', h(t("Endpoint")), ' <code>', h(ep.id),
        '</code>: <code>', h(ep.url), '</code></p>',
        '<p><a class="btn primary" href="/portal/o/', h(org.id),
        '/webhooks">', h(t("Done")), '</a></p></section>' }) })
end


local function new(conn, org, args)
    local url = web.field(args, "url")
    local text = web.field(args, "events") or ""
    local values = { url = url, events = text }

    if not url then
        return _M.page(conn, org, html.notice("error",
                       t("Give the endpoint's URL.")), 400, values)
    end
    local events = {}
    for e in str_gmatch(text, "[^%s,]+") do
        events[#events + 1] = e
    end
    if #events == 0 then
        return _M.page(conn, org, html.notice("error",
                       t("Give at least one event type, or *.")), 400,
                       values)
    end

    local res, err = admin.call("POST", path(org),
                                { url = url, events = events })
    if not res then
        return creds.registry_down(err)
    end

    if res.status == 201 and res.json and res.json.secret then
        store.audit(conn, who(), "webhook_endpoint.create", org.partner
                    .. "/" .. tostring(res.json.id))
        ngx.log(ngx.NOTICE, "openbank portal: ", who(), " made webhook ",
                "endpoint ", res.json.id, " of ", org.partner)
        return shown_once(org, res.json)
    end

    if (res.status == 400 or res.status == 409) and res.json then
        return _M.page(conn, org, html.notice("error",
                       t("The endpoint was not added: %s",
                         tostring(res.json.detail))), res.status, values)
    end
    return creds.registry_down(nil, res)
end


local function test(conn, org, id)
    local res, err = admin.call("POST", path(org, "/" .. id .. "/test"))
    if not res then
        return creds.registry_down(err)
    end
    if res.status == 404 then
        return web.not_found()
    end
    if res.status ~= 202 or not res.json then
        return creds.registry_down(nil, res)
    end
    return _M.page(conn, org, html.notice("ok", t("A test ping (%s) is on "
                   .. "its way to %s: see it arrive at your endpoint.",
                   tostring(res.json.id), id)))
end


local function delete(conn, org, id)
    local res, err = admin.call("DELETE", path(org, "/" .. id))
    if not res then
        return creds.registry_down(err)
    end
    if res.status == 404 then
        return web.not_found()
    end
    if res.status ~= 204 then
        return creds.registry_down(nil, res)
    end
    store.audit(conn, who(), "webhook_endpoint.delete", org.partner .. "/"
                .. id)
    ngx.log(ngx.NOTICE, "openbank portal: ", who(), " deleted webhook ",
            "endpoint ", id, " of ", org.partner)
    return web.redirect("/portal/o/" .. org.id .. "/webhooks")
end


function _M.action(conn, org, rest, post)
    local args = creds.form(org, post)

    if rest == "webhooks/new" then
        return new(conn, org, args)
    end

    local id, what = str_match(rest, "^webhooks/(we_%x+)/(%a+)$")
    if id and #id == 19 and what == "test" then
        return test(conn, org, id)
    elseif id and #id == 19 and what == "delete" then
        return delete(conn, org, id)
    end

    return web.not_found()
end


return _M
