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
-- 413 (can never fit) or 507 (does not fit now).
-- /_policy and /_config too; self_test refuses settings without a token.
-- GET / (the upload page) is open too: the page holds no secret, it asks
-- for the token and sends it with each request.
--
-- CORS: no other origin may use the device from a browser, unless the
-- setting cors_origin names one (--set cors_origin=https://dash.example):
-- then that exact origin gets its preflights (OPTIONS) answered for PUT,
-- GET, HEAD, DELETE and POST with the authorization, content-type and
-- content-digest headers, and may read every answer, refusals included.

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

-- A preflight from the allowed origin, for a method the device serves.
local PREFLIGHT = { PUT = true, GET = true, HEAD = true, DELETE = true, POST = true }
local function preflight(req)
  local h = req.headers
  if cors == nil or h.origin ~= cors or not PREFLIGHT[h["access-control-request-method"]] then
    return { status = 403, message = "this origin may not use the device" }
  end
  return {
    status = 100,
    allow_origin = cors,
    allow_methods = "PUT, GET, HEAD, DELETE, POST",
    allow_headers = "authorization, content-type, content-digest",
    max_age = 600,
  }
end

local function decide(req)
  if req.method == "OPTIONS" then
    return preflight(req)
  end
  if (req.method == "GET" or req.method == "HEAD") and req.path == "/" then
    return true
  end
  if req.method == "GET" and req.path == "/_status" then
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
  if req.method == "PUT" and req.name ~= nil and length ~= nil and length > storage.free() then
    if length > storage.capacity() then
      return refuse(req, 413, "larger than the device's storage")
    end
    return refuse(req, 507, "not enough free space")
  end
  return true
end

function on_request(req)
  local answer = decide(req)
  if cors ~= nil and req.method ~= "OPTIONS" and req.headers.origin == cors then
    -- The allowed origin may read the answer, a refusal's message too.
    if answer == true then
      answer = { status = 100 }
    end
    answer.allow_origin = cors
  end
  return answer
end

function self_test()
  if cors ~= nil and not cors:match("^%a[%w+.-]*://[%w.:_%[%]-]+$") then
    return false, "cors_origin must be an origin like https://dash.example:8443, not " .. cors
  end
  return token ~= nil, "no token configured: every request would be refused"
end
