-- cors.lua: the default policy (scripts/policy.lua) plus CORS: one origin,
-- config.cors_origin, may use the device from a browser.
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
-- 413 (can never fit) or 507 (does not fit now).
-- /_policy and /_config too; self_test refuses settings without a token.
-- GET / (the upload page) is open too: the page holds no secret, it asks
-- for the token and sends it with each request.
--
-- CORS: no other origin may use the device from a browser, unless the
-- setting cors_origin names one (--set cors_origin=https://dash.example):
-- then that exact origin gets its preflights (OPTIONS) answered for PUT,
-- GET, HEAD, DELETE and POST with the authorization, content-type and
-- content-digest headers, and may read every answer, refusals included
-- (/, /_status and the preflights excepted: they need no reading).

local token = config.token
if token == nil or token == "" then
  token = nil
  log("no token configured: set --set token=...; every request but GET /_status is refused")
end

local CHALLENGE = 'Bearer realm="postern"'
local cors = config.cors_origin
if cors == "" then
  cors = nil
end

-- The allowed origin may read the answer (a refusal's message too): nil for any other.
local function origin(req)
  if cors ~= nil and req.headers.origin == cors then
    return cors
  end
end

-- A refusal: 417 when the client asked for 100-continue, else `status`.
local function refuse(req, status, message)
  local answer = { status = status, message = message, allow_origin = origin(req) }
  if req.expect ~= nil then
    answer.status = 417
  elseif status == 401 then
    answer.www_authenticate = CHALLENGE
  end
  return answer
end

local PREFLIGHT = { PUT = true, GET = true, HEAD = true, DELETE = true, POST = true }

function on_request(req)
  local method = req.method
  if method == "OPTIONS" then
    -- A preflight: from the origin, for a method the device serves.
    if origin(req) == nil or not PREFLIGHT[req.headers["access-control-request-method"]] then
      return 403, "this origin may not use the device"
    end
    return { status = 100, allow_origin = cors, allow_methods = "PUT, GET, HEAD, DELETE, POST",
             allow_headers = "authorization, content-type, content-digest", max_age = 600 }
  end
  if (method == "GET" or method == "HEAD") and req.path == "/" then
    return true
  end
  if method == "GET" and req.path == "/_status" then
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
    if length > storage.capacity() then
      return refuse(req, 413, "larger than the device's storage")
    end
    return refuse(req, 507, "not enough free space")
  end
  local o = origin(req)
  return o == nil or { status = 100, allow_origin = o }
end

function self_test()
  if cors ~= nil and not cors:match("^%a[%w+.-]*://[%w.:_%[%]-]+$") then
    return false, "cors_origin must be an origin like https://dash.example:8443, not " .. cors
  end
  return token ~= nil, "no token configured: every request would be refused"
end
