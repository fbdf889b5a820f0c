-- The operators' pages: organisations waiting for approval, approval
-- (plan and scopes: the organisation becomes a registry partner) and
-- rejection, the approved partners (suspend, reactivate, change the plan)
-- and the audit log, the portal's and the Admin API's.

local admin = require "openbank.portal.admin"
local html = require "openbank.portal.html"
local store = require "openbank.portal.store"
local web = require "openbank.portal.web"

local ngx_var = ngx.var
local ngx_time = ngx.time
local h = html.h
local t = html.t
local str_match = string.match
local str_gsub = string.gsub
local str_lower = string.lower
local str_sub = string.sub
local concat = table.concat
local os_date = os.date


local _M = {}


local PAGE = 50


local function words(v, default)
    local out = {}
    for w in (v and v ~= "" and v or default):gmatch("[%w_.-]+") do
        out[#out + 1] = w
    end
    return out
end


local function plans()
    return words(ngx_var.openbank_portal_plans, "sandbox")
end


local function scopes()
    return words(ngx_var.openbank_portal_scopes,
                 "accounts payments verification escrow statements "
                 .. "collections")
end


local function nav(current)
    return {
        { "/portal/ops/", t("Pending organisations"), current == "pending" },
        { "/portal/ops/partners", t("Partners"), current == "partners" },
        { "/portal/ops/audit", t("Audit log"), current == "audit" },
    }
end


local function when(ts)
    return ts and os_date("!%Y-%m-%d %H:%M", ts) .. " UTC" or "—"
end


local function plan_select(id, current)
    local out = { '<select id="', id, '" name="plan">' }
    for _, p in ipairs(plans()) do
        out[#out + 1] = '<option' .. (p == current and ' selected' or '')
                        .. '>' .. h(p) .. '</option>'
    end
    out[#out + 1] = '</select>'
    return concat(out)
end


local function pending(conn, message)
    local rows = conn:query("SELECT o.id, o.name, o.created_at, u.email "
        .. "FROM orgs o JOIN users u ON u.org_id = o.id WHERE o.status = "
        .. "'pending' ORDER BY o.created_at, o.id LIMIT ?", PAGE) or {}

    local count = conn:first("SELECT COUNT(*) AS n FROM orgs WHERE status "
                             .. "= 'pending'")
    local out = { message or "" }
    if count and count.n > #rows then
        out[#out + 1] = '<p class="meta" id="pending-count">'
            .. h(t("%s organisations are waiting; the %s oldest are here.",
                   count.n, #rows)) .. '</p>'
    end
    if #rows == 0 then
        out[#out + 1] = '<p class="empty card">'
                        .. h(t("No organisation is waiting.")) .. '</p>'
    end

    for _, o in ipairs(rows) do
        local base = "/portal/ops/orgs/" .. o.id
        local boxes = {}
        for i, sc in ipairs(scopes()) do
            local id = o.id .. "-scope-" .. i
            boxes[#boxes + 1] = '<label class="check" for="' .. id .. '">'
                .. '<input type="checkbox" id="' .. id .. '" name="scopes" '
                .. 'value="' .. h(sc) .. '" checked> ' .. h(sc) .. '</label>'
        end
        out[#out + 1] = concat({
            '<section class="card org" data-org="', h(o.id), '"><h2>',
            h(o.name), '</h2><p class="meta">', h(o.email), ' · signed up ',
            h(when(o.created_at)), '</p>',
            '<form method="post" action="', h(base), '/approve">',
            html.csrf_field(),
            '<div class="field"><label for="', h(o.id), '-plan">',
            h(t("Plan")), '</label>', plan_select(o.id .. "-plan"),
            '</div><fieldset><legend>', h(t("Scopes")), '</legend>',
            concat(boxes), '</fieldset>',
            '<button type="submit" class="btn primary">', h(t("Approve")),
            '</button></form>',
            html.button_form(base .. "/reject", t("Reject"), "btn danger"),
            '</section>' })
    end

    return web.page({ title = t("Pending organisations"),
                      nav = nav("pending"), body = concat(out) })
end


-- a registry name for the organisation: its name's letters and digits,
-- and its id's when that name is taken
local function partner_name(org)
    local base = str_gsub(str_lower(org.name), "[^a-z0-9]+", "-")
    base = str_gsub(base, "^-+", "")
    base = str_sub(str_gsub(base, "-+$", ""), 1, 40)
    if base == "" then
        base = "org"
    end
    return base, base .. "-" .. str_sub(org.id, 5, 12)
end


local function approve(conn, id, args)
    local org = conn:first("SELECT id, name, status FROM orgs WHERE id = ? "
                           .. "AND status = 'pending'", id)
    if not org then
        return web.not_found()
    end

    local plan = web.field(args, "plan")
    local chosen = args.scopes
    if type(chosen) == "string" then
        chosen = { chosen }
    end
    if not plan or type(chosen) ~= "table" or #chosen == 0 then
        return pending(conn, html.notice("error", "Choose a plan and at "
                                         .. "least one scope."))
    end

    local res, err
    for _, name in ipairs({ partner_name(org) }) do
        res, err = admin.call("POST", "/admin/partners",
                              { name = name, plan = plan, scopes = chosen })
        if not res or res.status ~= 409 then
            if res and res.status == 201 then
                org.partner = name
            end
            break
        end
    end

    if not res then
        ngx.log(ngx.ERR, "openbank portal: admin API: ", err)
        return web.fail(502, "The gateway's registry does not answer.")
    end
    if res.status ~= 201 then
        return pending(conn, html.notice("error", org.name .. " was not "
            .. "approved: " .. (res.json and res.json.detail
                                or ("status " .. res.status))))
    end

    local s = ngx.ctx.portal_session
    conn:run("UPDATE orgs SET status = 'approved', partner = ?, plan = ?, "
             .. "decided_at = ?, decided_by = ? WHERE id = ?", org.partner,
             plan, ngx_time(), s.operator, id)
    store.audit(conn, s.operator, "org.approve", id .. " as " .. org.partner
                .. " (" .. plan .. ": " .. concat(chosen, " ") .. ")")
    ngx.log(ngx.NOTICE, "openbank portal: ", s.operator, " approved ", id,
            " as partner ", org.partner)

    return pending(conn, html.notice("ok", org.name .. " is approved: "
                                     .. "partner " .. org.partner .. "."))
end


local function reject(conn, id)
    local org = conn:first("SELECT id, name FROM orgs WHERE id = ? AND "
                           .. "status = 'pending'", id)
    if not org then
        return web.not_found()
    end
    local s = ngx.ctx.portal_session
    conn:run("UPDATE orgs SET status = 'rejected', decided_at = ?, "
             .. "decided_by = ? WHERE id = ?", ngx_time(), s.operator, id)
    store.audit(conn, s.operator, "org.reject", id)
    return pending(conn, html.notice("ok", org.name .. " is rejected."))
end


local function partners(conn, message)
    local after = ngx_var.arg_after or ""
    local rows = conn:query("SELECT id, name, partner, plan, decided_at "
        .. "FROM orgs WHERE status = 'approved' AND partner > ? ORDER BY "
        .. "partner LIMIT ?", after, PAGE + 1) or {}

    local out = { message or "",
        '<table class="partners"><thead><tr><th scope="col">',
        h(t("Organisation")), '</th><th scope="col">Partner</th>',
        '<th scope="col">', h(t("Status")), '</th><th scope="col">',
        h(t("Plan")), '</th><th scope="col"><span class="sr">Actions',
        '</span></th></tr></thead><tbody>' }

    -- the registry's view of them: one page of the Admin API's list from
    -- the first of them on (both are in name order), and a GET for any
    -- that other partners of the registry pushed off that page
    local known = {}
    if #rows > 0 then
        local first = rows[1].partner
        local res = admin.call("GET", "/admin/partners?limit=1000&after="
                               .. ngx.escape_uri(str_sub(first, 1, -2)))
        for _, p in ipairs(res and res.status == 200 and res.json
                           and res.json.partners or {}) do
            known[p.name] = p
        end
    end

    for i = 1, math.min(#rows, PAGE) do
        local o = rows[i]
        local p = known[o.partner]
        if not p then
            local res = admin.call("GET", "/admin/partners/" .. o.partner)
            p = res and res.status == 200 and res.json or {}
        end
        local status = p.status or "unknown"
        local base = "/portal/ops/partners/" .. o.id
        out[#out + 1] = concat({
            '<tr data-partner="', h(o.partner), '"><td>', h(o.name),
            '</td><td><code>', h(o.partner), '</code></td><td><span ',
            'class="badge ', h(status), '">', h(status), '</span></td><td>',
            '<form method="post" class="inline" action="', h(base),
            '/plan">', html.csrf_field(), '<label class="sr" for="plan-',
            h(o.id), '">', h(t("Plan")), '</label>',
            plan_select("plan-" .. o.id, p.plan or o.plan),
            ' <button type="submit" class="btn small">', h(t("Change plan")),
            '</button></form></td><td>',
            status == "suspended"
                and html.button_form(base .. "/status", t("Reactivate"),
                                     "btn small", { status = "active" })
                or html.button_form(base .. "/status", t("Suspend"),
                                    "btn small danger",
                                    { status = "suspended" }),
            '</td></tr>' })
    end
    out[#out + 1] = '</tbody></table>'
    if #rows > PAGE then
        out[#out + 1] = '<p><a href="/portal/ops/partners?after='
                        .. ngx.escape_uri(rows[PAGE].partner)
                        .. '">Next page</a></p>'
    end

    return web.page({ title = t("Partners"), nav = nav("partners"),
                      body = concat(out) })
end


local function patch(conn, id, args, what)
    local org = conn:first("SELECT id, name, partner FROM orgs WHERE id = ? "
                           .. "AND status = 'approved'", id)
    if not org then
        return web.not_found()
    end

    local body, action
    if what == "plan" then
        local plan = web.field(args, "plan")
        if not plan then
            return partners(conn, html.notice("error", "Choose a plan."))
        end
        body, action = { plan = plan }, "partner.plan"
    else
        local st = web.field(args, "status")
        if st ~= "active" and st ~= "suspended" then
            return web.not_found()
        end
        body = { status = st }
        action = st == "active" and "partner.activate" or "partner.suspend"
    end

    local res, err = admin.call("PATCH", "/admin/partners/" .. org.partner,
                                body)
    if not res then
        ngx.log(ngx.ERR, "openbank portal: admin API: ", err)
        return web.fail(502, "The gateway's registry does not answer.")
    end
    if res.status ~= 200 then
        return partners(conn, html.notice("error", org.name .. ": "
            .. (res.json and res.json.detail or ("status " .. res.status))))
    end

    local s = ngx.ctx.portal_session
    if body.plan then
        conn:run("UPDATE orgs SET plan = ? WHERE id = ?", body.plan, id)
    end
    store.audit(conn, s.operator, action, org.partner
                .. (body.plan and (" " .. body.plan) or ""))
    ngx.log(ngx.NOTICE, "openbank portal: ", s.operator, " ", action, " ",
            org.partner)
    return partners(conn, html.notice("ok", org.name .. ": done."))
end


local function audit(conn)
    local before = tonumber(ngx_var.arg_before) or 2 ^ 52
    local rows = conn:query("SELECT id, time, actor, action, target FROM "
        .. "audit WHERE id < ? ORDER BY id DESC LIMIT ?", before, PAGE) or {}

    local out = { '<section class="card"><h2>Portal</h2>',
        '<table class="audit"><thead><tr><th scope="col">Time</th>',
        '<th scope="col">Who</th><th scope="col">What</th>',
        '<th scope="col">Target</th></tr></thead><tbody>' }
    for _, e in ipairs(rows) do
        out[#out + 1] = '<tr><td>' .. h(when(e.time)) .. '</td><td>'
            .. h(e.actor) .. '</td><td><code>' .. h(e.action)
            .. '</code></td><td>' .. h(e.target) .. '</td></tr>'
    end
    out[#out + 1] = '</tbody></table>'
    if #rows == PAGE then
        out[#out + 1] = '<p><a href="/portal/ops/audit?before='
                        .. rows[PAGE].id .. '">Older</a></p>'
    end
    out[#out + 1] = '</section>'

    -- the Admin API's own log, oldest first, paged with after=
    local after = str_match(ngx_var.arg_admin_after or "", "^evt_%x+$")
    local res = admin.call("GET", "/admin/audit?limit=" .. PAGE
                           .. (after and ("&after=" .. after) or ""))
    out[#out + 1] = '<section class="card"><h2>Gateway registry (Admin '
                    .. 'API)</h2>'
    if res and res.status == 200 and res.json then
        out[#out + 1] = '<table class="audit"><thead><tr><th scope="col">'
            .. 'Time</th><th scope="col">Who</th><th scope="col">What</th>'
            .. '<th scope="col">Target</th></tr></thead><tbody>'
        for _, e in ipairs(res.json.events or {}) do
            out[#out + 1] = '<tr><td>' .. h(e.time) .. '</td><td>'
                .. h(e.actor) .. '</td><td><code>' .. h(e.action)
                .. '</code></td><td>' .. h(e.target) .. '</td></tr>'
        end
        out[#out + 1] = '</tbody></table>'
        local nxt = res.json.next
        if type(nxt) == "string" then
            out[#out + 1] = '<p><a href="/portal/ops/audit?admin_after='
                            .. h(ngx.escape_uri(nxt)) .. '">Later</a></p>'
        end
    else
        out[#out + 1] = html.notice("error", "The Admin API's audit log "
                                    .. "cannot be read now.")
    end
    out[#out + 1] = '</section>'

    return web.page({ title = t("Audit log"), nav = nav("audit"),
                      body = concat(out) })
end


function _M.handle(conn, uri, post)
    local s = ngx.ctx.portal_session
    if not s or not (s.operator or s.user_id) then
        return web.redirect("/portal/login")
    end
    if not s.operator then
        return web.not_found()
    end

    if not post then
        if uri == "/portal/ops/" then
            return pending(conn)
        elseif uri == "/portal/ops/partners" then
            return partners(conn)
        elseif uri == "/portal/ops/audit" then
            return audit(conn)
        end
        return web.not_found()
    end

    local args = web.form()
    web.check_csrf(args)

    local id, what = str_match(uri, "^/portal/ops/orgs/(org_%x+)/(%a+)$")
    if what == "approve" then
        return approve(conn, id, args)
    elseif what == "reject" then
        return reject(conn, id)
    end

    id, what = str_match(uri, "^/portal/ops/partners/(org_%x+)/(%a+)$")
    if what == "plan" or what == "status" then
        return patch(conn, id, args, what)
    end

    return web.not_found()
end


return _M
