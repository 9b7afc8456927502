/* http_conn_int.h: the connection record and the stages that share it (http_conn.c, http_request.c,
 * http_upload.c, http_routes.c, http_answer.c); internal to the HTTP server, the public API is http_conn.h. */
#ifndef POSTERN_HTTP_CONN_INT_H
#define POSTERN_HTTP_CONN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunked.h"
#include "digest.h"
#include "http_conn.h"
#include "http_parser.h"
#include "lwip/altcp.h"
#include "lwip/pbuf.h"
#include "postern_opts.h"
#include "storage.h"

/** Send-buffer room required before a response is rendered. */
#define CONN_RESP_ROOM 1536
/** Longest listing entry: a name the medium holds may predate the UTF-8 rule
 *  (or, on the host, be put there by hand), and each byte that is not UTF-8
 *  renders as \ufffd, six bytes. */
#define CONN_LIST_ENTRY_MAX (6 * POSTERN_NAME_MAX + 48)

/** Heap a queued segment costs beyond its data: the pbuf, its header room, the heap's own header. */
#define CONN_SEG_OVERHEAD 128

/** Request line bytes kept for the access log. */
#define CONN_REQLINE_MAX 96

typedef enum conn_state {
  CONN_FREE = 0,
  CONN_HEAD,      /* reading a request head */
  CONN_OPEN,      /* an accepted upload waits for storage to open it; its 100 or answer waits too */
  CONN_BODY,      /* streaming an accepted upload body to storage */
  CONN_COMMIT,    /* the body is complete: the commit, then the answer */
  CONN_REMOVE,    /* a DELETE waits for storage */
  CONN_SEND_FILE, /* streaming a download */
  CONN_SEND_LIST, /* streaming the JSON listing */
  CONN_LINGER,    /* response sent, FIN sent; reading and dropping until the peer closes */
} conn_state_t;

/* How a connection goes on after a response. */
typedef enum conn_after {
  AFTER_NEXT,   /* keep-alive: read the next request */
  AFTER_LINGER, /* close: FIN, then drop what still arrives for a while */
} conn_after_t;

typedef struct conn {
  struct altcp_pcb *pcb;
  conn_state_t state;
  bool keep_alive; /* the request allows a next one on this connection */
  bool expect;     /* Expect: 100-continue was honoured */
  bool chunked;    /* the body uses the chunked coding */
  bool has_length;
  bool want_digest;     /* Content-Digest: sha-256 was sent */
  bool hash;            /* hash this upload: on unless the policy said digest = false (and no Content-Digest) */
  bool head_only;       /* HEAD: headers of a download without the bytes */
  bool served;          /* a response went out and the connection was kept: idle between requests */
  bool retry_due;       /* a retryable 417 was sent: the next request must be its retry */
  bool waiting;         /* a storage call answered STORAGE_PENDING; storage_ready() resumes */
  bool checked;         /* the complete body passed its digest and the policy's after-body check */
  bool replaced;        /* the commit replaced a version */
  bool to_policy;       /* PUT /_policy or /_config: the body goes to the policy's buffer, not to storage */
  bool to_config;       /* PUT /_config: that body is the settings */
  struct pbuf *rx;      /* received bytes not consumed yet */
  uint16_t fed;         /* bytes of rx the head parser has seen */
  uint32_t last_ms;     /* last progress, for the timeouts */
  uint32_t head_ms;     /* first byte of the head being read: its deadline runs from here */
  uint32_t body_ms;     /* an upload's start, for its minimum rate */
  uint32_t rate_ms;     /* start of the upload's current rate window */
  uint64_t rate_bytes;  /* body bytes at rate_ms */
  uint32_t linger_ms;   /* when the lingering close began */
  uint32_t wait_ms;     /* when the storage wait began */
  uint32_t linger_left; /* bytes it still reads and drops: past POSTERN_LINGER_MAX, a refused body */
  uint32_t retry_key;   /* method and target of the request a retryable 417 refused */
  hp_parser_t parser;
  hp_request_t req;
  uint64_t length;     /* announced body length */
  uint64_t body_left;  /* body bytes still to come (Content-Length) */
  uint64_t body_bytes; /* body bytes stored so far */
  chunked_t chunk;
  digest_sha256_t sha;
  uint8_t digest[DIGEST_SHA256_LEN]; /* the client's Content-Digest; once the body is in, its SHA-256 */
  storage_upload_t *upload;
  storage_reader_t *reader;
  uint64_t send_left; /* download or listing bytes still to send */
  uint32_t list_next; /* listing: next entry to render; GET /_policy?source: next byte */
  uint32_t send_gen;  /* GET /_policy?source: the policy being sent (policy_running) */
  uint16_t status;    /* final status, for the access log */
  char name[POSTERN_NAME_MAX + 1];
  char reqline[CONN_REQLINE_MAX];
} conn_t;

/* ---- http_conn.c: the connection's life ---------------------------------- */

/** Closes the connection now (an abort when the close fails); c is free after. */
void conn_close(conn_t *c);
/** Drops n bytes from the front of rx and opens the window by as much. */
void conn_consume(conn_t *c, size_t n);
/** True when the send buffer has room for a response head and a short body. */
bool conn_room(conn_t *c);
/** Notes a storage answer: true for STORAGE_PENDING (storage_ready() resumes c), false otherwise. */
bool conn_storage_wait(conn_t *c, int rc);

/* ---- http_request.c: the head and the decision --------------------------- */

/** Feeds the unparsed bytes of rx to the head parser; returns its result (HP_*). */
int conn_feed_head(conn_t *c);
/** Checks, routes and decides a complete head; answers a refusal, or moves c to the state that serves it. */
void conn_on_head(conn_t *c, const char *head);

/* ---- http_upload.c: an accepted upload ----------------------------------- */

/** CONN_OPEN: opens the upload in storage, then 100 Continue (or the refusal). */
void conn_open_upload(conn_t *c);
/** CONN_BODY: streams what rx holds of the body into storage. */
void conn_feed_body(conn_t *c);
/** CONN_COMMIT: digest, the policy's last word, the commit, the answer. */
void conn_commit(conn_t *c);
/** Aborts the upload after a failure mid-body and answers. */
void conn_fail_upload(conn_t *c, int status, const char *msg);

/* ---- http_routes.c: content answers -------------------------------------- */

/** CONN_REMOVE: DELETE, once storage takes the call. */
void conn_remove(conn_t *c);
void conn_start_download(conn_t *c);
void conn_start_list(conn_t *c);
void conn_send_status(conn_t *c);
/** GET /_policy: the running policy's name, size and SHA-256 (JSON), or with `source` its text. */
void conn_send_policy(conn_t *c, bool source);
/** GET /_config: the settings as a JSON object of strings, without those the policy marks secret. */
void conn_send_config(conn_t *c);
/** CONN_SEND_*: moves download or listing bytes into the send buffer while it has room. */
void conn_pump(conn_t *c);

/* ---- http_answer.c: answers --------------------------------------------- */

/** Queues bytes (copied); false, logged, when lwIP had no room. */
bool conn_write(conn_t *c, const void *data, size_t len, bool more);
/** CONN_LINGER: reads and drops what rx holds; closes once its byte budget is spent. */
void conn_linger_drop(conn_t *c);
/** Enters the state that follows a response. */
void conn_after(conn_t *c, conn_after_t after);
/** A complete error answer with a JSON body in the seed's shape, logged; `close_header` adds Connection: close. */
void conn_respond_error(conn_t *c, int status, const char *key, const char *message, bool close_header,
                        conn_after_t after, const char *challenge);
/** The usual refusal of a request whose body may follow: answer and close. */
void conn_refuse(conn_t *c, int status, const char *message);
/** A success head plus an optional short body, logged; false after closing c when lwIP had no room. */
bool conn_send_ok(conn_t *c, int status, const char *type, uint64_t length, const char *repr_digest, const char *body,
                  size_t body_len, uint64_t log_bytes, bool more);

/** A new connection when every slot is busy: 503 and a close; returns what lwIP's accept callback returns. */
err_t conn_refuse_busy(struct altcp_pcb *pcb);

#endif /* POSTERN_HTTP_CONN_INT_H */
