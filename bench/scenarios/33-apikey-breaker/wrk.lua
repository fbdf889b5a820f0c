wrk.path = "/v1/accounts"
wrk.headers["X-API-Key"] = "@API_KEY@"
