-- wrk script: POST a turn's JSON body to the URL's path (/run or /run/stream), a session per connection-ish.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local counter = 0
request = function()
  counter = counter + 1
  local body = string.format('{"user_input": "benchmark question %d", "session_id": "bench-%d"}', counter, counter % 64)
  return wrk.format(nil, nil, nil, body)
end
