/* test_response.c: unit tests of the response writer: the status table's lookups and a rendered head. */
#include <stdbool.h>
#include <stdint.h>

#include "http_response.h"
#include "platform.h"
#include "unit.h"

static bool have_time;

/* The clock http_render_head asks for a Date: none, or 2026-11-22 04:35:00 UTC. */
bool platform_unix_time(uint64_t *seconds)
{
  *seconds = 1795322100u;
  return have_time;
}

static void test_status_slots(void)
{
  int prev = 0;
  for (size_t slot = 0; slot < HTTP_STATUS_KNOWN; slot++) {
    int code = http_status_code(slot);
    CHECK(code > prev); /* ascending: the lookup is a binary search */
    CHECK_EQ(http_status_slot(code), slot);
    prev = code;
  }
  static const int unknown[] = {0, 99, 101, 202, 299, 418, 499, 502, 508, 600, -1};
  for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
    CHECK_EQ(http_status_slot(unknown[i]), HTTP_STATUS_KNOWN);
  }
  CHECK_STR(http_reason(100), "Continue");
  CHECK_STR(http_reason(417), "Expectation Failed");
  CHECK_STR(http_reason(507), "Insufficient Storage");
  CHECK_STR(http_reason(418), "Client Error");
  CHECK_STR(http_error_key(417), "expectation_failed");
  CHECK_STR(http_error_key(200), "client_error");
  CHECK_STR(http_error_key(502), "server_error");
}

static void test_render_head(void)
{
  char buf[512];
  wbuf_t b;
  wb_init(&b, buf, sizeof buf - 1);
  http_head_t h = {.status = 417, .content_type = "application/json", .content_length = 42, .close = true};
  http_render_head(&b, &h);
  buf[b.len] = '\0';
  CHECK_STR(buf, "HTTP/1.1 417 Expectation Failed\r\nServer: postern\r\nContent-Type: application/json\r\n"
                 "Content-Length: 42\r\nConnection: close\r\n\r\n");
  have_time = true;
  wb_init(&b, buf, sizeof buf - 1);
  h = (http_head_t){.status = 401, .content_length = 0, .www_authenticate = "Bearer realm=\"postern\""};
  http_render_head(&b, &h);
  buf[b.len] = '\0';
  CHECK_STR(buf, "HTTP/1.1 401 Unauthorized\r\nDate: Sun, 22 Nov 2026 04:35:00 GMT\r\nServer: postern\r\n"
                 "Content-Length: 0\r\nWWW-Authenticate: Bearer realm=\"postern\"\r\n\r\n");
  wb_init(&b, buf, 20);
  http_render_head(&b, &h);
  CHECK(b.overflow);
  have_time = false;
  wb_init(&b, buf, sizeof buf - 1);
  h = (http_head_t){.status = 100};
  http_render_head(&b, &h);
  buf[b.len] = '\0';
  CHECK_STR(buf, "HTTP/1.1 100 Continue\r\n\r\n");
}

int main(void)
{
  RUN(test_status_slots);
  RUN(test_render_head);
  return UNIT_END();
}
