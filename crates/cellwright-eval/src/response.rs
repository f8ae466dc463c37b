//! Predicted expression responses against observed ones, the Virtual Cell Challenge's way:
//! Pearson correlation of the delta from control (all genes and the top observed changes),
//! mean absolute error, perturbation discrimination (PDS), differential-expression overlap
//! (DES, Wilcoxon rank-sum with Benjamini–Hochberg), and scores scaled against a baseline.
//!
//! Conventions:
//! - A delta is a perturbation's mean expression minus the control mean, one value per gene.
//! - Genes a perturbation targets are left out of its scores (`exclude`): their change is
//!   known without any model.
//! - A correlation with a constant vector is undefined; [`pearson`] returns `None` and
//!   [`pearson_or_zero`] counts it as no correlation, so the no-change baseline scores 0.

use statrs::function::erf::erfc;

/// Pearson correlation of `a` and `b`; `None` when they differ in length, have fewer than
/// two values, or either is constant.
pub fn pearson(a: &[f64], b: &[f64]) -> Option<f64> {
    if a.len() != b.len() || a.len() < 2 {
        return None;
    }
    let n = a.len() as f64;
    let (ma, mb) = (a.iter().sum::<f64>() / n, b.iter().sum::<f64>() / n);
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        let (dx, dy) = (x - ma, y - mb);
        sab += dx * dy;
        saa += dx * dx;
        sbb += dy * dy;
    }
    // Relative to the values' scale, so rounding noise on a constant vector is constant.
    let tiny = |s: f64, m: f64| s <= 1e-24 * (1.0 + m * m) * n;
    if tiny(saa, ma) || tiny(sbb, mb) {
        return None;
    }
    Some((sab / (saa * sbb).sqrt()).clamp(-1.0, 1.0))
}

/// [`pearson`], with an undefined correlation counted as 0.
pub fn pearson_or_zero(a: &[f64], b: &[f64]) -> f64 {
    pearson(a, b).unwrap_or(0.0)
}

/// Mean absolute difference; `NaN` for empty or unequal inputs.
pub fn mae(a: &[f64], b: &[f64]) -> f64 {
    if a.len() != b.len() || a.is_empty() {
        return f64::NAN;
    }
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).sum::<f64>() / a.len() as f64
}

/// The indices of the `k` largest `|delta|`, largest first (ties by index), skipping `exclude`.
pub fn top_changed(delta: &[f64], k: usize, exclude: &[usize]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..delta.len()).filter(|i| !exclude.contains(i)).collect();
    order.sort_by(|&a, &b| delta[b].abs().total_cmp(&delta[a].abs()).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// The values at `indices`.
pub fn pick(values: &[f64], indices: &[usize]) -> Vec<f64> {
    indices.iter().map(|&i| values[i]).collect()
}

/// Ranks from 1, ties given their average rank; also Σ(t³ − t) over tie groups.
fn ranks(values: &[f64]) -> (Vec<f64>, f64) {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; values.len()];
    let mut ties = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let average = (start + end + 1) as f64 / 2.0;
        for &i in &order[start..end] {
            ranks[i] = average;
        }
        let t = (end - start) as f64;
        ties += t * t * t - t;
        start = end;
    }
    (ranks, ties)
}

/// Two-sided p-value of the Wilcoxon rank-sum (Mann–Whitney U) test of `x` against `y`:
/// the normal approximation with tie and continuity corrections (SciPy's `mannwhitneyu`
/// with `method="asymptotic"`). 1 when either sample is empty or every value is the same.
pub fn wilcoxon_rank_sum(x: &[f64], y: &[f64]) -> f64 {
    let (n1, n2) = (x.len() as f64, y.len() as f64);
    if x.is_empty() || y.is_empty() {
        return 1.0;
    }
    let all: Vec<f64> = x.iter().chain(y).copied().collect();
    let (r, ties) = ranks(&all);
    let u = r[..x.len()].iter().sum::<f64>() - n1 * (n1 + 1.0) / 2.0;
    let n = n1 + n2;
    let variance = n1 * n2 / 12.0 * ((n + 1.0) - ties / (n * (n - 1.0)));
    if variance <= 0.0 {
        return 1.0;
    }
    let z = ((u - n1 * n2 / 2.0).abs() - 0.5).max(0.0) / variance.sqrt();
    erfc(z / std::f64::consts::SQRT_2).min(1.0)
}

/// Benjamini–Hochberg adjusted p-values, in the input's order.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len() as f64;
    let mut order: Vec<usize> = (0..p.len()).collect();
    order.sort_by(|&a, &b| p[b].total_cmp(&p[a]));
    let mut adjusted = vec![0.0; p.len()];
    let mut running = 1.0f64;
    for (k, &i) in order.iter().enumerate() {
        let rank = m - k as f64;
        running = running.min(p[i] * m / rank);
        adjusted[i] = running.min(1.0);
    }
    adjusted
}

/// Genes differentially expressed between `perturbed` and `control` cells (each a list of
/// cells, each cell a value per gene): Wilcoxon rank-sum per gene, BH-adjusted below `fdr`,
/// skipping `exclude`.
pub fn differential_genes(
    perturbed: &[Vec<f64>],
    control: &[Vec<f64>],
    fdr: f64,
    exclude: &[usize],
) -> Vec<usize> {
    let genes = control.first().or(perturbed.first()).map_or(0, Vec::len);
    let tested: Vec<usize> = (0..genes).filter(|g| !exclude.contains(g)).collect();
    let p: Vec<f64> = tested
        .iter()
        .map(|&g| {
            let x: Vec<f64> = perturbed.iter().map(|c| c[g]).collect();
            let y: Vec<f64> = control.iter().map(|c| c[g]).collect();
            wilcoxon_rank_sum(&x, &y)
        })
        .collect();
    benjamini_hochberg(&p)
        .into_iter()
        .zip(tested)
        .filter(|(q, _)| *q < fdr)
        .map(|(_, g)| g)
        .collect()
}

/// DES: the share of the observed DE genes `observed` among the same number of genes with
/// the largest predicted `|delta|` (the challenge's rule for a predicted set larger than the
/// observed one, applied to a prediction that moves every gene). `None` when no gene is
/// observed to change.
pub fn des(predicted_delta: &[f64], observed: &[usize], exclude: &[usize]) -> Option<f64> {
    if observed.is_empty() {
        return None;
    }
    let called = top_changed(predicted_delta, observed.len(), exclude);
    let hits = called.iter().filter(|g| observed.contains(g)).count();
    Some(hits as f64 / observed.len() as f64)
}

/// PDS per perturbation: for prediction `i`, the share of the other observed deltas that are
/// farther (L1, over genes outside `exclude[i]`) from it than the observed delta `i`, ties
/// counted half. 1: the prediction is nearest its own perturbation; 0.5: chance.
pub fn pds(predicted: &[Vec<f64>], observed: &[Vec<f64>], exclude: &[Vec<usize>]) -> Vec<f64> {
    let n = observed.len();
    if n < 2 || predicted.len() != n {
        return vec![f64::NAN; predicted.len()];
    }
    (0..n)
        .map(|i| {
            let skip = exclude.get(i).map_or(&[][..], Vec::as_slice);
            let distance = |o: &Vec<f64>| -> f64 {
                predicted[i]
                    .iter()
                    .zip(o)
                    .enumerate()
                    .filter(|(g, _)| !skip.contains(g))
                    .map(|(_, (p, o))| (p - o).abs())
                    .sum()
            };
            let own = distance(&observed[i]);
            let beaten: f64 = (0..n)
                .filter(|&j| j != i)
                .map(|j| match distance(&observed[j]).total_cmp(&own) {
                    std::cmp::Ordering::Greater => 1.0,
                    std::cmp::Ordering::Equal => 0.5,
                    std::cmp::Ordering::Less => 0.0,
                })
                .sum();
            beaten / (n - 1) as f64
        })
        .collect()
}

/// The challenge's scaled score of a higher-is-better metric: `(u − b) / (1 − b)`, where `b`
/// is the baseline's value; 0 when the baseline is already perfect.
pub fn scaled(ours: f64, baseline: f64) -> f64 {
    if baseline >= 1.0 {
        0.0
    } else {
        (ours - baseline) / (1.0 - baseline)
    }
}

/// The scaled score of a lower-is-better error: `(b − u) / b`; 0 when the baseline is exact.
pub fn scaled_error(ours: f64, baseline: f64) -> f64 {
    if baseline <= 0.0 {
        0.0
    } else {
        (baseline - ours) / baseline
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pearson_is_hand_computed_and_undefined_for_constants() {
        // x = 1,2,3; y = 2,4,7: cov 2.5, var 1 and 6.333.. (n − 1 cancels).
        let r = pearson(&[1.0, 2.0, 3.0], &[2.0, 4.0, 7.0]).unwrap();
        assert!(
            (r - 5.0 / (2.0f64 * 19.0 / 3.0 * 2.0).sqrt()).abs() < 1e-12,
            "{r}"
        );
        assert_eq!(pearson(&[1.0, 1.0, 1.0], &[1.0, 2.0, 3.0]), None);
        assert_eq!(pearson(&[0.0; 4], &[0.0; 4]), None);
        assert_eq!(pearson(&[1.0], &[1.0]), None);
        assert_eq!(pearson_or_zero(&[0.0; 3], &[1.0, 2.0, 3.0]), 0.0);
        assert!((pearson(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]).unwrap() + 1.0).abs() < 1e-12);
    }

    #[test]
    fn ranks_average_ties() {
        let (r, ties) = ranks(&[3.0, 1.0, 3.0, 2.0]);
        assert_eq!(r, vec![3.5, 1.0, 3.5, 2.0]);
        assert_eq!(ties, 6.0);
    }

    #[test]
    fn wilcoxon_matches_scipy() {
        // scipy.stats.mannwhitneyu([1,2,3],[4,5,6], method="asymptotic").pvalue: U = 0,
        // σ = √5.25, z = (4.5 − 0.5)/σ.
        let p = wilcoxon_rank_sum(&[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0]);
        let z: f64 = 4.0 / 5.25f64.sqrt();
        assert!((p - erfc(z / 2f64.sqrt())).abs() < 1e-12);
        assert!((p - 0.0809).abs() < 1e-4, "{p}");
        // With ties: x = 1,1,2; y = 2,3,3. Ranks 1.5,1.5,3.5 | 3.5,5.5,5.5; U = 6.5 − 6 = 0.5;
        // tie term 3·(8 − 2) = 18; variance = 9/12·(7 − 18/30) = 4.8.
        let p = wilcoxon_rank_sum(&[1.0, 1.0, 2.0], &[2.0, 3.0, 3.0]);
        let z: f64 = (4.0 - 0.5) / 4.8f64.sqrt();
        assert!((p - erfc(z / 2f64.sqrt())).abs() < 1e-12, "{p}");
        assert_eq!(wilcoxon_rank_sum(&[2.0, 2.0], &[2.0, 2.0]), 1.0);
        assert_eq!(wilcoxon_rank_sum(&[], &[1.0]), 1.0);
    }

    #[test]
    fn benjamini_hochberg_is_hand_computed() {
        // Sorted 0.01, 0.02, 0.03, 0.5: ×4/1, ×4/2, ×4/3, ×4/4 = 0.04, 0.04, 0.04, 0.5.
        let q = benjamini_hochberg(&[0.5, 0.01, 0.03, 0.02]);
        let expected = [0.5, 0.04, 0.04, 0.04];
        for (a, b) in q.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{q:?}");
        }
    }

    #[test]
    fn top_changed_skips_excluded_and_breaks_ties_by_index() {
        assert_eq!(
            top_changed(&[0.1, -3.0, 2.0, -2.0, 5.0], 3, &[4]),
            [1, 2, 3]
        );
    }

    #[test]
    fn des_counts_observed_genes_among_the_largest_predicted() {
        let predicted = [0.0, 1.0, -2.0, 0.5, 0.1];
        assert_eq!(des(&predicted, &[2, 3], &[]), Some(0.5));
        assert_eq!(des(&predicted, &[1, 2], &[]), Some(1.0));
        assert_eq!(des(&predicted, &[], &[]), None);
    }

    #[test]
    fn differential_genes_finds_a_shifted_gene() {
        let control: Vec<Vec<f64>> = (0..30).map(|i| vec![f64::from(i % 5), 1.0]).collect();
        let perturbed: Vec<Vec<f64>> = (0..30)
            .map(|i| vec![f64::from(i % 5) + 10.0, 1.0])
            .collect();
        assert_eq!(differential_genes(&perturbed, &control, 0.05, &[]), [0]);
        assert!(differential_genes(&perturbed, &control, 0.05, &[0]).is_empty());
    }

    #[test]
    fn pds_is_one_for_exact_predictions_and_counts_ties_half() {
        let observed = vec![vec![1.0, 0.0], vec![0.0, 1.0], vec![5.0, 5.0]];
        assert_eq!(pds(&observed, &observed, &[]), vec![1.0; 3]);
        // Equidistant from all three: ties with both others.
        let far = vec![vec![100.0, 100.0]; 3];
        let flat = vec![vec![0.5, 0.5]; 3];
        let scores = pds(&flat, &observed, &[]);
        assert_eq!(scores[0], 0.75, "{scores:?}");
        assert_eq!(pds(&far, &observed, &[])[2], 1.0);
    }

    #[test]
    fn scaled_scores_against_a_baseline() {
        assert_eq!(scaled(0.75, 0.5), 0.5);
        assert_eq!(scaled(0.5, 1.0), 0.0);
        assert_eq!(scaled_error(0.5, 2.0), 0.75);
        assert_eq!(scaled_error(0.5, 0.0), 0.0);
    }
}
