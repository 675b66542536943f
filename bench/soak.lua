-- wrk script of the soak: four POST /run to one GET /history, over 20,000 sessions. It counts answered turns,
-- history pages and failures; done() writes the totals of all threads on one line for bench/soak.py.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  answered, reads, failed, counter = 0, 0, 0, 0
end

function request()
  counter = counter + 1
  local session = "soak-" .. math.random(1, 20000)
  if counter % 5 == 0 then
    return wrk.format("GET", "/history?limit=20&session_id=" .. session)
  end
  local body = string.format('{"user_input": "soak question %d", "session_id": "%s"}', counter, session)
  return wrk.format("POST", "/run", {["Content-Type"] = "application/json"}, body)
end

function response(status, headers, body)
  if status ~= 200 then
    failed = failed + 1
  elseif string.sub(body, 1, 10) == '{"answer":' then
    answered = answered + 1
  else
    reads = reads + 1
  end
end

function done(summary, latency, requests)
  local a, r, f = 0, 0, 0
  for _, thread in ipairs(threads) do
    a = a + thread:get("answered")
    r = r + thread:get("reads")
    f = f + thread:get("failed")
  end
  io.write(string.format("soak: answered %d read %d failed %d\n", a, r, f))
end
