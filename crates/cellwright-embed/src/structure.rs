//! Structure of a cell embedding, scanpy's pipeline: the k nearest neighbours of every cell,
//! their fuzzy graph (UMAP's connectivities), Leiden communities on that graph, and a 2-D
//! UMAP layout for plots.
//!
//! The graph comes from the `umap-rs` crate, the communities from `leiden-rs` (the Leiden
//! algorithm of Traag et al., 2019, with the RB configuration quality at the chosen
//! resolution, which is modularity at 1.0, as `scanpy.tl.leiden`). The layout's gradient
//! descent is written here (see [`umap_layout`]): umap-rs 0.4.5's own optimiser draws from an
//! unseeded thread-local generator and its attraction term carries an extra factor of the
//! squared distance, so its clusters do not contract. Neighbours are exact (all pairs), which
//! is quick up to some tens of thousands of cells. Leiden and the layout are deterministic
//! for a seed.

use cellwright_data::matrix::{ExpressionMatrix, PcaSolver, Values};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use crate::cells::CellEmbedding;

/// Why the structure could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum StructureError {
    #[error(
        "{cells} cells are too few for {k} neighbours each (a cell counts as its own first); use at most {cells}"
    )]
    TooFewCells { cells: usize, k: usize },
    #[error("neighbours must be at least 2")]
    TooFewNeighbours,
    #[error("cell `{0}` has a value that is not a finite number in its embedding")]
    NotFinite(String),
    #[error("the resolution must be a number > 0")]
    Resolution,
    #[error("Leiden failed: {0}")]
    Leiden(String),
    #[error("the layout's starting point: {0}")]
    Init(String),
}

/// Every cell's `k` nearest cells by Euclidean distance, itself first (distance 0), as
/// umap-learn's graph expects.
#[derive(Debug, Clone, PartialEq)]
pub struct Neighbours {
    pub k: usize,
    /// Cells × k, row-major.
    pub indices: Vec<u32>,
    pub distances: Vec<f32>,
}

/// The exact k nearest neighbours (itself included) of every cell.
pub fn neighbours(e: &CellEmbedding, k: usize) -> Result<Neighbours, StructureError> {
    let n = e.cells.len();
    if k < 2 {
        return Err(StructureError::TooFewNeighbours);
    }
    if n < k {
        return Err(StructureError::TooFewCells { cells: n, k });
    }
    if let Some(i) = (0..n).find(|&i| e.row(i).iter().any(|v| !v.is_finite())) {
        return Err(StructureError::NotFinite(e.cells[i].clone()));
    }
    let rows: Vec<(Vec<u32>, Vec<f32>)> = (0..n)
        .into_par_iter()
        .map(|i| {
            let mut d: Vec<(f32, u32)> = (0..n)
                .map(|j| {
                    let d2: f32 = e
                        .row(i)
                        .iter()
                        .zip(e.row(j))
                        .map(|(a, b)| (a - b).powi(2))
                        .sum();
                    // The cell itself first, whatever its duplicates.
                    (if i == j { -1.0 } else { d2.sqrt() }, j as u32)
                })
                .collect();
            d.select_nth_unstable_by(k - 1, |a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            d.truncate(k);
            d.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
            d.into_iter().map(|(dist, j)| (j, dist.max(0.0))).unzip()
        })
        .collect();
    let mut out = Neighbours {
        k,
        indices: Vec::with_capacity(n * k),
        distances: Vec::with_capacity(n * k),
    };
    for (indices, distances) in rows {
        out.indices.extend(indices);
        out.distances.extend(distances);
    }
    Ok(out)
}

/// The neighbours as the arrays umap-rs reads.
fn knn_arrays(nn: &Neighbours) -> (Array2<u32>, Array2<f32>) {
    let n = nn.indices.len() / nn.k;
    let shape = (n, nn.k);
    (
        Array2::from_shape_vec(shape, nn.indices.clone()).expect("n × k values"),
        Array2::from_shape_vec(shape, nn.distances.clone()).expect("n × k values"),
    )
}

fn data(e: &CellEmbedding) -> Array2<f32> {
    Array2::from_shape_vec((e.cells.len(), e.dimension), e.values.clone())
        .expect("cells × dimension values")
}

fn umap_model(nn: &Neighbours) -> umap_rs::Umap {
    umap_rs::Umap::new(umap_rs::UmapConfig {
        graph: umap_rs::GraphParams {
            n_neighbors: nn.k,
            ..umap_rs::GraphParams::default()
        },
        ..umap_rs::UmapConfig::default()
    })
}

/// The symmetric fuzzy neighbour graph (UMAP's, scanpy's `connectivities`) as undirected
/// weighted edges `(i, j, w)` with `i < j`.
pub fn connectivities(e: &CellEmbedding, nn: &Neighbours) -> Vec<(usize, usize, f32)> {
    let (indices, distances) = knn_arrays(nn);
    let manifold = umap_model(nn).learn_manifold(data(e).view(), indices.view(), distances.view());
    let mut edges = Vec::new();
    for (i, row) in manifold.graph().outer_iterator().enumerate() {
        for (j, &w) in row.iter() {
            if i < j && w > 0.0 {
                edges.push((i, j, w));
            }
        }
    }
    edges
}

/// Leiden communities of the fuzzy graph, numbered from 0 by decreasing size (ties by first
/// cell), deterministic for `seed`.
pub fn leiden(
    cells: usize,
    edges: &[(usize, usize, f32)],
    resolution: f64,
    seed: u64,
) -> Result<Vec<usize>, StructureError> {
    if !(resolution > 0.0 && resolution.is_finite()) {
        return Err(StructureError::Resolution);
    }
    let failed = |e: leiden_rs::LeidenError| StructureError::Leiden(e.to_string());
    let mut builder = leiden_rs::GraphDataBuilder::new(cells);
    for &(i, j, w) in edges {
        builder.add_edge(i, j, f64::from(w)).map_err(failed)?;
    }
    let graph = builder.build().map_err(failed)?;
    let found = leiden_rs::Leiden::new(leiden_rs::LeidenConfig {
        resolution,
        seed: Some(seed),
        quality: leiden_rs::QualityType::RBConfiguration,
        ..leiden_rs::LeidenConfig::default()
    })
    .run(&graph)
    .map_err(failed)?;
    let raw: Vec<usize> = (0..cells)
        .map(|c| found.partition.community_of(c))
        .collect();
    Ok(by_size(&raw))
}

/// Renumbers labels 0, 1, … by decreasing size, ties by first appearance.
fn by_size(raw: &[usize]) -> Vec<usize> {
    let mut first_and_size: std::collections::HashMap<usize, (usize, usize)> =
        std::collections::HashMap::new();
    for (i, &c) in raw.iter().enumerate() {
        first_and_size.entry(c).or_insert((i, 0)).1 += 1;
    }
    let mut order: Vec<(usize, usize, usize)> = first_and_size
        .into_iter()
        .map(|(c, (first, size))| (c, first, size))
        .collect();
    order.sort_by(|a, b| b.2.cmp(&a.2).then(a.1.cmp(&b.1)));
    let rank: std::collections::HashMap<usize, usize> = order
        .iter()
        .enumerate()
        .map(|(r, &(c, _, _))| (c, r))
        .collect();
    raw.iter().map(|c| rank[c]).collect()
}

/// UMAP's output curve `1 / (1 + a d^(2b))` for `min_dist = 0.1`, `spread = 1` (the values
/// umap-learn fits for its defaults).
const CURVE: (f32, f32) = (1.577, 0.8951);

/// A 2-D UMAP layout of the cells (cells × 2, row-major), deterministic for `seed`.
///
/// `edges` is umap-rs's fuzzy graph of the cells ([`connectivities`]); the layout is optimised here,
/// umap-learn's stochastic gradient descent (edges sampled in proportion to their weight,
/// 5 negative samples each, learning rate falling linearly from 1, gradients clipped at ±4;
/// 500 epochs up to 10,000 cells, else 200) from the first two principal components of the
/// embedding scaled to ±10, as umap-learn scales its start. It runs single-threaded from one
/// seeded generator so that a plot can be made again exactly.
pub fn umap_layout(
    e: &CellEmbedding,
    edges: &[(usize, usize, f32)],
    seed: u64,
) -> Result<Vec<f32>, StructureError> {
    let n = e.cells.len();
    let mut y = pca_start(e)?;
    let epochs: usize = if n <= 10_000 { 500 } else { 200 };
    let top = edges.iter().fold(0.0f32, |m, &(_, _, w)| m.max(w));
    // Both directions of every edge, as umap-learn walks the symmetric matrix; an edge is
    // sampled every `top / w` epochs, and edges too weak to be sampled once are dropped.
    let edges: Vec<(usize, usize, f64)> = edges
        .iter()
        .filter(|&&(_, _, w)| w >= top / epochs as f32)
        .flat_map(|&(i, j, w)| {
            let every = f64::from(top / w);
            [(i, j, every), (j, i, every)]
        })
        .collect();
    let (a, b) = CURVE;
    let clip = |g: f32| g.clamp(-4.0, 4.0);
    let mut next = vec![0.0f64; edges.len()];
    let mut next_negative = vec![0.0f64; edges.len()];
    for (k, &(_, _, every)) in edges.iter().enumerate() {
        next[k] = every;
        next_negative[k] = every / 5.0;
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    for epoch in 0..epochs {
        let alpha = 1.0 - epoch as f32 / epochs as f32;
        let now = epoch as f64 + 1.0;
        for (k, &(i, j, every)) in edges.iter().enumerate() {
            if next[k] > now {
                continue;
            }
            let (dx, dy) = (y[2 * i] - y[2 * j], y[2 * i + 1] - y[2 * j + 1]);
            let d2 = dx * dx + dy * dy;
            if d2 > 0.0 {
                let coeff = -2.0 * a * b * d2.powf(b - 1.0) / (a * d2.powf(b) + 1.0);
                let (gx, gy) = (clip(coeff * dx) * alpha, clip(coeff * dy) * alpha);
                y[2 * i] += gx;
                y[2 * i + 1] += gy;
                y[2 * j] -= gx;
                y[2 * j + 1] -= gy;
            }
            next[k] += every;
            let negatives = ((now - next_negative[k]) / (every / 5.0)).max(0.0) as usize;
            for _ in 0..negatives {
                let other = rng.gen_range(0..n);
                if other == i {
                    continue;
                }
                let (dx, dy) = (y[2 * i] - y[2 * other], y[2 * i + 1] - y[2 * other + 1]);
                let d2 = dx * dx + dy * dy;
                if d2 > 0.0 {
                    let coeff = 2.0 * b / ((0.001 + d2) * (a * d2.powf(b) + 1.0));
                    y[2 * i] += clip(coeff * dx) * alpha;
                    y[2 * i + 1] += clip(coeff * dy) * alpha;
                }
            }
            next_negative[k] += negatives as f64 * every / 5.0;
        }
    }
    Ok(y)
}

/// The first two principal components of the embedding, each scaled to ±10.
fn pca_start(e: &CellEmbedding) -> Result<Vec<f32>, StructureError> {
    let n = e.cells.len();
    let m = ExpressionMatrix::new(
        Values::Dense(data(e)),
        e.cells.clone(),
        (0..e.dimension).map(|d| format!("dim{d}")).collect(),
    )
    .map_err(|err| StructureError::Init(err.to_string()))?;
    let components = 2.min(e.dimension);
    let pca = m
        .pca(components, PcaSolver::Exact)
        .map_err(|err| StructureError::Init(err.to_string()))?;
    let mut start = vec![0.0f32; n * 2];
    for c in 0..components {
        let column = pca.scores.column(c);
        let top = column.iter().fold(0.0f32, |a, v| a.max(v.abs())).max(1e-12);
        for (i, v) in column.iter().enumerate() {
            start[2 * i + c] = v / top * 10.0;
        }
    }
    Ok(start)
}

#[cfg(test)]
mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;

    /// Three well-separated blobs of 40 cells in 5 dimensions.
    fn blobs() -> (CellEmbedding, Vec<usize>) {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let mut values = Vec::new();
        let mut truth = Vec::new();
        for c in 0..120 {
            let blob = c % 3;
            truth.push(blob);
            for d in 0..5 {
                let centre = if d == blob { 10.0 } else { 0.0 };
                values.push(centre + rng.r#gen::<f32>() - 0.5);
            }
        }
        let e = CellEmbedding {
            cells: (0..120).map(|c| format!("c{c}")).collect(),
            dimension: 5,
            values,
        };
        (e, truth)
    }

    #[test]
    fn neighbours_start_with_the_cell_and_are_sorted() {
        let (e, truth) = blobs();
        let nn = neighbours(&e, 10).unwrap();
        for i in 0..120 {
            let row = &nn.indices[i * 10..(i + 1) * 10];
            let d = &nn.distances[i * 10..(i + 1) * 10];
            assert_eq!(row[0] as usize, i);
            assert_eq!(d[0], 0.0);
            assert!(d.windows(2).all(|w| w[0] <= w[1]));
            assert!(row.iter().all(|&j| truth[j as usize] == truth[i]));
        }
    }

    #[test]
    fn leiden_finds_the_blobs_and_the_layout_keeps_them_apart() {
        let (e, truth) = blobs();
        let nn = neighbours(&e, 15).unwrap();
        let edges = connectivities(&e, &nn);
        assert!(edges.iter().all(|&(i, j, w)| i < j && w > 0.0 && w <= 1.0));
        let labels = leiden(120, &edges, 1.0, 0).unwrap();
        let ari = cellwright_eval::labels::adjusted_rand_index(&labels, &truth).unwrap();
        assert!(ari > 0.99, "ARI {ari}");
        assert_eq!(labels, leiden(120, &edges, 1.0, 0).unwrap());

        let layout = umap_layout(&e, &edges, 7).unwrap();
        assert_eq!(layout.len(), 240);
        assert_eq!(layout, umap_layout(&e, &edges, 7).unwrap());
        assert_ne!(layout, umap_layout(&e, &edges, 8).unwrap());
        // Each blob's 2-D centre is farther from the other blobs' than its cells' spread.
        let centre = |b: usize| -> [f32; 2] {
            let cells: Vec<usize> = (0..120).filter(|&c| truth[c] == b).collect();
            let n = cells.len() as f32;
            [
                cells.iter().map(|&c| layout[2 * c]).sum::<f32>() / n,
                cells.iter().map(|&c| layout[2 * c + 1]).sum::<f32>() / n,
            ]
        };
        let centres: Vec<[f32; 2]> = (0..3).map(centre).collect();
        for c in 0..120 {
            let own = centres[truth[c]];
            let dist = |p: [f32; 2]| (layout[2 * c] - p[0]).hypot(layout[2 * c + 1] - p[1]);
            let nearest = (0..3)
                .min_by(|&a, &b| dist(centres[a]).total_cmp(&dist(centres[b])))
                .unwrap();
            assert_eq!(
                nearest, truth[c],
                "cell {c} is nearer another blob: {own:?}"
            );
        }
    }

    #[test]
    fn bad_input_is_named() {
        let (mut e, _) = blobs();
        assert!(matches!(
            neighbours(&e, 1),
            Err(StructureError::TooFewNeighbours)
        ));
        assert!(
            neighbours(&e, 121)
                .unwrap_err()
                .to_string()
                .contains("use at most 120")
        );
        assert!(matches!(
            leiden(3, &[], 0.0, 0),
            Err(StructureError::Resolution)
        ));
        e.values[7] = f32::NAN;
        assert_eq!(
            neighbours(&e, 5).unwrap_err().to_string(),
            "cell `c1` has a value that is not a finite number in its embedding"
        );
    }

    #[test]
    fn labels_are_numbered_by_size() {
        assert_eq!(by_size(&[7, 3, 3, 9, 3, 7]), vec![1, 0, 0, 2, 0, 1]);
    }
}
