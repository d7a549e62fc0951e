-- wrk script for the sessionkit harness: each request carries the next
-- credential header ("Name: value" lines, a Cookie or an Authorization)
-- from the file named by the first argument, and done() prints one
-- machine-readable line.
local headers = {}
local i = 0

function init(args)
  for line in io.lines(args[1]) do
    local name, value = line:match("^([^:]+): (.*)$")
    headers[#headers + 1] = {[name] = value}
  end
  i = math.random(#headers)
end

function request()
  i = i % #headers + 1
  return wrk.format("GET", "/", headers[i])
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT requests=%d duration_us=%d p50_us=%d p99_us=%d status_errors=%d connect_errors=%d read_errors=%d write_errors=%d timeouts=%d\n",
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
