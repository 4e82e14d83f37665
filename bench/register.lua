-- wrk script: POST a registration with a new jobid on every request.
--
-- The jobid's unique part is 22 characters of [A-Za-z0-9]: a per-run nonce (4), the wrk thread
-- number (2), a per-thread counter (8) and random characters (8), so no two requests of a run
-- (or of two runs sharing a database) register the same job.
-- Arguments (after `--`): the run nonce. The bearer token comes from JP_BENCH_TOKEN.
-- At the end it prints one line "WRK_JSON {...}" with the counts the benchmark reads.

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local next_thread = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
end

function init(args)
  nonce = string.sub((args[1] or "run0") .. "0000", 1, 4)
  counter = 0
  math.randomseed(os.time() * 1000 + tid * 7919)
  headers = {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. (os.getenv("JP_BENCH_TOKEN") or ""),
  }
end

local function random_chars(n)
  local out = {}
  for i = 1, n do
    local at = math.random(1, #ALPHABET)
    out[i] = string.sub(ALPHABET, at, at)
  end
  return table.concat(out)
end

function request()
  counter = counter + 1
  local unique = nonce .. string.format("%02d%08d", tid % 100, counter) .. random_chars(8)
  local body = '{"jobid":"https://lb.example.org:9000/' .. unique .. '"}'
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
