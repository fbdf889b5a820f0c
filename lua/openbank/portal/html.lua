-- The portal's pages: escaping, the layout, and the two languages.
--
-- Every page is built from escaped text: h() for text and attribute
-- values, and nothing else goes into the page from a request or from the
-- registry.  A page has no inline script and no style attribute (the CSP
-- of openbank.portal forbids both): behaviour is in static files under
-- /portal/static/, hooked on data- attributes.

local str_gsub = string.gsub
local str_find = string.find
local str_lower = string.lower
local concat = table.concat
local tostring = tostring


local _M = {}


local ESCAPES = {
    ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["'"] = "&#39;",
}

function _M.h(s)
    if s == nil then
        return ""
    end
    return (str_gsub(tostring(s), "[&<>\"']", ESCAPES))
end
local h = _M.h


-- Chinese for the words of the pages; English is the key.  A phrase
-- missing here is shown in English.
local ZH = {
    ["Developer portal"] = "开发者门户",
    ["Sign in"] = "登录",
    ["Sign out"] = "退出",
    ["Sign up"] = "注册",
    ["Create an account"] = "创建账户",
    ["Email"] = "电子邮件",
    ["Email or operator name"] = "电子邮件或操作员名称",
    ["Password"] = "密码",
    ["Organisation"] = "机构",
    ["At least 12 characters."] = "至少 12 个字符。",
    ["Overview"] = "概览",
    ["Credentials"] = "凭据",
    ["Try it"] = "试用",
    ["Usage"] = "用量",
    ["Webhooks"] = "Webhook",
    ["Pending organisations"] = "待审批机构",
    ["Partners"] = "合作方",
    ["Audit log"] = "审计日志",
    ["Approve"] = "批准",
    ["Reject"] = "拒绝",
    ["Suspend"] = "暂停",
    ["Reactivate"] = "恢复",
    ["Change plan"] = "变更套餐",
    ["Plan"] = "套餐",
    ["Scopes"] = "权限范围",
    ["Status"] = "状态",
    ["Delete"] = "删除",
    ["Rotate"] = "轮换",
    ["Copy"] = "复制",
    ["Copied"] = "已复制",
    ["Create"] = "创建",
    ["Upload"] = "上传",
    ["Register"] = "登记",
    ["Language"] = "语言",
    ["Calls per day and product, last 30 days"] =
        "近 30 天每日各产品调用量",
    ["Refusals by reason, last 30 days"] = "近 30 天按原因的拒绝次数",
    ["Quota use"] = "配额使用",
    ["Waiting for approval"] = "等待审批",
    ["Check your email"] = "请查收邮件",
    ["Open APIs for partners of the bank"] = "面向银行合作方的开放 API",
}


function _M.lang()
    local ck = ngx.var.cookie_obp_lang
    if ck == "zh" or ck == "en" then
        return ck
    end
    local al = str_lower(ngx.var.http_accept_language or "")
    local zh = str_find(al, "zh", 1, true)
    local en = str_find(al, "en", 1, true)
    if zh and (not en or zh < en) then
        return "zh"
    end
    return "en"
end


function _M.t(s)
    if ngx.ctx.portal_lang == "zh" then
        return ZH[s] or s
    end
    return s
end
local t = _M.t


function _M.csrf_field()
    local s = ngx.ctx.portal_session
    return '<input type="hidden" name="csrf" value="'
           .. h(s and s.csrf) .. '">'
end


-- A form with one button that POSTs to `action` (delete, suspend, ...).
function _M.button_form(action, label, class, hidden)
    local out = { '<form method="post" class="inline" action="', h(action),
                  '">', _M.csrf_field() }
    for name, value in pairs(hidden or {}) do
        out[#out + 1] = '<input type="hidden" name="' .. h(name)
                        .. '" value="' .. h(value) .. '">'
    end
    out[#out + 1] = '<button type="submit" class="' .. h(class or "btn")
                    .. '">' .. h(label) .. '</button></form>'
    return concat(out)
end


function _M.notice(kind, text)
    return '<p class="notice ' .. h(kind) .. '" role="'
           .. (kind == "error" and "alert" or "status") .. '">' .. h(text)
           .. '</p>'
end


-- The whole page: `o` has title, body (HTML), nav (list of {href, label,
-- current}), who (the signed-in name), scripts (static paths), styles.
function _M.page(o)
    local lang = ngx.ctx.portal_lang or "en"
    local out = {
        '<!DOCTYPE html>\n<html lang="', lang == "zh" and "zh-CN" or "en",
        '">\n<head>\n<meta charset="utf-8">\n',
        '<meta name="viewport" content="width=device-width, ',
        'initial-scale=1">\n<title>', h(o.title), ' · OpenBank ',
        h(t("Developer portal")), '</title>\n',
        '<link rel="stylesheet" href="/portal/static/portal.css">\n',
    }
    for _, s in ipairs(o.styles or {}) do
        out[#out + 1] = '<link rel="stylesheet" href="' .. h(s) .. '">\n'
    end
    out[#out + 1] = '</head>\n<body>\n<header class="top">\n'
        .. '<a class="brand" href="/portal/"><span class="logo" '
        .. 'aria-hidden="true">OB</span> OpenBank <span class="sub">'
        .. h(t("Developer portal")) .. '</span></a>\n<nav class="lang" '
        .. 'aria-label="' .. h(t("Language")) .. '">'
        .. '<a href="/portal/lang?to=en" lang="en" hreflang="en">English</a>'
        .. ' · <a href="/portal/lang?to=zh" lang="zh-CN" hreflang="zh">'
        .. '中文</a></nav>\n'

    if o.who then
        out[#out + 1] = '<div class="who"><span>' .. h(o.who) .. '</span>'
            .. _M.button_form("/portal/logout", t("Sign out"), "btn link")
            .. '</div>\n'
    end
    out[#out + 1] = '</header>\n'

    if o.nav then
        out[#out + 1] = '<nav class="tabs" aria-label="sections"><ul>'
        for _, item in ipairs(o.nav) do
            out[#out + 1] = '<li><a href="' .. h(item[1]) .. '"'
                .. (item[3] and ' aria-current="page"' or '') .. '>'
                .. h(item[2]) .. '</a></li>'
        end
        out[#out + 1] = '</ul></nav>\n'
    end

    out[#out + 1] = '<main id="main" class="' .. h(o.class or "")
                    .. '">\n<h1>' .. h(o.title) .. '</h1>\n'
    out[#out + 1] = o.body
    out[#out + 1] = '\n</main>\n<footer>OpenBank · '
        .. h(t("Open APIs for partners of the bank")) .. '</footer>\n'
    out[#out + 1] = '<script src="/portal/static/portal.js"></script>\n'
    for _, s in ipairs(o.scripts or {}) do
        out[#out + 1] = '<script src="' .. h(s) .. '"></script>\n'
    end
    out[#out + 1] = '</body>\n</html>\n'

    return concat(out)
end


return _M
