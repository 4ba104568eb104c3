// Log densities of the adaptive importance sampler's proposals, evaluated at many points.
//
// A proposal is a mixture, in unbounded coordinates y (R^d), of
//  * multivariate Student-t kernels (df degrees of freedom) in groups that share one scale
//    matrix L L^T (L lower triangular): kernel k contributes
//        log_coef_k - (df + d)/2 ln(1 + |L^-1 (y - mu_k)|^2 / df),
//    log_coef_k holding the log of its weight and of the Student-t normalisation;
//  * the image of the uniform box prior, a product of standard logistics, with log weight
//    log_defensive (-inf: absent): log_defensive + log_box(y);
//  * Gaussian kernels in the box coordinates u = 1 / (1 + e^-y), truncated to the unit box:
//        box_log_coef_k - |L_k^-1 (u - m_k)|^2 / 2 + log_box(y),
//    box_log_coef_k holding the log of the weight over the in-box mass and the Gaussian
//    normalisation, log_box(y) = ln |du/dy| (the same function as the box prior's).
// The result is the log of the sum of all terms. Single-threaded and deterministic; the
// points are processed in blocks, transposed, so that every loop runs over points and
// vectorises (the logs and exps are polynomial: vlog_positive, vexp_taylor).
#pragma once

#include <cstddef>
#include <vector>

namespace pixedfit {

class ProposalDensity {
public:
    // t_chols (G, d, d) lower factors; t_offsets (G + 1): group g owns kernels
    // [t_offsets[g], t_offsets[g + 1]) of t_centres (K, d) and t_log_coef (K);
    // box_chols (B, d, d), box_means (B, d), box_log_coef (B). Throws
    // std::invalid_argument on inconsistent sizes, a non-positive df or a factor with a
    // non-positive diagonal.
    ProposalDensity(std::size_t dim, double df, const double* t_chols, std::size_t n_groups,
                    const std::size_t* t_offsets, const double* t_centres,
                    const double* t_log_coef, const double* box_chols, std::size_t n_box,
                    const double* box_means, const double* box_log_coef,
                    double log_defensive);

    // out[i] = ln q(y_i) for the rows of y (n, d); log_box (n) = sum_j ln sigma(y_ij)
    // (1 - sigma(y_ij)), given by the caller.
    void log_density(const double* y, std::size_t n, const double* log_box, double* out) const;

    std::size_t dim() const { return dim_; }
    std::size_t n_terms() const { return log_coef_.size() + box_log_coef_.size() + 1; }

private:
    std::size_t dim_;
    double df_;
    std::vector<double> chols_;        // (G, d, d), diagonals replaced by their inverses
    std::vector<std::size_t> offsets_;  // (G + 1)
    std::vector<double> white_;        // (K, d) whitened centres L_g^-1 mu_k
    std::vector<double> log_coef_;     // (K)
    std::vector<double> box_chols_;    // (B, d, d), diagonals inverted
    std::vector<double> box_means_;    // (B, d)
    std::vector<double> box_log_coef_;  // (B)
    double log_defensive_;
};

// The share of the draws mu_k + L_k z_i inside the open unit box (0, 1)^d, for every
// Gaussian kernel k of a mixture in the box coordinates (the normalisation of its truncation
// to the box, estimated by Monte Carlo): chols (K, d, d) lower factors L_k, means (K, d),
// normals (n, d) the standard normal draws z_i shared by all kernels. Returns (K) counts over
// n. Coordinate r of a draw is sum_{s <= r} L_k[r, s] z_is + mu_k[r] (the upper triangle of
// L_k is never read). Throws std::invalid_argument for n = 0 or d = 0.
std::vector<double> box_fractions(const double* chols, const double* means,
                                  std::size_t n_kernels, const double* normals, std::size_t n,
                                  std::size_t d);

}  // namespace pixedfit
