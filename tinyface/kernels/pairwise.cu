// Squared L2 distances and their backward pass, for cupy_cuda.py (loaded with cupy.RawModule).
// The rules are those of contract.py (the formula, its clamp at 0 and why); the same algorithm as numba_cuda.py.
// real_t is float unless compiled with -Dreal_t=double. Matrices are row-major and contiguous; one thread per
// output entry, x along columns.

#ifndef real_t
#define real_t float
#endif

// d[i, j] = max(||x_i||^2 + ||x_j||^2 - 2 x_i.x_j, 0), and d[i, i] = 0 exactly: the expansion can round below
// zero when x_i is close to x_j.
extern "C" __global__ void pairwise_sqdist(const real_t* x, real_t* d, int B, int D) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    int i = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= B || j >= B) return;
    const real_t* xi = x + (size_t)i * D;
    const real_t* xj = x + (size_t)j * D;
    real_t sq_i = 0, sq_j = 0, dot = 0;
    for (int k = 0; k < D; ++k) {
        sq_i += xi[k] * xi[k];
        sq_j += xj[k] * xj[k];
        dot += xi[k] * xj[k];
    }
    real_t value = (sq_i + sq_j) - (dot + dot);
    d[(size_t)i * B + j] = (value > 0 && i != j) ? value : (real_t)0;
}

// out[i, k] = 2 scale sum_j (g[i, j] + g[j, i]) (x[i, k] - x[j, k]): the gradient of sum_ij g_ij d_ij.
extern "C" __global__ void pairwise_sqdist_backward(const real_t* x, const real_t* g, real_t scale, real_t* out,
                                                    int B, int D) {
    int k = blockIdx.x * blockDim.x + threadIdx.x;
    int i = blockIdx.y * blockDim.y + threadIdx.y;
    if (i >= B || k >= D) return;
    real_t acc = 0;
    for (int j = 0; j < B; ++j) {
        acc += (g[(size_t)i * B + j] + g[(size_t)j * B + i]) * (x[(size_t)i * D + k] - x[(size_t)j * D + k]);
    }
    out[(size_t)i * D + k] = 2 * scale * acc;
}
