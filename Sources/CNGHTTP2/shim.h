#ifndef VECSHARD_CNGHTTP2_SHIM_H
#define VECSHARD_CNGHTTP2_SHIM_H
/*
 * Thin, version-independent wrappers over libnghttp2.
 *
 * nghttp2 1.61 deprecated the ssize_t API (mem_recv, mem_send, nghttp2_data_provider) in favour
 * of `*2` variants taking nghttp2_ssize. The Swift side calls only the vs_* functions below, which
 * pick whichever the installed library offers, so one Swift code path builds against both.
 */
#include <nghttp2/nghttp2.h>
#include <stdint.h>
#include <stddef.h>

/* Body reader implemented in Swift: copies at most `length` bytes into `buf`, sets
 * NGHTTP2_DATA_FLAG_EOF (and NO_END_STREAM when trailers follow) in `*data_flags`, returns the
 * number of bytes copied or NGHTTP2_ERR_DEFERRED / NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE. */
typedef long (*vs_body_reader)(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                               size_t length, uint32_t *data_flags, void *user_data);

#if NGHTTP2_VERSION_NUM >= 0x013d00
static nghttp2_ssize vs__read_adapter(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                                      size_t length, uint32_t *data_flags,
                                      nghttp2_data_source *source, void *user_data) {
    vs_body_reader reader = (vs_body_reader)source->ptr;
    return (nghttp2_ssize)reader(session, stream_id, buf, length, data_flags, user_data);
}
static inline long vs_mem_recv(nghttp2_session *s, const uint8_t *in, size_t len) {
    return (long)nghttp2_session_mem_recv2(s, in, len);
}
static inline long vs_mem_send(nghttp2_session *s, const uint8_t **data) {
    return (long)nghttp2_session_mem_send2(s, data);
}
static inline int vs_submit_response(nghttp2_session *s, int32_t stream_id, const nghttp2_nv *nva,
                                     size_t nvlen, vs_body_reader reader) {
    if (reader == NULL) return nghttp2_submit_response2(s, stream_id, nva, nvlen, NULL);
    nghttp2_data_provider2 provider;
    provider.source.ptr = (void *)reader;
    provider.read_callback = vs__read_adapter;
    return nghttp2_submit_response2(s, stream_id, nva, nvlen, &provider);
}
static inline int32_t vs_submit_request(nghttp2_session *s, const nghttp2_nv *nva, size_t nvlen,
                                        vs_body_reader reader, void *stream_user_data) {
    if (reader == NULL) return nghttp2_submit_request2(s, NULL, nva, nvlen, NULL, stream_user_data);
    nghttp2_data_provider2 provider;
    provider.source.ptr = (void *)reader;
    provider.read_callback = vs__read_adapter;
    return nghttp2_submit_request2(s, NULL, nva, nvlen, &provider, stream_user_data);
}
#else
static ssize_t vs__read_adapter(nghttp2_session *session, int32_t stream_id, uint8_t *buf,
                                size_t length, uint32_t *data_flags, nghttp2_data_source *source,
                                void *user_data) {
    vs_body_reader reader = (vs_body_reader)source->ptr;
    return (ssize_t)reader(session, stream_id, buf, length, data_flags, user_data);
}
static inline long vs_mem_recv(nghttp2_session *s, const uint8_t *in, size_t len) {
    return (long)nghttp2_session_mem_recv(s, in, len);
}
static inline long vs_mem_send(nghttp2_session *s, const uint8_t **data) {
    return (long)nghttp2_session_mem_send(s, data);
}
static inline int vs_submit_response(nghttp2_session *s, int32_t stream_id, const nghttp2_nv *nva,
                                     size_t nvlen, vs_body_reader reader) {
    if (reader == NULL) return nghttp2_submit_response(s, stream_id, nva, nvlen, NULL);
    nghttp2_data_provider provider;
    provider.source.ptr = (void *)reader;
    provider.read_callback = vs__read_adapter;
    return nghttp2_submit_response(s, stream_id, nva, nvlen, &provider);
}
static inline int32_t vs_submit_request(nghttp2_session *s, const nghttp2_nv *nva, size_t nvlen,
                                        vs_body_reader reader, void *stream_user_data) {
    if (reader == NULL) return nghttp2_submit_request(s, NULL, nva, nvlen, NULL, stream_user_data);
    nghttp2_data_provider provider;
    provider.source.ptr = (void *)reader;
    provider.read_callback = vs__read_adapter;
    return nghttp2_submit_request(s, NULL, nva, nvlen, &provider, stream_user_data);
}
#endif

#endif
