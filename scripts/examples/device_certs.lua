-- device_certs.lua: example policy: uploads only from devices that present a trusted client certificate.
--
-- Run the device with a client CA (HTTPS, mutual TLS):
--   postern --cert server.crt --key server.key --client-ca ca.crt \
--           --set devices=device-0001,device-0002 [--set pins=<sha256 hex>,...]
--
-- A request is allowed when it came over TLS with a certificate the client CA
-- signed (req.tls.subject is only set for a trusted certificate), and
--   the certificate's subject CN is in config.devices, or
--   the SHA-256 of its DER (req.tls.fingerprint) is in config.pins.
-- Everything else gets 403 (417 when the client sent Expect). GET /_status
-- stays open. Plain HTTP never carries a certificate: req.tls is nil there.

local function set_of(list)
  local set = {}
  for item in (list or ""):gmatch("[^,%s]+") do
    set[item] = true
  end
  return set
end

local DEVICES = set_of(config.devices)
local PINS = set_of(config.pins and config.pins:lower())

local function refuse(req, message)
  if req.expect then
    return {status = 417, message = message}
  end
  return {status = 403, message = message}
end

function on_request(req)
  if req.method == "GET" and req.path == "/_status" then
    return true
  end
  local tls = req.tls
  if not tls then
    return refuse(req, "HTTPS with a device certificate is required")
  end
  if not tls.subject then
    return refuse(req, "no trusted client certificate")
  end
  if not (DEVICES[tls.subject] or PINS[tls.fingerprint]) then
    return refuse(req, "device " .. tls.subject .. " is not allowed")
  end
  if req.method == "PUT" and req.length and req.length > storage.free() then
    return {status = req.expect and 417 or 507, message = "device full"}
  end
  log("upload by %s over %s", tls.subject, tls.version)
  return true
end
