-- XML documents from untrusted partners, parsed safely: a small tree
-- builder on expat (Debian's lua-expat, `lxp`) with bounds.
--
--   local xml = require "openbank.xml"
--   local root, err, line, col = xml.parse(text)
--
-- root is the document element, a table
--
--   { ns = "urn:...", name = "Document", text = "...", line = 2,
--     [1] = child1, [2] = child2, ... }
--
-- (ns the namespace URI or nil, name the local name, text the element's
-- character data concatenated, the children in document order).  On a
-- refused or malformed document: nil, err, and the line and column expat
-- gives.  parse() never raises an error for any input.
--
-- Refused, whatever the rest of the document:
--
--   - a document type declaration (<!DOCTYPE ...>): with none there can be
--     no entity declaration, so no entity expansion (billion laughs) and
--     no external entity or DTD (SYSTEM "file:///etc/passwd") is ever read;
--     expat itself reads no file and fetches no URL
--   - more than MAX_BYTES bytes, more than MAX_DEPTH levels of elements,
--     more than MAX_ELEMENTS elements, more than MAX_ATTRS attributes on
--     an element, an element with more than MAX_TEXT bytes of text
--   - anything expat finds malformed (unclosed tags, bad characters, an
--     undeclared entity or namespace prefix, text after the root, ...)

local lxp = require "lxp"

local pcall = pcall
local tbl_concat = table.concat
local str_find = string.find
local str_sub = string.sub
local type = type


local _M = {}


local DEFAULTS = {
    max_bytes = 8 * 1024 * 1024,
    max_depth = 32,
    max_elements = 400000,
    max_attrs = 16,
    max_text = 4096,
}

_M.DEFAULTS = DEFAULTS

-- expat joins a namespace URI and a local name with this byte; no URI and
-- no XML name contains it
local SEP = "\1"


local function opt(opts, name)
    local v = opts and opts[name]
    if type(v) == "number" then
        return v
    end
    return DEFAULTS[name]
end


-- The state of the one parse running: expat calls back synchronously and a
-- callback never yields, so a worker runs one parse at a time and the
-- callbacks below are made once, not per document.
local st = {}


-- a refusal from inside a callback: expat is told to abort
-- (XML_StopParser), and the callbacks it may still make do nothing
local function stop(msg)
    if not st.why then
        st.why = msg
        st.parser:stop()
    end
end


local CALLBACKS = {
    StartDoctypeDecl = function()
        stop("a document type declaration (DOCTYPE) is not allowed")
    end,

    -- with no DOCTYPE these cannot happen; refused all the same
    EntityDecl = function()
        stop("an entity declaration is not allowed")
    end,

    StartElement = function(p, name, attrs)
        if st.why then
            return
        end

        local depth = st.depth + 1
        st.depth = depth
        if depth > st.max_depth then
            return stop("elements nest deeper than " .. st.max_depth
                        .. " levels")
        end

        local elements = st.elements + 1
        st.elements = elements
        if elements > st.max_elements then
            return stop("the document has more than " .. st.max_elements
                        .. " elements")
        end

        if attrs[st.max_attrs + 1] then
            return stop("an element has more than " .. st.max_attrs
                        .. " attributes")
        end

        local i = str_find(name, SEP, 1, true)
        local ns, lname
        if i then
            ns, lname = str_sub(name, 1, i - 1), str_sub(name, i + 1)
        else
            lname = name
        end

        local el = { ns = ns, name = lname, attrs = attrs, line = p:pos() }
        local stack = st.stack
        local parent = stack[depth - 1]
        if parent then
            parent[#parent + 1] = el
        else
            st.root = el
        end

        stack[depth] = el
        st.texts[depth] = nil
        st.tlens[depth] = 0
    end,

    EndElement = function()
        if st.why then
            return
        end

        local depth = st.depth
        local el = st.stack[depth]
        local t = st.texts[depth]
        el.text = t and tbl_concat(t) or ""

        st.stack[depth] = nil
        st.texts[depth] = nil
        st.depth = depth - 1
    end,

    CharacterData = function(_, data)
        local depth = st.depth
        if st.why or depth == 0 then
            return
        end

        -- the layout between child elements is neither counted nor kept
        if st.stack[depth][1] and not str_find(data, "[^ \t\r\n]") then
            return
        end

        local n = st.tlens[depth] + #data
        if n > st.max_text then
            return stop("an element has more than " .. st.max_text
                        .. " bytes of text")
        end
        st.tlens[depth] = n

        local t = st.texts[depth]
        if t then
            t[#t + 1] = data
        else
            st.texts[depth] = { data }
        end
    end,
}


local function run(parser, s)
    local r, m, l, c = parser:parse(s)
    if r then
        r, m, l, c = parser:parse()
    end
    return r, m, l, c
end


function _M.parse(s, opts)
    if type(s) ~= "string" then
        return nil, "the document is not a string", 0, 0
    end

    local max_bytes = opt(opts, "max_bytes")
    if #s > max_bytes then
        return nil, "the document is larger than " .. max_bytes
                    .. " bytes", 0, 0
    end

    local ok, parser = pcall(lxp.new, CALLBACKS, SEP)
    if not ok or not parser then
        return nil, "cannot create an XML parser", 0, 0
    end

    st = {
        parser = parser, stack = {}, texts = {}, tlens = {}, depth = 0,
        elements = 0, root = nil, why = nil,
        max_depth = opt(opts, "max_depth"),
        max_elements = opt(opts, "max_elements"),
        max_attrs = opt(opts, "max_attrs"),
        max_text = opt(opts, "max_text"),
    }

    local res, msg, line, col
    ok, res, msg, line, col = pcall(run, parser, s)

    local pline, pcol = 0, 0
    local ok2, l2, c2 = pcall(parser.pos, parser)
    if ok2 then
        pline, pcol = l2 or 0, c2 or 0
    end
    pcall(parser.close, parser)

    local root, why = st.root, st.why
    st = {}

    if why then
        return nil, why, pline, pcol
    end

    if not ok then
        return nil, "the document cannot be parsed", pline, pcol
    end

    if not res then
        return nil, msg or "malformed XML", line or pline, col or pcol
    end

    if not root then
        return nil, "the document has no root element", pline, pcol
    end

    return root
end


-- The children of `el` named `name` (in any namespace check done by the
-- caller), as a list.
function _M.children(el, name)
    local list = {}
    for i = 1, #el do
        if el[i].name == name then
            list[#list + 1] = el[i]
        end
    end
    return list
end


-- "&", "<", ">", '"' and "'" escaped, for text and attribute values.
local ESC = {
    ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;",
    ["'"] = "&apos;",
}

function _M.escape(s)
    return (s:gsub("[&<>\"']", ESC))
end


return _M
