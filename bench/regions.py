#!/usr/bin/python3
# bench/regions.py: two regions active-active (异地多活), on paper
# (docs/cluster.md, "Two regions").  Each region runs its gateways on its
# own Redis Cluster; one partner's quota, rate, nonces, Idempotency-Keys
# and a revocation are followed second by second through an hour in which
# the partner's traffic moves from one region to the other and the link
# between the regions is cut for 20 minutes.  Standard library only,
# deterministic (a fixed seed).
#
# The model (what the doc describes):
# - quota Q for the hour, split into two regional allotments; inside a
#   region its gateways take leases (blocks) from the allotment in the
#   region's Redis and give back what they did not use, so a region never
#   spends more than its allotment.  While the link is up the regions
#   rebalance every second: the remaining allotment is moved towards the
#   regions' recent demand, give first (the giver takes it off its own
#   allotment before sending), so that the allotments in force plus what
#   is in flight never exceed what is left.  A transfer cut off in flight
#   is settled once, when the link is back.
# - rate R with burst B: the same, shares of R and B that sum to 1; during
#   a cut the shares are frozen (policy "frozen") or each region takes
#   half (policy "halves"); "full" (each region the whole rate, as two
#   gateways that share nothing) is there to compare.
# - nonces, assertion jtis and Idempotency-Keys: each partner has a home
#   region whose Redis takes them (SET NX); a request in the other region
#   reaches the home's Redis over the link.  Cut: nonce=refuse (503 with
#   Retry-After there) or nonce=local (the region's own Redis only).
# - revocations replicate over the link within a second; during a cut a
#   revoked token stays good in the other region until the link is back
#   or the token expires (its TTL), whichever comes first.
import random
import sys

SEED = 18
T = 3600                    # seconds simulated
CUT = (1200, 2400)          # the link between the regions is down
RTT = 0.030                 # seconds between the regions
Q = 200000                  # the quota of the hour
R, B = 100.0, 200.0         # the rate (requests/s) and its burst
GATEWAYS = 3                # gateways a region
LEASE = 100                 # units a lease takes at most
REGIONS = ("east", "north")
HOME = "east"               # the partner's home region
TOKEN_TTL = 300


def demand(region, t, rnd):
    """Requests the partner sends to a region in second t."""
    if region == "east":
        base = 40 if t < 1800 else 15
    else:
        base = 20 if t < 1800 else 60
    if region == "north" and 2000 <= t < 2010:
        base = 150          # a burst
    if 600 <= t < 660 or 1300 <= t < 1360:
        base = 90           # both regions above the rate, together
    return max(0, int(rnd.gauss(base, base ** 0.5)))


def link_up(t):
    return not (CUT[0] <= t < CUT[1])


class Region:
    def __init__(self, name, allot):
        self.name = name
        self.unleased = allot           # in the region's Redis
        self.leases = [0] * GATEWAYS    # what each gateway holds
        self.admitted = 0
        self.refused_quota = 0
        self.refused_rate = 0
        self.redis_cmds = 0
        self.ewma = 1.0
        self.share = 0.5
        self.tokens = B * 0.5
        self.dry = [False] * GATEWAYS   # no lease left, until rebalanced

    def allotment(self):
        return self.unleased + sum(self.leases)

    def take(self, g):
        """Gateway g takes a lease: one script in the region's Redis."""
        n = min(LEASE, self.unleased)
        self.unleased -= n
        self.leases[g] += n
        self.redis_cmds += 1
        return n

    def give_back(self):
        """Every gateway returns what it did not use (one script each)."""
        for g in range(GATEWAYS):
            if self.leases[g]:
                self.unleased += self.leases[g]
                self.leases[g] = 0
                self.redis_cmds += 1

    def serve(self, n, rnd):
        """n requests spread over the gateways; rate, then quota.  A
        gateway that found no allotment left asks again the next second."""
        self.dry = [False] * GATEWAYS
        self.tokens = min(self.share * B, self.tokens + self.share * R)
        ok = 0
        for _ in range(n):
            if self.tokens < 1:
                self.refused_rate += 1
                continue
            g = rnd.randrange(GATEWAYS)
            if self.leases[g] == 0 and (self.dry[g] or self.take(g) == 0):
                self.dry[g] = True
                self.refused_quota += 1
                continue
            self.tokens -= 1
            self.leases[g] -= 1
            ok += 1
        self.admitted += ok
        self.ewma = 0.9 * self.ewma + 0.1 * n
        return ok


def simulate(rate_policy, nonce_mode):
    rnd = random.Random(SEED)
    reg = {r: Region(r, Q // 2) for r in REGIONS}
    in_flight = []              # (arrival second, to, units)
    stranded = 0
    max_invariant = 0
    per_second = []
    refused_while_left = {r: 0 for r in REGIONS}
    nonce_503 = replays_ok = 0
    idem_503 = idem_twice = 0
    revoked_at, revoked_uses = 1500, 0
    token_exp = 1400 + TOKEN_TTL
    frozen = None

    for t in range(T):
        up = link_up(t)
        # rebalancing of the remaining allotment and of the rate's shares
        if up:
            for tr in [x for x in in_flight if x[0] <= t]:
                reg[tr[1]].unleased += tr[2]
                in_flight.remove(tr)
            total = sum(reg[r].ewma for r in REGIONS)
            left = sum(reg[r].unleased for r in REGIONS)
            for r in REGIONS:
                want = int(left * reg[r].ewma / total)
                other = [o for o in REGIONS if o != r][0]
                surplus = reg[other].unleased - (left - want)
                if reg[r].unleased < want and surplus > 0:
                    give = min(surplus, want - reg[r].unleased)
                    reg[other].unleased -= give
                    in_flight.append((t + 1, r, give))
            for r in REGIONS:
                reg[r].share = max(0.1, min(0.9, reg[r].ewma / total))
            frozen = None
        else:
            if frozen is None:
                frozen = {r: reg[r].share for r in REGIONS}
            for r in REGIONS:
                reg[r].share = (frozen[r] if rate_policy == "frozen"
                                else 0.5 if rate_policy == "halves"
                                else 1.0)

        got = {}
        for r in REGIONS:
            n = demand(r, t, rnd)
            before = reg[r].refused_quota
            got[r] = reg[r].serve(n, rnd)
            if reg[r].refused_quota > before:
                other = [o for o in REGIONS if o != r][0]
                if reg[other].allotment() > 0:
                    refused_while_left[r] += reg[r].refused_quota - before

            # signed requests in the non-home region, and one replay of
            # each into the other region a second later
            signed = got[r] // 10
            if r != HOME and not up:
                if nonce_mode == "refuse":
                    nonce_503 += signed
                # "local": taken in this region's Redis only
            if not up and nonce_mode == "local":
                replays_ok += signed          # the replay, in the other one
            # payments retried after a timeout, the retry in the other
            # region: once while the home answers, else refused or twice
            retries = got[r] // 50
            if not up:
                if nonce_mode == "refuse":
                    idem_503 += retries
                else:
                    idem_twice += retries
            # the revoked token, used each second in north
            if r == "north" and revoked_at <= t < token_exp and not up:
                revoked_uses += 1
        per_second.append(sum(got.values()))

        spent = sum(reg[r].admitted for r in REGIONS)
        held = sum(reg[r].allotment() for r in REGIONS)
        flying = sum(x[2] for x in in_flight)
        max_invariant = max(max_invariant, spent + held + flying)
        if not up and t == CUT[1] - 1:
            stranded = max(reg[r].allotment() for r in REGIONS
                           if reg[r].refused_quota)  if any(
                reg[r].refused_quota for r in REGIONS) else 0
    for r in REGIONS:
        reg[r].give_back()

    def worst(w):
        return max(sum(per_second[i:i + w]) for i in range(T - w + 1))

    return {
        "reg": reg, "stranded": stranded, "invariant": max_invariant,
        "refused_while_left": refused_while_left,
        "worst": {w: worst(w) for w in (1, 10, 60)},
        "nonce_503": nonce_503, "replays_ok": replays_ok,
        "idem_503": idem_503, "idem_twice": idem_twice,
        "revoked_uses": revoked_uses,
    }


def main():
    print("one partner, %d s, quota %d, rate %.0f r/s burst %.0f; "
          "link cut %d-%d s; home region %s; %d gateways a region, leases "
          "of %d\n" % (T, Q, R, B, CUT[0], CUT[1], HOME, GATEWAYS, LEASE))

    print("| rate policy in a cut | admitted | quota refused (of which while"
          " the other region had some left) | rate refused | worst 1 s /"
          " 10 s / 60 s (bound R·T+B) | Redis calls a request |")
    print("|---|---:|---:|---:|---|---:|")
    results = {}
    for policy in ("frozen", "halves", "full"):
        s = simulate(policy, "refuse")
        results[policy] = s
        adm = sum(s["reg"][r].admitted for r in REGIONS)
        rq = sum(s["reg"][r].refused_quota for r in REGIONS)
        rr = sum(s["reg"][r].refused_rate for r in REGIONS)
        rwl = sum(s["refused_while_left"].values())
        cmds = sum(s["reg"][r].redis_cmds for r in REGIONS)
        w = s["worst"]
        bound = {k: R * k + B for k in w}
        print("| %s | %d | %d (%d) | %d | %d / %d / %d (%.0f / %.0f / %.0f)"
              " | %.4f |" % (policy, adm, rq, rwl, rr, w[1], w[10], w[60],
                             bound[1], bound[10], bound[60], cmds / adm))
        assert adm <= Q, "quota exceeded"
        assert s["invariant"] <= Q, "allotments exceed the quota"
        if policy != "full":
            assert all(w[k] <= bound[k] for k in w), "rate exceeded"
    print()
    s = results["frozen"]
    for r in REGIONS:
        x = s["reg"][r]
        print("- %s: admitted %d, quota refusals %d (%d while the other "
              "region had allotment left), rate refusals %d"
              % (r, x.admitted, x.refused_quota, s["refused_while_left"][r],
                 x.refused_rate))
    print("- spent + allotments + in flight, at most: %d (the quota: %d)"
          % (s["invariant"], Q))
    print()
    print("| in the cut | signed requests refused 503 | replays accepted |"
          " payment retries refused 503 | payment retries paid twice |")
    print("|---|---:|---:|---:|---:|")
    for mode in ("refuse", "local"):
        m = simulate("frozen", mode)
        print("| nonce=%s idempotency=%s | %d | %d | %d | %d |"
              % (mode, mode, m["nonce_503"], m["replays_ok"], m["idem_503"],
                 m["idem_twice"]))
    print()
    print("a token revoked in %s at 1500 s (issued at 1400 s, TTL %d s): "
          "still accepted in north for %d s (until it expires; the link "
          "returns at %d s)"
          % (HOME, TOKEN_TTL, s["revoked_uses"], CUT[1]))


if __name__ == "__main__":
    sys.exit(main())
