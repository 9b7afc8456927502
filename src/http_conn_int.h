/* http_conn_int.h: the connection record and the stages that share it (http_conn.c, http_request.c,
 * http_upload.c, http_routes.c, http_answer.c); internal to the HTTP server, the public API is http_conn.h. */
#ifndef POSTERN_HTTP_CONN_INT_H
#define POSTERN_HTTP_CONN_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chunked.h"
#include "conditional.h"
#include "digest.h"
#include "http_conn.h"
#include "http_parser.h"
#include "lwip/altcp.h"
#include "lwip/pbuf.h"
#include "http_response.h"
#include "policy.h"
#include "postern_opts.h"
#include "storage.h"

/** Send-buffer room required before a response is rendered. */
#define CONN_RESP_ROOM 1536
/** Longest listing entry: a name the medium holds may predate the UTF-8 rule
 *  (or, on the host, be put there by hand), and each byte that is not UTF-8
 *  renders as \ufffd, six bytes. */
#define CONN_LIST_ENTRY_MAX (6 * POSTERN_NAME_MAX + 48 + CONN_LIST_DIGEST_MAX)
/** What a listing entry's "etag" and "sha256" add: ,"etag":"\"<32 hex>\"","sha256":"<44 base64>". */
#define CONN_LIST_DIGEST_MAX (10 + COND_ETAG_LEN + 2 + 12 + DIGEST_SHA256_B64_LEN)

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

/* A form upload's decoder and head (http_form.c), from a pool of POSTERN_FORM_UPLOADS. */
typedef struct conn_form conn_form_t;

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
  bool list_route;      /* a 405 on /files/, whose Allow has POST */
  bool sha_done;        /* the body's SHA-256 was computed: c->digest holds it, storage gets it */
  bool cond_held;       /* PUT: preconditions passed on the version below, checked again once the name is ours */
  bool cond_existed;    /* that version existed */
  bool cond_tagged;     /* and had this ETag */
  uint8_t cond_tag[16]; /* the ETag's bytes: the first 16 of the SHA-256 */
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
  conn_form_t *form; /* POST /files/ with multipart/form-data: its decoder; NULL otherwise */
  storage_reader_t *reader;
  uint64_t send_left; /* download or listing bytes still to send */
  uint32_t list_next; /* listing: next entry to render; GET /_policy?source: next byte */
  uint32_t send_gen;  /* GET /_policy?source: the policy being sent (policy_running) */
  uint16_t status;    /* final status, for the access log */
  char name[POSTERN_NAME_MAX + 1];
  char reqline[CONN_REQLINE_MAX];
  char origin[POSTERN_ORIGIN_MAX + 1]; /* the policy's allow_origin for this request's answers; empty = none */
  const uint8_t *send_mem;             /* CONN_SEND_FILE from memory (the page), or NULL */
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
/** The head's fields as the policy sees them, for the decision being made (one at a time). */
extern policy_str_t conn_policy_names[POSTERN_MAX_HEADERS], conn_policy_values[POSTERN_MAX_HEADERS];
/** The policy's answer to the decision being made (one at a time: the head's, a form's file, an upload's end). */
extern policy_decision_t conn_decision;
/** The peer as the policy sees it: "10.0.2.2:54321", or "[fec0::2]:54321". */
size_t conn_peer(const void *conn, char *out, size_t cap);

/* ---- http_upload.c: an accepted upload ----------------------------------- */

/** CONN_OPEN: opens the upload in storage, then 100 Continue (or the refusal). */
void conn_open_upload(conn_t *c);
/** CONN_BODY: streams what rx holds of the body into storage. */
void conn_feed_body(conn_t *c);
/** CONN_COMMIT: digest, the policy's last word, the commit, the answer. */
void conn_commit(conn_t *c);
/** Aborts the upload after a failure mid-body and answers. */
void conn_fail_upload(conn_t *c, int status, const char *msg);
/** Storage and the digest take one span of the file's content; returns a storage result (STORAGE_PENDING noted). */
int conn_sink(conn_t *c, const uint8_t *data, size_t len);

/* ---- http_form.c: a form upload (POST /files/, multipart/form-data) ------ */

/** True when the request's Content-Type is multipart/form-data. */
bool conn_form_wanted(const conn_t *c, const char *head);
/** After the policy's first yes: takes a form slot, reads the boundary, keeps the head; CONN_OPEN or the refusal. */
void conn_form_begin(conn_t *c, const char *head, const char *path, policy_str_t query);
/** CONN_BODY of a form: the file part to storage, its name decided on the way; then the commit. */
void conn_form_feed(conn_t *c);
/** The connection answered or closes: what its form upload still holds of the lwIP heap is freed. */
void conn_form_release(conn_t *c);

/* ---- http_conditional.c: preconditions and ranges on files ---------------- */

/**
 * PUT or DELETE of a file, after the policy's decision and before storage is
 * touched: evaluates If-Match and If-None-Match against the stored file.
 * False when it answered (412, or 400 for a malformed field), the body
 * unread and drained like any refusal.
 */
bool conn_preconditions(conn_t *c, const char *head, bool is_delete);
/**
 * PUT, once storage_open() holds the name (no other upload can commit it
 * now): true when the file is still the version the preconditions passed
 * on; false when it changed meanwhile (another upload committed between
 * the head and the open: the answer is then 412, before any 100).
 */
bool conn_preconditions_still_hold(conn_t *c);
/**
 * GET or HEAD of an open reader: preconditions (304, 412), then Range and
 * If-Range. Sets c->etag and, for a satisfiable range, seeks the reader,
 * sets c->content_range, *status to 206 and *length to the range's. False
 * when it answered (the reader closed).
 */
bool conn_download_conditions(conn_t *c, const char *head, uint64_t size, int *status, uint64_t *length);

/* ---- http_routes.c: content answers -------------------------------------- */

/** CONN_REMOVE: DELETE, once storage takes the call. */
void conn_remove(conn_t *c);
/** GET or HEAD of a file: preconditions, Range, then the download (head: the request's, valid during the call). */
void conn_start_download(conn_t *c, const char *head);
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
/*
 * What the next answer says of a file: its ETag, Accept-Ranges and
 * Content-Range. Set while the answer is decided, used by the next
 * conn_send_ok() or conn_respond_error() (the one answer rendered at a time,
 * like its head) and cleared by it, so nothing of it stays in the connection.
 */
extern char conn_etag[COND_ETAG_LEN + 1]; /* empty: none */
extern char conn_content_range[48];       /* empty: none */
extern bool conn_accept_ranges;

/** A success head plus an optional short body, logged; false after closing c when lwIP had no room. */
bool conn_send_ok(conn_t *c, int status, const char *type, uint64_t length, const char *repr_digest, const char *body,
                  size_t body_len, uint64_t log_bytes, bool more);

/** A head of the caller's own (its status, type, length, extra lines) and the CORS origin, counted and
 *  logged; `more`: content follows. False after closing c when lwIP had no room. */
bool conn_send_head(conn_t *c, http_head_t *h, bool more);

/* ---- http_web.c: what browsers need ------------------------------------- */

/** The answer to an OPTIONS preflight the policy accepted: 204 with its Access-Control-Allow-* fields. */
void conn_send_preflight(conn_t *c, const policy_decision_t *d);
/** GET or HEAD /: the upload page, gzip-compressed when Accept-Encoding allows it (head: the request's). */
void conn_start_page(conn_t *c, const char *head);

/** A new connection when every slot is busy: 503 and a close; returns what lwIP's accept callback returns. */
err_t conn_refuse_busy(struct altcp_pcb *pcb);

#endif /* POSTERN_HTTP_CONN_INT_H */
