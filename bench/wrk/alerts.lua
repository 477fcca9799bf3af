-- POST Alertmanager API v2 bodies. Env: BATCH (alerts per request), FRESH (1: new fingerprints
-- every request; 0: the same batch again), TOKEN (bearer token, optional), RUN (makes "new"
-- fingerprints differ between runs; the clock's second when not set).
local batch = tonumber(os.getenv("BATCH") or "100")
local fresh = os.getenv("FRESH") == "1"
local token = os.getenv("TOKEN")
local counter = 0
-- Without it, every run would send the first run's "new" alerts again: repeats of alerts that
-- may still wait unmerged, not new ones.
local run = os.getenv("RUN") or tostring(os.time())
-- Each wrk thread gets its own number (a global in that thread's Lua state), so that "new"
-- fingerprints differ between threads too.
local threads = 0

setup = function(thread)
  thread:set("thread_id", threads)
  threads = threads + 1
end

local function body(seq)
  local parts = {}
  for i = 1, batch do
    local name = fresh and string.format("Bench_%s_%d_%d_%d", run, thread_id or 0, seq, i) or string.format("Bench_%d", i)
    parts[i] = string.format('{"labels":{"alertname":"%s","service":"svc-%d","severity":"warning"}}', name, i % 10)
  end
  return "[" .. table.concat(parts, ",") .. "]"
end

local fixed = nil
request = function()
  counter = counter + 1
  local b
  if fresh then b = body(counter) else fixed = fixed or body(0); b = fixed end
  local headers = { ["Content-Type"] = "application/json" }
  if token then headers["Authorization"] = "Bearer " .. token end
  return wrk.format("POST", "/api/v2/alerts", headers, b)
end
