// Kernel bodies, written once with the compiler's generic vector extension and
// instantiated once per instruction-set level by kernels.c (which defines VK_FN, the
// name suffix, and VK_TILE_ROWS, the row count of the vk_best_match register tile,
// and wraps this file in a `#pragma clang attribute` that sets the target). The
// generic 16-float vectors become one zmm (AVX-512), two ymm (AVX2) or four xmm
// (baseline) per operation; `acc += a * b` contracts to FMA where the target has it.
// Not a public header: included only by kernels.c.

__attribute__((always_inline)) static inline float VK_FN(hsum)(v16f v) {
    v8f h = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7)
          + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    v4f q = __builtin_shufflevector(h, h, 0, 1, 2, 3) + __builtin_shufflevector(h, h, 4, 5, 6, 7);
    return (q[0] + q[2]) + (q[1] + q[3]);
}

__attribute__((always_inline)) static inline float VK_FN(hmax)(v16f v) {
    v8f a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7);
    v8f b = __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    v8f h = __builtin_elementwise_max(a, b);
    float m = h[0];
    for (int i = 1; i < 8; i++) m = h[i] > m ? h[i] : m;
    return m;
}

__attribute__((always_inline)) static inline float VK_FN(dot)(const float *a, const float *b, size_t n) {
    v16f s0 = {0}, s1 = {0};
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        s0 += LD16(a + i) * LD16(b + i);
        s1 += LD16(a + i + 16) * LD16(b + i + 16);
    }
    if (i + 16 <= n) { s0 += LD16(a + i) * LD16(b + i); i += 16; }
    float s = VK_FN(hsum)(s0 + s1);
    for (; i < n; i++) s += a[i] * b[i];
    return s;
}

__attribute__((always_inline)) static inline float VK_FN(l2sq)(const float *a, const float *b, size_t n) {
    v16f s0 = {0}, s1 = {0};
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        v16f d0 = LD16(a + i) - LD16(b + i);
        v16f d1 = LD16(a + i + 16) - LD16(b + i + 16);
        s0 += d0 * d0;
        s1 += d1 * d1;
    }
    if (i + 16 <= n) { v16f d = LD16(a + i) - LD16(b + i); s0 += d * d; i += 16; }
    float s = VK_FN(hsum)(s0 + s1);
    for (; i < n; i++) { float d = a[i] - b[i]; s += d * d; }
    return s;
}

// One row after another, so memory is read as a single sequential stream (measured:
// interleaving four rows, each 4·dim bytes apart, reached 9-11 GB/s on the 1M x 128
// scan where this order reaches 16-17, against 22 for a plain sum). The query stays
// in L1.
static void VK_FN(dot_rows)(const float *q, const float *rows, size_t dim, size_t nrows, float *out) {
    for (size_t r = 0; r < nrows; r++) out[r] = VK_FN(dot)(q, rows + r * dim, dim);
}

static void VK_FN(l2sq_rows)(const float *q, const float *rows, size_t dim, size_t nrows, float *out) {
    for (size_t r = 0; r < nrows; r++) out[r] = VK_FN(l2sq)(q, rows + r * dim, dim);
}

static void VK_FN(pq_scan)(const uint8_t *codes, size_t m, size_t n, const float *table, float bias,
                           float *out) {
    if (m == 16) {
        // The common 16-byte code: fully unrolled, four independent sums.
        for (size_t i = 0; i < n; i++) {
            const uint8_t *c = codes + i * 16;
            float s0 = table[c[0]] + table[256 + c[1]] + table[512 + c[2]] + table[768 + c[3]];
            float s1 = table[1024 + c[4]] + table[1280 + c[5]] + table[1536 + c[6]] + table[1792 + c[7]];
            float s2 = table[2048 + c[8]] + table[2304 + c[9]] + table[2560 + c[10]] + table[2816 + c[11]];
            float s3 = table[3072 + c[12]] + table[3328 + c[13]] + table[3584 + c[14]] + table[3840 + c[15]];
            out[i] = bias + ((s0 + s1) + (s2 + s3));
        }
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const uint8_t *c = codes + i * m;
        const float *t = table;
        float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
        size_t j = 0;
        for (; j + 4 <= m; j += 4, t += 1024) {
            s0 += t[c[j]]; s1 += t[256 + c[j + 1]]; s2 += t[512 + c[j + 2]]; s3 += t[768 + c[j + 3]];
        }
        for (; j < m; j++, t += 256) s0 += t[c[j]];
        out[i] = bias + ((s0 + s1) + (s2 + s3));
    }
}

// Register tile of VK_TILE_ROWS rows of x against one 16-column panel. Panels are
// visited in blocks of about 256 KiB so that a block stays in L2 while every row tile
// of x passes over it (without blocking, each tile streamed all centroids from L3 and
// the kernel ran at a third of its FMA peak).
static void VK_FN(best_match)(const float *x, size_t nx, size_t dim, const float *packed, size_t nc,
                              float alpha, const float *padded_bias, int32_t *best_index,
                              float *best_score) {
    size_t npanels = (nc + 15) / 16;
    size_t block = (256 * 1024) / (dim * 16 * sizeof(float));
    if (block < 1) block = 1;
    for (size_t i = 0; i < nx; i++) { best_score[i] = -__builtin_inff(); best_index[i] = -1; }
    for (size_t p0 = 0; p0 < npanels; p0 += block) {
        size_t p1 = p0 + block < npanels ? p0 + block : npanels;
        for (size_t i0 = 0; i0 < nx; i0 += VK_TILE_ROWS) {
            size_t rows = nx - i0 < VK_TILE_ROWS ? nx - i0 : VK_TILE_ROWS;
            const float *xr[VK_TILE_ROWS];
            for (size_t r = 0; r < VK_TILE_ROWS; r++) xr[r] = x + (i0 + (r < rows ? r : 0)) * dim;
            for (size_t p = p0; p < p1; p++) {
                const float *panel = packed + p * dim * 16;
                v16f acc[VK_TILE_ROWS];
#pragma clang loop unroll(full)
                for (int r = 0; r < VK_TILE_ROWS; r++) acc[r] = (v16f){0};
                for (size_t d = 0; d < dim; d++) {
                    v16f pv = LD16(panel + d * 16);
#pragma clang loop unroll(full)
                    for (int r = 0; r < VK_TILE_ROWS; r++) acc[r] += pv * xr[r][d];
                }
                v16f bias = LD16(padded_bias + p * 16);
                for (size_t r = 0; r < rows; r++) {
                    v16f s = acc[r] * alpha - bias;
                    float *best = best_score + i0 + r;
                    if (VK_FN(hmax)(s) > *best) {
                        for (int l = 0; l < 16; l++) {
                            if (s[l] > *best) { *best = s[l]; best_index[i0 + r] = (int32_t)(p * 16 + l); }
                        }
                    }
                }
            }
        }
    }
}

static void VK_FN(pq_tables)(const float *r, size_t m, size_t dsub, const float *ct, float alpha,
                             const float *sub, float *out) {
    for (size_t j = 0; j < m; j++) {
        const float *rj = r + j * dsub;
        const float *cj = ct + j * dsub * 256;
        for (size_t k = 0; k < 256; k += 16) {
            v16f acc = {0};
            for (size_t d = 0; d < dsub; d++) acc += LD16(cj + d * 256 + k) * rj[d];
            acc = acc * alpha;
            if (sub) acc -= LD16(sub + j * 256 + k);
            *(v16fu *)(out + j * 256 + k) = acc;
        }
    }
}

// Prefetch window: as many rows as fit in about 16 KiB, at least 2.
static inline void VK_FN(prefetch_row)(const float *row, size_t dim) {
    const char *p = (const char *)row;
    size_t bytes = dim * sizeof(float);
    for (size_t b = 0; b < bytes; b += 64) __builtin_prefetch(p + b, 0, 3);
}

static void VK_FN(l2sq_gather)(const float *q, const float *base, size_t dim, const uint32_t *ids, size_t n,
                               float *out) {
    size_t window = 16384 / (dim * sizeof(float) + 1);
    if (window < 2) window = 2;
    for (size_t i = 0; i < n && i < window; i++) VK_FN(prefetch_row)(base + (size_t)ids[i] * dim, dim);
    for (size_t i = 0; i < n; i++) {
        if (i + window < n) VK_FN(prefetch_row)(base + (size_t)ids[i + window] * dim, dim);
        out[i] = VK_FN(l2sq)(q, base + (size_t)ids[i] * dim, dim);
    }
}

static void VK_FN(dot_gather)(const float *q, const float *base, size_t dim, const uint32_t *ids, size_t n,
                              float *out) {
    size_t window = 16384 / (dim * sizeof(float) + 1);
    if (window < 2) window = 2;
    for (size_t i = 0; i < n && i < window; i++) VK_FN(prefetch_row)(base + (size_t)ids[i] * dim, dim);
    for (size_t i = 0; i < n; i++) {
        if (i + window < n) VK_FN(prefetch_row)(base + (size_t)ids[i + window] * dim, dim);
        out[i] = VK_FN(dot)(q, base + (size_t)ids[i] * dim, dim);
    }
}

static void VK_FN(l2sq_ptrs)(const float *q, const float *const *rows, size_t dim, size_t n, float *out) {
    size_t window = 16384 / (dim * sizeof(float) + 1);
    if (window < 2) window = 2;
    for (size_t i = 0; i < n && i < window; i++) VK_FN(prefetch_row)(rows[i], dim);
    for (size_t i = 0; i < n; i++) {
        if (i + window < n) VK_FN(prefetch_row)(rows[i + window], dim);
        out[i] = VK_FN(l2sq)(q, rows[i], dim);
    }
}

static void VK_FN(dot_ptrs)(const float *q, const float *const *rows, size_t dim, size_t n, float *out) {
    size_t window = 16384 / (dim * sizeof(float) + 1);
    if (window < 2) window = 2;
    for (size_t i = 0; i < n && i < window; i++) VK_FN(prefetch_row)(rows[i], dim);
    for (size_t i = 0; i < n; i++) {
        if (i + window < n) VK_FN(prefetch_row)(rows[i + window], dim);
        out[i] = VK_FN(dot)(q, rows[i], dim);
    }
}
