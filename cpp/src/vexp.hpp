// A vectorisable exp for the kernels (no libm call in the hot loops).
#pragma once

#include <cstdint>
#include <cstring>

namespace pixedfit {
namespace detail {

// exp(x) written so that compilers vectorise it (no libm call): Cody-Waite reduction
// x = k ln2 + r, |r| <= ln2/2, Taylor polynomial of degree `Degree` (relative error
// ~ 0.35^(Degree+1) / (Degree+1)!: 1e-15 for 12, 2e-10 for 8) evaluated by Horner's rule,
// 2^k by exponent bits. Inputs are clamped to [-708, 709].
template <int Degree>
inline double vexp_taylor(double x) {
    x = x < -708.0 ? -708.0 : (x > 709.0 ? 709.0 : x);
    const double shifter = 6755399441055744.0;  // 1.5 * 2^52: round to nearest integer
    double kd = x * 1.4426950408889634 + shifter;
    std::uint64_t kbits;
    std::memcpy(&kbits, &kd, sizeof kbits);  // low bits: k + 2^51 (two's complement)
    kd -= shifter;
    const double r = (x - kd * 0.693147180369123816490) - kd * 1.90821492927058770002e-10;
    double factorial = 1.0;
    for (int k = 2; k <= Degree; ++k) factorial *= k;
    double pr = 1.0 / factorial;  // 1 / Degree!
    for (int k = Degree - 1; k >= 2; --k) {
        factorial /= (k + 1);  // k! exactly (integers below 2^53)
        pr = pr * r + 1.0 / factorial;
    }
    pr = pr * r + 1.0;
    pr = pr * r + 1.0;
    const std::uint64_t bits = (kbits + (1023ULL - 0x8000000000000ULL)) << 52;
    double scale;
    std::memcpy(&scale, &bits, sizeof scale);
    return pr * scale;
}

}  // namespace detail
}  // namespace pixedfit
