wrk.path = "/v1/accounts"
wrk.headers["X-API-Key"] = "@API_KEY@"
-- every answer is the open breaker's (bench/lib/check.lua)
expect_status = 503
