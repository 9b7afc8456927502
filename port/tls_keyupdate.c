/* tls_keyupdate.c: TLS 1.3 KeyUpdate (RFC 8446 §4.6.3) on the server side, which mbedTLS 3.6 does not implement.
 *
 * mbedTLS 3.6 has no KeyUpdate code at all: a server's mbedtls_ssl_read()
 * refuses every post-handshake handshake message with
 * MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE (-0x7700) and sends no alert. It does so
 * after the record is decrypted and its sequence number counted, with the
 * message left in in_msg/in_hslen, and nothing else changes: the next read
 * consumes the message and decrypts the next record. So a KeyUpdate can be
 * applied between the two reads, which is what this file does, without
 * changing mbedTLS:
 *
 *   application_traffic_secret_N+1 =
 *       HKDF-Expand-Label(application_traffic_secret_N, "traffic upd", "", Hash.length)
 *
 * then the key and IV of that direction are derived from it as at the end of
 * the handshake, and the record sequence number of that direction restarts
 * at 0. The secrets live in the session (app_secrets.*_traffic_secret_N,
 * kept by mbedTLS after the handshake); the keys in the application
 * transform, which after the handshake serves both directions
 * (psa_key_dec/iv_dec in, psa_key_enc/iv_enc out) and whose keys
 * mbedtls_ssl_free() destroys, whichever generation they are.
 *
 * This is the only file of postern that reads mbedTLS's library-internal
 * headers (the transform, the key schedule's HKDF-Expand-Label, the record
 * writer); the build checks the mbedTLS version (3.6.6) these were written
 * against.
 */
#include "postern_opts.h"

#if POSTERN_TLS

#include "tls_keyupdate.h"

#include <stdbool.h>
#include <string.h>

/* The fields of mbedTLS's structures, as its own library code sees them
 * (common.h defines this too, but every mbedTLS header must see it). */
#define MBEDTLS_ALLOW_PRIVATE_ACCESS
/* ssl.h tests MBEDTLS_SSL_DTLS_CONNECTION_ID_COMPAT and alignment.h
 * MBEDTLS_GCC_VERSION with #if where they may be undefined: -Wundef stays
 * quiet for these headers only. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wundef"
#include "ssl_misc.h"
#include "ssl_tls13_keys.h"
#include "mbedtls/platform_util.h"
#include "mbedtls/psa_util.h"
#pragma GCC diagnostic pop

/** RFC 8446 §4: HandshakeType key_update. */
#define TLS_HS_KEY_UPDATE 24
/** The handshake header: type and a 24-bit length. */
#define TLS_HS_HDR 4

/* Moves one direction's traffic secret, key and IV to the next generation
 * and restarts its sequence number. Nothing changes when it fails. */
static int tls_next_keys(mbedtls_ssl_context *ssl, bool outbound)
{
  mbedtls_ssl_transform *t = outbound ? ssl->transform_out : ssl->transform_in;
  const mbedtls_ssl_ciphersuite_t *suite = mbedtls_ssl_ciphersuite_from_id(ssl->session->ciphersuite);
  if (t == NULL || suite == NULL || t->ivlen > sizeof t->iv_enc) {
    return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
  }
  psa_algorithm_t hash = mbedtls_md_psa_alg_from_type((mbedtls_md_type_t)suite->mac);
  size_t hash_len = PSA_HASH_LENGTH(hash);
  mbedtls_ssl_tls13_application_secrets *app = &ssl->session->app_secrets;
  /* The server writes with the server secret and reads with the client's. */
  unsigned char *secret =
      outbound ? app->server_application_traffic_secret_N : app->client_application_traffic_secret_N;
  mbedtls_svc_key_id_t *key = outbound ? &t->psa_key_enc : &t->psa_key_dec;
  unsigned char *iv = outbound ? t->iv_enc : t->iv_dec;

  /* The new key has the old one's type, size, algorithm and usage. */
  psa_key_attributes_t old = PSA_KEY_ATTRIBUTES_INIT;
  if (psa_get_key_attributes(*key, &old) != PSA_SUCCESS) {
    return MBEDTLS_ERR_SSL_INTERNAL_ERROR;
  }
  psa_key_attributes_t attr = PSA_KEY_ATTRIBUTES_INIT;
  psa_set_key_usage_flags(&attr, psa_get_key_usage_flags(&old));
  psa_set_key_algorithm(&attr, psa_get_key_algorithm(&old));
  psa_set_key_type(&attr, psa_get_key_type(&old));
  size_t key_len = PSA_BITS_TO_BYTES(psa_get_key_bits(&old));
  psa_reset_key_attributes(&old);

  unsigned char next[MBEDTLS_TLS1_3_MD_MAX_SIZE], key_bytes[32], iv_bytes[sizeof t->iv_enc];
  mbedtls_svc_key_id_t fresh = MBEDTLS_SVC_KEY_ID_INIT;
  int rc = MBEDTLS_ERR_SSL_INTERNAL_ERROR;
  if (hash_len == 0 || hash_len > sizeof next || key_len > sizeof key_bytes) {
    goto out;
  }
  rc = mbedtls_ssl_tls13_hkdf_expand_label(hash, secret, hash_len, MBEDTLS_SSL_TLS1_3_LBL_WITH_LEN(traffic_upd), NULL,
                                           0, next, hash_len);
  if (rc == 0) {
    rc = mbedtls_ssl_tls13_hkdf_expand_label(hash, next, hash_len, MBEDTLS_SSL_TLS1_3_LBL_WITH_LEN(key), NULL, 0,
                                             key_bytes, key_len);
  }
  if (rc == 0) {
    rc = mbedtls_ssl_tls13_hkdf_expand_label(hash, next, hash_len, MBEDTLS_SSL_TLS1_3_LBL_WITH_LEN(iv), NULL, 0,
                                             iv_bytes, t->ivlen);
  }
  if (rc == 0 && psa_import_key(&attr, key_bytes, key_len, &fresh) != PSA_SUCCESS) {
    rc = MBEDTLS_ERR_SSL_INTERNAL_ERROR;
  }
  if (rc != 0) {
    goto out;
  }
  /* Imported first, so a failure above leaves the connection's keys intact. */
  psa_destroy_key(*key);
  *key = fresh;
  memcpy(iv, iv_bytes, t->ivlen);
  memcpy(secret, next, hash_len);
  /* Each generation counts its records from 0 (RFC 8446 §5.3). */
  if (outbound) {
    mbedtls_ssl_set_outbound_transform(ssl, t);
  } else {
    mbedtls_ssl_set_inbound_transform(ssl, t);
  }
out:
  mbedtls_platform_zeroize(next, sizeof next);
  mbedtls_platform_zeroize(key_bytes, sizeof key_bytes);
  mbedtls_platform_zeroize(iv_bytes, sizeof iv_bytes);
  return rc;
}

/* Queues a fatal alert (best effort: the connection ends either way). */
static tls_post_hs_t tls_refuse_msg(mbedtls_ssl_context *ssl, unsigned char alert, const char *reason, const char **why)
{
  (void)mbedtls_ssl_send_alert_message(ssl, MBEDTLS_SSL_ALERT_LEVEL_FATAL, alert);
  *why = reason;
  return TLS_POST_HS_REFUSED;
}

/** Applies a KeyUpdate mbedtls_ssl_read() refused; any other post-handshake handshake message gets its alert. */
tls_post_hs_t tls_post_handshake(mbedtls_ssl_context *ssl, int rc, const char **why)
{
  *why = NULL;
  /* Only the refusal of ssl_handle_hs_message_post_handshake() leaves a
   * complete handshake message in the context with no alert sent. */
  if (rc != MBEDTLS_ERR_SSL_UNEXPECTED_MESSAGE || !mbedtls_ssl_is_handshake_over(ssl) ||
      ssl->in_msgtype != MBEDTLS_SSL_MSG_HANDSHAKE || ssl->in_hslen < TLS_HS_HDR || ssl->in_hslen > ssl->in_msglen) {
    return TLS_POST_HS_NONE;
  }
  if (ssl->tls_version != MBEDTLS_SSL_VERSION_TLS1_3 || ssl->in_msg[0] != TLS_HS_KEY_UPDATE) {
    /* TLS 1.3 post-handshake authentication is never offered, and a TLS 1.2
     * ClientHello (renegotiation) does not come here: mbedTLS declines it itself. */
    return tls_refuse_msg(ssl, MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE, "unexpected handshake message", why);
  }
  if (ssl->in_hslen != TLS_HS_HDR + 1) {
    return tls_refuse_msg(ssl, MBEDTLS_SSL_ALERT_MSG_DECODE_ERROR, "malformed KeyUpdate", why);
  }
  /* RFC 8446 §5.1: a message before a key change must end its record. */
  if (ssl->in_msglen != ssl->in_hslen) {
    return tls_refuse_msg(ssl, MBEDTLS_SSL_ALERT_MSG_UNEXPECTED_MESSAGE, "KeyUpdate not at a record boundary", why);
  }
  unsigned char request = ssl->in_msg[TLS_HS_HDR]; /* update_not_requested(0), update_requested(1) */
  if (request > 1) {
    return tls_refuse_msg(ssl, MBEDTLS_SSL_ALERT_MSG_ILLEGAL_PARAMETER, "KeyUpdate with a bad request_update", why);
  }
  if (tls_next_keys(ssl, false) != 0) {
    return tls_refuse_msg(ssl, MBEDTLS_SSL_ALERT_MSG_INTERNAL_ERROR, "cannot derive the next receive keys", why);
  }
  return request ? TLS_POST_HS_KEY_REPLY : TLS_POST_HS_KEY_UPDATED;
}

/** Sends KeyUpdate(update_not_requested) and moves the send keys on (0, WANT_WRITE when busy, or an error). */
int tls_key_update_send(mbedtls_ssl_context *ssl)
{
  /* The output buffer holds one record: an earlier one must be out first. */
  if (ssl->out_left != 0) {
    return MBEDTLS_ERR_SSL_WANT_WRITE;
  }
  ssl->out_msgtype = MBEDTLS_SSL_MSG_HANDSHAKE;
  ssl->out_msg[0] = TLS_HS_KEY_UPDATE;
  ssl->out_msg[1] = 0;
  ssl->out_msg[2] = 0;
  ssl->out_msg[3] = 1; /* body length */
  ssl->out_msg[4] = 0; /* update_not_requested: an answer never asks back */
  ssl->out_msglen = TLS_HS_HDR + 1;
  int rc = mbedtls_ssl_write_record(ssl, 1 /* flush */);
  if (rc != 0 && rc != MBEDTLS_ERR_SSL_WANT_WRITE) {
    return rc;
  }
  /* The record is encrypted with the old keys, whether it left or waits to be
   * flushed: every later record uses the new ones. */
  return tls_next_keys(ssl, true);
}

#endif /* POSTERN_TLS */
