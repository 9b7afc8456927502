/* policy_store_host.c: the host's keeping of an accepted policy (.policy.lua, .policy.prev.lua) and settings (.config.json) beside the stored files. */
#include "policy_store_host.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "policy_store.h"
#include "postern_opts.h"

static char store_dir[4096];

/** Where the store lives: the storage folder (its backend hides dot-files from listings). */
void policy_store_host_init(const char *dir)
{
  snprintf(store_dir, sizeof store_dir, "%s", dir);
}

static void store_path(char *out, size_t cap, const char *name)
{
  snprintf(out, cap, "%s/%s", store_dir, name);
}

/* Writes data to name atomically: a temporary file, fsync, rename, fsync of the folder. */
static int store_write(const char *name, const char *data, size_t len)
{
  char tmp[4200], path[4200];
  store_path(tmp, sizeof tmp, ".store.tmp");
  store_path(path, sizeof path, name);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    log_line("policy store: cannot create %s: %s", tmp, strerror(errno));
    return -1;
  }
  size_t done = 0;
  while (done < len) {
    ssize_t n = write(fd, data + done, len - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      log_line("policy store: cannot write %s: %s", tmp, strerror(errno));
      close(fd);
      unlink(tmp);
      return -1;
    }
    done += (size_t)n;
  }
  if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
    log_line("policy store: cannot keep %s: %s", path, strerror(errno));
    unlink(tmp);
    return -1;
  }
  int dfd = open(store_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    fsync(dfd);
    close(dfd);
  }
  return 0;
}

/** Keeps source as .policy.lua; the one kept before becomes .policy.prev.lua. */
int policy_store_save(const char *source, size_t len)
{
  char cur[4200], prev[4200];
  store_path(cur, sizeof cur, POLICY_STORE_HOST_CURRENT);
  store_path(prev, sizeof prev, POLICY_STORE_HOST_PREVIOUS);
  if (rename(cur, prev) != 0 && errno != ENOENT) {
    log_line("policy store: cannot keep %s as %s: %s", cur, prev, strerror(errno));
  }
  return store_write(POLICY_STORE_HOST_CURRENT, source, len) == 0 ? POLICY_STORE_KEPT : POLICY_STORE_FAILED;
}

/* Appends s as a JSON string to out (cap bytes); false when it does not fit. */
static bool store_json_str(char *out, size_t cap, size_t *len, const char *s)
{
  static const char hex[] = "0123456789abcdef";
  size_t n = *len;
  if (n + 1 >= cap) {
    return false;
  }
  out[n++] = '"';
  for (const unsigned char *u = (const unsigned char *)s; *u != '\0'; u++) {
    if (n + 7 >= cap) {
      return false;
    }
    if (*u == '"' || *u == '\\') {
      out[n++] = '\\';
      out[n++] = (char)*u;
    } else if (*u < 0x20) {
      memcpy(out + n, "\\u00", 4);
      out[n + 4] = hex[*u >> 4];
      out[n + 5] = hex[*u & 15];
      n += 6;
    } else {
      out[n++] = (char)*u;
    }
  }
  out[n++] = '"';
  *len = n;
  return true;
}

/** Keeps the settings as .config.json, a JSON object of strings. */
int policy_store_save_config(const char *const *names, const char *const *values, int n)
{
  static char json[4 * POSTERN_CONFIG_MAX + 8];
  size_t len = 0;
  json[len++] = '{';
  for (int i = 0; i < n; i++) {
    if (i > 0) {
      json[len++] = ',';
    }
    bool fits = store_json_str(json, sizeof json - 3, &len, names[i]);
    if (fits) {
      json[len++] = ':';
      fits = store_json_str(json, sizeof json - 3, &len, values[i]);
    }
    if (!fits) {
      log_line("policy store: the settings do not fit %u bytes", (unsigned)sizeof json);
      return POLICY_STORE_FAILED;
    }
  }
  json[len++] = '}';
  json[len++] = '\n';
  return store_write(POLICY_STORE_HOST_CONFIG, json, len) == 0 ? POLICY_STORE_KEPT : POLICY_STORE_FAILED;
}

/** Moves a kept policy that did not load aside as .policy.bad.lua, so that a later save never keeps it as the fallback. */
void policy_store_host_set_aside(const char *name)
{
  char from[4200], to[4200];
  store_path(from, sizeof from, name);
  store_path(to, sizeof to, ".policy.bad.lua");
  if (rename(from, to) != 0) {
    log_line("policy store: cannot move %s aside: %s", from, strerror(errno));
  }
}

/** Reads a kept policy (name: one of the POLICY_STORE_HOST_* files) into buf; its length, or -1 when absent or too large. */
long policy_store_host_read(const char *name, char *buf, size_t cap)
{
  char path[4200];
  store_path(path, sizeof path, name);
  FILE *f = fopen(path, "rb");
  if (f == NULL) {
    return -1;
  }
  size_t n = fread(buf, 1, cap, f);
  bool too_big = n == cap;
  fclose(f);
  if (too_big) {
    log_line("policy store: %s is larger than %u bytes; ignored", path, (unsigned)cap);
    return -1;
  }
  return (long)n;
}
