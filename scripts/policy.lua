-- policy.lua: postern's default policy.
--
-- Every route needs "Authorization: Bearer <config.token>" (set it with
-- --set token=...), except GET /_status, which stays open. Without a token
-- configured, everything else is refused: the device fails closed.
-- An upload whose announced length exceeds the free space is refused; a
-- chunked upload (length nil) is accepted here, and the core enforces the
-- quota while it streams.
-- A request that carries Expect gets 417 for any refusal (the client then
-- sends no body); the same request without Expect gets the precise status:
-- 401 (no or unreadable credentials), 403 (wrong token or none configured),
-- 413 (can never fit) or 507 (does not fit now, or the device has no
-- storage at all: a capacity of 0, such as a board without its card).
-- /_policy and /_config too; self_test refuses settings without a token.
-- GET and HEAD / (the upload page) are open too: the page holds no secret,
-- it asks for the token and sends it with each request.
-- No other origin may use the device from a browser: a preflight (OPTIONS)
-- needs the token, which browsers never send on one, and no answer names an
-- origin. scripts/examples/cors.lua is this policy with one origin allowed
-- (--set cors_origin=https://dash.example); the answer fields it sets:
-- allow_origin, allow_methods, allow_headers, max_age.

local token = config.token
if token == nil or token == "" then
  token = nil
  log("no token configured: set --set token=...; every request but GET /_status is refused")
end

local CHALLENGE = 'Bearer realm="postern"'

-- A refusal: 417 when the client asked for 100-continue, else `status`.
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
  local method, path = req.method, req.path
  if (method == "GET" and path == "/_status") or ((method == "GET" or method == "HEAD") and path == "/") then
    return true
  end
  if token == nil then
    return refuse(req, 403, "no token configured on the device")
  end
  local presented = auth.bearer(req.headers.authorization)
  if presented == nil then
    return refuse(req, 401, "a bearer token is required")
  end
  if not auth.equal(presented, token) then
    return refuse(req, 403, "invalid token")
  end
  local length = req.length
  if method == "PUT" and req.name ~= nil and length ~= nil and length > storage.free() then
    if length > storage.capacity() and storage.capacity() > 0 then
      return refuse(req, 413, "larger than the device's storage")
    end
    return refuse(req, 507, "not enough free space")
  end
  return true
end

function self_test()
  return token ~= nil, "no token configured: every request would be refused"
end
