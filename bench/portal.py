#!/usr/bin/python3
# bench/portal.py PORT DIR [N]: the developer portal's page times with N
# organisations (default 10,000), against a gateway running on
# conf/nginx.conf (make run) whose prefix is DIR.
#
# It makes N registry partners through the Admin API (8 connections), N
# approved organisations of them in the portal's database (directly: N
# sign-ups would be N scrypt hashes) and as many pending ones, calls of 5
# products today for the last one (the usage history is the gateway's,
# fed by real calls), then prints the median and the worst of 20 loads of each page, as the
# server's $request_time of the access log would (curl's time to the last
# byte on the loopback).
import http.client
import json
import os
import re
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

port, root = int(sys.argv[1]), sys.argv[2]
n = int(sys.argv[3]) if len(sys.argv) > 3 else 10000
creds = json.load(open(os.path.join(root, "conf/demo/credentials.json")))
head = {"Authorization": "Bearer " + creds["admin_key"],
        "Content-Type": "application/json"}
db = os.path.join(root, "run/state/portal.sqlite3")


def make(first, step):
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for i in range(first, n, step):
        conn.request("POST", "/admin/partners", json.dumps(
            {"name": "perf%06d" % i, "plan": "sandbox",
             "scopes": ["accounts"]}), head)
        r = conn.getresponse()
        r.read()
        if r.status not in (201, 409):
            raise SystemExit("partner %d: %d" % (i, r.status))


t0 = time.time()
threads = [threading.Thread(target=make, args=(t, 8)) for t in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print("%d registry partners in %.1f s" % (n, time.time() - t0))

# the portal's database exists once a page was served
subprocess.run(["curl", "-s", "-o", "/dev/null",
                "http://127.0.0.1:%d/portal/login" % port])
c = sqlite3.connect(db, timeout=30)
now = int(time.time())
with c:
    for i in range(n):
        for status, partner in (("approved", "perf%06d" % i),
                                ("pending", None)):
            oid = "org_%016x" % (i * 2 + (status == "pending"))
            c.execute("INSERT OR IGNORE INTO orgs (id, name, status, partner, "
                      "plan, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                      (oid, "Perf %d" % i, status, partner,
                       partner and "sandbox", now))
            c.execute("INSERT OR IGNORE INTO users (email, org_id, password, "
                      "verified, created_at) VALUES (?, ?, 'x', 1, ?)",
                      ("%s@perf.example" % oid, oid, now))
print("%d approved and %d pending organisations" % (n, n))


class Client:
    def __init__(self):
        self.cookie = None

    def req(self, method, path, form=None):
        conn = http.client.HTTPConnection("127.0.0.1", port)
        h = {}
        if self.cookie:
            h["Cookie"] = self.cookie
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            h["Content-Type"] = "application/x-www-form-urlencoded"
        t = time.perf_counter()
        conn.request(method, path, body, h)
        r = conn.getresponse()
        data = r.read().decode()
        dt = time.perf_counter() - t
        c = r.getheader("Set-Cookie")
        if c and c.startswith("obp_session="):
            self.cookie = c.split(";")[0]
        conn.close()
        return r.status, data, dt


def login(name, password):
    cl = Client()
    _, page, _ = cl.req("GET", "/portal/login")
    tok = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
    st, _, _ = cl.req("POST", "/portal/login", {"csrf": tok, "login": name,
                                                "password": password})
    assert st == 303, st
    return cl


def timing(cl, path, label):
    times = []
    for _ in range(20):
        st, _, dt = cl.req("GET", path)
        assert st == 200, (path, st)
        times.append(dt * 1000)
    times.sort()
    print("| %s | %.1f | %.1f |" % (label, times[10], times[-1]))


op = login(creds["portal_admin"]["name"], creds["portal_admin"]["password"])

# a developer of the last approved organisation, with a known password
dev_org = "org_%016x" % ((n - 1) * 2)
pw = "perf password 0123"
line = subprocess.run([os.path.join(root, "portal/mkoperator"), "x"],
                      input=pw + "\n", capture_output=True,
                      text=True).stdout.strip().split(":", 1)[1]
with c:
    c.execute("UPDATE users SET password = ? WHERE org_id = ?", (line,
                                                                   dev_org))
dev = login("%s@perf.example" % dev_org, pw)

# a key and calls of 5 products today, for the usage page
conn = http.client.HTTPConnection("127.0.0.1", port)
conn.request("PATCH", "/admin/partners/perf%06d" % (n - 1), json.dumps(
    {"scopes": ["accounts", "payments", "verification", "escrow",
                "statements"]}), head)
conn.getresponse().read()
conn.request("POST", "/admin/partners/perf%06d/credentials" % (n - 1),
             json.dumps({"type": "api_key"}), head)
key = json.loads(conn.getresponse().read())["api_key"]
for path in ("/v1/accounts", "/v1/payments", "/v1/escrows",
             "/v1/statements", "/v1/account-verifications"):
    for _ in range(3):
        conn.request("GET", path, headers={"X-API-Key": key})
        conn.getresponse().read()

print("\n| page (%d organisations) | median ms | worst ms |" % n)
print("|---|---|---|")
timing(Client(), "/portal/login", "sign-in")
timing(op, "/portal/ops/", "operator: pending (50 of %d)" % n)
timing(op, "/portal/ops/partners", "operator: partners (50 of %d)" % n)
timing(op, "/portal/ops/audit", "operator: audit log")
timing(dev, "/portal/o/%s/" % dev_org, "developer: overview")
timing(dev, "/portal/o/%s/credentials" % dev_org, "developer: credentials")
timing(dev, "/portal/o/%s/try" % dev_org, "developer: try it")
timing(dev, "/portal/o/%s/usage" % dev_org, "developer: usage (5 products)")
