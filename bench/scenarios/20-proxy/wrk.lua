wrk.path = "/v1/accounts"
