/* tls_keyupdate.h: TLS 1.3 KeyUpdate (RFC 8446 §4.6.3) on the server side, which mbedTLS 3.6 does not implement. */
#ifndef POSTERN_TLS_KEYUPDATE_H
#define POSTERN_TLS_KEYUPDATE_H

struct mbedtls_ssl_context;

/** What tls_post_handshake() made of the message mbedtls_ssl_read() refused. */
typedef enum tls_post_hs {
  TLS_POST_HS_NONE,        /* not a handshake message after the handshake: the read's error stands */
  TLS_POST_HS_KEY_UPDATED, /* a KeyUpdate: the receive keys are the next generation */
  TLS_POST_HS_KEY_REPLY,   /* the same, and the peer asked for ours: tls_key_update_send() before more data */
  TLS_POST_HS_REFUSED, /* anything else, or a malformed KeyUpdate: a fatal alert is queued, the connection must end */
} tls_post_hs_t;

/**
 * mbedtls_ssl_read() returned rc. mbedTLS 3.6 refuses every handshake message
 * after the handshake with MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE and no alert,
 * leaving the message in the context; the next read moves past it. A TLS 1.3
 * KeyUpdate is applied here and the connection goes on; anything else gets
 * its fatal alert, and *why a short reason for the log.
 */
tls_post_hs_t tls_post_handshake(struct mbedtls_ssl_context *ssl, int rc, const char **why);

/**
 * Sends KeyUpdate(update_not_requested) and moves the send keys to the next
 * generation. Returns 0 once the record is built with the old keys (it may
 * still wait in mbedTLS's output buffer: the bio said WANT_WRITE);
 * MBEDTLS_ERR_SSL_WANT_WRITE, doing nothing, while an earlier record waits
 * there; or another mbedTLS error, after which the connection must end.
 */
int tls_key_update_send(struct mbedtls_ssl_context *ssl);

#endif /* POSTERN_TLS_KEYUPDATE_H */
