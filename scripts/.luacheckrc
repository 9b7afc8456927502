-- .luacheckrc: luacheck's view of postern's policy sandbox (src/policy.c), for every script under scripts/.
--   luacheck --config scripts/.luacheckrc scripts
-- Only what the sandbox has: the base library without dofile, loadfile and require; string without dump;
-- table, math and utf8; no io, os, package, debug or coroutine. postern's helpers are read-only, and a
-- policy may define the three functions the core calls.
stds.postern = {
  globals = {"on_request", "on_stored", "self_test"},
  read_globals = {
    "assert", "collectgarbage", "error", "getmetatable", "ipairs", "load", "next", "pairs", "pcall", "print",
    "rawequal", "rawget", "rawlen", "rawset", "select", "setmetatable", "tonumber", "tostring", "type", "xpcall",
    "_G", "_VERSION",
    string = {fields = {"byte", "char", "find", "format", "gmatch", "gsub", "len", "lower", "match", "pack",
                        "packsize", "rep", "reverse", "sub", "unpack", "upper"}},
    table = {other_fields = true},
    math = {other_fields = true},
    utf8 = {other_fields = true},
    -- postern's helpers (README, "Policies in Lua")
    config = {other_fields = true},
    storage = {fields = {"free", "capacity", "exists"}},
    auth = {fields = {"bearer", "basic", "equal"}},
    crypto = {fields = {"sha256", "hmac_sha256"}},
    "log",
  },
}
std = "postern"
-- The cases files beside the scripts are plain Lua for postern-policy, outside the sandbox.
files["**/*.cases"] = {std = "lua54"}
max_line_length = 120
