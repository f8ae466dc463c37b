//! Structure in a cell embedding: labels transferred from a labelled reference by the votes of
//! nearest neighbours, and k-means clusters.

use std::collections::HashMap;

use cellwright_eval::nearest_vote;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::cells::CellEmbedding;

/// Why cells could not be annotated or clustered.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum AnnotateError {
    #[error(
        "the reference's vectors have {reference} values and the query's {query}: embed both the same way (same method, same genes)"
    )]
    Dimension { reference: usize, query: usize },
    #[error("{labels} labels for {cells} reference cells: one per cell is needed")]
    Labels { labels: usize, cells: usize },
    #[error("the {0} has no cells")]
    Empty(&'static str),
    #[error("{what} must be at least 1 (and k-means needs at most one cluster per cell)")]
    Zero { what: &'static str },
    #[error("cell `{cell}` has a coordinate that is not a finite number")]
    NotFinite { cell: String },
}

/// Labels predicted for each query cell, with the share of neighbour votes behind each.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Transfer {
    pub labels: Vec<String>,
    /// Votes for the label over `k`, in (0, 1].
    pub confidence: Vec<f32>,
}

fn finite(e: &CellEmbedding) -> Result<(), AnnotateError> {
    match (0..e.cells.len()).find(|&i| e.row(i).iter().any(|x| !x.is_finite())) {
        Some(i) => Err(AnnotateError::NotFinite {
            cell: e.cells[i].clone(),
        }),
        None => Ok(()),
    }
}

fn squared(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| (x - y) * (x - y)).sum()
}

/// Each query cell gets the label most common among its `k` nearest reference cells
/// (Euclidean); a tied vote goes to the tied label of the nearest neighbour.
pub fn transfer_labels(
    reference: &CellEmbedding,
    labels: &[String],
    query: &CellEmbedding,
    k: usize,
) -> Result<Transfer, AnnotateError> {
    if reference.cells.is_empty() {
        return Err(AnnotateError::Empty("reference"));
    }
    if query.cells.is_empty() {
        return Err(AnnotateError::Empty("query"));
    }
    if labels.len() != reference.cells.len() {
        return Err(AnnotateError::Labels {
            labels: labels.len(),
            cells: reference.cells.len(),
        });
    }
    if reference.dimension != query.dimension {
        return Err(AnnotateError::Dimension {
            reference: reference.dimension,
            query: query.dimension,
        });
    }
    if k == 0 {
        return Err(AnnotateError::Zero { what: "k" });
    }
    finite(reference)?;
    finite(query)?;
    let k = k.min(reference.cells.len());
    // Labels as classes 0.., in order of first appearance.
    let mut classes: HashMap<&str, usize> = HashMap::new();
    let mut names: Vec<&str> = Vec::new();
    let coded: Vec<usize> = labels
        .iter()
        .map(|l| {
            *classes.entry(l.as_str()).or_insert_with(|| {
                names.push(l.as_str());
                names.len() - 1
            })
        })
        .collect();
    let (all, d, values) = (
        reference.cells.len(),
        reference.dimension,
        &reference.values,
    );
    let voted: Vec<(usize, usize)> = (0..query.cells.len())
        .into_par_iter()
        .map(|q| {
            nearest_vote(values, d, query.row(q), 0..all, &coded, names.len(), k)
                .unwrap_or((coded[0], 0))
        })
        .collect();
    Ok(Transfer {
        labels: voted.iter().map(|&(g, _)| names[g].to_owned()).collect(),
        confidence: voted
            .iter()
            .map(|&(_, votes)| votes as f32 / k as f32)
            .collect(),
    })
}

/// Settings of k-means.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KMeans {
    pub clusters: usize,
    /// Starts from different k-means++ seeds; the run with the least inertia is kept.
    pub starts: usize,
    pub max_iterations: usize,
    pub seed: u64,
}

impl KMeans {
    pub fn new(clusters: usize) -> Self {
        Self {
            clusters,
            starts: 10,
            max_iterations: 300,
            seed: 0,
        }
    }
}

/// Clusters of a k-means run: each cell's cluster and the sum of squared distances to the
/// cluster centres.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Clusters {
    pub assignment: Vec<usize>,
    pub inertia: f64,
}

/// Lloyd's k-means from k-means++ starts, deterministic for `settings.seed`.
pub fn kmeans(e: &CellEmbedding, settings: &KMeans) -> Result<Clusters, AnnotateError> {
    let n = e.cells.len();
    if n == 0 {
        return Err(AnnotateError::Empty("embedding"));
    }
    if settings.clusters == 0 || settings.clusters > n {
        return Err(AnnotateError::Zero { what: "clusters" });
    }
    if settings.starts == 0 {
        return Err(AnnotateError::Zero { what: "starts" });
    }
    finite(e)?;
    let mut rng = ChaCha8Rng::seed_from_u64(settings.seed);
    let mut best: Option<Clusters> = None;
    for _ in 0..settings.starts {
        let run = lloyd(e, settings, &mut rng);
        if best.as_ref().is_none_or(|b| run.inertia < b.inertia) {
            best = Some(run);
        }
    }
    best.ok_or(AnnotateError::Zero { what: "starts" })
}

fn lloyd(e: &CellEmbedding, settings: &KMeans, rng: &mut ChaCha8Rng) -> Clusters {
    let (n, d, k) = (e.cells.len(), e.dimension, settings.clusters);
    // k-means++: each next centre drawn with probability proportional to the squared
    // distance to the nearest centre so far.
    let mut centres: Vec<f32> = e.row(rng.gen_range(0..n)).to_vec();
    let mut nearest: Vec<f32> = (0..n).map(|i| squared(e.row(i), &centres[..d])).collect();
    while centres.len() < k * d {
        let total: f64 = nearest.iter().map(|&x| f64::from(x)).sum();
        let pick = if total > 0.0 {
            let mut target = rng.gen_range(0.0..total);
            nearest
                .iter()
                .position(|&x| {
                    target -= f64::from(x);
                    target < 0.0
                })
                .unwrap_or(n - 1)
        } else {
            rng.gen_range(0..n)
        };
        let centre = e.row(pick).to_vec();
        for (i, x) in nearest.iter_mut().enumerate() {
            *x = x.min(squared(e.row(i), &centre));
        }
        centres.extend(centre);
    }
    let mut assignment = vec![usize::MAX; n];
    let mut inertia = 0.0;
    for _ in 0..settings.max_iterations {
        let assigned: Vec<(usize, f32)> = (0..n)
            .into_par_iter()
            .map(|i| {
                (0..k)
                    .map(|c| (c, squared(e.row(i), &centres[c * d..(c + 1) * d])))
                    .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
                    .unwrap_or((0, 0.0))
            })
            .collect();
        inertia = assigned.iter().map(|&(_, x)| f64::from(x)).sum();
        let changed = assigned
            .iter()
            .zip(&assignment)
            .any(|(&(c, _), &old)| c != old);
        for (into, &(c, _)) in assignment.iter_mut().zip(&assigned) {
            *into = c;
        }
        if !changed {
            break;
        }
        let mut sums = vec![0.0f64; k * d];
        let mut sizes = vec![0usize; k];
        for (i, &c) in assignment.iter().enumerate() {
            sizes[c] += 1;
            for (s, &x) in sums[c * d..(c + 1) * d].iter_mut().zip(e.row(i)) {
                *s += f64::from(x);
            }
        }
        for c in (0..k).filter(|&c| sizes[c] > 0) {
            for (centre, s) in centres[c * d..(c + 1) * d]
                .iter_mut()
                .zip(&sums[c * d..(c + 1) * d])
            {
                *centre = (s / sizes[c] as f64) as f32;
            }
        }
    }
    Clusters {
        assignment,
        inertia,
    }
}
