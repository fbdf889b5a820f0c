-- A new Idempotency-Key per request: the warm-up and the measured run are
-- two wrk processes, so the key starts with the process's start time.
--
-- wrk's LuaJIT interns every string it makes, under a hash of its first
-- and last 8 bytes and of a few others (see bench/lib/presigned.lua):
-- requests made by wrk.format() that differ only in a header mostly share
-- one hash, and each new one is compared byte by byte with the others
-- still in memory.  So each request is one concatenation whose body ends
-- with its key (in "reference"), keys of one length.
local key_prefix = string.format("%08x-%08x-", os.time(),
                                 math.random(0, 2^30))
local key_len = #key_prefix + 10
local body_prefix = '{"debtor_account":{"number":"6222020000000001"},'
   .. '"creditor_account":{"number":"6222020000000201",'
   .. '"name":"Shanghai Supplier Co., Ltd.","bank_code":"OBKCNSH"},'
   .. '"amount":{"value":"1250.00","currency":"CNY"},"reference":"'
local body_suffix = '"}'
local head = "POST /v1/payments HTTP/1.1\r\n"
   .. "Host: 127.0.0.1:@PORT@\r\n"
   .. "X-API-Key: @API_KEY@\r\n"
   .. "Content-Type: application/json\r\n"
   .. "Content-Length: " .. #body_prefix + key_len + #body_suffix .. "\r\n"
   .. "Idempotency-Key: "
local format = string.format
local n = 0

function request()
   n = n + 1
   local key = format("%s%010d", key_prefix, n)
   return head .. key .. "\r\n\r\n" .. body_prefix .. key .. body_suffix
end
