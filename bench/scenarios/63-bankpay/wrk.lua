wrk.method = "POST"
wrk.path = "/v1/payments"
wrk.headers["X-OpenBank-Partner"] = "demo"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"debtor_account":{"number":"6222020000000001"},"creditor_account":{"number":"6222020000000201","name":"Shanghai Supplier Co., Ltd.","bank_code":"OBKCNSH"},"amount":{"value":"0.01","currency":"CNY"},"reference":"bench"}'
