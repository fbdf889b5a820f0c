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
    ["Accounts, payments, verifications, escrow, collections and "
     .. "statements: sign up, get approved by the bank, make your keys and "
     .. "call the sandbox in minutes."] =
        "账户、支付、账户验证、资金托管、代收与对账单：注册、经银行审批、"
        .. "生成密钥，几分钟内即可调用沙箱。",
    ["Your credentials"] = "您的凭据",
    ["No credential yet: create one below."] = "还没有凭据：请在下方创建。",
    ["Create a secret"] = "创建密钥",
    ["Upload public keys"] = "上传公钥",
    ["Register a client certificate"] = "登记客户端证书",
    ["Type"] = "类型",
    ["Hint"] = "提示",
    ["Created"] = "创建时间",
    ["Expires"] = "到期",
    ["Last used"] = "最近使用",
    ["Expires (optional)"] = "到期日（可选）",
    ["A JWKS or a PEM public key"] = "JWKS 或 PEM 公钥",
    ["or a file"] = "或选择文件",
    ["Key id (kid) for a PEM key, optional"] = "PEM 公钥的密钥 ID（kid，可选）",
    ["The certificate (PEM) or its SHA-256 fingerprint"] =
        "证书（PEM）或其 SHA-256 指纹",
    ["For private_key_jwt and request signatures. Only public keys: never "
     .. "a private one."] =
        "用于 private_key_jwt 和请求签名。只上传公钥，切勿上传私钥。",
    ["API key"] = "API 密钥",
    ["Client secret"] = "客户端密钥",
    ["HMAC secret"] = "HMAC 密钥",
    ["Copy it now: this is the only time it is shown. The bank keeps "
     .. "only a hash of it."] =
        "请立即复制：它只显示这一次。银行只保存它的哈希值。",
    ["Done"] = "完成",
    ["%s is waiting for the bank's approval: its credentials, usage and "
     .. "try-it console open once it is approved."] =
        "%s 正在等待银行审批：审批通过后即可使用凭据、用量和试用控制台。",
    ["The bank did not approve %s."] = "银行未批准 %s。",
    ["Your webhook endpoints"] = "您的 Webhook 端点",
    ["Webhook endpoints"] = "Webhook 端点",
    ["No endpoint yet: add one below."] = "还没有端点：请在下方添加。",
    ["Events"] = "事件",
    ["enabled"] = "已启用",
    ["disabled"] = "已停用",
    ["failing since %s"] = "自 %s 起投递失败",
    ["Send a test"] = "发送测试",
    ["Add an endpoint"] = "添加端点",
    ["Add"] = "添加",
    ["https://, to a public address of yours."] =
        "必须是 https://，指向您的公网地址。",
    ["Event types or prefixes, separated by spaces: payment.*, "
     .. "escrow.released, or * for every event."] =
        "事件类型或前缀，以空格分隔：payment.*、escrow.released，"
        .. "或用 * 表示所有事件。",
    ["New webhook endpoint"] = "新的 Webhook 端点",
    ["Copy the signing secret now: this is the only time it is shown. "
     .. "Verify each delivery's signature with it."] =
        "请立即复制签名密钥：它只显示这一次。请用它验证每次投递的签名。",
    ["Signing secret"] = "签名密钥",
    ["Endpoint"] = "端点",
    ["Give the endpoint's URL."] = "请填写端点的 URL。",
    ["Give at least one event type, or *."] = "请至少填写一个事件类型，或 *。",
    ["The endpoint was not added: %s"] = "端点未添加：%s",
    ["A test ping (%s) is on its way to %s: see it arrive at your "
     .. "endpoint."] = "测试 ping（%s）正发往 %s：请在您的端点查看。",
    ["This gateway sends no event notifications."] = "此网关不发送事件通知。",
    ["Paste one of your API keys in Authorize (apiKey), open an "
     .. "operation, then Try it out: the calls go to the sandbox with "
     .. "your key."] =
        "在 Authorize（apiKey）中粘贴您的一个 API 密钥，展开一个接口，"
        .. "点击 Try it out：请求将使用您的密钥发送到沙箱。",
    ["The email or the password is wrong."] = "电子邮件或密码错误。",
    ["Too many failed sign-ins: try again in %s minutes."] =
        "登录失败次数过多：请在 %s 分钟后再试。",
    ["This form has expired or did not come from this site: reload the "
     .. "page and try again."] = "表单已过期或并非来自本站：请刷新页面后重试。",
    ["No organisation is waiting."] = "没有等待审批的机构。",
    ["%s organisations are waiting; the %s oldest are here."] =
        "共有 %s 家机构等待审批；这里列出最早的 %s 家。",
    ["Too many sign-ups from your address: try again in %s minutes."] =
        "来自您的地址的注册过多：请在 %s 分钟后再试。",
    ["The gateway keeps no usage history yet: the charts fill in once it "
     .. "does."] = "网关尚无用量历史：有数据后图表会自动显示。",
    ["Today (%s): %s calls."] = "今天（%s）：%s 次调用。",
    ["Not found"] = "未找到",
    ["There is no such page."] = "没有这个页面。",
    ["Sorry"] = "抱歉",
    ["Email confirmed"] = "邮箱已确认",
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


-- t(phrase) or t(format, ...): the phrase in the page's language; a
-- format's %s are filled after translation.
function _M.t(s, ...)
    if ngx.ctx.portal_lang == "zh" then
        s = ZH[s] or s
    end
    if select("#", ...) > 0 then
        return string.format(s, ...)
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


-- A secret shown once: read-only, with its copy button (portal.js).
function _M.secret_field(id, label, value)
    return '<div class="field"><label for="' .. h(id) .. '">' .. h(label)
           .. '</label><div class="secret"><input id="' .. h(id)
           .. '" readonly value="' .. h(value) .. '" spellcheck="false">'
           .. '<button type="button" class="btn" data-copy="' .. h(id)
           .. '" data-copied="' .. h(t("Copied")) .. '">' .. h(t("Copy"))
           .. '</button></div></div>'
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
