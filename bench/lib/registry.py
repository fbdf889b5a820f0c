#!/usr/bin/python3
# bench/lib/registry.py PORT ADMIN_KEY N: makes N registry partners with an
# API key each through the Admin API (one keep-alive connection) and
# prints the API key of the last one.
import http.client
import json
import sys

port, admin, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
conn = http.client.HTTPConnection("127.0.0.1", port)
head = {"Authorization": "Bearer " + admin, "Content-Type": "application/json"}


def call(path, body):
    conn.request("POST", path, json.dumps(body), head)
    res = conn.getresponse()
    data = res.read()
    if res.status != 201:
        sys.exit("%s: %d %s" % (path, res.status, data[:200]))
    return json.loads(data)


key = None
for i in range(n):
    name = "reg%06d" % i
    call("/admin/partners", {"name": name, "plan": "bench",
                             "scopes": ["accounts"]})
    key = call("/admin/partners/%s/credentials" % name,
               {"type": "api_key"})["api_key"]
print(key)
