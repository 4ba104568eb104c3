// Shared helpers for the pixedfit kernels: thread-count resolution and argument checks.
#pragma once

#include <cstddef>
#include <stdexcept>
#include <string>

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
