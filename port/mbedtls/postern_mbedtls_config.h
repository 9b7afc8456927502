/* postern_mbedtls_config.h: postern's mbedTLS 3.6 configuration: only what the device uses. */
#ifndef POSTERN_MBEDTLS_CONFIG_H
#define POSTERN_MBEDTLS_CONFIG_H

/* Hashes for Content-Digest, the stored file's SHA-256 and the policy's
 * crypto.sha256 / crypto.hmac_sha256. */
#define MBEDTLS_SHA256_C
#define MBEDTLS_MD_C
#define MBEDTLS_BASE64_C

/* POSTERN_TLS (and every other postern option) has one home: postern_opts.h,
 * set by the build (make TLS=0) or the board. */
#include "postern_opts.h"

#if POSTERN_TLS
/* ---- Platform: no libc heap, no files, no threads, no clock ------------
 * Every allocation goes to postern's bounded TLS heap (port/tls.c sets the
 * hooks). Without MBEDTLS_HAVE_TIME_DATE certificate validity dates are not
 * checked: a device without a trusted clock cannot check them anyway. */
#define MBEDTLS_PLATFORM_C
#define MBEDTLS_PLATFORM_MEMORY
#define MBEDTLS_NO_PLATFORM_ENTROPY
#define MBEDTLS_ENTROPY_HARDWARE_ALT /* mbedtls_hardware_poll() -> platform_entropy() */
#define MBEDTLS_ENTROPY_C
#define MBEDTLS_CTR_DRBG_C

/* ---- Crypto: P-256 and X25519 key exchange, ECDSA P-256, AES-128-GCM,
 * ChaCha20-Poly1305, SHA-256 ---------------------------------------------- */
#define MBEDTLS_AES_C
#define MBEDTLS_AES_ROM_TABLES
#define MBEDTLS_AES_FEWER_TABLES
#define MBEDTLS_AES_ONLY_128_BIT_KEY_LENGTH
#define MBEDTLS_GCM_C
#define MBEDTLS_CHACHA20_C
#define MBEDTLS_POLY1305_C
#define MBEDTLS_CHACHAPOLY_C
#define MBEDTLS_CIPHER_C
#define MBEDTLS_HKDF_C
#define MBEDTLS_BIGNUM_C
#define MBEDTLS_ECP_C
#define MBEDTLS_ECP_DP_SECP256R1_ENABLED
#define MBEDTLS_ECP_DP_CURVE25519_ENABLED
#define MBEDTLS_ECP_WINDOW_SIZE 2
#define MBEDTLS_ECP_FIXED_POINT_OPTIM 0
#define MBEDTLS_ECDH_C
#define MBEDTLS_ECDSA_C
#define MBEDTLS_MPI_MAX_SIZE 48

/* ---- Keys and certificates -------------------------------------------- */
#define MBEDTLS_ASN1_PARSE_C
#define MBEDTLS_ASN1_WRITE_C
#define MBEDTLS_OID_C
#define MBEDTLS_PK_C
#define MBEDTLS_PK_PARSE_C
#define MBEDTLS_PEM_PARSE_C
#define MBEDTLS_X509_USE_C
#define MBEDTLS_X509_CRT_PARSE_C

/* ---- PSA crypto: TLS 1.3 in mbedTLS 3.6 runs on it -------------------- */
#define MBEDTLS_PSA_CRYPTO_C
#define MBEDTLS_USE_PSA_CRYPTO
#define MBEDTLS_PSA_KEY_SLOT_COUNT 16
/* PSA would copy every record in and out of the heap (16 KiB each way) to
 * guard against shared memory; postern's buffers are its own. */
#define MBEDTLS_PSA_ASSUME_EXCLUSIVE_BUFFERS

/* ---- TLS: server only, 1.3 and 1.2, ECDHE-ECDSA with AEAD suites ------ */
#define MBEDTLS_SSL_TLS_C
#define MBEDTLS_SSL_SRV_C
#define MBEDTLS_SSL_PROTO_TLS1_2
#define MBEDTLS_SSL_PROTO_TLS1_3
#define MBEDTLS_SSL_TLS1_3_KEY_EXCHANGE_MODE_EPHEMERAL_ENABLED
#define MBEDTLS_SSL_TLS1_3_COMPATIBILITY_MODE
#define MBEDTLS_KEY_EXCHANGE_ECDHE_ECDSA_ENABLED
#define MBEDTLS_SSL_EXTENDED_MASTER_SECRET
#define MBEDTLS_SSL_KEEP_PEER_CERTIFICATE /* the policy's req.tls.subject and fingerprint */
#define MBEDTLS_SSL_SERVER_NAME_INDICATION
/* Received records may be full size (a client need not honour a smaller
 * limit); what the device sends is cut into 4 KiB records. */
#define MBEDTLS_SSL_IN_CONTENT_LEN 16384
#define MBEDTLS_SSL_OUT_CONTENT_LEN 4096
#define MBEDTLS_SSL_CIPHERSUITES                                              \
  MBEDTLS_TLS1_3_AES_128_GCM_SHA256, MBEDTLS_TLS1_3_CHACHA20_POLY1305_SHA256, \
      MBEDTLS_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, MBEDTLS_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256
#endif /* POSTERN_TLS */

#endif /* POSTERN_MBEDTLS_CONFIG_H */
