// Shared helpers for the pixedfit kernels: thread-count resolution and argument checks.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

// Hot loops marked PIXEDFIT_MULTIVERSION are compiled for AVX2/FMA (x86-64-v3) as well as
// the baseline ISA and chosen at run time, where the compiler supports it (GCC on x86-64
// Linux). Results may differ in the last bits between the two ISAs, never between threads.
#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define PIXEDFIT_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define PIXEDFIT_MULTIVERSION
#endif

// Helpers of a PIXEDFIT_MULTIVERSION function must be inlined into each of its clones to be
// compiled for that clone's ISA.
#if defined(__GNUC__)
#define PIXEDFIT_INLINE inline __attribute__((always_inline))
#else
#define PIXEDFIT_INLINE inline
#endif

namespace pixedfit {

// Number of OpenMP threads to use for a `threads` argument: values <= 0 mean
// "all available cores" (omp_get_max_threads()).
int resolve_threads(int threads);

// Throw std::invalid_argument with `message` when `condition` is false.
inline void require(bool condition, const std::string& message) {
    if (!condition) {
        throw std::invalid_argument(message);
    }
}

}  // namespace pixedfit
