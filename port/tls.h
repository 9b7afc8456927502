/* tls.h: postern's altcp TLS layer on mbedTLS 3.6: a server-side TLS 1.3/1.2 pcb that wraps an altcp_tcp pcb.
 *
 * It serves postern's HTTP server, not any altcp application: two of altcp's
 * promises are kept only as postern uses them. A write larger than
 * altcp_sndbuf() may be taken in part before ERR_MEM (postern sizes each
 * write to the room it reads first, and closes on ERR_MEM); and the sent
 * callback reports ciphertext bytes acknowledged, not the application's
 * (postern reads the room again, never the count). mbedTLS's allocator is
 * global: see POSTERN_TLS_OWN_HEAP for a firmware with its own.
 */
#ifndef POSTERN_TLS_H
#define POSTERN_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lwip/altcp.h"

/** Whether the server asks for a client certificate. */
typedef enum tls_client_cert {
  TLS_CLIENT_CERT_NONE,     /* never asked */
  TLS_CLIENT_CERT_OPTIONAL, /* asked; a missing or untrusted one leaves req.tls.subject nil */
  TLS_CLIENT_CERT_REQUIRED, /* asked; without a trusted one the handshake fails */
} tls_client_cert_t;

/**
 * The server's credentials. Each buffer is PEM (NUL-terminated, the length
 * counting the NUL) or DER. The buffers must stay valid only during
 * tls_server_init(): everything is parsed into the TLS heap.
 */
typedef struct tls_server_params {
  const uint8_t *cert; /* server certificate chain (ECDSA P-256) */
  size_t cert_len;
  const uint8_t *key; /* its private key */
  size_t key_len;
  const uint8_t *client_ca; /* CA of client certificates, or NULL */
  size_t client_ca_len;
  tls_client_cert_t client_cert; /* ignored without client_ca */
} tls_server_params_t;

/** What a TLS connection tells the policy; absent fields are NULL. */
typedef struct tls_facts {
  const char *version;     /* "TLSv1.3" or "TLSv1.2" */
  const char *cipher;      /* mbedTLS suite name, e.g. "TLS1-3-AES-128-GCM-SHA256" */
  const char *subject;     /* the trusted client certificate's subject CN */
  const char *fingerprint; /* SHA-256 of its DER, lowercase hex */
} tls_facts_t;

/** Counters for /_status. */
typedef struct tls_stats {
  size_t heap_size, heap_in_use, heap_high_water;
  uint32_t sessions, sessions_high_water, sessions_max;
  uint32_t handshakes, handshake_failures, refused_over_limit;
} tls_stats_t;

/**
 * Sets up the TLS heap, the random generator and the server configuration.
 * Returns 0, or -1 after logging why (unreadable certificate, a key that is
 * not ECDSA P-256, a key that does not match the certificate, ...).
 */
int tls_server_init(const tls_server_params_t *p);
/** The allocator for http_listen(): each connection is a TLS pcb over TCP. */
altcp_allocator_t *tls_allocator(void);
/** Fills f for a TLS pcb (after its handshake); false for any other pcb. */
bool tls_get_facts(struct altcp_pcb *pcb, tls_facts_t *f);
/** True when pcb is a connection of this TLS layer. */
bool tls_owns(const struct altcp_pcb *pcb);
/**
 * The application stops reading for a reason that is not the client's (its
 * storage is busy) and will hold what arrives: while `hold`, the ciphertext
 * queue takes whatever the window brings (up to TCP_WND), where it would
 * refuse beyond POSTERN_TLS_RX_PBUFS and make lwIP drop what follows. Not a
 * TLS pcb: nothing.
 */
void tls_hold_window(struct altcp_pcb *pcb, bool hold);
/**
 * Delivers what waits for the application (staged plaintext, queued
 * ciphertext) and reopens the window for what it consumed, as the layer's
 * callbacks do when they return. For an application that resumes outside
 * the layer's callbacks (storage_ready()); not a TLS pcb: nothing.
 */
void tls_resume(struct altcp_pcb *pcb);
/**
 * Sets the hook a connection beyond POSTERN_MAX_TLS_CONNS calls before it is
 * refused: the application closes one of its idle TLS connections and
 * returns true, and the new connection takes the session that freed up.
 */
void tls_set_reclaim(bool (*reclaim)(void));
/** Heap and session counters. */
void tls_get_stats(tls_stats_t *s);

#endif /* POSTERN_TLS_H */
