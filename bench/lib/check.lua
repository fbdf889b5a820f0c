-- Appended by bench/run to every scenario's wrk script (so scenario
-- scripts must not define setup/response/done).  Counts the responses
-- that are not 2xx (or not the scenario's expect_status, when its script
-- sets one: a refusal measured on purpose) and prints one
-- machine-readable "BENCH ..." line.

local threads = {}

function setup(thread)
   table.insert(threads, thread)
end

bad, first_bad = 0, nil          -- globals: read back with thread:get()

function response(status, headers, body)
   if (expect_status and status ~= expect_status)
      or (not expect_status and (status < 200 or status > 299))
   then
      bad = bad + 1
      first_bad = first_bad or status
   end
end

function done(summary, latency, requests)
   local bad, first = 0, nil
   for _, t in ipairs(threads) do
      bad = bad + t:get("bad")
      first = first or t:get("first_bad")
   end
   local e = summary.errors
   io.write(string.format(
      "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d non2xx=%d first_non2xx=%s sockerr=%d\n",
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(99),
      bad, tostring(first or "-"),
      e.connect + e.read + e.write + e.timeout))
end
