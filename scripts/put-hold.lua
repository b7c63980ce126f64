-- wrk script: PUT the seed's Hold example (byte for byte) with the bearer token in $TOKEN.
-- With $IDS (space-separated session ids), requests rotate over those sessions' /status URLs;
-- without it every request goes to the URL wrk was given.
local file = assert(io.open(os.getenv("BODY_FILE") or "tests/fixtures/seed/request-4-hold.json", "rb"))
wrk.method = "PUT"
wrk.body = file:read("*a")
file:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. assert(os.getenv("TOKEN"), "TOKEN is not set")

local paths = {}
for id in string.gmatch(os.getenv("IDS") or "", "%S+") do
  paths[#paths + 1] = "/webrtc/sessions/" .. id .. "/status"
end
local next = 0
if #paths > 0 then
  request = function()
    next = next % #paths + 1
    return wrk.format(nil, paths[next])
  end
end
