#ifndef VECSHARD_COPENSSL_SHIM_H
#define VECSHARD_COPENSSL_SHIM_H
/* Function wrappers for the OpenSSL macros Swift cannot import, and the ALPN selection callback
 * (server preference: h2, then http/1.1), written in C so Swift passes no C callback. */
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/bio.h>
#include <openssl/x509v3.h>

static inline long vs_ssl_ctx_set_min_tls12(SSL_CTX *ctx) {
    return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
}
static inline long vs_ssl_ctx_set_modes(SSL_CTX *ctx) {
    return SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                     SSL_MODE_RELEASE_BUFFERS);
}
static inline long vs_ssl_set_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name);
}
static inline int vs_bio_pending(BIO *bio) { return BIO_pending(bio); }

static const unsigned char vs__alpn_server_prefs[] = "\x02h2\x08http/1.1";

static int vs__alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                           const unsigned char *in, unsigned int inlen, void *arg) {
    (void)ssl; (void)arg;
    unsigned char *selected = NULL;
    if (SSL_select_next_proto(&selected, outlen, vs__alpn_server_prefs,
                              sizeof(vs__alpn_server_prefs) - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED) {
        return SSL_TLSEXT_ERR_NOACK; /* no overlap: continue without ALPN, sniffing decides */
    }
    *out = selected;
    return SSL_TLSEXT_ERR_OK;
}
static inline void vs_ssl_ctx_enable_server_alpn(SSL_CTX *ctx) {
    SSL_CTX_set_alpn_select_cb(ctx, vs__alpn_select, NULL);
}
static inline int vs_ssl_ctx_set_client_alpn(SSL_CTX *ctx) {
    return SSL_CTX_set_alpn_protos(ctx, vs__alpn_server_prefs, sizeof(vs__alpn_server_prefs) - 1);
}
#endif
