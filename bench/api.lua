-- wrk script for bench/api.py: one phase per run (health, health-close, get, list, list-crowd or put) against one
-- HSMDevice, both chosen by the arguments after "--". done() prints one JSON line the Python side parses; latencies in µs.

local phase
local device
local counter = 0
local thread_id = 0
local next_thread = 0
local value = "eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eA=="

function setup(thread)
  thread:set("thread_id", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  phase = args[1]
  device = args[2]
  wrk.headers["Authorization"] = "Bearer admin"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  if phase == "health" then
    return wrk.format("GET", "/api/v1/health")
  elseif phase == "health-close" then
    -- The server closes after answering and wrk dials again: every request pays a connection (and a
    -- TLS handshake over HTTPS).
    return wrk.format("GET", "/api/v1/health", {["Connection"] = "close"})
  elseif phase == "get" then
    return wrk.format("GET", string.format("/api/v1/hsm/secrets/bench/s%03d?device=%s", counter % 100, device))
  elseif phase == "list" then
    return wrk.format("GET", "/api/v1/hsm/secrets?namespace=bench&limit=100&device=" .. device)
  elseif phase == "list-crowd" then
    return wrk.format("GET", "/api/v1/hsm/secrets?namespace=crowd&limit=100&device=" .. device)
  end
  -- Each thread writes its own 200 paths in turn (bench/api.py created them: every PUT overwrites):
  -- in-flight writes never share a path, and concurrent writes to one path are refused (412) by design.
  local body = string.format('{"data": {"password": "%s", "n": "%08d"}}', value, counter)
  local path = string.format("/api/v1/hsm/secrets/bench/w%d-%03d?device=%s", thread_id, counter % 200, device)
  return wrk.format("PUT", path, nil, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout
  ))
end
