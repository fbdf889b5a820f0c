wrk.method = "POST"
wrk.path = "/v1/payments"
wrk.headers["X-API-Key"] = "@API_KEY@"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Idempotency-Key"] = "bench-replay-1"
wrk.body = '{"debtor_account":{"number":"6222020000000001"},"creditor_account":{"number":"6222020000000201","name":"Shanghai Supplier Co., Ltd.","bank_code":"OBKCNSH"},"amount":{"value":"1250.00","currency":"CNY"},"reference":"INV-2026-0042"}'
