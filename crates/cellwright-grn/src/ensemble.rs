//! The two tree ensembles, one regression of a target on its candidate regulators each:
//! GENIE3's random forest and GRNBoost2's stochastic gradient boosting, with the defaults and
//! the importance conventions of the `arboreto` package that implements both.

use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::tree::{Grower, Params};

/// GENIE3: a random forest of fully grown trees on bootstrap samples, `√p` features tried per
/// split (arboreto's `RandomForestRegressor(n_estimators=1000, max_features='sqrt')`).
/// Importances are each tree's, normalised to sum 1, averaged over the trees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Forest {
    pub trees: usize,
}

impl Default for Forest {
    fn default() -> Self {
        Self { trees: 1000 }
    }
}

/// Gradient boosting as in GRNBoost2: depth-3 trees on the squared error, each on 90 % of the
/// cells drawn without replacement, 10 % of the regulators tried per split, stopped when the
/// out-of-bag improvement averaged over the last 25 trees turns negative, at most 5,000 trees
/// (arboreto's `GradientBoostingRegressor` settings and its `EarlyStopMonitor`). Importances
/// are the trees' summed gains normalised to sum 1, times the number of trees (arboreto's
/// scaling, so that targets the regulators explain longer rank higher).
///
/// The default learning rate is 0.03 where GRNBoost2's is 0.01 ([`Boosting::GRNBOOST2`]):
/// early stopping then comes after about a third as many trees, and on the benchmark's
/// published models the ranking is as good (`docs/results.md`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Boosting {
    pub learning_rate: f64,
    pub max_trees: usize,
    pub max_depth: usize,
    /// The share of the regulators tried per split.
    pub features_per_split: f64,
    /// The share of the cells each tree is fitted on.
    pub subsample: f64,
    /// Trees over which the out-of-bag improvement is averaged for early stopping.
    pub early_stop_window: usize,
}

impl Boosting {
    /// GRNBoost2's own settings, learning rate 0.01 included.
    pub const GRNBOOST2: Self = Self {
        learning_rate: 0.01,
        max_trees: 5000,
        max_depth: 3,
        features_per_split: 0.1,
        subsample: 0.9,
        early_stop_window: 25,
    };
}

impl Default for Boosting {
    fn default() -> Self {
        Self {
            learning_rate: 0.03,
            ..Self::GRNBOOST2
        }
    }
}

/// Adds `tree`'s importances, normalised to sum 1, to `into`.
fn add_normalised(tree: &[f64], into: &mut [f64]) {
    let total: f64 = tree.iter().sum();
    if total > 0.0 {
        for (into, t) in into.iter_mut().zip(tree) {
            *into += t / total;
        }
    }
}

/// Scales `v` to sum `to` (left at 0 when it sums to 0).
fn scale_to(v: &mut [f64], to: f64) {
    let total: f64 = v.iter().sum();
    if total > 0.0 {
        for x in v {
            *x *= to / total;
        }
    }
}

/// The forest's importance of each feature for `y`.
pub(crate) fn forest(
    features: &[&[u8]],
    y: &[f64],
    params: &Forest,
    rng: &mut ChaCha8Rng,
) -> Vec<f64> {
    let p = features.len();
    let n = y.len();
    let tree_params = Params {
        max_depth: usize::MAX,
        features_per_split: ((p as f64).sqrt() as usize).max(1),
        min_samples_leaf: 1,
    };
    let mut grower = Grower::new(features);
    let (mut importance, mut tree_importance) = (vec![0.0; p], vec![0.0; p]);
    let mut samples = Vec::with_capacity(n);
    let mut draws = vec![0u32; n];
    for _ in 0..params.trees {
        // A bootstrap sample, as counts per cell, then listed in cell order.
        draws.fill(0);
        for _ in 0..n {
            draws[rng.gen_range(0..n)] += 1;
        }
        samples.clear();
        for (s, &k) in draws.iter().enumerate() {
            samples.extend(std::iter::repeat_n(s as u32, k as usize));
        }
        tree_importance.fill(0.0);
        grower.grow(y, &mut samples, &tree_params, rng, &mut tree_importance);
        add_normalised(&tree_importance, &mut importance);
    }
    scale_to(&mut importance, 1.0);
    importance
}

/// The boosted trees' importance of each feature for `y`, and how many trees were grown.
pub(crate) fn boost(
    features: &[&[u8]],
    y: &[f64],
    params: &Boosting,
    rng: &mut ChaCha8Rng,
) -> (Vec<f64>, usize) {
    let p = features.len();
    let n = y.len();
    let tree_params = Params {
        max_depth: params.max_depth,
        features_per_split: ((params.features_per_split * p as f64) as usize).max(1),
        min_samples_leaf: 1,
    };
    let in_bag = ((params.subsample * n as f64) as usize).clamp(1, n);
    let mut grower = Grower::new(features);
    let mut importance = vec![0.0; p];
    let mean = y.iter().sum::<f64>() / n as f64;
    let mut prediction = vec![mean; n];
    let mut residual = vec![0.0; n];
    let (mut samples, mut oob) = (Vec::with_capacity(in_bag), Vec::with_capacity(n - in_bag));
    let mut cells: Vec<u32> = (0..n as u32).collect();
    let mut marked = vec![false; n];
    let mut improvements: Vec<f64> = Vec::new();
    let oob_loss = |prediction: &[f64], oob: &[u32]| -> f64 {
        let sum: f64 = oob
            .iter()
            .map(|&s| (y[s as usize] - prediction[s as usize]).powi(2))
            .sum();
        sum / oob.len().max(1) as f64
    };
    let mut trees = 0;
    while trees < params.max_trees {
        for (r, (y, f)) in residual.iter_mut().zip(y.iter().zip(&prediction)) {
            *r = y - f;
        }
        // `in_bag` cells drawn without replacement are fitted, the rest are out of bag: the
        // smaller side is drawn by a partial shuffle, then both are listed in cell order.
        let (drawn, drawn_in_bag) = if in_bag * 2 <= n {
            (in_bag, true)
        } else {
            (n - in_bag, false)
        };
        for k in 0..drawn {
            let pick = rng.gen_range(k..n);
            cells.swap(k, pick);
        }
        marked.fill(!drawn_in_bag);
        for &s in &cells[..drawn] {
            marked[s as usize] = drawn_in_bag;
        }
        // Branch-free: every cell is written to both lists, and only one of them advances.
        samples.resize(n, 0);
        oob.resize(n + 1, 0);
        let (mut i, mut o) = (0, 0);
        for (s, &fitted) in marked.iter().enumerate() {
            samples[i.min(n - 1)] = s as u32;
            oob[o] = s as u32;
            i += usize::from(fitted);
            o += usize::from(!fitted);
        }
        samples.truncate(i);
        oob.truncate(o);
        let before = oob_loss(&prediction, &oob);
        let tree = grower.grow(&residual, &mut samples, &tree_params, rng, &mut importance);
        // In-bag cells by the leaves they were grown into; out-of-bag ones down the tree.
        for &(leaf, start, end) in &grower.leaves {
            let step = params.learning_rate * tree.value(leaf);
            for &s in &samples[start as usize..end as usize] {
                prediction[s as usize] += step;
            }
        }
        for &s in &oob {
            prediction[s as usize] += params.learning_rate * tree.predict(features, s as usize);
        }
        trees += 1;
        if in_bag < n {
            improvements.push(before - oob_loss(&prediction, &oob));
            let w = params.early_stop_window;
            if w > 0 && improvements.len() >= w {
                let recent = &improvements[improvements.len() - w..];
                if recent.iter().sum::<f64>() / (w as f64) < 0.0 {
                    break;
                }
            }
        }
    }
    scale_to(&mut importance, trees as f64);
    (importance, trees)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    /// Three regulators; the target follows the first strongly and the second weakly.
    fn data(n: usize) -> (Vec<Vec<u8>>, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let cols: Vec<Vec<u8>> = (0..3)
            .map(|_| (0..n).map(|_| rng.gen_range(0..50)).collect())
            .collect();
        let y = (0..n)
            .map(|s| f64::from(cols[0][s]) + 0.3 * f64::from(cols[1][s]) + rng.gen_range(-5.0..5.0))
            .collect();
        (cols, y)
    }

    #[test]
    fn both_ensembles_rank_the_regulators_by_their_effect() {
        let (cols, y) = data(400);
        let features: Vec<&[u8]> = cols.iter().map(Vec::as_slice).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let rf = forest(&features, &y, &Forest { trees: 50 }, &mut rng);
        assert!((rf.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(rf[0] > rf[1] && rf[1] > rf[2], "{rf:?}");
        let (gb, trees) = boost(&features, &y, &Boosting::default(), &mut rng);
        assert!((gb.iter().sum::<f64>() - trees as f64).abs() < 1e-6);
        assert!(gb[0] > gb[1] && gb[1] > gb[2], "{gb:?}");
        // Early stopping ends well before the cap on a problem this small.
        assert!((50..5000).contains(&trees), "{trees} trees");
    }

    #[test]
    fn the_same_seed_gives_the_same_importances() {
        let (cols, y) = data(100);
        let features: Vec<&[u8]> = cols.iter().map(Vec::as_slice).collect();
        let run = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            boost(&features, &y, &Boosting::default(), &mut rng)
        };
        assert_eq!(run(4), run(4));
        assert_ne!(run(4).0, run(5).0);
    }
}
