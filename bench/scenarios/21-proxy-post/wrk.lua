-- The plain proxy with the POST the signed scenarios send (same body),
-- their baseline.
wrk.method = "POST"
wrk.path = "/v1/payments"
wrk.body = '{"amount":{"value":"1.00","currency":"CNY"},"reference":"bench"}'
wrk.headers["Content-Type"] = "application/json"
