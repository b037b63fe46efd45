// Triplet selection and the weight matrix W of the triplet losses, for cupy_cuda.py (cupy.RawModule).
// The loss is sum_ij W_ij d_ij; its gradient is pairwise_sqdist_backward(x, W) (see numpy_ref.py).
// The rules are those of contract.py: a hinge is (d_ap + margin) - d_an; among equal candidates the lowest index
// wins (scan upwards, compare strictly). real_t is float unless compiled with -Dreal_t=double.

#ifndef real_t
#define real_t float
#endif

// The fallback codes come from contract.py (FALLBACK_CODES), never from a copy here: cupy_cuda.compile_options
// passes them as -DFALLBACK_EASIEST=... -DFALLBACK_HARDEST=... -DFALLBACK_SKIP=...
#if !defined(FALLBACK_EASIEST) || !defined(FALLBACK_HARDEST) || !defined(FALLBACK_SKIP)
#error "compile with the fallback codes of tinyface/kernels/contract.py: see cupy_cuda.compile_options"
#endif

// chosen[a, p] = the nearest negative n with d_an > d_ap; without one, the fallback (FALLBACK_EASIEST: the
// largest d_an, FALLBACK_HARDEST: the smallest, FALLBACK_SKIP: none). -1 when (a, p) is not an anchor-positive
// pair, or is skipped.
extern "C" __global__ void semihard_select(const real_t* d, const long long* labels, int fallback,
                                           long long* chosen, int B) {
    int p = blockIdx.x * blockDim.x + threadIdx.x;
    int a = blockIdx.y * blockDim.y + threadIdx.y;
    if (a >= B || p >= B) return;
    const real_t* row = d + (size_t)a * B;
    long long result = -1;
    if (a != p && labels[a] == labels[p]) {
        int semihard = -1, easiest = -1, hardest = -1;
        for (int n = 0; n < B; ++n) {
            if (labels[n] == labels[a]) continue;
            if (row[n] > row[p] && (semihard < 0 || row[n] < row[semihard])) semihard = n;
            if (easiest < 0 || row[n] > row[easiest]) easiest = n;
            if (hardest < 0 || row[n] < row[hardest]) hardest = n;
        }
        if (semihard >= 0) result = semihard;
        else if (fallback == FALLBACK_EASIEST) result = easiest;
        else if (fallback == FALLBACK_HARDEST) result = hardest;
    }
    chosen[(size_t)a * B + p] = result;
}

// For each kept pair: hinges[a, p] = max((d_ap + margin) - d_an, 0); when active, W[a, p] += 1, W[a, n] -= 1
// (atomic: pairs of one anchor can share a negative; sums of whole numbers stay exact). W starts at zero.
extern "C" __global__ void semihard_weights(const real_t* d, const long long* chosen, real_t margin,
                                            real_t* weights, real_t* hinges, int B) {
    int p = blockIdx.x * blockDim.x + threadIdx.x;
    int a = blockIdx.y * blockDim.y + threadIdx.y;
    if (a >= B || p >= B) return;
    size_t ap = (size_t)a * B + p;
    long long n = chosen[ap];
    hinges[ap] = 0;
    if (n < 0) return;
    real_t hinge = (d[ap] + margin) - d[(size_t)a * B + n];
    if (hinge > 0) {
        hinges[ap] = hinge;
        atomicAdd(weights + ap, (real_t)1);
        atomicAdd(weights + (size_t)a * B + n, (real_t)-1);
    }
}

// For a positive j of anchor a: W[a, j] = #{negatives n : d_an < d_aj + margin} and hinge_sums[a, j] the sum
// of those hinges; for a negative j: W[a, j] = -#{positives p : d_ap + margin > d_aj}; else 0.
extern "C" __global__ void batch_all(const real_t* d, const long long* labels, real_t margin, real_t* weights,
                                     double* hinge_sums, int B) {
    int j = blockIdx.x * blockDim.x + threadIdx.x;
    int a = blockIdx.y * blockDim.y + threadIdx.y;
    if (a >= B || j >= B) return;
    const real_t* row = d + (size_t)a * B;
    long long count = 0;
    double total = 0;
    if (labels[j] == labels[a] && j != a) {
        real_t threshold = row[j] + margin;
        for (int n = 0; n < B; ++n) {
            if (labels[n] != labels[a] && row[n] < threshold) {
                count += 1;
                total += (double)threshold - (double)row[n];
            }
        }
    } else if (labels[j] != labels[a]) {
        for (int p = 0; p < B; ++p) {
            if (labels[p] == labels[a] && p != a && row[p] + margin > row[j]) count -= 1;
        }
    }
    weights[(size_t)a * B + j] = (real_t)count;
    hinge_sums[(size_t)a * B + j] = total;
}

// One thread per anchor: the farthest positive p*, the nearest negative n*; z = (d_ap* + margin) - d_an*;
// losses[a] = max(z, 0), or softplus(z) when soft; W[a, p*] = slope * scale = -W[a, n*], the rest of row a 0.
extern "C" __global__ void batch_hard(const real_t* d, const long long* labels, real_t margin, int soft,
                                      double scale, real_t* weights, double* losses, int B) {
    int a = blockIdx.x * blockDim.x + threadIdx.x;
    if (a >= B) return;
    const real_t* row = d + (size_t)a * B;
    int p_star = -1, n_star = -1;
    for (int j = 0; j < B; ++j) {
        weights[(size_t)a * B + j] = 0;
        if (labels[j] == labels[a]) {
            if (j != a && (p_star < 0 || row[j] > row[p_star])) p_star = j;
        } else if (n_star < 0 || row[j] < row[n_star]) {
            n_star = j;
        }
    }
    losses[a] = 0;
    if (p_star < 0 || n_star < 0) return;
    real_t z = (row[p_star] + margin) - row[n_star];
    double slope = 0;
    if (soft) {
        losses[a] = fmax((double)z, 0.0) + log1p(exp(-fabs((double)z)));
        slope = 0.5 * (1 + tanh(0.5 * (double)z));
    } else if (z > 0) {
        losses[a] = z;
        slope = 1;
    }
    weights[(size_t)a * B + p_star] = (real_t)(slope * scale);
    weights[(size_t)a * B + n_star] = (real_t)(-slope * scale);
}
