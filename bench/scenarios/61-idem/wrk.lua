wrk.method = "POST"
wrk.path = "/v1/payments"
wrk.headers["X-API-Key"] = "@API_KEY@"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"debtor_account":{"number":"6222020000000001"},"creditor_account":{"number":"6222020000000201","name":"Shanghai Supplier Co., Ltd.","bank_code":"OBKCNSH"},"amount":{"value":"1250.00","currency":"CNY"},"reference":"INV-2026-0042"}'

-- a new key per request: the warm-up and the measured run are two wrk
-- processes, so the key starts with the process's start time
local prefix = string.format("%x-%x-", os.time(), math.random(1, 2^30))
local n = 0

function request()
   n = n + 1
   wrk.headers["Idempotency-Key"] = prefix .. n
   return wrk.format()
end
