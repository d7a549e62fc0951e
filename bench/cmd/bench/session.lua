-- wrk script for the sessionkit harness: each request carries one
-- credential header ("Name: value" lines, a Cookie or an Authorization)
-- from the file named by the first argument, and done() prints one
-- machine-readable line. The second argument picks the header:
--   "turn" (or none): each in turn, from a random start (the main rows);
--   "uniform": at random, every one alike;
--   "zipf": at random under Zipf's law with s = 1, the header on line k
--     with weight 1/k, drawn by binary search in the precomputed
--     cumulative distribution (the realistic mode).
-- The third seeds the random picks.
local headers = {}
local cdf = {}
local mode = "turn"
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    local name, value = line:match("^([^:]+): (.*)$")
    headers[#headers + 1] = {[name] = value}
  end
  mode = args[2] or "turn"
  math.randomseed(tonumber(args[3] or "1"))
  i = math.random(#headers)
  if mode == "zipf" then
    local sum = 0
    for k = 1, #headers do
      sum = sum + 1 / k
      cdf[k] = sum
    end
    for k = 1, #headers do cdf[k] = cdf[k] / sum end
    cdf[#headers] = 1
  end
end

local function pick()
  if mode == "turn" then
    i = i % #headers + 1
    return i
  end
  local u = math.random()
  if mode ~= "zipf" then
    return math.floor(u * #headers) + 1
  end
  local lo, hi = 1, #headers -- the first k with cdf[k] >= u
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    if cdf[mid] < u then lo = mid + 1 else hi = mid end
  end
  return lo
end

function request()
  return wrk.format("GET", "/", headers[pick()])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
