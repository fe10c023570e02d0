// CVecKernels: the distance kernels of VecShardEngine, in C so that one portable
// binary carries AVX-512, AVX2+FMA and baseline versions and picks one at startup
// (see kernels.c). Every pointer argument may be unaligned. Lengths are element
// counts (floats or bytes), never byte counts unless named so.
#ifndef CVECKERNELS_H
#define CVECKERNELS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/// Instruction-set level of the kernels: 0 baseline (SSE2 on x86-64, NEON on arm64),
/// 1 AVX2+FMA, 2 AVX-512 (F, BW, DQ, VL).
typedef enum { VK_ISA_BASELINE = 0, VK_ISA_AVX2 = 1, VK_ISA_AVX512 = 2 } vk_isa;

/// The best level this CPU supports.
vk_isa vk_detect_isa(void);
/// The level in use (chosen once at first use: the best supported one).
vk_isa vk_active_isa(void);
/// Forces a level (tests compare every level against a scalar reference).
/// Returns 0 on success, -1 if the CPU lacks it. Not thread-safe: call before searching.
int vk_force_isa(vk_isa isa);
const char *vk_isa_name(vk_isa isa);

/// sum_i a[i] * b[i] over n floats.
float vk_dot(const float *a, const float *b, size_t n);
/// sum_i (a[i] - b[i])^2 over n floats.
float vk_l2sq(const float *a, const float *b, size_t n);

/// out[r] = dot(q, rows + r*dim) for r in 0..<nrows (rows row-major, nrows x dim).
void vk_dot_rows(const float *q, const float *rows, size_t dim, size_t nrows, float *out);
/// out[r] = l2sq(q, rows + r*dim) for r in 0..<nrows.
void vk_l2sq_rows(const float *q, const float *rows, size_t dim, size_t nrows, float *out);

/// Scattered rows: out[i] = l2sq(q, base + ids[i]*dim) (resp. dot) for i in 0..<n.
/// Prefetches rows ahead of use, so the cache misses of a graph walk overlap.
void vk_l2sq_gather(const float *q, const float *base, size_t dim, const uint32_t *ids, size_t n, float *out);
void vk_dot_gather(const float *q, const float *base, size_t dim, const uint32_t *ids, size_t n, float *out);

/// Rows given by pointers: out[i] = l2sq(q, rows[i]) (resp. dot), prefetched ahead.
void vk_l2sq_ptrs(const float *q, const float *const *rows, size_t dim, size_t n, float *out);
void vk_dot_ptrs(const float *q, const float *const *rows, size_t dim, size_t n, float *out);

/// Asymmetric distance computation of product-quantized codes:
/// out[i] = bias + sum_{j<m} table[j*256 + codes[i*m + j]] for i in 0..<n.
/// table: m x 256 floats; codes: n x m bytes.
void vk_pq_scan(const uint8_t *codes, size_t m, size_t n, const float *table, float bias, float *out);

/// Lookup tables of product quantization, one per sub-space, vectorized over the 256
/// centroids: out[j*256 + k] = alpha * dot(r + j*dsub, centroid(j, k)) - (sub ? sub[j*256 + k] : 0)
/// for j in 0..<m. ct holds the centroids transposed: ct[(j*dsub + d)*256 + k] is
/// component d of centroid k of sub-space j (m*dsub x 256 floats).
void vk_pq_tables(const float *r, size_t m, size_t dsub, const float *ct, float alpha, const float *sub,
                  float *out);

/// Packs c (nc x dim, row-major) into the panel layout vk_best_match reads:
/// ceil(nc/16) panels of dim x 16 floats (zero padded). packed needs
/// vk_packed_floats(nc, dim) floats.
size_t vk_packed_floats(size_t nc, size_t dim);
void vk_pack_panels(const float *c, size_t nc, size_t dim, float *packed);

/// For every row x_i of x (nx x dim) finds j maximizing alpha * dot(x_i, c_j) - bias[j]
/// over the nc packed rows c (bias may be NULL = 0). Writes best_index[i] and best_score[i].
/// With alpha = 2 and bias[j] = |c_j|^2 the best j is the nearest in L2 and
/// |x_i|^2 - best_score[i] is the squared distance.
void vk_best_match(const float *x, size_t nx, size_t dim, const float *packed, size_t nc,
                   float alpha, const float *bias, int32_t *best_index, float *best_score);

/// 64-bit checksum of n bytes (not cryptographic; detects corruption of index files).
uint64_t vk_checksum64(const void *data, size_t n, uint64_t seed);

/// Atomic fetch-and-add on a shared counter (work distribution of parallel builds).
static inline uint64_t vk_fetch_add(uint64_t *counter, uint64_t delta) {
    return __atomic_fetch_add(counter, delta, __ATOMIC_RELAXED);
}

/// Hints the CPU to fetch the cache line holding p.
static inline void vk_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

/// One-byte spin lock (0 free, 1 held) for per-node locks of graph builds.
static inline void vk_spin_lock(uint8_t *lock) {
    while (__atomic_exchange_n(lock, (uint8_t)1, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(lock, __ATOMIC_RELAXED)) {
#if defined(__x86_64__) || defined(__i386__)
            __builtin_ia32_pause();
#endif
        }
    }
}
static inline void vk_spin_unlock(uint8_t *lock) { __atomic_store_n(lock, (uint8_t)0, __ATOMIC_RELEASE); }

#ifdef __cplusplus
}
#endif
#endif
