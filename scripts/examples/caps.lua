-- caps.lua: firmware images up to 1 MiB, logs up to 64 KiB, nothing else.
local token = config.token

local function refuse(req, status, message)
  if req.expect then return {status = 417, message = message} end
  return {status = status, message = message}
end

function on_request(req)
  if req.method == "GET" and req.path == "/_status" then return true end
  if not token or not auth.equal(auth.bearer(req.headers.authorization) or "", token) then
    return refuse(req, 403, "bad or missing token")
  end
  if (req.method ~= "PUT" and req.method ~= "POST") or req.path == "/_policy" then return true end
  -- A form upload (POST /files/) is decided twice: at its head without a name, then with its file's name.
  if req.name == nil then return true end
  local cap = (req.name:match("^fw%-") and 1024 * 1024) or (req.name:match("^logs%-") and 65536)
  if not cap then return refuse(req, 403, "only fw-* and logs-* may be uploaded") end
  if req.length and req.length > cap then return refuse(req, 413, "over the cap for this name") end
  if req.length and req.length > storage.free() then return refuse(req, 507, "device full") end
  return true
end

function on_stored(req, info)
  -- chunked uploads announce no length: check the cap once the size is known
  local cap = req.name:match("^fw%-") and 1024 * 1024 or 65536
  if info.size > cap then return 413, "over the cap for this name" end
  return true
end
