-- wrk script for bench/load.py: the mixed workload, or the bare route as its baseline.
--
-- Arguments (after `--`): mode ("mixed" or "bare"), a run nonce (4 characters).
-- Environment: JP_BENCH_TOKEN (bearer token), JP_LOAD_KEYS (a file with one job key per line:
-- jobs that exist and hold a committed L&B dump), JP_LOAD_DUMPS (a directory of dump templates
-- dump-1.ulm, dump-2.ulm, ... whose jobid's unique part is JP_LOAD_PLACEHOLDER).
--
-- mixed: each operation is an attribute read (70 %, `GET /v1/jobs/{key}/attributes` of a
-- random prepared job), a tag write (20 %, `POST /v1/jobs/{key}/tags`) or a registration (10 %,
-- `POST /v1/jobs` with a new jobid) that is followed by the upload of that job's L&B dump
-- (`PUT /v1/jobs/{key}/files/lb`, a template with the new jobid put in). wrk does not say which
-- request an answer belongs to, so a registration is recognised by its answer (201 with
-- "registered_by"), and its key is queued for the thread's next request.
-- bare: `GET /healthz` only.
--
-- At the end it prints one line "WRK_JSON {...}": wrk's counts and latency percentiles, the
-- requests sent per kind, the answers per status code, and the uploads answered 201.

local ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
local threads = {}
local next_thread = 0

function setup(thread)
  thread:set("tid", next_thread)
  next_thread = next_thread + 1
  table.insert(threads, thread)
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then
    return nil
  end
  local data = f:read("*a")
  f:close()
  return data
end

local function replace_plain(text, old, new)
  local out, at = {}, 1
  while true do
    local first, last = string.find(text, old, at, true)
    if not first then
      break
    end
    table.insert(out, string.sub(text, at, first - 1))
    table.insert(out, new)
    at = last + 1
  end
  table.insert(out, string.sub(text, at))
  return table.concat(out)
end

function init(args)
  mode = args[1] or "mixed"
  nonce = string.sub((args[2] or "run0") .. "0000", 1, 4)
  counter = 0
  math.randomseed(os.time() * 1000 + tid * 7919)
  sent = { read = 0, tag = 0, register = 0, upload = 0, bare = 0 }
  statuses = {}
  uploads_ok = 0
  registered = 0
  pending = {}
  local auth = "Bearer " .. (os.getenv("JP_BENCH_TOKEN") or "")
  json_headers = { ["Content-Type"] = "application/json", ["Authorization"] = auth }
  get_headers = { ["Authorization"] = auth }
  dump_headers = { ["Content-Type"] = "text/plain", ["Authorization"] = auth }
  keys, dumps = {}, {}
  if mode == "mixed" then
    for line in io.lines(os.getenv("JP_LOAD_KEYS")) do
      if #line > 0 then
        table.insert(keys, line)
      end
    end
    local dir = os.getenv("JP_LOAD_DUMPS")
    local n = 1
    while true do
      local data = read_file(dir .. "/dump-" .. n .. ".ulm")
      if not data then
        break
      end
      table.insert(dumps, data)
      n = n + 1
    end
    placeholder = os.getenv("JP_LOAD_PLACEHOLDER")
    assert(#keys > 0 and #dumps > 0 and placeholder, "load.lua: no keys, dumps or placeholder")
  end
end

local function random_chars(n)
  local out = {}
  for i = 1, n do
    local at = math.random(1, #ALPHABET)
    out[i] = string.sub(ALPHABET, at, at)
  end
  return table.concat(out)
end

local function upload(key)
  sent.upload = sent.upload + 1
  local dump = replace_plain(dumps[math.random(1, #dumps)], placeholder, key)
  return wrk.format("PUT", "/v1/jobs/" .. key .. "/files/lb", dump_headers, dump)
end

function request()
  if mode == "bare" then
    sent.bare = sent.bare + 1
    return wrk.format("GET", "/healthz", get_headers)
  end
  local key = table.remove(pending)
  if key then
    return upload(key)
  end
  local r = math.random()
  if r < 0.7 then
    sent.read = sent.read + 1
    local path = "/v1/jobs/" .. keys[math.random(1, #keys)] .. "/attributes"
    return wrk.format("GET", path, get_headers)
  elseif r < 0.9 then
    sent.tag = sent.tag + 1
    counter = counter + 1
    local body = '{"name":"benchload","value":"' .. nonce .. tid .. "-" .. counter .. '"}'
    local path = "/v1/jobs/" .. keys[math.random(1, #keys)] .. "/tags"
    return wrk.format("POST", path, json_headers, body)
  end
  sent.register = sent.register + 1
  counter = counter + 1
  local unique = nonce .. string.format("%02d%08d", tid % 100, counter) .. random_chars(8)
  local body = '{"jobid":"https://lb.example.org:9000/' .. unique .. '"}'
  return wrk.format("POST", "/v1/jobs", json_headers, body)
end

function response(status, headers, body)
  local code = tostring(status)
  statuses[code] = (statuses[code] or 0) + 1
  if status == 201 and body then
    if string.find(body, '"registered_by"', 1, true) then
      local key = string.match(body, '"key"%s*:%s*"([^"]+)"')
      if key then
        registered = registered + 1
        table.insert(pending, key)
      end
    elseif string.find(body, '"sha256"', 1, true) then
      uploads_ok = uploads_ok + 1
    end
  end
end

local function json_counts(t)
  local parts = {}
  for k, v in pairs(t) do
    table.insert(parts, string.format('"%s":%d', k, v))
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

local function add_into(total, part)
  for k, v in pairs(part) do
    total[k] = (total[k] or 0) + v
  end
end

function done(summary, latency, requests)
  local all_sent, all_status = {}, {}
  local all_uploads, all_registered = 0, 0
  for _, thread in ipairs(threads) do
    add_into(all_sent, thread:get("sent"))
    add_into(all_status, thread:get("statuses"))
    all_uploads = all_uploads + thread:get("uploads_ok")
    all_registered = all_registered + thread:get("registered")
  end
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"p999_us":%d,' ..
    '"max_us":%d,"sent":%s,"statuses":%s,"registered":%d,"uploads_ok":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max, json_counts(all_sent), json_counts(all_status),
    all_registered, all_uploads))
end
