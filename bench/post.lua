-- wrk script: POST one JSON body until a thread has its quota of responses, then end the run,
-- and report the wall-clock window from the first request to the last response. (wrk's main
-- thread otherwise sleeps for the whole -d duration; a SIGINT sent to that thread wakes it,
-- it stops the other threads within 0.1 s, and runs done().)
-- Environment: BENCH_BODY_FILE (JSON body), BENCH_AUTH (optional bearer secret),
-- BENCH_PER_THREAD (responses per thread).
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clk_id, bench_timespec *tp);
int getpid(void);
int tgkill(int tgid, int tid, int sig);
]]
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(1, ts) -- CLOCK_MONOTONIC: the same clock in every thread
  return tonumber(ts.tv_sec) * 1000000 + tonumber(ts.tv_nsec) / 1000
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  local f = assert(io.open(os.getenv("BENCH_BODY_FILE"), "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
  local auth = os.getenv("BENCH_AUTH")
  if auth and auth ~= "" then
    wrk.headers["Authorization"] = "Bearer " .. auth
  end
  quota = tonumber(os.getenv("BENCH_PER_THREAD"))
  responses = 0
  failures = 0
  first_us = 0
  last_us = 0
end

function request()
  if first_us == 0 then
    first_us = now_us()
  end
  return wrk.format()
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= 201 then
    failures = failures + 1
  end
  last_us = now_us()
  if responses == quota then
    local pid = ffi.C.getpid()
    ffi.C.tgkill(pid, pid, 2) -- SIGINT to wrk's main thread: the run is over
  end
end

function done(summary, latency, requests)
  local total, bad, first, last = 0, 0, nil, 0
  for _, t in ipairs(threads) do
    total = total + t:get("responses")
    bad = bad + t:get("failures")
    local f, l = t:get("first_us"), t:get("last_us")
    if f > 0 and (first == nil or f < first) then first = f end
    if l > last then last = l end
  end
  io.write(string.format(
    'BENCH_RESULT {"responses": %d, "failures": %d, "seconds": %.6f, "p50_ms": %.3f, "p99_ms": %.3f}\n',
    total, bad, (last - (first or last)) / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000))
end
