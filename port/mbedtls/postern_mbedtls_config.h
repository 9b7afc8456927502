/* postern_mbedtls_config.h: postern's mbedTLS 3.6 configuration: only what the device uses. */
#ifndef POSTERN_MBEDTLS_CONFIG_H
#define POSTERN_MBEDTLS_CONFIG_H

/* Hashes for Content-Digest, the stored file's SHA-256 and the policy's
 * crypto.sha256 / crypto.hmac_sha256. */
#define MBEDTLS_SHA256_C
#define MBEDTLS_MD_C
#define MBEDTLS_BASE64_C

#endif /* POSTERN_MBEDTLS_CONFIG_H */
