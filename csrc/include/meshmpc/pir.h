/* meshmpc PIR kernels: LWE products mod 2^32 and cuckoo placement.
 *
 * The SimplePIR server answer, the hint and the client's query generation are
 * all "dot" products out[i, j] = sum_t L[i, t] * R[j, t] mod 2^32 over rows of
 * two row-major matrices (L with uint8 digits or uint32 entries, R uint32).
 * Each entry point picks its SIMD path at run time (AVX-512, AVX2, portable)
 * unless a path is forced, and splits the rows of L over nthreads threads.
 */
#ifndef MESHMPC_PIR_H
#define MESHMPC_PIR_H

#include <stddef.h>
#include <stdint.h>

#define MM_PIR_PATH_AUTO (-1)
#define MM_PIR_PATH_PORTABLE 0
#define MM_PIR_PATH_AVX2 1
#define MM_PIR_PATH_AVX512 2

/* Best path this CPU supports (MM_PIR_PATH_*). */
int mm_pir_best_path(void);

/* out[i*ldo_r + j*ldo_c] = sum_{t<k} L[i*ldl + t] * R[j*ldr + t] (mod 2^32)
 * for i < rows, j < cols. Returns the path used, or -1 if the forced path is
 * unavailable on this CPU. */
int mm_pir_dot_u8(const uint8_t *L, size_t rows, size_t ldl, const uint32_t *R, size_t cols,
                  size_t ldr, size_t k, uint32_t *out, size_t ldo_r, size_t ldo_c,
                  int nthreads, int path);
int mm_pir_dot_u32(const uint32_t *L, size_t rows, size_t ldl, const uint32_t *R, size_t cols,
                   size_t ldr, size_t k, uint32_t *out, size_t ldo_r, size_t ldo_c,
                   int nthreads, int path);

/* Two-choice cuckoo placement of n items into nbins bins of cap slots.
 * table (nbins*cap entries) receives item indices, -1 for a free slot.
 * Returns -1 on success, else the index of an item that could not be placed
 * within max_kicks evictions. */
int64_t mm_pir_cuckoo_place(const uint32_t *c1, const uint32_t *c2, size_t n, size_t nbins,
                            uint32_t cap, size_t max_kicks, int64_t *table);

/* Add discrete Gaussian samples to out: for each uniform u[i], idx = number
 * of entries of the ascending 256-entry cdf that are <= u[i]; out[i] += idx - center.
 * lut (65536 entries) gives idx - center directly for u[i] >> 48 when that
 * interval holds no cdf boundary, else MM_PIR_GAUSS_AMBIGUOUS. */
#define MM_PIR_GAUSS_AMBIGUOUS 127
void mm_pir_gauss_add(const uint64_t *u, size_t n, const uint64_t *cdf256, const int8_t *lut,
                      int32_t center, uint32_t *out);

/* H[rows[e], :] += delta[e] * A[cols[e], :] mod 2^32 (incremental hint of D A), rows
 * split over nthreads threads, AVX2 when the CPU has it. */
void mm_pir_hint_update(uint32_t *H, size_t ldh, const uint32_t *A, size_t lda, size_t n,
                        const int64_t *rows, const int64_t *cols, const int32_t *delta,
                        size_t count, int nthreads);

/* Write every placed slot down its column: for bucket b, slot j, column c with
 * item = table[(b * cols + c) * slots + j] >= 0, rows b * rows_per_bucket + j * size
 * + t of column c get content[item * size + t] (t < size). Buckets x slots are
 * split over threads; each writes one band of size rows, which stays in cache. */
void mm_pir_write_slots(uint8_t *db, size_t buckets, size_t cols, size_t slots, size_t size,
                        const int64_t *table, const uint8_t *content, int nthreads);

/* out row i = le16(len_i) || item_i || zero padding (width 2 + record_bytes), items
 * data[offsets[i] .. offsets[i + 1]] no longer than record_bytes (-1), else the
 * index of the first item that is too long. */
int64_t mm_pir_pack_bodies(const uint8_t *data, const int64_t *offsets, size_t n,
                           size_t record_bytes, uint8_t *out);

#endif
