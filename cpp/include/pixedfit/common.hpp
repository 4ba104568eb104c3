// Shared helpers for the pixedfit kernels: thread-count resolution and argument checks.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <mutex>
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

}  // namespace pixedfit
