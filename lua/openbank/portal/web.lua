-- What every portal page does with the request and the response: the
-- security headers, the session cookie, forms and their CSRF token, and
-- the answers (a page, a redirect, a refusal).

local crypto = require "openbank.portal.crypto"
local html = require "openbank.portal.html"

local ngx_header = ngx.header
local ngx_var = ngx.var
local ngx_say = ngx.say
local ngx_exit = ngx.exit
local type = type


local _M = {}


-- Nothing but the portal's own files: no inline script, no style
-- attribute, no frame, no form to elsewhere.  Swagger UI's page allows the
-- style attributes it sets (style_attr).
local CSP = "default-src 'none'; script-src 'self'; style-src 'self'; "
            .. "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
            .. "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
local CSP_STYLE_ATTR = CSP .. "; style-src-attr 'unsafe-inline'"

_M.COOKIE = "obp_session"


function _M.headers(style_attr)
    ngx_header["Content-Security-Policy"] = style_attr and CSP_STYLE_ATTR
                                            or CSP
    ngx_header["X-Content-Type-Options"] = "nosniff"
    ngx_header["X-Frame-Options"] = "DENY"
    ngx_header["Referrer-Policy"] = "no-referrer"
    ngx_header["Cache-Control"] = "no-store"
end


function _M.secure()
    return ngx_var.https == "on"
end


function _M.set_cookie(name, value, max_age)
    local c = name .. "=" .. value .. "; Path=/portal/; HttpOnly; "
              .. "SameSite=Strict"
    if max_age then
        c = c .. "; Max-Age=" .. max_age
    end
    if _M.secure() then
        c = c .. "; Secure"
    end

    local prev = ngx_header["Set-Cookie"]
    if prev == nil then
        ngx_header["Set-Cookie"] = c
    elseif type(prev) == "table" then
        prev[#prev + 1] = c
        ngx_header["Set-Cookie"] = prev
    else
        ngx_header["Set-Cookie"] = { prev, c }
    end
end


function _M.send(status, body, ctype)
    ngx.status = status
    ngx_header["Content-Type"] = ctype or "text/html; charset=utf-8"
    ngx_say(body)
    return ngx_exit(ngx.HTTP_OK)
end


-- o as html.page()'s, plus status
function _M.page(o)
    local s = ngx.ctx.portal_session
    if s and not o.who then
        o.who = s.who
    end
    return _M.send(o.status or 200, html.page(o))
end


function _M.redirect(to)
    ngx_header["Location"] = to
    ngx.status = 303
    return ngx_exit(303)
end


function _M.not_found()
    return _M.page({ status = 404, title = html.t("Not found"),
                     body = html.notice("error", html.t("There is no such page.")) })
end


function _M.fail(status, text)
    return _M.page({ status = status, title = html.t("Sorry"),
                     body = html.notice("error", text) })
end


-- The form's fields; repeated names (checkboxes) are lists.
function _M.form()
    ngx.req.read_body()
    local args, err = ngx.req.get_post_args(100)
    if not args then
        return {}, err
    end
    if err == "truncated" then
        return nil, "truncated"
    end
    return args
end


-- The one value of a field, or nil (absent, empty, or sent twice).
function _M.field(args, name)
    local v = args[name]
    if type(v) ~= "string" or v == "" then
        return nil
    end
    return v
end


-- Refuses a POST whose csrf field is not the session's token: a form
-- from another site, or one older than the session.
function _M.check_csrf(args)
    local s = ngx.ctx.portal_session
    local got = args and _M.field(args, "csrf")
    if not s or not got or not crypto.equal(got, s.csrf) then
        return _M.fail(403, html.t("This form has expired or did not come "
                       .. "from this site: reload the page and try again."))
    end
    return true
end


return _M
