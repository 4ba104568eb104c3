// Minimal test harness for the kernel tests run by ctest (no external framework needed).
#pragma once

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <vector>

namespace check {

struct Registry {
    std::vector<std::pair<std::string, std::function<void()>>> tests;
    int failures = 0;
    static Registry& get() {
        static Registry r;
        return r;
    }
};

struct Add {
    Add(const char* name, std::function<void()> fn) {
        Registry::get().tests.emplace_back(name, std::move(fn));
    }
};

inline void fail(const char* file, int line, const std::string& what) {
    std::fprintf(stderr, "%s:%d: check failed: %s\n", file, line, what.c_str());
    ++Registry::get().failures;
}

inline int run_all() {
    int failed_tests = 0;
    for (auto& [name, fn] : Registry::get().tests) {
        const int before = Registry::get().failures;
        try {
            fn();
        } catch (const std::exception& e) {
            std::fprintf(stderr, "%s: unexpected exception: %s\n", name.c_str(), e.what());
            ++Registry::get().failures;
        }
        const bool ok = Registry::get().failures == before;
        std::printf("[%s] %s\n", ok ? "PASS" : "FAIL", name.c_str());
        if (!ok) ++failed_tests;
    }
    const int total = static_cast<int>(Registry::get().tests.size());
    std::printf("%d passed, %d failed\n", total - failed_tests, failed_tests);
    return failed_tests == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

}  // namespace check

#define CHECK_CAT2(a, b) a##b
#define CHECK_CAT(a, b) CHECK_CAT2(a, b)
#define TEST_CASE(name)                                                       \
    static void CHECK_CAT(test_fn_, __LINE__)();                              \
    static check::Add CHECK_CAT(test_add_, __LINE__)(name, CHECK_CAT(test_fn_, __LINE__)); \
    static void CHECK_CAT(test_fn_, __LINE__)()
#define CHECK(cond) \
    do { if (!(cond)) check::fail(__FILE__, __LINE__, #cond); } while (0)
#define CHECK_CLOSE(a, b, rtol)                                                          \
    do {                                                                                 \
        const double va_ = (a), vb_ = (b);                                               \
        if (!(std::fabs(va_ - vb_) <= (rtol) * std::fmax(std::fabs(va_), std::fabs(vb_)))) \
            check::fail(__FILE__, __LINE__, std::string(#a " ~ " #b ": ") +             \
                        std::to_string(va_) + " vs " + std::to_string(vb_));             \
    } while (0)
#define CHECK_THROWS(expr)                                                    \
    do {                                                                      \
        bool thrown_ = false;                                                 \
        try { (void)(expr); } catch (const std::exception&) { thrown_ = true; } \
        if (!thrown_) check::fail(__FILE__, __LINE__, "no exception: " #expr); \
    } while (0)
#define TEST_MAIN() int main() { return check::run_all(); }
