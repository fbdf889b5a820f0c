-- The bank's router: a table of routes compiled once, at load time.
--
--   local r = router.new({
--       { "GET",  "/v1/accounts",      accounts.list },
--       { "GET",  "/v1/payments/{id}", payments.get },
--   })
--   local handler, params, allow = r:match(method, path)
--
-- A path is literal except for `{name}`, which matches one non-empty path
-- segment and arrives in params.name.  Literal paths are found with one
-- table lookup; templated ones are tried in the order given, and a literal
-- path wins over a template that also matches it.
--
-- match() returns the handler and the parameters (nil for a literal path);
-- or nil, nil, allow when the path exists but not with that method (allow:
-- the value of the Allow header); or nil when there is no such path.

local re_match = ngx.re.match
local re_gsub = ngx.re.gsub
local re_find = ngx.re.find
local error = error
local setmetatable = setmetatable
local str_find = string.find
local tbl_concat = table.concat
local tbl_sort = table.sort
local tostring = tostring
local type = type
local pairs = pairs


local _M = {}


local router_mt = {}
router_mt.__index = router_mt


local METHODS = {
    GET = true, POST = true, PUT = true, PATCH = true, DELETE = true,
}


local function compile_template(path)
    -- Everything but {name} is literal; a literal regex character in an
    -- API path would be a surprise, so refuse it rather than escape it.
    if re_find(path, [=[[.*+?()\[\]^$|\\]]=], "jo") then
        error("route \"" .. path .. "\": regex characters in a path")
    end

    local regex, n, err = re_gsub(path, [[\{([a-z_][a-z0-9_]*)\}]],
                                  "(?<$1>[^/]+)", "jo")
    if not regex then
        error("route \"" .. path .. "\": " .. err)
    end

    if str_find(regex, "{", 1, true) or str_find(regex, "}", 1, true) then
        error("route \"" .. path .. "\": bad parameter name")
    end

    return "^" .. regex .. [[\z]]
end


-- routes: an array of { method, path, handler }.  Errors (at load time) on
-- an unknown method, a malformed path, or a method and path given twice.
function _M.new(routes)
    local exact = {}       -- path -> entry
    local templated = {}   -- array of entries, in the order given
    local by_path = {}     -- path -> entry

    for i = 1, #routes do
        local method, path, handler = routes[i][1], routes[i][2], routes[i][3]

        if not METHODS[method] then
            error("route " .. i .. ": unknown method \"" .. tostring(method)
                  .. "\"")
        end

        if type(path) ~= "string" or not re_find(path, [[^/\S*\z]], "jo") then
            error("route " .. i .. ": bad path \"" .. tostring(path) .. "\"")
        end

        if type(handler) ~= "function" then
            error("route " .. method .. " " .. path .. ": no handler")
        end

        local entry = by_path[path]
        if not entry then
            entry = { path = path, methods = {}, names = {} }
            by_path[path] = entry

            if str_find(path, "{", 1, true) then
                entry.regex = compile_template(path)
                templated[#templated + 1] = entry
            else
                exact[path] = entry
            end
        end

        if entry.methods[method] then
            error("route " .. method .. " " .. path .. " given twice")
        end

        entry.methods[method] = handler
        entry.names[#entry.names + 1] = method
    end

    for _, entry in pairs(by_path) do
        tbl_sort(entry.names)
        entry.allow = tbl_concat(entry.names, ", ")
        entry.names = nil
    end

    return setmetatable({ exact = exact, templated = templated }, router_mt)
end


function router_mt.match(self, method, path)
    local params
    local entry = self.exact[path]

    if not entry then
        local templated = self.templated
        for i = 1, #templated do
            local m = re_match(path, templated[i].regex, "jo")
            if m then
                entry = templated[i]
                params = m
                break
            end
        end

        if not entry then
            return nil
        end
    end

    local handler = entry.methods[method]
    if not handler then
        return nil, nil, entry.allow
    end

    return handler, params
end


return _M
