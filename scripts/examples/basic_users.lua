-- basic_users.lua: example policy: HTTP Basic users with per-user rights from config.
--
--   --set users=alice:secret1:rw,bob:secret2:r
--
-- r allows GET and HEAD, w allows PUT and DELETE. GET /_status is open.
-- This server supports no expectations (like the seed's example server): an
-- Expect request from a user who has the right gets a *retryable* 417, and
-- the client sends the request again without Expect, which is then accepted.
-- Any other refusal of an Expect request is a final 417.

local users = {}
for entry in string.gmatch(config.users or "", "[^,]+") do
  local name, password, rights = entry:match("^%s*([^:]+):([^:]*):(%a*)%s*$")
  if name then
    users[name] = { password = password, rights = rights }
  else
    log("ignored malformed users entry")
  end
end
if next(users) == nil then
  log("no users configured: set --set users=name:password:rights,...")
end

local CHALLENGE = 'Basic realm="postern", charset="UTF-8"'
local NEEDS = { GET = "r", HEAD = "r", PUT = "w", DELETE = "w" }

local function refuse(req, status, message)
  if req.expect ~= nil then
    return { status = 417, message = message }
  end
  if status == 401 then
    return { status = 401, message = message, www_authenticate = CHALLENGE }
  end
  return { status = status, message = message }
end

function on_request(req)
  if req.method == "GET" and req.path == "/_status" then
    return true
  end
  local name, password = auth.basic(req.headers.authorization)
  local user = name and users[name]
  -- Compare even for an unknown user, so timing does not tell names apart.
  local ok = auth.equal(password or "", user and user.password or "\0invalid\0")
  if not (user and ok) then
    return refuse(req, 401, "valid credentials are required")
  end
  local right = NEEDS[req.method]
  if right == nil or not user.rights:find(right, 1, true) then
    return refuse(req, 403, name .. " may not " .. req.method .. " here")
  end
  if req.expect ~= nil then
    return { status = 417, retry = true, message = "expectations are not supported: send it again without Expect" }
  end
  if req.method == "PUT" and req.length ~= nil and req.length > storage.free() then
    return refuse(req, 507, "not enough free space")
  end
  return true
end
