/* test_pattern.c: the sandbox's pattern functions (src/policy_pattern.c) against lstrlib's, result for result and error for error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lauxlib.h"
#include "lua.h"
#include "lualib.h"
#include "policy_pattern.h"
#include "postern_opts.h"
#include "unit.h"

/* ---- The meter ------------------------------------------------------------ */

static unsigned long g_steps;   /* charged since the last reset */
static unsigned long g_limit;   /* 0: no limit */
static unsigned long g_charges; /* calls of the charge function */

static void charge(lua_State *L, unsigned long n)
{
  g_steps += n;
  g_charges++;
  if (g_limit != 0 && g_steps >= g_limit) {
    luaL_error(L, "instruction budget exhausted");
  }
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
  (void)ar;
  charge(L, POSTERN_LUA_HOOK_STEP);
}

static void meter_reset(unsigned long limit)
{
  g_steps = 0;
  g_charges = 0;
  g_limit = limit;
}

static double now(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A plain VM: R holds lstrlib's find, match, gmatch and gsub, P (and the
 * string table, so s:find goes there too) the sandbox's. */
static lua_State *new_vm(void)
{
  lua_State *L = luaL_newstate();
  static const luaL_Reg libs[] = {{LUA_GNAME, luaopen_base},
                                  {LUA_STRLIBNAME, luaopen_string},
                                  {LUA_TABLIBNAME, luaopen_table},
                                  {LUA_MATHLIBNAME, luaopen_math}};
  for (size_t i = 0; i < sizeof libs / sizeof libs[0]; i++) {
    luaL_requiref(L, libs[i].name, libs[i].func, 1);
    lua_pop(L, 1);
  }
  lua_getglobal(L, "string");
  lua_newtable(L);
  static const char *const names[] = {"find", "match", "gmatch", "gsub"};
  for (int i = 0; i < 4; i++) {
    lua_getfield(L, -2, names[i]);
    lua_setfield(L, -2, names[i]);
  }
  lua_setglobal(L, "R");
  policy_pattern_install(L, -1, charge);
  lua_newtable(L);
  for (int i = 0; i < 4; i++) {
    lua_getfield(L, -2, names[i]);
    lua_setfield(L, -2, names[i]);
  }
  lua_setglobal(L, "P");
  lua_pop(L, 1);
  return L;
}

/* Runs a chunk; returns its one string result (or the error) in a static buffer. */
static const char *run(lua_State *L, const char *chunk, const char *src)
{
  static char out[8192];
  int st = luaL_loadbufferx(L, src, strlen(src), chunk, "t");
  if (st == LUA_OK) {
    st = lua_pcall(L, 0, 1, 0);
  }
  const char *s = lua_tostring(L, -1);
  snprintf(out, sizeof out, "%s%s", st == LUA_OK ? "" : "ERROR: ", s ? s : "(not a string)");
  lua_pop(L, 1);
  return out;
}

/* ---- Differential ------------------------------------------------------------ */

/* Calls each case through R and P the same way (a local named f, so an
 * argument error names 'f' for both) and lists every difference. */
static const char diff_lua[] =
    "local function ser(ok, ...)\n"
    "  local t = {tostring(ok)}\n"
    "  for i = 1, select('#', ...) do\n"
    "    local v = select(i, ...)\n"
    "    t[#t + 1] = (math.type(v) or type(v)) .. ':' .. tostring(v)\n"
    "  end\n"
    "  return table.concat(t, '|')\n"
    "end\n"
    "local function call(f, ...) return table.unpack(table.pack(f(...))) end\n"
    "local function iterate(f, s, p, init)\n"
    "  local out = {}\n"
    "  for a, b, c in f(s, p, init) do\n"
    "    out[#out + 1] = tostring(a) .. ',' .. tostring(b) .. ',' .. tostring(c)\n"
    "    if #out > 40 then break end\n"
    "  end\n"
    "  return table.concat(out, ';')\n"
    "end\n"
    "local n, bad = 0, {}\n"
    "function check(name, ...)\n"
    "  local a, b\n"
    "  if name == 'gmatch' then\n"
    "    a = ser(pcall(iterate, R.gmatch, ...))\n"
    "    b = ser(pcall(iterate, P.gmatch, ...))\n"
    "  else\n"
    "    a = ser(pcall(call, R[name], ...))\n"
    "    b = ser(pcall(call, P[name], ...))\n"
    "  end\n"
    "  n = n + 1\n"
    "  if a ~= b and #bad < 20 then\n"
    "    local args = {}\n"
    "    for i = 1, select('#', ...) do args[i] = string.format('%q', tostring((select(i, ...)))) end\n"
    "    bad[#bad + 1] = name .. '(' .. table.concat(args, ', ') .. '):\\n  lstrlib ' .. a .. '\\n  sandbox ' .. b\n"
    "  end\n"
    "end\n"
    "function report() return n .. ' cases, ' .. #bad .. ' differ\\n' .. table.concat(bad, '\\n') end\n";

/* Hand-written cases: the manual's examples, each item kind, every error. */
static const char cases_lua[] =
    "local pats = {\n"
    "  {'hello world', 'o w'}, {'hello', 'l+'}, {'hello', '^h'}, {'hello', 'o$'}, {'a$b', '$b'},\n"
    "  {'a$b', 'a$'}, {'a$b', '%$'}, {'', ''}, {'', '^$'}, {'', '.'}, {'abc', '()b()'}, {'abc', '()'},\n"
    "  {'THE (quick) fox', '%((%a+)%)'}, {'f(a(b)c)d', '%b()'}, {'f(a(b)c', '%b()'}, {'x\"y\"z', '%b\"\"'},\n"
    "  {'THE (quick) fox', '%f[%a]%a+'}, {'THE (quick) fox', '%f[%A]'}, {'abc', '%f[%z]'}, {'abc', '%f[a]'},\n"
    "  {'hello hello', '(h%a+) %1'}, {'key = value', '(%w+)%s*=%s*(%w+)'}, {'aaa', 'a-b'}, {'aaab', 'a-b'},\n"
    "  {'  x y  ', '^%s*(.-)%s*$'}, {'x\\0y', '%z'}, {'x\\0y', '\\0'}, {'x\\0y', '[\\0]'}, {'x\\0y', '%Z+'},\n"
    "  {'x.y', '.'}, {'x.y', '%.'}, {'[]', '[]]'}, {'a]', '[^]]'}, {'^', '[%^]'}, {'a^', 'a^'}, {'a-b', '[a%-b]+'},\n"
    "  {'a-z', '[a-]+'}, {'-', '[-a]'}, {'b', '[a-c]'}, {'%', '[%%]'}, {'%', '%%'}, {'q', '%q'}, {'Q', '%Q'},\n"
    "  {'a1_ B', '[%w_]+'}, {'a1_ B', '[^%s]+'}, {'0x1F', '%x+'}, {'aB', '%u'}, {'aB', '%l'}, {'a\\tb', '%c'},\n"
    "  {'a,b', '%p'}, {'a b', '%g+'}, {'a b', '%S+'}, {'a b', '%D+'}, {'\\200\\255', '%a'}, {'\\200\\255', '.+'},\n"
    "  {'\\200\\255', '[\\128-\\255]+'}, {'abc', 'b?c'}, {'ac', 'ab?c'}, {'abbbc', 'ab*c'}, {'ac', 'ab+c'},\n"
    "  {'abc', '(a)(b)(c)'}, {'abc', '(a(b)c)'}, {'abc', '((a)(b))%2%3'}, {'abab', '(ab)%1'}, {'aa', '()a%1'},\n"
    "  {'abc', '[a-'}, {'abc', 'a[a-'}, {'abc', '%'}, {'abc', 'a%'}, {'abc', '(()'}, {'abc', 'a('},\n"
    "  {'abc', '%bx'}, {'abc', 'a%b'}, {'abc', '%f'}, {'abc', 'a%fx'}, {'abc', '(a)%2'}, {'abc', '(a%1)'},\n"
    "  {'abc', 'a)'}, {'abc', ')'}, {'abc', '%0'}, {'abc', 'a%0'}, {'abc', '[%'}, {'abc', '[]'}, {'abc', '[^]'},\n"
    "  {'abc', 'x['}, {'abc', 'x%'}, {'abc', '[a'}, {'abc', '%g%'}, {'abc', string.rep('(', 33)}, \n"
    "  {'abc', string.rep('()', 32)}, {'abc', string.rep('()', 33)}, {12345, '2(%d)'}, {'a2', 2},\n"
    "  {'a.b', 'a.b'}, {'aXb', 'a.b'}, {'a+b', 'a+b'}, {'a+b', 'a%+b'}, {'hello', 'l', 10}, {'hello', 'l', -2},\n"
    "  {'hello', 'l', 0}, {'hello', 'l', -100}, {'hello', '', 6}, {'hello', '', 7}, {'hello', '^l', 3},\n"
    "  {'hello', 'l', 2^53}, {'hello', 'l', math.mininteger}, {'hello', 'l', math.maxinteger},\n"
    "  {'hello', 'l', 1.5}, {'hello', 'l', '2'}, {'hello', 'l', 'x'}, {nil, 'a'}, {'a', nil}, {{}, 'a'},\n"
    "  {'a.b', '.', 1, true}, {'a.b', '.', 3, true}, {'a.b', '', 2, true}, {'a.b', 'a.b', 1, 1}, {'aab', 'ab', 1, "
    "true},\n"
    "  {'a\\0b', 'a\\0b'}, {'a\\0b', '\\0b', 1, true}, {'abcabc', 'cab', -4}, {'abc', 'abcd'},\n"
    "}\n"
    "for _, c in ipairs(pats) do\n"
    "  check('find', c[1], c[2], c[3], c[4])\n"
    "  check('match', c[1], c[2], c[3])\n"
    "  check('gmatch', c[1], c[2], c[3])\n"
    "  check('gsub', c[1], c[2], '<%0>')\n"
    "end\n"
    "for _, c in ipairs({{'one two three', '%a+'}, {'abc', ''}, {'a,b,,c', '([^,]*)'}, {'abc', '^a'},\n"
    "    {'^a^a', '^a'}, {'abc', '()', 2}, {'abc', '.', -1}, {'abc', '.', 10}, {'abc', '', 4}, {'k=v, x=y', "
    "'(%w+)=(%w+)'}}) do\n"
    "  check('gmatch', c[1], c[2], c[3])\n"
    "end\n"
    "local t = {a = 'A', b = true, c = false, d = 4, e = {}}\n"
    "local function fn(x, y) if x == 'a' then return 'F' elseif x == 'b' then return nil elseif x == 'd' then return "
    "1.5\n"
    "  elseif x == 'e' then return {} elseif x == 'x' then error('boom') end return false end\n"
    "local reps = {'0', '', '-', '%0%0', '%1', '%2', '%', '%%', '%x', 'a%', t, fn, 5, 2.5, nil, true, '%1%1'}\n"
    "local subjects = {'hello world', 'abcde', '', 'a,b,,c'}\n"
    "local gpats = {'o', '', '%w', '(%w)', '(%w)(%w)', '^%w', '()', '(h)(e)', '%w*', 'x*', '[aeiou]', '^', '$'}\n"
    "for _, s in ipairs(subjects) do\n"
    "  for _, p in ipairs(gpats) do\n"
    "    for i = 1, #reps + 1 do\n"
    "      check('gsub', s, p, reps[i])\n"
    "    end\n"
    "    for _, n in ipairs({0, 1, 2, -1, 1.0, 1.5, 'x', '2'}) do check('gsub', s, p, '[%0]', n) end\n"
    "  end\n"
    "end\n"
    "check('gsub', 'abcde', '%w', t) check('gsub', 'xyz', '%w', fn) check('gsub', 'abc', '%w', '%1', 'x')\n"
    "check('gsub', 'abc', '(', '%1') check('gsub', nil, 'a', 'b') check('gsub', 'abc', '%w', {}, {})\n"
    "return report()\n";

/* Generated cases: random patterns of items, sets, captures and anchors,
 * on random subjects over a small alphabet that the items meet. */
static const char gen_lua[] =
    "math.randomseed(SEED or 20240607)\n"
    "local items = {'a', 'b', '.', '%a', '%d', '%s', '%w', '%p', '%x', '%u', '%l', '%A', '%S', '%W', '[ab]',\n"
    "  '[^a]', '[a-c]', '[%d_]', '[]a]', '[^]]', '[%a-]', '%%', '%.', '%(', '%b()', '%bab', '%f[%w]', '%f[%W]',\n"
    "  '%f[a]', '%1', '%2', '%0', '(', ')', '()', '$', '^', '-', '[', '%', '%z', '[a-', '(a)', '(.-)', ' ', '_',\n"
    "  '1', ']', '\\0'}\n"
    "local quants = {'', '', '', '*', '+', '-', '?'}\n"
    "local alphabet = {'a', 'b', 'c', '(', ')', ' ', '1', '_', '-', '%', ']', '^', '$', '.', '\\0', 'A', '\\200'}\n"
    "local function pattern()\n"
    "  local t = {}\n"
    "  if math.random(4) == 1 then t[1] = '^' end\n"
    "  for _ = 1, math.random(0, 7) do\n"
    "    local it = items[math.random(#items)]\n"
    "    t[#t + 1] = it\n"
    "    if #it == 1 or it:sub(1, 1) == '[' or (it:sub(1, 1) == '%' and #it == 2) then\n"
    "      t[#t + 1] = quants[math.random(#quants)]\n"
    "    end\n"
    "  end\n"
    "  return table.concat(t)\n"
    "end\n"
    "local function subject()\n"
    "  local t = {}\n"
    "  for i = 1, math.random(0, 14) do t[i] = alphabet[math.random(#alphabet)] end\n"
    "  return table.concat(t)\n"
    "end\n"
    "local inits = {nil, nil, nil, 1, 2, 0, -1, -3, 5, 30}\n"
    "local reps = {'<%0>', '%1', '%2-%1', 'x', {a = 'A', ['('] = 1, b = false}, function(x, y) return y end}\n"
    "for _ = 1, N do\n"
    "  local s, p = subject(), pattern()\n"
    "  local init = inits[math.random(#inits)]\n"
    "  check('find', s, p, init, math.random(8) == 1)\n"
    "  check('match', s, p, init)\n"
    "  check('gmatch', s, p, init)\n"
    "  check('gsub', s, p, reps[math.random(#reps)], math.random(3) == 1 and math.random(0, 3) or nil)\n"
    "end\n"
    "return report()\n";

static int differences(const char *out)
{
  const char *c = strstr(out, " cases, ");
  return c == NULL ? -1 : atoi(c + 8);
}

static void test_hand_written(void)
{
  lua_State *L = new_vm();
  meter_reset(0);
  CHECK_STR(run(L, "diff", diff_lua), "(not a string)");
  const char *out = run(L, "cases", cases_lua);
  printf("pattern: hand-written: %.60s\n", out);
  CHECK_EQ(differences(out), 0);
  if (differences(out) != 0) {
    fprintf(stderr, "%s\n", out);
  }
  lua_close(L);
}

static void test_generated(void)
{
  lua_State *L = new_vm();
  meter_reset(0);
  const char *n = getenv("PATTERN_CASES"); /* more for a longer search */
  lua_pushinteger(L, n != NULL ? atoi(n) : 5000);
  lua_setglobal(L, "N");
  const char *seed = getenv("PATTERN_SEED");
  if (seed != NULL) {
    lua_pushinteger(L, atoi(seed));
    lua_setglobal(L, "SEED");
  }
  run(L, "diff", diff_lua);
  const char *out = run(L, "gen", gen_lua);
  printf("pattern: generated: %.60s\n", out);
  CHECK_EQ(differences(out), 0);
  if (differences(out) != 0) {
    fprintf(stderr, "%s\n", out);
  }
  lua_close(L);
}

/* The method forms go through the string metatable's __index: the same table. */
static void test_methods(void)
{
  lua_State *L = new_vm();
  meter_reset(0);
  CHECK_STR(run(L, "m",
                "local s = ('x'):rep(50)\n"
                "local a = s:find('x-y') local b = s:match('^(x-)$') local c = select(2, s:gsub('x', 'y'))\n"
                "local d = 0 for _ in s:gmatch('x') do d = d + 1 end\n"
                "return tostring(a) .. ' ' .. #b .. ' ' .. c .. ' ' .. d"),
            "nil 50 50 50");
  CHECK(g_steps > 200); /* they were metered */
  CHECK_STR(run(L, "m", "return tostring(P.find ~= R.find and P.gsub ~= R.gsub and string.match == P.match)"), "true");
  lua_close(L);
}

/* ---- Limits --------------------------------------------------------------- */

static void test_depth(void)
{
  lua_State *L = new_vm();
  char src[512];
  meter_reset(0);
  /* Each matched '?' still to be undone is a level (and so is the walk
   * itself): DEPTH - 1 of them fit, one more fails; lstrlib (200) takes both. */
  snprintf(src, sizeof src,
           "local s = ('a'):rep(100)\n"
           "local ok = P.match(s, ('(a'):rep(20) .. (')'):rep(20))\n"
           "local ok2, err = pcall(P.match, s, ('a?'):rep(%d))\n"
           "local ok3 = pcall(R.match, s, ('a?'):rep(%d))\n"
           "return tostring(ok ~= nil) .. ' ' .. tostring(ok2) .. ' ' .. tostring(err) .. ' ' .. tostring(ok3)",
           POSTERN_PATTERN_DEPTH, POSTERN_PATTERN_DEPTH);
  CHECK_STR(run(L, "depth", src), "true false pattern too complex true");
  snprintf(src, sizeof src, "return #P.match(('a'):rep(100), ('a?'):rep(%d))", POSTERN_PATTERN_DEPTH - 1);
  char want[16];
  snprintf(want, sizeof want, "%d", POSTERN_PATTERN_DEPTH - 1);
  CHECK_STR(run(L, "depth", src), want);
  lua_close(L);
}

/* The attacks that ran for seconds under lstrlib: each stops at the budget. */
static void test_attacks(void)
{
  static const struct {
    const char *what;
    const char *src;
  } attacks[] = {
      {"firmware path, 1,950 '/'", "return (('/'):rep(1950)):match('^(.-)/(.-)/(.-)%.bin$')"},
      {"find .-.-.-b, 300 bytes", "return (('a'):rep(300)):find('.-.-.-b')"},
      {"trim, 1.9 KB of spaces inside", "return ('a' .. (' '):rep(1900) .. 'b'):match('^%s*(.-)%s*$')"},
      {"trim, 1.9 KB of spaces, no text", "return ((' '):rep(1900) .. 'x'):match('^%s*(.-)%s*$')"},
      {"gsub .- on 2 KB", "return (('a'):rep(2000)):gsub('(.-)b', '')"},
      {"gmatch .-.-b on 2 KB", "for _ in (('a'):rep(2000)):gmatch('.-.-b') do end"},
      {"plain find, 2 KB needle in 8 KB", "local n = ('a'):rep(2000) .. 'b' return (('a'):rep(8000)):find(n, 1, true)"},
  };
  lua_State *L = new_vm();
  for (size_t i = 0; i < sizeof attacks / sizeof attacks[0]; i++) {
    meter_reset(POSTERN_LUA_BUDGET);
    double t0 = now();
    const char *out = run(L, "attack", attacks[i].src);
    double ms = (now() - t0) * 1e3;
    printf("pattern: %-34s %7lu steps %7.2f ms  %s\n", attacks[i].what, g_steps, ms,
           strstr(out, "budget") ? "stopped at the budget" : "finished");
    CHECK(ms < 100.0);
    CHECK(g_steps <= POSTERN_LUA_BUDGET + POSTERN_LUA_HOOK_STEP);
  }
  /* The cost of a step: the firmware-path attack with a budget 50 times over. */
  meter_reset(50ul * POSTERN_LUA_BUDGET);
  double t0 = now();
  run(L, "attack", attacks[0].src);
  double secs = now() - t0;
  printf("pattern: %.1f ns per matcher step (%lu steps in %.1f ms)\n", secs * 1e9 / (double)g_steps, g_steps,
         secs * 1e3);
  /* The same budget spent by the VM (a count hook charging the same meter,
   * as policy.c does): what one matcher step costs next to one instruction. */
  lua_sethook(L, count_hook, LUA_MASKCOUNT, POSTERN_LUA_HOOK_STEP);
  meter_reset(50ul * POSTERN_LUA_BUDGET);
  t0 = now();
  run(L, "loop", "local i = 0 while true do i = i + 1 end");
  secs = now() - t0;
  printf("pattern: %.1f ns per VM instruction (%lu in %.1f ms)\n", secs * 1e9 / (double)g_steps, g_steps, secs * 1e3);
  lua_sethook(L, NULL, 0, 0);
  /* A benign trim stays far under the budget. */
  meter_reset(0);
  CHECK_STR(run(L, "trim", "return ('  ' .. ('x'):rep(1900) .. '  '):match('^%s*(.-)%s*$'):len()"), "1900");
  printf("pattern: trim of 1.9 KB of text: %lu steps\n", g_steps);
  CHECK(g_steps < POSTERN_LUA_BUDGET / 4);
  lua_close(L);
}

int main(void)
{
  RUN(test_hand_written);
  RUN(test_generated);
  RUN(test_methods);
  RUN(test_depth);
  RUN(test_attacks);
  return UNIT_END();
}
