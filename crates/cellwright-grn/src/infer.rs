//! From an expression matrix to a ranked list of regulator → target edges.

use std::sync::atomic::{AtomicU64, Ordering};

use cellwright_core::{CancelToken, Progress};
use cellwright_data::matrix::ExpressionMatrix;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bins::Binned;
use crate::ensemble::{self, Boosting, Forest};
use crate::neural::{self, Neural};

/// How edges are scored.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// GRNBoost2's stochastic gradient boosting (settings: `Boosting`).
    #[default]
    Boost,
    /// GENIE3's random forest (settings: `Forest`).
    Forest,
    /// A network per target trained with candle; gradient attributions (settings: `Neural`).
    Neural,
    /// |Pearson correlation|.
    Pearson,
    /// |Spearman correlation| (Pearson on ranks, ties averaged).
    Spearman,
    /// Uniform random scores: the floor every method must clear.
    Random,
}

impl Method {
    pub const ALL: [Method; 6] = [
        Method::Boost,
        Method::Forest,
        Method::Neural,
        Method::Pearson,
        Method::Spearman,
        Method::Random,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Boost => "boost",
            Method::Forest => "forest",
            Method::Neural => "neural",
            Method::Pearson => "pearson",
            Method::Spearman => "spearman",
            Method::Random => "random",
        }
    }
}

/// Everything an inference run takes besides the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Options {
    pub method: Method,
    pub seed: u64,
    /// Quantile bins per gene for the tree methods (at most 256).
    pub max_bins: usize,
    pub forest: Forest,
    pub boost: Boosting,
    pub neural: Neural,
    /// Leave out genes with the same value in every cell instead of refusing the data.
    pub drop_constant: bool,
    /// Leave out regulators the matrix lacks instead of refusing the list.
    pub ignore_missing_regulators: bool,
}

impl Options {
    /// Settings out of their ranges are refused, named.
    fn check(&self) -> Result<(), GrnError> {
        let share = |v: f64| v > 0.0 && v <= 1.0;
        let b = &self.boost;
        let problems = [
            (
                !(2..=256).contains(&self.max_bins),
                "max_bins must be 2 to 256",
            ),
            (self.forest.trees == 0, "forest.trees must be at least 1"),
            (
                !share(b.learning_rate),
                "boost.learning_rate must be in (0, 1]",
            ),
            (b.max_trees == 0, "boost.max_trees must be at least 1"),
            (b.max_depth == 0, "boost.max_depth must be at least 1"),
            (
                !share(b.features_per_split),
                "boost.features_per_split must be in (0, 1]",
            ),
            (!share(b.subsample), "boost.subsample must be in (0, 1]"),
        ];
        match problems
            .iter()
            .chain(&self.neural.problems())
            .find(|(bad, _)| *bad)
        {
            Some((_, what)) => Err(GrnError::Invalid(what.to_string())),
            None => Ok(()),
        }
    }
}

impl Default for Options {
    fn default() -> Self {
        Self {
            method: Method::default(),
            seed: 0,
            max_bins: 256,
            forest: Forest::default(),
            boost: Boosting::default(),
            neural: Neural::default(),
            drop_constant: false,
            ignore_missing_regulators: false,
        }
    }
}

/// Why inference could not run.
#[derive(Debug, thiserror::Error)]
pub enum GrnError {
    #[error("{cells} cells: inference needs at least 2")]
    TooFewCells { cells: usize },
    #[error("gene {gene} has a value that is not a finite number in cell {cell}")]
    NotFinite { gene: String, cell: String },
    #[error(
        "{count} genes have the same value in every cell (e.g. {}); nothing can predict them \
         or be predicted by them: drop them, or ask to (`drop_constant`, `--drop-constant`)",
        examples.join(", ")
    )]
    Constant { count: usize, examples: Vec<String> },
    #[error(
        "{count} of the regulators are not genes of the matrix (e.g. {}); check the names, or \
         leave them out (`ignore_missing_regulators`, `--ignore-missing-tfs`)",
        examples.join(", ")
    )]
    MissingRegulators { count: usize, examples: Vec<String> },
    #[error("{0}")]
    Invalid(String),
    #[error("the neural model failed: {0}")]
    Neural(String),
    #[error("inference was cancelled")]
    Cancelled,
}

/// Whether a regulator raises (+1) or lowers (−1) its target, as the sign of their Pearson
/// correlation; 0 when uncorrelated.
pub type Sign = i8;

/// A scored edge, by gene index into [`Network::genes`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, schemars::JsonSchema)]
pub struct ScoredEdge {
    pub regulator: usize,
    pub target: usize,
    pub score: f64,
    pub sign: Sign,
}

/// The inferred network: every candidate edge, best first.
#[derive(Debug, Clone, Serialize)]
pub struct Network {
    pub genes: Vec<String>,
    pub method: Method,
    pub edges: Vec<ScoredEdge>,
    /// Genes left out for being constant (with `drop_constant`).
    pub dropped_constant: Vec<String>,
    /// Regulators the matrix lacks (with `ignore_missing_regulators`).
    pub missing_regulators: Vec<String>,
    /// Per target, the trees the boosting grew (empty for other methods).
    pub trees: Vec<usize>,
}

impl Network {
    /// `regulator`, `target`, `score` (tab-separated, best first, one header line).
    pub fn to_tsv(&self) -> String {
        let mut text = String::from("regulator\ttarget\tscore\n");
        for e in &self.edges {
            text.push_str(&format!(
                "{}\t{}\t{}\n",
                self.genes[e.regulator], self.genes[e.target], e.score
            ));
        }
        text
    }
}

/// Per gene, its values in every cell, from a matrix.
fn columns(matrix: &ExpressionMatrix) -> Vec<Vec<f32>> {
    let (cells, genes) = matrix.shape();
    let mut columns = vec![vec![0.0f32; cells]; genes];
    matrix.x().for_each(|c, g, v| columns[g][c] = v);
    columns
}

const EXAMPLES: usize = 5;

/// Infers a network from `matrix` (cells × genes): every gene is a target, regressed on the
/// `regulators` (gene names; all genes when `None`) other than itself.
pub fn infer(
    matrix: &ExpressionMatrix,
    regulators: Option<&[String]>,
    options: &Options,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<Network, GrnError> {
    options.check()?;
    let (cells, _) = matrix.shape();
    if cells < 2 {
        return Err(GrnError::TooFewCells { cells });
    }
    let mut columns = columns(matrix);
    for (g, column) in columns.iter().enumerate() {
        if let Some(c) = column.iter().position(|v| !v.is_finite()) {
            return Err(GrnError::NotFinite {
                gene: matrix.genes()[g].clone(),
                cell: matrix.cells()[c].clone(),
            });
        }
    }
    let mut genes = matrix.genes().to_vec();
    let constant: Vec<usize> = (0..genes.len())
        .filter(|&g| columns[g].iter().all(|&v| v == columns[g][0]))
        .collect();
    let mut dropped_constant = Vec::new();
    if !constant.is_empty() {
        if !options.drop_constant {
            return Err(GrnError::Constant {
                count: constant.len(),
                examples: constant
                    .iter()
                    .take(EXAMPLES)
                    .map(|&g| genes[g].clone())
                    .collect(),
            });
        }
        for &g in constant.iter().rev() {
            dropped_constant.push(genes.remove(g));
            columns.remove(g);
        }
        dropped_constant.reverse();
    }
    if genes.len() < 2 {
        return Err(GrnError::Invalid(format!(
            "{} genes vary across cells: inference needs at least 2",
            genes.len()
        )));
    }
    let mut missing_regulators = Vec::new();
    let regulators: Vec<usize> = match regulators {
        None => (0..genes.len()).collect(),
        Some(names) => {
            let mut found = Vec::new();
            for name in names {
                match genes.iter().position(|g| g == name) {
                    Some(i) => found.push(i),
                    None if dropped_constant.contains(name) => {}
                    None => missing_regulators.push(name.clone()),
                }
            }
            if !missing_regulators.is_empty() && !options.ignore_missing_regulators {
                return Err(GrnError::MissingRegulators {
                    count: missing_regulators.len(),
                    examples: missing_regulators.iter().take(EXAMPLES).cloned().collect(),
                });
            }
            found.sort_unstable();
            found.dedup();
            found
        }
    };
    if regulators.is_empty() {
        return Err(GrnError::Invalid(
            "none of the regulators is a varying gene of the matrix".into(),
        ));
    }
    let (edges, trees) = score(&columns, &regulators, options, progress, cancel)?;
    Ok(Network {
        genes,
        method: options.method,
        edges,
        dropped_constant,
        missing_regulators,
        trees,
    })
}

/// Every (regulator, target ≠ regulator) edge scored by `options.method`, best first (ties by
/// target, then regulator), with each target's tree count for boosting.
pub fn score(
    columns: &[Vec<f32>],
    regulators: &[usize],
    options: &Options,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<(Vec<ScoredEdge>, Vec<usize>), GrnError> {
    options.check()?;
    let genes = columns.len();
    let standardised: Vec<Vec<f64>> = columns.iter().map(|c| standardise(c)).collect();
    let ranks: Vec<Vec<f64>> = match options.method {
        Method::Spearman => columns.iter().map(|c| standardise(&ranks(c))).collect(),
        _ => Vec::new(),
    };
    let binned = match options.method {
        Method::Boost | Method::Forest => Some(Binned::new(columns, options.max_bins)),
        _ => None,
    };
    let neural = match options.method {
        Method::Neural => Some(neural::saliency(
            columns,
            regulators,
            &options.neural,
            options.seed,
            progress,
            cancel,
        )?),
        _ => None,
    };
    let done = AtomicU64::new(0);
    let per_target: Vec<(Vec<ScoredEdge>, usize)> = (0..genes)
        .into_par_iter()
        .map(|target| {
            if cancel.is_cancelled() {
                return Err(GrnError::Cancelled);
            }
            let candidates: Vec<usize> = regulators
                .iter()
                .copied()
                .filter(|&r| r != target)
                .collect();
            let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
            rng.set_stream(target as u64);
            let mut trees = 0;
            // Each candidate's Pearson correlation with the target: the edge's sign, and the
            // score of the Pearson method.
            let pearson: Vec<f64> = candidates
                .iter()
                .map(|&r| dot(&standardised[r], &standardised[target]))
                .collect();
            let scores: Vec<f64> = match options.method {
                Method::Pearson => pearson.iter().map(|r| r.abs()).collect(),
                Method::Spearman => candidates
                    .iter()
                    .map(|&r| dot(&ranks[r], &ranks[target]).abs())
                    .collect(),
                Method::Random => candidates.iter().map(|_| rng.r#gen::<f64>()).collect(),
                Method::Neural => {
                    let row = &neural.as_ref().expect("scores for the neural method")[target];
                    regulators
                        .iter()
                        .zip(row)
                        .filter(|&(&r, _)| r != target)
                        .map(|(_, &s)| s)
                        .collect()
                }
                Method::Boost | Method::Forest => {
                    let binned = binned.as_ref().expect("binned for tree methods");
                    let features: Vec<&[u8]> = candidates
                        .iter()
                        .map(|&r| binned.columns[r].as_slice())
                        .collect();
                    let y: Vec<f64> = columns[target].iter().map(|&v| f64::from(v)).collect();
                    if options.method == Method::Forest {
                        ensemble::forest(&features, &y, &options.forest, &mut rng)
                    } else {
                        let (importance, grown) =
                            ensemble::boost(&features, &y, &options.boost, &mut rng);
                        trees = grown;
                        importance
                    }
                }
            };
            let edges = candidates
                .iter()
                .zip(scores.into_iter().zip(pearson))
                .map(|(&regulator, (score, r))| ScoredEdge {
                    regulator,
                    target,
                    score,
                    sign: if r > 0.0 {
                        1
                    } else if r < 0.0 {
                        -1
                    } else {
                        0
                    },
                })
                .collect();
            let finished = done.fetch_add(1, Ordering::Relaxed) + 1;
            progress.report(finished, Some(genes as u64), "regressing targets");
            Ok((edges, trees))
        })
        .collect::<Result<_, _>>()?;
    let trees = match options.method {
        Method::Boost => per_target.iter().map(|(_, t)| *t).collect(),
        _ => Vec::new(),
    };
    let mut edges: Vec<ScoredEdge> = per_target.into_iter().flat_map(|(e, _)| e).collect();
    edges.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.target.cmp(&b.target))
            .then(a.regulator.cmp(&b.regulator))
    });
    Ok((edges, trees))
}

/// Centred and scaled so that the dot product of two columns is their Pearson correlation
/// (all zeros for a constant column).
fn standardise(values: &[f32]) -> Vec<f64> {
    let n = values.len() as f64;
    let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
    let ss: f64 = values.iter().map(|&v| (f64::from(v) - mean).powi(2)).sum();
    let scale = if ss > 0.0 { 1.0 / ss.sqrt() } else { 0.0 };
    values
        .iter()
        .map(|&v| (f64::from(v) - mean) * scale)
        .collect()
}

/// Ranks from 1, ties given their average rank.
fn ranks(values: &[f32]) -> Vec<f32> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0f32; values.len()];
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && values[order[j + 1]] == values[order[i]] {
            j += 1;
        }
        let average = (i + j) as f32 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            ranks[k] = average;
        }
        i = j + 1;
    }
    ranks
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranks_average_their_ties() {
        assert_eq!(ranks(&[3.0, 1.0, 3.0, 2.0]), vec![3.5, 1.0, 3.5, 2.0]);
    }

    #[test]
    fn correlations_score_and_sign_the_edges() {
        let a = vec![1.0, 2.0, 3.0, 4.0];
        let b = vec![2.0, 4.0, 6.0, 8.5];
        let c = vec![4.0, 3.0, 2.0, 1.0];
        let cols = vec![a, b, c];
        let opts = Options {
            method: Method::Spearman,
            ..Options::default()
        };
        let (edges, _) = score(
            &cols,
            &[0],
            &opts,
            &cellwright_core::NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
        assert_eq!(edges.len(), 2);
        for e in &edges {
            assert!((e.score - 1.0).abs() < 1e-12);
        }
        // Tied scores: by target.
        assert_eq!((edges[0].target, edges[0].sign), (1, 1));
        assert_eq!((edges[1].target, edges[1].sign), (2, -1));
    }
}
