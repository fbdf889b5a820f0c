-- every request carries the next token of the pool (cache misses)
local tokens = {}
for line in io.lines("@DIR@/tokens.txt") do
   tokens[#tokens + 1] = "Bearer " .. line
end
local i = 0

request = function()
   i = i % #tokens + 1
   return wrk.format("GET", "/v1/accounts",
                     { ["Authorization"] = tokens[i] })
end
