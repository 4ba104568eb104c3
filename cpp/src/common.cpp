#include "pixedfit/common.hpp"

#include <omp.h>

namespace pixedfit {

int resolve_threads(int threads) {
    if (threads > 0) {
        return threads;
    }
    const int available = omp_get_max_threads();
    return available > 0 ? available : 1;
}

}  // namespace pixedfit
