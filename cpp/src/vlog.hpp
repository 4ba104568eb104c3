// A vectorisable natural logarithm for the kernels (no libm call in the hot loops).
#pragma once

#include <cstdint>
#include <cstring>

namespace pixedfit {
namespace detail {

// ln(x) for finite normal x > 0, written so that compilers vectorise it: x = 2^e m with
// m in [1/sqrt(2), sqrt(2)), ln m = 2 atanh(s) = 2 (s + s^3/3 + ... + s^23/23) with
// s = (m - 1) / (m + 1), |s| <= 0.172 (truncation below 1e-19 relative), evaluated by
// Horner's rule in s^2; e ln 2 added in two parts (Cody-Waite). Error: a few units in the
// last place. The exponent comes out of the bits as a double (the 2^52 trick), so no
// integer-to-double conversion is needed. Zero, negative, subnormal or non-finite inputs
// give meaningless results: callers pass values >= 1.
inline double vlog_positive(double x) {
    std::uint64_t bits;
    std::memcpy(&bits, &x, sizeof bits);
    // exponent field as a double: the bits 0x433 << 52 | field are 2^52 + field
    const std::uint64_t ebits = 0x4330000000000000ULL | (bits >> 52);
    double e;
    std::memcpy(&e, &ebits, sizeof e);
    e -= 4503599627370496.0 + 1023.0;
    const std::uint64_t mbits = (bits & 0x000fffffffffffffULL) | 0x3ff0000000000000ULL;
    double m;
    std::memcpy(&m, &mbits, sizeof m);  // in [1, 2)
    const bool upper = m > 1.4142135623730951;
    const double half = 0.5 * m, next = e + 1.0;  // both sides computed: a select remains
    m = upper ? half : m;
    e = upper ? next : e;
    const double s = (m - 1.0) / (m + 1.0);
    const double s2 = s * s;
    double p = 1.0 / 23.0;
    p = p * s2 + 1.0 / 21.0;
    p = p * s2 + 1.0 / 19.0;
    p = p * s2 + 1.0 / 17.0;
    p = p * s2 + 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    const double ln_m = 2.0 * s + 2.0 * s * (s2 * p);
    return (e * 0.693147180369123816490 + ln_m) + e * 1.90821492927058770002e-10;
}

}  // namespace detail
}  // namespace pixedfit
