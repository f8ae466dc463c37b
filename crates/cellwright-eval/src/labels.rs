//! Labels of cells: predicted labels against true ones, clusters against labels, and how well
//! an embedding keeps the labels apart. The conventions are scikit-learn's, so numbers can be
//! compared with scIB-style benchmarks.
//!
//! - **Macro-F1**: the unweighted mean over the classes (those in the truth or the prediction)
//!   of `2 TP / (2 TP + FP + FN)`; a class never predicted and never true does not occur, one
//!   with no true or predicted member scores 0.
//! - **ARI**: the adjusted Rand index (Hubert and Arabie), 1 for the same partition under any
//!   naming, 0 in expectation for a random one; 1 also when neither partition splits the cells
//!   or both put every cell alone.
//! - **NMI**: mutual information over the arithmetic mean of the two entropies; 1 when both
//!   partitions are a single group.
//! - **ASW**: the mean silhouette width by label over Euclidean distances, in [−1, 1]; a cell
//!   alone in its label scores 0. scIB reports `(ASW + 1) / 2`.
//! - **kNN macro-F1**: stratified k-fold cross-validation of a k-nearest-neighbour vote, the
//!   predictions of all folds scored together.

use std::collections::HashMap;
use std::hash::Hash;

use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Why labels or points cannot be scored.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum LabelError {
    #[error("nothing to score: no cells")]
    Empty,
    #[error("{truth} true labels but {other} {what}: one per cell is needed")]
    Length {
        truth: usize,
        other: usize,
        what: &'static str,
    },
    #[error("the points are {values} values, not a whole number of rows of {dims}")]
    Ragged { values: usize, dims: usize },
    #[error("cell {cell} has a coordinate that is not a finite number")]
    NotFinite { cell: usize },
    #[error("{labels} distinct labels among {cells} cells: the silhouette needs 2 to cells − 1")]
    Labels { labels: usize, cells: usize },
    #[error(
        "{k} neighbours in {folds} folds: k must be at least 1 and folds at least 2 and at most the {cells} cells"
    )]
    Folds {
        k: usize,
        folds: usize,
        cells: usize,
    },
}

/// Labels as dense indices `0..n` in order of first appearance, and `n`.
fn intern<T: Eq + Hash>(labels: &[T]) -> (Vec<usize>, usize) {
    let mut ids: HashMap<&T, usize> = HashMap::new();
    let coded = labels
        .iter()
        .map(|l| {
            let next = ids.len();
            *ids.entry(l).or_insert(next)
        })
        .collect();
    (coded, ids.len())
}

fn same_length(truth: usize, other: usize, what: &'static str) -> Result<(), LabelError> {
    if truth == 0 {
        Err(LabelError::Empty)
    } else if truth != other {
        Err(LabelError::Length { truth, other, what })
    } else {
        Ok(())
    }
}

/// Counts of (true, predicted) pairs, with both partitions interned, and the group sizes.
struct Contingency {
    cells: Vec<f64>,
    rows: Vec<f64>,
    columns: Vec<f64>,
    n: f64,
}

impl Contingency {
    fn new<T: Eq + Hash, U: Eq + Hash>(
        truth: &[T],
        predicted: &[U],
        what: &'static str,
    ) -> Result<Self, LabelError> {
        same_length(truth.len(), predicted.len(), what)?;
        let (a, na) = intern(truth);
        let (b, nb) = intern(predicted);
        let mut cells = vec![0.0; na * nb];
        let (mut rows, mut columns) = (vec![0.0; na], vec![0.0; nb]);
        for (&i, &j) in a.iter().zip(&b) {
            cells[i * nb + j] += 1.0;
            rows[i] += 1.0;
            columns[j] += 1.0;
        }
        Ok(Self {
            cells,
            rows,
            columns,
            n: a.len() as f64,
        })
    }
}

fn pairs(x: f64) -> f64 {
    x * (x - 1.0) / 2.0
}

/// The adjusted Rand index of a partition (e.g. clusters) against the true labels.
pub fn adjusted_rand_index<T: Eq + Hash, U: Eq + Hash>(
    truth: &[T],
    predicted: &[U],
) -> Result<f64, LabelError> {
    let c = Contingency::new(truth, predicted, "clusters")?;
    let index: f64 = c.cells.iter().map(|&x| pairs(x)).sum();
    let (rows, columns): (f64, f64) = (
        c.rows.iter().map(|&x| pairs(x)).sum(),
        c.columns.iter().map(|&x| pairs(x)).sum(),
    );
    let expected = rows * columns / pairs(c.n).max(1.0);
    let max = (rows + columns) / 2.0;
    Ok(if max == expected {
        1.0
    } else {
        (index - expected) / (max - expected)
    })
}

fn entropy(sizes: &[f64], n: f64) -> f64 {
    sizes
        .iter()
        .filter(|&&s| s > 0.0)
        .map(|&s| -(s / n) * (s / n).ln())
        .sum()
}

/// Normalised mutual information (arithmetic mean of the entropies) of a partition against
/// the true labels.
pub fn normalized_mutual_info<T: Eq + Hash, U: Eq + Hash>(
    truth: &[T],
    predicted: &[U],
) -> Result<f64, LabelError> {
    let c = Contingency::new(truth, predicted, "clusters")?;
    let (hu, hv) = (entropy(&c.rows, c.n), entropy(&c.columns, c.n));
    if hu == 0.0 && hv == 0.0 {
        return Ok(1.0);
    }
    let nb = c.columns.len();
    let mut mi = 0.0;
    for (i, &row) in c.rows.iter().enumerate() {
        for (j, &column) in c.columns.iter().enumerate() {
            let nij = c.cells[i * nb + j];
            if nij > 0.0 {
                mi += nij / c.n * (c.n * nij / (row * column)).ln();
            }
        }
    }
    Ok((mi / ((hu + hv) / 2.0)).clamp(0.0, 1.0))
}

/// The unweighted mean F1 over the classes of the truth and the prediction.
pub fn macro_f1<T: Eq + Hash>(truth: &[T], predicted: &[T]) -> Result<f64, LabelError> {
    same_length(truth.len(), predicted.len(), "predictions")?;
    // (TP, FP, FN) per class.
    let mut counts: HashMap<&T, [usize; 3]> = HashMap::new();
    for (t, p) in truth.iter().zip(predicted) {
        if t == p {
            counts.entry(t).or_default()[0] += 1;
        } else {
            counts.entry(p).or_default()[1] += 1;
            counts.entry(t).or_default()[2] += 1;
        }
    }
    let f1 = |&[tp, fp, f_n]: &[usize; 3]| 2.0 * tp as f64 / (2 * tp + fp + f_n) as f64;
    Ok(counts.values().map(f1).sum::<f64>() / counts.len() as f64)
}

/// Checks that `points` holds one finite row of `dims` values per label.
fn rows<T>(points: &[f32], dims: usize, labels: &[T]) -> Result<usize, LabelError> {
    if dims == 0 || !points.len().is_multiple_of(dims) {
        return Err(LabelError::Ragged {
            values: points.len(),
            dims,
        });
    }
    let n = points.len() / dims;
    same_length(labels.len(), n, "points")?;
    if let Some(cell) = points
        .chunks(dims)
        .position(|r| r.iter().any(|x| !x.is_finite()))
    {
        return Err(LabelError::NotFinite { cell });
    }
    Ok(n)
}

fn distance(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| f64::from(x - y).powi(2))
        .sum::<f64>()
        .sqrt()
}

/// The mean silhouette width of `points` (row-major, `dims` per cell) grouped by `labels`.
pub fn silhouette<T: Eq + Hash>(
    points: &[f32],
    dims: usize,
    labels: &[T],
) -> Result<f64, LabelError> {
    let n = rows(points, dims, labels)?;
    let (coded, groups) = intern(labels);
    if groups < 2 || groups >= n {
        return Err(LabelError::Labels {
            labels: groups,
            cells: n,
        });
    }
    let mut sizes = vec![0usize; groups];
    for &g in &coded {
        sizes[g] += 1;
    }
    let row = |i: usize| &points[i * dims..(i + 1) * dims];
    let mut total = 0.0;
    let mut sums = vec![0.0; groups];
    for i in 0..n {
        sums.fill(0.0);
        for j in 0..n {
            if j != i {
                sums[coded[j]] += distance(row(i), row(j));
            }
        }
        let own = coded[i];
        if sizes[own] == 1 {
            continue;
        }
        let a = sums[own] / (sizes[own] - 1) as f64;
        let b = (0..groups)
            .filter(|&g| g != own)
            .map(|g| sums[g] / sizes[g] as f64)
            .fold(f64::INFINITY, f64::min);
        let spread = a.max(b);
        if spread > 0.0 {
            total += (b - a) / spread;
        }
    }
    Ok(total / n as f64)
}

/// The class most common among the `k` rows of `points` (row-major, `dims` per row) nearest
/// `query` by Euclidean distance, looking only at the rows `candidates`, and its votes.
/// `classes[j]` is row `j`'s class, in `0..groups`. A tied vote goes to the tied class of the
/// nearest neighbour; rows at equal distance rank in row order. `None` without candidates or
/// when `k` is 0.
pub fn nearest_vote(
    points: &[f32],
    dims: usize,
    query: &[f32],
    candidates: impl Iterator<Item = usize>,
    classes: &[usize],
    groups: usize,
    k: usize,
) -> Option<(usize, usize)> {
    let mut near: Vec<(f64, usize)> = candidates
        .map(|j| (distance(query, &points[j * dims..(j + 1) * dims]), j))
        .collect();
    let k = k.min(near.len());
    if k == 0 {
        return None;
    }
    let order = |a: &(f64, usize), b: &(f64, usize)| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1));
    near.select_nth_unstable_by(k - 1, order);
    near.truncate(k);
    near.sort_by(order);
    let mut votes = vec![0usize; groups];
    for &(_, j) in &near {
        votes[classes[j]] += 1;
    }
    let most = votes.iter().copied().max().unwrap_or(0);
    near.iter()
        .map(|&(_, j)| classes[j])
        .find(|&g| votes[g] == most)
        .map(|g| (g, most))
}

/// Macro-F1 of a `k`-nearest-neighbour vote (Euclidean) under stratified `folds`-fold
/// cross-validation: each class's cells are shuffled with `seed` and dealt to the folds in
/// turn, every cell is predicted from the cells of the other folds, and all predictions are
/// scored together. A tied vote goes to the tied class with the nearest neighbour.
pub fn knn_macro_f1<T: Eq + Hash>(
    points: &[f32],
    dims: usize,
    labels: &[T],
    k: usize,
    folds: usize,
    seed: u64,
) -> Result<f64, LabelError> {
    let n = rows(points, dims, labels)?;
    if k == 0 || folds < 2 || folds > n {
        return Err(LabelError::Folds { k, folds, cells: n });
    }
    let (coded, groups) = intern(labels);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut fold = vec![0usize; n];
    let mut dealt = 0;
    for g in 0..groups {
        let mut members: Vec<usize> = (0..n).filter(|&i| coded[i] == g).collect();
        members.shuffle(&mut rng);
        for i in members {
            fold[i] = dealt % folds;
            dealt += 1;
        }
    }
    let row = |i: usize| &points[i * dims..(i + 1) * dims];
    let predicted: Vec<usize> = (0..n)
        .map(|i| {
            let others = (0..n).filter(|&j| fold[j] != fold[i]);
            nearest_vote(points, dims, row(i), others, &coded, groups, k).map_or(0, |(g, _)| g)
        })
        .collect();
    macro_f1(&coded, &predicted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn ari_and_nmi_match_hand_computed_values() {
        let truth = [0, 0, 1, 1];
        let split = ["x", "x", "y", "z"];
        // Σ C(n_ij, 2) = 1, expected = 2 · 1 / 6, max = 3 / 2: (1 − 1/3) / (3/2 − 1/3) = 4/7.
        assert!(close(
            adjusted_rand_index(&truth, &split).unwrap(),
            4.0 / 7.0
        ));
        // MI = ln 2, H(truth) = ln 2, H(split) = 1.5 ln 2: NMI = 1 / 1.25.
        assert!(close(normalized_mutual_info(&truth, &split).unwrap(), 0.8));
        // Renaming the groups changes nothing.
        let renamed = ["b", "b", "a", "a"];
        assert!(close(adjusted_rand_index(&truth, &renamed).unwrap(), 1.0));
        assert!(close(
            normalized_mutual_info(&truth, &renamed).unwrap(),
            1.0
        ));
        // No split on either side is the same partition.
        assert!(close(adjusted_rand_index(&[1, 1], &[5, 5]).unwrap(), 1.0));
        assert!(close(
            normalized_mutual_info(&[1, 1], &[5, 5]).unwrap(),
            1.0
        ));
        // Crossed halves: no information, below chance agreement.
        let crossed = [0, 1, 0, 1];
        assert!(close(
            normalized_mutual_info(&truth, &crossed).unwrap(),
            0.0
        ));
        // index 0, expected 2 · 2 / 6, max 2: −(2/3) / (4/3).
        assert!(close(adjusted_rand_index(&truth, &crossed).unwrap(), -0.5));
    }

    #[test]
    fn macro_f1_averages_classes_equally() {
        let truth = ["a", "a", "b", "b", "c"];
        let predicted = ["a", "b", "b", "b", "a"];
        // a: 2·1/(2+1+1) = 0.5; b: 2·2/(4+1) = 0.8; c: 0.
        assert!(close(macro_f1(&truth, &predicted).unwrap(), 1.3 / 3.0));
        assert!(close(macro_f1(&truth, &truth).unwrap(), 1.0));
    }

    #[test]
    fn silhouette_matches_hand_computed_values() {
        let points = [0.0, 1.0, 4.0, 5.0];
        // Outer cells (b − a) / b = 3.5 / 4.5, inner 2.5 / 3.5.
        let s = silhouette(&points, 1, &[0, 0, 1, 1]).unwrap();
        assert!(close(s, (7.0 / 9.0 + 5.0 / 7.0) / 2.0), "{s}");
        // A cell alone in its label scores 0: cells 0 and 1 as above with b = 4 − 0, 4 − 1.
        let s = silhouette(&[0.0, 1.0, 4.0], 1, &[0, 0, 1]).unwrap();
        assert!(close(s, (3.0 / 4.0 + 2.0 / 3.0) / 3.0), "{s}");
    }

    #[test]
    fn knn_predicts_separated_groups_and_fails_mixed_ones() {
        // Two tight groups far apart, 10 cells each, in 2-D.
        let mut points = Vec::new();
        let mut labels = Vec::new();
        for i in 0..20 {
            let base = if i < 10 { 0.0 } else { 100.0 };
            points.extend([base + (i % 10) as f32 * 0.1, base]);
            labels.push(i < 10);
        }
        assert!(close(
            knn_macro_f1(&points, 2, &labels, 3, 5, 0).unwrap(),
            1.0
        ));
        // Labels that alternate along a line: every neighbour vote is wrong.
        let line: Vec<f32> = (0..20).map(|i| i as f32).collect();
        let alternate: Vec<bool> = (0..20).map(|i| i % 2 == 0).collect();
        assert!(knn_macro_f1(&line, 1, &alternate, 2, 5, 0).unwrap() < 0.5);
    }

    #[test]
    fn bad_input_is_a_clear_error() {
        assert_eq!(macro_f1::<u8>(&[], &[]), Err(LabelError::Empty));
        let err = adjusted_rand_index(&[1, 2, 3], &[1, 2]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "3 true labels but 2 clusters: one per cell is needed"
        );
        assert_eq!(
            silhouette(&[0.0, 1.0, 2.0], 2, &[0, 1]),
            Err(LabelError::Ragged { values: 3, dims: 2 })
        );
        assert_eq!(
            silhouette(&[0.0, f32::NAN, 2.0], 1, &[0, 1, 1]),
            Err(LabelError::NotFinite { cell: 1 })
        );
        assert_eq!(
            silhouette(&[0.0, 1.0], 1, &[0, 0]),
            Err(LabelError::Labels {
                labels: 1,
                cells: 2
            })
        );
        assert!(matches!(
            knn_macro_f1(&[0.0, 1.0], 1, &[0, 1], 1, 3, 0),
            Err(LabelError::Folds { .. })
        ));
    }
}
