#!/usr/bin/python3
# bench/cluster_sizing.py [N]: what cluster mode's keys cost in Redis
# (docs/cluster.md, "Sizing"), measured on a real redis-server.
#
# It starts its own redis-server (Debian's, cluster-enabled, every slot on
# it, no persistence) on a free loopback port in a temporary directory,
# writes N keys (default 20,000) of each kind the way cluster mode writes
# them, and prints for each kind MEMORY USAGE of one key and the growth of
# used_memory per key (which also counts the key's entries in the main and
# expires dictionaries and the cluster's slot bookkeeping), then what a
# partner costs.  Standard library only.
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
SERVER = os.environ.get("REDIS_SERVER", "/usr/bin/redis-server")


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


class Redis:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.f = self.s.makefile("rb")

    def reply(self):
        line = self.f.readline()
        if not line:
            raise EOFError("connection closed")
        t, v = line[:1], line[1:-2]
        if t == b"+":
            return v.decode()
        if t == b"-":
            raise RuntimeError(v.decode())
        if t == b":":
            return int(v)
        if t == b"$":
            n = int(v)
            if n < 0:
                return None
            data = self.f.read(n + 2)
            return data[:-2]
        if t == b"*":
            n = int(v)
            return None if n < 0 else [self.reply() for _ in range(n)]
        raise RuntimeError("bad reply %r" % line)

    def call(self, *args):
        self.s.sendall(encode(*args))
        return self.reply()

    def pipeline(self, commands):
        buf = b"".join(encode(*c) for c in commands)
        self.s.sendall(buf)
        for _ in commands:
            self.reply()

    def info(self, section):
        text = self.call("INFO", section).decode()
        return dict(l.split(":", 1) for l in text.splitlines() if ":" in l)


def free_port():
    while True:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        if port + 10000 < 65536:
            t = socket.socket()
            try:
                t.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                pass
            finally:
                t.close()


def used(r):
    return int(r.info("memory")["used_memory"])


DAY_MS = 86400 * 1000
NOW_MS = int(time.time() * 1000)

# one write of each kind, i the key's number; the keys as cluster mode
# names them: ob:TABLE:{PARTNER}REST (docs/cluster.md, "Keys")
ANSWER_HEADERS = (b"content-type: application/json\r\n"
                  b"location: /v1/payments/pay_0123456789abcdef\r\n"
                  b"x-request-id: 0f8e1d2c-3b4a-5968-7a8b-9c0d1e2f3a4b\r\n"
                  b"openbank-idempotent-replay: false\r\n")
ANSWER_BODY = b"x" * 1024


def nonce(i):
    return [("SET", "ob:nonce:{acme-erp}acme-ec:%032x" % i, "1", "NX",
             "PX", 300000)]


def jti(i):
    return [("SET", "ob:jti:{acme-erp}%036x" % i, "1", "NX",
             "PX", 120000)]


def gcra(i):
    # the theoretical arrival time, in microseconds
    return [("SET", "ob:rate:{partner%07d}" % i,
             str(NOW_MS * 1000 + 123456), "PX", 60000)]


def quota(i):
    # a day's counter of a product: the units taken by leases
    return [("INCRBY", "ob:quota:{partner%07d}payments:d20261207" % i, 1234),
            ("PEXPIREAT", "ob:quota:{partner%07d}payments:d20261207" % i,
             NOW_MS + 2 * DAY_MS)]


def lease(i):
    # the leases out of a counter: one field a gateway (three here)
    k = "ob:lease:{partner%07d}payments:d20261207" % i
    return [("HSET", k, "gw-a", 100, "gw-b", 100, "gw-c", 40),
            ("PEXPIREAT", k, NOW_MS + 2 * DAY_MS)]


def idempotency(i):
    k = "ob:idempotency:{acme-erp}pay-%032x" % i
    return [("HSET", k, "state", "done", "fp", os.urandom(32),
             "status", "201", "headers", ANSWER_HEADERS,
             "body", ANSWER_BODY, "at", NOW_MS),
            ("PEXPIRE", k, DAY_MS)]


def idempotency_blob(i):
    # the same record as one string: state, fingerprint, status, headers
    # and body, length-prefixed
    k = "ob:idempotency:{acme-erp}pay-%032x" % i
    v = (b"done\0" + os.urandom(32) + b"201\0" + ANSWER_HEADERS + b"\0"
         + ANSWER_BODY)
    return [("SET", k, v, "PX", DAY_MS)]


def revocation(i):
    return [("SET", "ob:revoked:{acme-erp}%036x" % i, "1", "PX", 300000)]


KINDS = [
    ("nonce (SET NX PX, 300 s)", nonce,
     "ob:nonce:{acme-erp}acme-ec:%032x" % 0),
    ("assertion jti (SET NX PX)", jti, "ob:jti:{acme-erp}%036x" % 0),
    ("revoked token jti (SET PX)", revocation,
     "ob:revoked:{acme-erp}%036x" % 0),
    ("GCRA rate state (SET PX)", gcra, "ob:rate:{partner%07d}" % 0),
    ("quota counter (INCRBY, PEXPIREAT)", quota,
     "ob:quota:{partner%07d}payments:d20261207" % 0),
    ("quota leases (HSET, 3 gateways)", lease,
     "ob:lease:{partner%07d}payments:d20261207" % 0),
    ("idempotency record, 1 KiB answer (HSET)", idempotency,
     "ob:idempotency:{acme-erp}pay-%032x" % 0),
    ("idempotency record, 1 KiB answer (one string)", idempotency_blob,
     "ob:idempotency:{acme-erp}pay-%032x" % 0),
]


def main():
    tmp = tempfile.mkdtemp(prefix="cluster-sizing-")
    port = free_port()
    conf = os.path.join(tmp, "redis.conf")
    with open(conf, "w") as f:
        f.write("port %d\nbind 127.0.0.1\ndir %s\nsave \"\"\n"
                "appendonly no\ncluster-enabled yes\n"
                "cluster-config-file %s/nodes.conf\n"
                "maxmemory-policy noeviction\nlogfile %s/redis.log\n"
                % (port, tmp, tmp, tmp))
    proc = subprocess.Popen([SERVER, conf])
    try:
        r = None
        for _ in range(200):
            try:
                r = Redis(port)
                r.call("PING")
                break
            except OSError:
                time.sleep(0.05)
        r.call("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        for _ in range(200):
            if b"cluster_state:ok" in r.call("CLUSTER", "INFO"):
                break
            time.sleep(0.05)
        version = r.info("server")["redis_version"]
        alloc = r.info("memory")["mem_allocator"]

        print("redis-server %s (%s), cluster-enabled, %d keys a kind\n"
              % (version, alloc, N))
        print("| kind | MEMORY USAGE of a key | used_memory growth per key |")
        print("|---|---:|---:|")
        per = {}
        for name, make, sample in KINDS:
            r.call("FLUSHALL")
            before = used(r)
            for start in range(0, N, 1000):
                cmds = []
                for i in range(start, min(N, start + 1000)):
                    cmds.extend(make(i))
                r.pipeline(cmds)
            after = used(r)
            usage = r.call("MEMORY", "USAGE", sample, "SAMPLES", 0)
            per[name] = (after - before) / N
            print("| %s | %d B | %.0f B |" % (name, usage, per[name]))

        # a partner of the sandbox plan: the rate and 7 products' counters
        # with their leases
        p = (per["GCRA rate state (SET PX)"]
             + 7 * (per["quota counter (INCRBY, PEXPIREAT)"]
                    + per["quota leases (HSET, 3 gateways)"]))
        print("\na partner (its rate, 7 products' day counters and their "
              "leases): %.0f B; 100,000 partners: %.1f MiB"
              % (p, p * 100000 / 1048576))
        n = per["nonce (SET NX PX, 300 s)"]
        print("nonces: 1,000 signed requests/s kept 300 s: %.1f MiB"
              % (n * 1000 * 300 / 1048576))
        for kind in ("HSET", "one string"):
            i = per["idempotency record, 1 KiB answer (%s)" % kind]
            print("idempotency records (%s): 100 payments/s kept 24 h: "
                  "%.2f GiB" % (kind, i * 100 * 86400 / 1073741824))
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(tmp, ignore_errors=True)


main()
