// Runtime dispatch of the distance kernels. kernel_bodies.h is compiled three times
// (x86-64): for AVX-512, for AVX2+FMA and for the baseline target, and the best level
// the CPU supports is chosen once, at first use. Other architectures get the baseline
// instantiation only (NEON on arm64). No -march flag is needed: the binary runs on any
// x86-64 and uses the widest vectors available.
#include "CVecKernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>

// The 16-float helpers are always inlined into callers of the same target, so the
// ABI of passing vectors by value never applies.
#pragma clang diagnostic ignored "-Wpsabi"

typedef float v16f __attribute__((vector_size(64)));
typedef float v16fu __attribute__((vector_size(64), aligned(4)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
#define LD16(p) (*(const v16fu *)(p))

#define VK_FN(name) name##_base
#define VK_TILE_ROWS 2
#include "kernel_bodies.h"
#undef VK_FN
#undef VK_TILE_ROWS

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#define VK_FN(name) name##_avx2
#define VK_TILE_ROWS 6
#include "kernel_bodies.h"
#undef VK_FN
#undef VK_TILE_ROWS
#pragma clang attribute pop

#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma"))), apply_to = function)
#define VK_FN(name) name##_avx512
#define VK_TILE_ROWS 12
#include "kernel_bodies.h"
#undef VK_FN
#undef VK_TILE_ROWS
#pragma clang attribute pop
#endif

typedef struct {
    float (*dot)(const float *, const float *, size_t);
    float (*l2sq)(const float *, const float *, size_t);
    void (*dot_rows)(const float *, const float *, size_t, size_t, float *);
    void (*l2sq_rows)(const float *, const float *, size_t, size_t, float *);
    void (*pq_scan)(const uint8_t *, size_t, size_t, const float *, float, float *);
    void (*best_match)(const float *, size_t, size_t, const float *, size_t, float, const float *,
                       int32_t *, float *);
    void (*pq_tables)(const float *, size_t, size_t, const float *, float, const float *, float *);
    void (*l2sq_gather)(const float *, const float *, size_t, const uint32_t *, size_t, float *);
    void (*dot_gather)(const float *, const float *, size_t, const uint32_t *, size_t, float *);
    void (*l2sq_ptrs)(const float *, const float *const *, size_t, size_t, float *);
    void (*dot_ptrs)(const float *, const float *const *, size_t, size_t, float *);
} vk_table;

#define VK_TABLE(suffix) { dot_##suffix, l2sq_##suffix, dot_rows_##suffix, l2sq_rows_##suffix, \
                           pq_scan_##suffix, best_match_##suffix, pq_tables_##suffix, \
                           l2sq_gather_##suffix, dot_gather_##suffix, l2sq_ptrs_##suffix, dot_ptrs_##suffix }

static vk_table g_table = VK_TABLE(base);
static vk_isa g_isa = VK_ISA_BASELINE;
static int g_ready = 0;

vk_isa vk_detect_isa(void) {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
        return VK_ISA_AVX512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return VK_ISA_AVX2;
#endif
    return VK_ISA_BASELINE;
}

int vk_force_isa(vk_isa isa) {
    if (isa > vk_detect_isa()) return -1;
    switch (isa) {
#if defined(__x86_64__)
    case VK_ISA_AVX512: { vk_table t = VK_TABLE(avx512); g_table = t; break; }
    case VK_ISA_AVX2: { vk_table t = VK_TABLE(avx2); g_table = t; break; }
#endif
    default: { vk_table t = VK_TABLE(base); g_table = t; isa = VK_ISA_BASELINE; break; }
    }
    g_isa = isa;
    __atomic_store_n(&g_ready, 1, __ATOMIC_RELEASE);
    return 0;
}

static inline void vk_ensure(void) {
    if (__builtin_expect(!__atomic_load_n(&g_ready, __ATOMIC_ACQUIRE), 0)) vk_force_isa(vk_detect_isa());
}

__attribute__((constructor)) static void vk_init_at_load(void) { vk_ensure(); }

vk_isa vk_active_isa(void) { vk_ensure(); return g_isa; }

const char *vk_isa_name(vk_isa isa) {
    switch (isa) {
    case VK_ISA_AVX512: return "avx512";
    case VK_ISA_AVX2: return "avx2";
    default: return "baseline";
    }
}

float vk_dot(const float *a, const float *b, size_t n) { vk_ensure(); return g_table.dot(a, b, n); }
float vk_l2sq(const float *a, const float *b, size_t n) { vk_ensure(); return g_table.l2sq(a, b, n); }
void vk_dot_rows(const float *q, const float *rows, size_t dim, size_t nrows, float *out) {
    vk_ensure(); g_table.dot_rows(q, rows, dim, nrows, out);
}
void vk_l2sq_rows(const float *q, const float *rows, size_t dim, size_t nrows, float *out) {
    vk_ensure(); g_table.l2sq_rows(q, rows, dim, nrows, out);
}
void vk_pq_scan(const uint8_t *codes, size_t m, size_t n, const float *table, float bias, float *out) {
    vk_ensure(); g_table.pq_scan(codes, m, n, table, bias, out);
}

void vk_pq_tables(const float *r, size_t m, size_t dsub, const float *ct, float alpha, const float *sub,
                  float *out) {
    vk_ensure(); g_table.pq_tables(r, m, dsub, ct, alpha, sub, out);
}

void vk_l2sq_gather(const float *q, const float *base, size_t dim, const uint32_t *ids, size_t n, float *out) {
    vk_ensure(); g_table.l2sq_gather(q, base, dim, ids, n, out);
}
void vk_dot_gather(const float *q, const float *base, size_t dim, const uint32_t *ids, size_t n, float *out) {
    vk_ensure(); g_table.dot_gather(q, base, dim, ids, n, out);
}

void vk_l2sq_ptrs(const float *q, const float *const *rows, size_t dim, size_t n, float *out) {
    vk_ensure(); g_table.l2sq_ptrs(q, rows, dim, n, out);
}
void vk_dot_ptrs(const float *q, const float *const *rows, size_t dim, size_t n, float *out) {
    vk_ensure(); g_table.dot_ptrs(q, rows, dim, n, out);
}

size_t vk_packed_floats(size_t nc, size_t dim) { return ((nc + 15) / 16) * 16 * dim; }

void vk_pack_panels(const float *c, size_t nc, size_t dim, float *packed) {
    size_t npanels = (nc + 15) / 16;
    for (size_t p = 0; p < npanels; p++)
        for (size_t d = 0; d < dim; d++)
            for (size_t l = 0; l < 16; l++) {
                size_t j = p * 16 + l;
                packed[(p * dim + d) * 16 + l] = j < nc ? c[j * dim + d] : 0.0f;
            }
}

void vk_best_match(const float *x, size_t nx, size_t dim, const float *packed, size_t nc,
                   float alpha, const float *bias, int32_t *best_index, float *best_score) {
    vk_ensure();
    size_t padded = ((nc + 15) / 16) * 16;
    float *pb = malloc((padded ? padded : 1) * sizeof(float));
    if (!pb) abort();
    for (size_t j = 0; j < padded; j++) pb[j] = j < nc ? (bias ? bias[j] : 0.0f) : __builtin_inff();
    g_table.best_match(x, nx, dim, packed, nc, alpha, pb, best_index, best_score);
    free(pb);
}

// Four independent 64-bit lanes of multiply-rotate mixing over 32-byte blocks, then a
// final avalanche. Runs at memory speed; detects any single changed byte.
static inline uint64_t vk_rotl(uint64_t x, int r) { return (x << r) | (x >> (64 - r)); }
static inline uint64_t vk_mix(uint64_t h, uint64_t w) {
    h ^= w * 0x9E3779B97F4A7C15ULL;
    return vk_rotl(h, 29) * 0xBF58476D1CE4E5B9ULL;
}
uint64_t vk_checksum64(const void *data, size_t n, uint64_t seed) {
    const unsigned char *p = data;
    uint64_t h0 = seed ^ 0x243F6A8885A308D3ULL, h1 = seed ^ 0x13198A2E03707344ULL;
    uint64_t h2 = seed ^ 0xA4093822299F31D0ULL, h3 = seed ^ 0x082EFA98EC4E6C89ULL;
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        uint64_t w[4];
        memcpy(w, p + i, 32);
        h0 = vk_mix(h0, w[0]); h1 = vk_mix(h1, w[1]); h2 = vk_mix(h2, w[2]); h3 = vk_mix(h3, w[3]);
    }
    uint64_t tail[4] = {0, 0, 0, 0};
    memcpy(tail, p + i, n - i);
    h0 = vk_mix(h0, tail[0]); h1 = vk_mix(h1, tail[1]); h2 = vk_mix(h2, tail[2]); h3 = vk_mix(h3, tail[3]);
    uint64_t h = vk_rotl(h0, 1) ^ vk_rotl(h1, 7) ^ vk_rotl(h2, 12) ^ vk_rotl(h3, 18) ^ (uint64_t)n;
    h ^= h >> 31; h *= 0x94D049BB133111EBULL; h ^= h >> 29; h *= 0xBF58476D1CE4E5B9ULL; h ^= h >> 32;
    return h;
}
