#!/usr/bin/python3
# bench/lib/registry.py PORT ADMIN_KEY N: makes N registry partners with an
# API key each through the Admin API (8 keep-alive connections, so that
# the journal's group commit takes several changes a write) and prints the
# API key of the last one.
import http.client
import json
import sys
import threading

port, admin, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
head = {"Authorization": "Bearer " + admin, "Content-Type": "application/json"}
keys = {}
failed = []


def call(conn, path, body):
    conn.request("POST", path, json.dumps(body), head)
    res = conn.getresponse()
    data = res.read()
    if res.status != 201:
        raise RuntimeError("%s: %d %s" % (path, res.status, data[:200]))
    return json.loads(data)


def make(first, step):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    try:
        for i in range(first, n, step):
            name = "reg%06d" % i
            call(conn, "/admin/partners", {"name": name, "plan": "bench",
                                           "scopes": ["accounts"]})
            keys[i] = call(conn, "/admin/partners/%s/credentials" % name,
                           {"type": "api_key"})["api_key"]
    except Exception as e:
        failed.append(str(e))


threads = [threading.Thread(target=make, args=(t, 8)) for t in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
if failed:
    sys.exit(failed[0])
print(keys[n - 1])
