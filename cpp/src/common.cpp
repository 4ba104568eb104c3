#include "pixedfit/common.hpp"

#include <omp.h>

namespace pixedfit {

int max_threads() {
    const int procs = omp_get_num_procs();
    return procs > 0 ? procs : 1;
}

int resolve_threads(int threads) {
    const int cap = max_threads();
    const int wanted = threads > 0 ? threads : omp_get_max_threads();
    if (wanted < 1) return 1;
    return wanted < cap ? wanted : cap;
}

}  // namespace pixedfit
