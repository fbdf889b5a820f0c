-- Pre-signed POSTs (see setup), each sent once: the warm-up and the
-- measured run are two wrk processes, so the position is kept in a file
-- (written every 1000 requests; a new run starts 1000 further on).  With
-- -t1 (the default) no nonce is sent twice.
--
-- wrk's LuaJIT interns every string it makes, under a hash of the first
-- and last 8 bytes and of a few others at random places.  Two things made
-- wrk, not the gateway, set the rate:
-- * requests that differ only in their headers mostly share one hash,
--   and each new one was compared byte by byte with all the others still
--   in memory: each body ends with its own nonce instead;
-- * a table of a million lines made every string look-up and every
--   collection miss the cache: signed.txt is kept as one string, with
--   lines of one length (sigtool bench), found by arithmetic.
local f = assert(io.open("@DIR@/signed.txt", "r"))
local signed = f:read("*a")
f:close()
-- each line "nonce digest sig\n": where each field starts, from line 1
local reclen = signed:find("\n", 1, true)
local nlen = signed:find(" ", 1, true) - 1
local sigpos = signed:find(" ", nlen + 2, true) + 1
local count = #signed / reclen
local prefix, suffix = '@BODY_PREFIX@', '@BODY_SUFFIX@'
local head = "POST /v1/payments HTTP/1.1\r\n"
   .. "Host: 127.0.0.1:@PORT@\r\n"
   .. "X-API-Key: @API_KEY@\r\n"
   .. "Content-Type: application/json\r\n"
   .. "Content-Length: " .. #prefix + nlen + #suffix .. "\r\n"
   .. 'Signature-Input: sig=("@method" "@target-uri" "content-digest")'
   .. ';created=@CREATED@;keyid="@KID@";nonce="'

local i
function request()
   if not i then
      local u = io.open("@DIR@/used", "r")
      i = u and (tonumber(u:read("*l")) or 0) + 1000 or 0
      if u then u:close() end
   end
   i = i + 1
   if i % 1000 == 0 then
      local u = io.open("@DIR@/used", "w")
      u:write(i, "\n")
      u:close()
   end
   if i > count then i = 1 end
   local o = (i - 1) * reclen
   local nonce = signed:sub(o + 1, o + nlen)
   return head .. nonce
      .. '"\r\nContent-Digest: sha-256=:' .. signed:sub(o + nlen + 2, o + sigpos - 2)
      .. ':\r\nSignature: sig=:' .. signed:sub(o + sigpos, o + reclen - 1)
      .. ':\r\n\r\n' .. prefix .. nonce .. suffix
end
