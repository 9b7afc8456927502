/* policy_pattern.c: Lua 5.4 patterns (string.find, match, gmatch, gsub) for the policy sandbox, every step charged to the call's budget. */
#include "policy_pattern.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "lauxlib.h"
#include "postern_opts.h"

/* Written from the reference manual, section 6.4.1; where the manual is
 * silent (lazy errors, the quirks of sets, %f at the ends) it follows what
 * Lua 5.4 does, so that a script behaves the same with either library.
 * lstrlib's matcher is C code the count hook never sees: a backtracking
 * pattern on a hostile header ran for seconds inside one VM instruction. */

#define ESC '%'
#define MAX_CAPTURES 32 /* Lua's LUA_MAXCAPTURES: "too many captures" past it */
#define CAP_OPEN (-1)   /* a capture whose ')' is not reached yet */
#define CAP_POSITION (-2)

typedef struct matcher {
  lua_State *L;
  const char *src; /* the subject */
  const char *src_end;
  const char *pat_end; /* end of the pattern */
  unsigned long steps; /* taken, not charged yet */
  int depth;           /* recursion levels left */
  int ncap;            /* captures started, closed or not */
  struct {
    const char *at;
    ptrdiff_t len; /* bytes, or CAP_OPEN, CAP_POSITION */
  } cap[MAX_CAPTURES];
} matcher_t;

static policy_pattern_charge_fn charge_fn;

static int uc(char c)
{
  return (unsigned char)c;
}

/* ---- Metering ----------------------------------------------------------- */

static void flush(matcher_t *m)
{
  unsigned long n = m->steps;
  m->steps = 0;
  if (n > 0 && charge_fn != NULL) {
    charge_fn(m->L, n);
  }
}

/* One step is about one VM instruction's work: a character tested against
 * an item, a pattern item entered, a few bytes compared or copied. */
static void tick(matcher_t *m, unsigned long n)
{
  m->steps += n;
  if (m->steps >= POSTERN_LUA_HOOK_STEP) {
    flush(m);
  }
}

static void setup(matcher_t *m, lua_State *L, const char *s, size_t ls, const char *p, size_t lp)
{
  m->L = L;
  m->src = s;
  m->src_end = s + ls;
  m->pat_end = p + lp;
  m->steps = 0;
  m->depth = POSTERN_PATTERN_DEPTH;
  m->ncap = 0;
}

/* ---- Single characters ---------------------------------------------------- */

/* %x classes in the C locale (Lua's default), bytes >= 0x80 in none. */
static bool class_holds(int c, int cl)
{
  int lower = (cl >= 'A' && cl <= 'Z') ? cl + ('a' - 'A') : cl;
  bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  bool digit = c >= '0' && c <= '9';
  bool in;
  switch (lower) {
  case 'a':
    in = alpha;
    break;
  case 'c':
    in = c < 0x20 || c == 0x7F;
    break;
  case 'd':
    in = digit;
    break;
  case 'g':
    in = c > 0x20 && c < 0x7F;
    break;
  case 'l':
    in = c >= 'a' && c <= 'z';
    break;
  case 'p':
    in = c > 0x20 && c < 0x7F && !alpha && !digit;
    break;
  case 's':
    in = c == ' ' || (c >= '\t' && c <= '\r');
    break;
  case 'u':
    in = c >= 'A' && c <= 'Z';
    break;
  case 'w':
    in = alpha || digit;
    break;
  case 'x':
    in = digit || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
    break;
  case 'z':
    in = c == 0;
    break; /* deprecated in 5.2, still matched by 5.4 */
  default:
    return cl == c; /* %. %% %] ...: the character itself */
  }
  return lower == cl ? in : !in; /* %A is the complement of %a */
}

/* c against the set [ ... ] from p (its '[') to close (its ']'). */
static bool set_holds(matcher_t *m, int c, const char *p, const char *close)
{
  bool want = true;
  p++;
  if (*p == '^') {
    want = false;
    p++;
  }
  while (p < close) {
    tick(m, 1);
    if (*p == ESC) {
      if (class_holds(c, uc(p[1]))) {
        return want;
      }
      p += 2;
    } else if (p[1] == '-' && p + 2 < close) {
      if (uc(p[0]) <= c && c <= uc(p[2])) {
        return want;
      }
      p += 3;
    } else {
      if (uc(*p) == c) {
        return want;
      }
      p++;
    }
  }
  return !want;
}

/* The end of the single-character item at p (where a quantifier would be);
 * raises the manual's malformed-pattern errors when it is reached. */
static const char *item_end(matcher_t *m, const char *p)
{
  char c = *p++;
  if (c == ESC) {
    if (p >= m->pat_end) {
      luaL_error(m->L, "malformed pattern (ends with '%%')");
    }
    return p + 1;
  }
  if (c != '[') {
    return p;
  }
  if (p < m->pat_end && *p == '^') {
    p++;
  }
  /* The first member is taken as it is, so "[]]" and "[^]]" hold a ']'. */
  do {
    if (p >= m->pat_end) {
      luaL_error(m->L, "malformed pattern (missing ']')");
    }
    tick(m, 1);
    c = *p++;
    if (c == ESC && p < m->pat_end) {
      p++;
    }
  } while (p >= m->pat_end || *p != ']');
  return p + 1;
}

/* Does the subject character at s match the item p..ep? */
static bool item_holds(matcher_t *m, const char *s, const char *p, const char *ep)
{
  tick(m, 1);
  if (s >= m->src_end) {
    return false;
  }
  switch (*p) {
  case '.':
    return true;
  case ESC:
    return class_holds(uc(*s), uc(p[1]));
  case '[':
    return set_holds(m, uc(*s), p, ep - 1);
  default:
    return *p == *s;
  }
}

/* ---- The matcher ------------------------------------------------------------ */

static const char *walk(matcher_t *m, const char *s, const char *p);

/* x* and x+ (after its first x): the longest run first, then shorter ones. */
static const char *greedy(matcher_t *m, const char *s, const char *p, const char *ep)
{
  size_t n = 0;
  while (item_holds(m, s + n, p, ep)) {
    n++;
  }
  for (;;) {
    const char *end = walk(m, s + n, ep + 1);
    if (end != NULL || n == 0) {
      return end;
    }
    n--;
  }
}

/* x-: the shortest run first, one more x at a time. */
static const char *lazy(matcher_t *m, const char *s, const char *p, const char *ep)
{
  for (;;) {
    const char *end = walk(m, s, ep + 1);
    if (end != NULL) {
      return end;
    }
    if (!item_holds(m, s, p, ep)) {
      return NULL;
    }
    s++;
  }
}

static const char *open_capture(matcher_t *m, const char *s, const char *p, ptrdiff_t kind)
{
  if (m->ncap >= MAX_CAPTURES) {
    luaL_error(m->L, "too many captures");
  }
  m->cap[m->ncap].at = s;
  m->cap[m->ncap].len = kind;
  m->ncap++;
  const char *end = walk(m, s, p);
  if (end == NULL) {
    m->ncap--;
  }
  return end;
}

static const char *close_capture(matcher_t *m, const char *s, const char *p)
{
  int i = m->ncap - 1;
  while (i >= 0 && m->cap[i].len != CAP_OPEN) {
    i--;
  }
  if (i < 0) {
    luaL_error(m->L, "invalid pattern capture");
  }
  m->cap[i].len = s - m->cap[i].at;
  const char *end = walk(m, s, p);
  if (end == NULL) {
    m->cap[i].len = CAP_OPEN;
  }
  return end;
}

/* %bxy at s: from an x to the y that balances it. */
static const char *balance(matcher_t *m, const char *s, const char *p)
{
  if (p + 1 >= m->pat_end) {
    luaL_error(m->L, "malformed pattern (missing arguments to '%%b')");
  }
  if (s >= m->src_end || *s != p[0]) {
    return NULL;
  }
  int open = 1;
  while (++s < m->src_end) {
    tick(m, 1);
    if (*s == p[1]) {
      if (--open == 0) {
        return s + 1;
      }
    } else if (*s == p[0]) {
      open++;
    }
  }
  return NULL;
}

/* %1 .. %9 at s: the text of a closed capture again. */
static const char *back_reference(matcher_t *m, const char *s, int digit)
{
  int i = digit - '1';
  if (i < 0 || i >= m->ncap || m->cap[i].len == CAP_OPEN) {
    luaL_error(m->L, "invalid capture index %%%d", i + 1);
  }
  if (m->cap[i].len < 0) {
    return NULL; /* a position capture has no text to repeat */
  }
  size_t n = (size_t)m->cap[i].len;
  tick(m, 1 + n / 16);
  if ((size_t)(m->src_end - s) >= n && memcmp(m->cap[i].at, s, n) == 0) {
    return s + n;
  }
  return NULL;
}

/* Matches the pattern from p against the subject from s: the end of the
 * match, or NULL. Recursion is only where a choice has to be undone
 * (quantifiers, captures); a straight run of items loops. */
static const char *walk(matcher_t *m, const char *s, const char *p)
{
  if (m->depth-- == 0) {
    luaL_error(m->L, "pattern too complex");
  }
  while (s != NULL && p < m->pat_end) {
    tick(m, 1);
    if (*p == '(') {
      if (p + 1 < m->pat_end && p[1] == ')') {
        s = open_capture(m, s, p + 2, CAP_POSITION);
      } else {
        s = open_capture(m, s, p + 1, CAP_OPEN);
      }
      break;
    }
    if (*p == ')') {
      s = close_capture(m, s, p + 1);
      break;
    }
    if (*p == '$' && p + 1 == m->pat_end) {
      if (s != m->src_end) {
        s = NULL;
      }
      break;
    }
    if (*p == ESC && p + 1 < m->pat_end) {
      char k = p[1];
      if (k == 'b') {
        s = balance(m, s, p + 2);
        p += 4;
        continue;
      }
      if (k == 'f') {
        p += 2;
        if (p >= m->pat_end || *p != '[') {
          luaL_error(m->L, "missing '[' after '%%f' in pattern");
        }
        const char *ep = item_end(m, p);
        int before = s == m->src ? 0 : uc(s[-1]);
        int here = s < m->src_end ? uc(*s) : 0; /* the subject's ends read as '\0' */
        if (set_holds(m, before, p, ep - 1) || !set_holds(m, here, p, ep - 1)) {
          s = NULL;
        }
        p = ep;
        continue;
      }
      if (k >= '0' && k <= '9') {
        s = back_reference(m, s, k);
        p += 2;
        continue;
      }
    }
    const char *ep = item_end(m, p);
    char q = ep < m->pat_end ? *ep : '\0';
    if (!item_holds(m, s, p, ep)) {
      if (q == '*' || q == '?' || q == '-') {
        p = ep + 1; /* zero of them will do */
      } else {
        s = NULL;
      }
      continue;
    }
    if (q == '?') {
      const char *end = walk(m, s + 1, ep + 1);
      if (end != NULL) {
        s = end;
        break;
      }
      p = ep + 1;
      continue;
    }
    if (q == '*' || q == '+') {
      s = greedy(m, q == '+' ? s + 1 : s, p, ep);
      break;
    }
    if (q == '-') {
      s = lazy(m, s, p, ep);
      break;
    }
    s++;
    p = ep;
  }
  m->depth++;
  return s;
}

/* ---- Results ---------------------------------------------------------------- */

/* Capture i of the match s..e (capture 0 is the whole match when there are
 * none): its text in *at and length, or CAP_POSITION with the position pushed. */
static ptrdiff_t capture_get(matcher_t *m, int i, const char *s, const char *e, const char **at)
{
  if (i >= m->ncap) {
    if (i != 0) {
      luaL_error(m->L, "invalid capture index %%%d", i + 1);
    }
    *at = s;
    return e - s;
  }
  *at = m->cap[i].at;
  if (m->cap[i].len == CAP_OPEN) {
    luaL_error(m->L, "unfinished capture");
  }
  if (m->cap[i].len == CAP_POSITION) {
    lua_pushinteger(m->L, (lua_Integer)(m->cap[i].at - m->src) + 1);
  }
  return m->cap[i].len;
}

static void push_capture(matcher_t *m, int i, const char *s, const char *e)
{
  const char *at;
  ptrdiff_t n = capture_get(m, i, s, e, &at);
  if (n != CAP_POSITION) {
    lua_pushlstring(m->L, at, (size_t)n);
  }
}

/* Pushes the captures, or the whole match s..e when there are none and s is given. */
static int push_captures(matcher_t *m, const char *s, const char *e)
{
  int n = (m->ncap == 0 && s != NULL) ? 1 : m->ncap;
  luaL_checkstack(m->L, n, "too many captures");
  for (int i = 0; i < n; i++) {
    push_capture(m, i, s, e);
  }
  return n;
}

/* ---- The library functions ------------------------------------------------- */

/* A 1-based, possibly negative start (default 1) as an offset; > len when
 * it is past the end. */
static size_t start_offset(lua_State *L, int arg, size_t len)
{
  lua_Integer i = luaL_optinteger(L, arg, 1);
  if (i > 0) {
    return (lua_Unsigned)i - 1 > (lua_Unsigned)len ? len + 1 : (size_t)i - 1;
  }
  if (i == 0 || (lua_Unsigned) - (i + 1) >= (lua_Unsigned)len) {
    return 0;
  }
  return len - (size_t) - (i + 1) - 1;
}

static bool has_specials(const char *p, size_t n)
{
  static const char specials[] = "^$*+?.([%-";
  for (size_t i = 0; i < n; i++) {
    if (p[i] != '\0' && strchr(specials, p[i]) != NULL) {
      return true;
    }
  }
  return false;
}

/* The first p (n bytes) in s (ls bytes), or NULL. */
static const char *plain_find(matcher_t *m, const char *s, size_t ls, const char *p, size_t n)
{
  if (n == 0) {
    return s;
  }
  if (n > ls) {
    return NULL;
  }
  const char *last = s + (ls - n); /* the last place it could start */
  while (s <= last) {
    const char *c = memchr(s, p[0], (size_t)(last - s) + 1);
    if (c == NULL) {
      tick(m, 1 + (size_t)(last - s) / 64);
      return NULL;
    }
    tick(m, 1 + (size_t)(c - s) / 64 + n / 16);
    if (memcmp(c + 1, p + 1, n - 1) == 0) {
      return c;
    }
    s = c + 1;
  }
  return NULL;
}

/* Where the current policy call began on the C stack (policy_pattern_mark_stack). */
static uintptr_t stack_mark;

/** Marks the C stack's depth where a policy call begins. */
void policy_pattern_mark_stack(void)
{
  char here;
  stack_mark = (uintptr_t)&here;
}

/* Raises "C stack overflow" past POSTERN_POLICY_C_STACK bytes below the mark
 * (stacks grow down on every board). Each level of a gsub whose replacement
 * calls gsub again costs about 900 bytes on a Cortex-M3 (the Lua buffer and
 * the matcher's captures), and Lua's own limit of nested C calls does not
 * know the size of a frame. */
static void check_stack(lua_State *L)
{
  char here;
  if (stack_mark != 0 && stack_mark - (uintptr_t)&here > POSTERN_POLICY_C_STACK) {
    luaL_error(L, "C stack overflow (pattern functions nested too deep)");
  }
}

static int find_or_match(lua_State *L, bool find)
{
  check_stack(L);
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  size_t at = start_offset(L, 3, ls);
  matcher_t m;
  if (at > ls) {
    luaL_pushfail(L);
    return 1;
  }
  setup(&m, L, s, ls, p, lp);
  if (find && (lua_toboolean(L, 4) || !has_specials(p, lp))) {
    const char *hit = plain_find(&m, s + at, ls - at, p, lp);
    flush(&m);
    if (hit == NULL) {
      luaL_pushfail(L);
      return 1;
    }
    lua_pushinteger(L, (lua_Integer)(hit - s) + 1);
    lua_pushinteger(L, (lua_Integer)(hit - s) + (lua_Integer)lp);
    return 2;
  }
  bool anchored = lp > 0 && p[0] == '^';
  if (anchored) {
    p++;
  }
  for (const char *from = s + at;; from++) {
    m.ncap = 0;
    const char *end = walk(&m, from, p);
    if (end != NULL) {
      flush(&m);
      if (!find) {
        return push_captures(&m, from, end);
      }
      lua_pushinteger(L, (lua_Integer)(from - s) + 1);
      lua_pushinteger(L, (lua_Integer)(end - s));
      return push_captures(&m, NULL, NULL) + 2;
    }
    if (anchored || from >= m.src_end) {
      break;
    }
  }
  flush(&m);
  luaL_pushfail(L);
  return 1;
}

static int pat_find(lua_State *L)
{
  return find_or_match(L, true);
}

static int pat_match(lua_State *L)
{
  return find_or_match(L, false);
}

/* Where a gmatch iterator goes on from (offsets: the strings are its upvalues). */
typedef struct gmatch_state {
  size_t next;
  size_t last_end; /* end of the last match, so an empty one cannot follow it there */
  bool matched;
} gmatch_state_t;

static int gmatch_step(lua_State *L)
{
  check_stack(L);
  size_t ls, lp;
  const char *s = lua_tolstring(L, lua_upvalueindex(1), &ls);
  const char *p = lua_tolstring(L, lua_upvalueindex(2), &lp);
  gmatch_state_t *g = (gmatch_state_t *)lua_touserdata(L, lua_upvalueindex(3));
  matcher_t m;
  setup(&m, L, s, ls, p, lp);
  for (size_t at = g->next; at <= ls; at++) {
    m.ncap = 0;
    const char *end = walk(&m, s + at, p);
    if (end != NULL && !(g->matched && (size_t)(end - s) == g->last_end)) {
      g->next = g->last_end = (size_t)(end - s);
      g->matched = true;
      flush(&m);
      return push_captures(&m, s + at, end);
    }
  }
  flush(&m);
  return 0;
}

/* gmatch(s, pattern [, init]): a '^' is an ordinary character here (5.4). */
static int pat_gmatch(lua_State *L)
{
  size_t ls, lp;
  luaL_checklstring(L, 1, &ls);
  luaL_checklstring(L, 2, &lp);
  size_t at = start_offset(L, 3, ls);
  lua_settop(L, 2);
  gmatch_state_t *g = (gmatch_state_t *)lua_newuserdatauv(L, sizeof *g, 0);
  g->next = at > ls ? ls + 1 : at;
  g->last_end = 0;
  g->matched = false;
  lua_pushcclosure(L, gmatch_step, 3);
  return 1;
}

/* Adds the replacement string (argument 3) for the match s..e: %0-%9 and %%. */
static void add_expansion(matcher_t *m, luaL_Buffer *b, const char *s, const char *e)
{
  size_t n;
  const char *r = lua_tolstring(m->L, 3, &n);
  const char *end = r + n;
  tick(m, 1 + n / 16);
  for (;;) {
    const char *pc = memchr(r, ESC, (size_t)(end - r));
    if (pc == NULL) {
      luaL_addlstring(b, r, (size_t)(end - r));
      return;
    }
    luaL_addlstring(b, r, (size_t)(pc - r));
    char k = pc + 1 < end ? pc[1] : '\0';
    if (k == ESC) {
      luaL_addchar(b, ESC);
    } else if (k == '0') {
      luaL_addlstring(b, s, (size_t)(e - s));
    } else if (k >= '1' && k <= '9') {
      const char *at;
      ptrdiff_t len = capture_get(m, k - '1', s, e, &at);
      if (len == CAP_POSITION) {
        luaL_addvalue(b);
      } else {
        tick(m, (size_t)len / 16);
        luaL_addlstring(b, at, (size_t)len);
      }
    } else {
      luaL_error(m->L, "invalid use of '%c' in replacement string", ESC);
    }
    r = pc + 2;
  }
}

/* Adds the replacement of the match s..e; false when it kept the match
 * (a function or table gave nil or false). */
static bool add_replacement(matcher_t *m, luaL_Buffer *b, const char *s, const char *e, int tr)
{
  lua_State *L = m->L;
  if (tr == LUA_TFUNCTION) {
    flush(m); /* the function's own instructions go through the hook */
    lua_pushvalue(L, 3);
    lua_call(L, push_captures(m, s, e), 1);
  } else if (tr == LUA_TTABLE) {
    push_capture(m, 0, s, e);
    lua_gettable(L, 3);
  } else {
    add_expansion(m, b, s, e);
    return true;
  }
  if (!lua_toboolean(L, -1)) {
    lua_pop(L, 1);
    luaL_addlstring(b, s, (size_t)(e - s));
    return false;
  }
  if (!lua_isstring(L, -1)) {
    luaL_error(L, "invalid replacement value (a %s)", luaL_typename(L, -1));
  }
  luaL_addvalue(b);
  return true;
}

static int pat_gsub(lua_State *L)
{
  check_stack(L);
  size_t ls, lp;
  const char *s = luaL_checklstring(L, 1, &ls);
  const char *p = luaL_checklstring(L, 2, &lp);
  int tr = lua_type(L, 3);
  lua_Integer most = luaL_optinteger(L, 4, (lua_Integer)ls + 1);
  luaL_argexpected(L, tr == LUA_TNUMBER || tr == LUA_TSTRING || tr == LUA_TFUNCTION || tr == LUA_TTABLE, 3,
                   "string/function/table");
  bool anchored = lp > 0 && p[0] == '^';
  if (anchored) {
    p++;
    lp--;
  }
  luaL_Buffer b;
  matcher_t m;
  luaL_buffinit(L, &b);
  setup(&m, L, s, ls, p, lp);
  const char *at = s, *last_end = NULL;
  lua_Integer n = 0;
  bool changed = false;
  while (n < most) {
    m.ncap = 0;
    const char *end = walk(&m, at, p);
    if (end != NULL && end != last_end) {
      n++;
      changed = add_replacement(&m, &b, at, end, tr) || changed;
      at = last_end = end;
    } else if (at < m.src_end) {
      luaL_addchar(&b, *at++);
    } else {
      break;
    }
    if (anchored) {
      break;
    }
  }
  flush(&m);
  if (changed) {
    luaL_addlstring(&b, at, (size_t)(m.src_end - at));
    luaL_pushresult(&b);
  } else {
    lua_pushvalue(L, 1);
  }
  lua_pushinteger(L, n);
  return 2;
}

/** Replaces find, match, gmatch and gsub in the table at idx. */
void policy_pattern_install(lua_State *L, int idx, policy_pattern_charge_fn charge)
{
  static const luaL_Reg fns[] = {
      {"find", pat_find}, {"match", pat_match}, {"gmatch", pat_gmatch}, {"gsub", pat_gsub}, {NULL, NULL}};
  idx = lua_absindex(L, idx);
  charge_fn = charge;
  for (const luaL_Reg *f = fns; f->name != NULL; f++) {
    lua_pushcfunction(L, f->func);
    lua_setfield(L, idx, f->name);
  }
}
