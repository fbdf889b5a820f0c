wrk.path = "/v1/accounts"
wrk.headers["Authorization"] = "Bearer @TOKEN@"
