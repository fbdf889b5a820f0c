-- Pre-signed POSTs (see setup), each sent once: the warm-up and the
-- measured run are two wrk processes, so the position is kept in a file
-- (written every 1000 requests; a new run starts 1000 further on).  With
-- -t1 (the default) no nonce is sent twice.
local nonces, sigs = {}, {}
for line in io.lines("@DIR@/signed.txt") do
   local n, s = line:match("^(%S+) (%S+)$")
   nonces[#nonces + 1] = n
   sigs[#sigs + 1] = s
end
local i
local body = '@BODY@'
local prefix = 'sig=("@method" "@target-uri" "content-digest");created=@CREATED@;keyid="@KID@";nonce="'
local headers = {
   ["X-API-Key"] = "@API_KEY@",
   ["Content-Type"] = "application/json",
   ["Content-Digest"] = "@DIGEST@",
}
function request()
   if not i then
      local f = io.open("@DIR@/used", "r")
      i = f and (tonumber(f:read("*l")) or 0) + 1000 or 0
      if f then f:close() end
   end
   i = i + 1
   if i % 1000 == 0 then
      local f = io.open("@DIR@/used", "w")
      f:write(i, "\n")
      f:close()
   end
   if i > #nonces then i = 1 end
   headers["Signature-Input"] = prefix .. nonces[i] .. '"'
   headers["Signature"] = "sig=:" .. sigs[i] .. ":"
   return wrk.format("POST", "/v1/payments", headers, body)
end
