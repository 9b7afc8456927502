-- quota.lua: example policy: a Bearer token plus per-prefix size caps and a quota.
--
--   logs-<n>.txt   at most 64 KiB each, n from 1 to config.log_slots (default 4):
--                  the "logs-" prefix can never hold more than slots x 64 KiB
--   fw-<x>.bin     firmware images, at most 1 MiB each
--   anything else  refused (403, or 417 when the client sent Expect)
--
-- GET /_status is open; every other request needs the token (/_policy
-- included, which it may read and replace). A chunked upload
-- has no length at header time, so on_stored checks the real size before the
-- commit.

local token = config.token
local KIB = 1024
local LOG_CAP = 64 * KIB
local FW_CAP = 1024 * KIB
local LOG_SLOTS = math.tointeger(tonumber(config.log_slots or "4")) or 4

-- The cap for a file name, or nil when the name is not allowed.
local function cap_for(name)
  if name == nil then
    return nil
  end
  local slot = name:match("^logs%-(%d+)%.txt$")
  if slot then
    local n = tonumber(slot)
    if n >= 1 and n <= LOG_SLOTS then
      return LOG_CAP
    end
    return nil
  end
  if name:match("^fw%-[%w_.-]+%.bin$") then
    return FW_CAP
  end
  return nil
end

local function refuse(req, status, message)
  if req.expect ~= nil then
    return { status = 417, message = message }
  end
  if status == 401 then
    return { status = 401, message = message, www_authenticate = 'Bearer realm="postern"' }
  end
  return { status = status, message = message }
end

function on_request(req)
  if req.method == "GET" and req.path == "/_status" then
    return true
  end
  local presented = auth.bearer(req.headers.authorization)
  if token == nil or presented == nil then
    return refuse(req, 401, "a bearer token is required")
  end
  if not auth.equal(presented, token) then
    return refuse(req, 403, "invalid token")
  end
  if req.path == "/_policy" then -- the token may read and replace the policy
    return true
  end
  if req.name == nil then -- the listing, or a form upload's head (POST /files/: its name comes in the body)
    return req.method == "GET" or req.method == "HEAD" or req.method == "POST" or refuse(req, 405, "not here")
  end
  local cap = cap_for(req.name)
  if cap == nil then
    return refuse(req, 403, "name not allowed: use logs-1..logs-" .. LOG_SLOTS .. ".txt or fw-*.bin")
  end
  if req.method == "PUT" and req.length ~= nil then
    if req.length > cap then
      return refuse(req, 413, string.format("%s is capped at %d KiB", req.name, cap // KIB))
    end
    if req.length > storage.free() then
      return refuse(req, 507, "not enough free space")
    end
  end
  return true
end

function on_stored(req, info)
  local cap = cap_for(req.name)
  if cap == nil or info.size > cap then
    log("refused %s after the body: %d bytes", tostring(req.name), info.size)
    return 413, "over the cap for this name"
  end
  return true
end
