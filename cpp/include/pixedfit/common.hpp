// Shared helpers for the pixedfit kernels: thread-count resolution and argument checks.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string>
#include <utility>

#if defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#endif

// Hot loops marked PIXEDFIT_MULTIVERSION are compiled for AVX2/FMA (x86-64-v3) as well as
// the baseline ISA and chosen at run time, where the compiler supports it (GCC on x86-64
// Linux). Results may differ in the last bits between the two ISAs, never between threads.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define PIXEDFIT_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define PIXEDFIT_MULTIVERSION
#endif

// Kernels that gain from AVX-512 (the SSP block sums, the dust transmissions, the nebular
// line sums, the steps of the Gaussian-mixture EM, the proposal densities) have a variant
// compiled for x86-64-v4 (PIXEDFIT_AVX512, or PIXEDFIT_AVX512_WIDE for loops the compiler
// vectorises), chosen at run time (call_widest) when cpu_has_avx512() says the CPU and the
// operating system support it. A variant does the same operations in the same order as the
// x86-64-v3 clone (with the same fused multiply-adds, or none), so its results are the same
// bits.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define PIXEDFIT_HAVE_AVX512 1
#define PIXEDFIT_AVX512 __attribute__((target("arch=x86-64-v4")))
// (the same, with loops vectorised by the compiler 512 bits wide instead of 256)
#define PIXEDFIT_AVX512_WIDE __attribute__((target("arch=x86-64-v4,prefer-vector-width=512")))
#else
#define PIXEDFIT_HAVE_AVX512 0
#define PIXEDFIT_AVX512
#define PIXEDFIT_AVX512_WIDE
#endif

// Helpers of a PIXEDFIT_MULTIVERSION function must be inlined into each of its clones to be
// compiled for that clone's ISA.
#if defined(__GNUC__)
#define PIXEDFIT_INLINE inline __attribute__((always_inline))
#else
#define PIXEDFIT_INLINE inline
#endif

namespace pixedfit {

// Inside its scope, subnormal operands and results of the SSE/AVX arithmetic of this thread
// count as zero (x86-64: the DAZ and FTZ bits of MXCSR, restored when the scope ends;
// elsewhere nothing changes). Many Intel CPUs take a microcode assist, ~100 cycles, for
// every vector instruction that meets a subnormal float: the single-precision SSP rows
// projected onto the band knots hold some (products of the Lagrange weights at the far
// ends of a band's tail, |x| < 1.2e-38), and they made the sums of the knot photometry
// 2x slower on a Xeon. Values that small never change a band flux, which adds them to
// numbers above 1e-30 in double precision.
class FlushDenormals {
public:
#if defined(__x86_64__) || defined(_M_X64)
    FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | kFtzDaz); }
    ~FlushDenormals() { _mm_setcsr(saved_); }
#else
    FlushDenormals() = default;
#endif
    FlushDenormals(const FlushDenormals&) = delete;
    FlushDenormals& operator=(const FlushDenormals&) = delete;

private:
#if defined(__x86_64__) || defined(_M_X64)
    static constexpr unsigned kFtzDaz = 0x8040u;  // flush to zero (bit 15), DAZ (bit 6)
    unsigned saved_;
#endif
};

#if PIXEDFIT_HAVE_AVX512
// Whether the x86-64-v4 variants may run here (checked once): the CPU and the operating
// system support AVX-512 (F, VL, BW, DQ, CD) and the environment variable
// PIXEDFIT_DISABLE_AVX512 is unset, empty or "0" (set it to compare the two paths, or to
// keep a CPU that slows its clock for 512-bit vectors on the narrower ones).
inline bool cpu_has_avx512() {
    static const bool ok = [] {
        const char* off = std::getenv("PIXEDFIT_DISABLE_AVX512");
        if (off != nullptr && off[0] != '\0' && !(off[0] == '0' && off[1] == '\0'))
            return false;
        __builtin_cpu_init();
        return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
               __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx2") &&
               __builtin_cpu_supports("fma");
    }();
    return ok;
}
#else
inline bool cpu_has_avx512() { return false; }
#endif

// fn_avx512(args...) where cpu_has_avx512(), else fn(args...): the two variants of a
// kernel (the first compiled with PIXEDFIT_AVX512 or PIXEDFIT_AVX512_WIDE).
template <class Fn, class... Args>
inline void call_widest(Fn* fn_avx512, Fn* fn, Args&&... args) {
    (cpu_has_avx512() ? fn_avx512 : fn)(std::forward<Args>(args)...);
}

// Number of OpenMP threads to use for a `threads` argument: values <= 0 mean "all
// available cores" (omp_get_max_threads(), which honours OMP_NUM_THREADS); any request is
// capped at max_threads(), so a huge count can neither exhaust the process's threads nor
// make per-thread buffers overflow memory. Results never depend on the count.
int resolve_threads(int threads);

// The largest thread count a kernel uses: the processors available to this process
// (omp_get_num_procs(), which honours the CPU affinity mask), at least 1.
int max_threads();

// Carries exceptions out of an OpenMP region, which they must never leave (an exception
// escaping a parallel region terminates the process). Wrap the body of every iteration in
// run(index, f); after the region, rethrow() throws the exception of the smallest index
// seen. Once an iteration has failed, failed() lets the others skip their work.
class ParallelErrors {
public:
    template <class F>
    void run(std::int64_t index, F&& f) noexcept {
        try {
            f();
        } catch (...) {
            record(index, std::current_exception());
        }
    }

    bool failed() const noexcept { return failed_.load(std::memory_order_relaxed); }

    void rethrow() const {
        if (error_) std::rethrow_exception(error_);
    }

private:
    void record(std::int64_t index, std::exception_ptr error) noexcept {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_ || index < index_) {
            error_ = std::move(error);
            index_ = index;
        }
        failed_.store(true, std::memory_order_relaxed);
    }

    std::mutex mutex_;
    std::exception_ptr error_;
    std::int64_t index_ = 0;
    std::atomic<bool> failed_{false};
};

// Throw std::invalid_argument with `message` when `condition` is false.
inline void require(bool condition, const std::string& message) {
    if (!condition) {
        throw std::invalid_argument(message);
    }
}

// The same for a fixed message (a string literal): no std::string is made unless the
// condition fails, so that checks inside loops cost a comparison (made from the literal at
// every call, the string took ~20 ns: 40 us for the 1 896 grid points a band's weights check).
inline void require(bool condition, const char* message) {
    if (!condition) {
        throw std::invalid_argument(message);
    }
}

}  // namespace pixedfit
