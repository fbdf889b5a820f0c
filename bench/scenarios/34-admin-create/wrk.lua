-- A new partner name each request: the warm-up and the measured run are
-- two wrk processes, so names start with the process's start time (see
-- 61-idem/wrk.lua on why each request is one concatenation).
local prefix = string.format("c%08x%08x", os.time(), math.random(0, 2^30))
local head = "POST /admin/partners HTTP/1.1\r\n"
   .. "Host: 127.0.0.1:@PORT@\r\n"
   .. "Authorization: Bearer @ADMIN_KEY@\r\n"
   .. "Content-Type: application/json\r\n"
local format = string.format
local n = 0

function request()
   n = n + 1
   local body = format('{"name":"%s%010d","plan":"bench","scopes":["accounts"]}',
                       prefix, n)
   return head .. "Content-Length: " .. #body .. "\r\n\r\n" .. body
end
