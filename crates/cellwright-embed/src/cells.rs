//! Cell embeddings that need no training: GenePT-w (the expression-weighted mean of the
//! cell's gene embeddings), cell sentences (the cell's most expressed genes written as text
//! for a sentence model), and the baseline every embedding must beat, principal components of
//! the log-normalised highly variable genes.

use cellwright_core::{CancelToken, Embedder, Progress};
use cellwright_data::matrix::{ExpressionMatrix, PcaSolver};

use crate::genes::{GeneEmbeddingError, GeneEmbeddings, embed_texts};

/// Why cells could not be embedded.
#[derive(Debug, thiserror::Error)]
pub enum CellEmbeddingError {
    #[error(
        "none of the matrix's {genes} genes is in the gene embeddings (e.g. {examples}): are they symbols of human genes?"
    )]
    NoSharedGenes { genes: usize, examples: String },
    #[error("{count} cells have no expression at all (the first: `{first}`); remove them first")]
    EmptyCells { count: usize, first: String },
    #[error("cell `{cell}`, gene `{gene}`: the value {value} is not a finite number ≥ 0")]
    BadValue {
        cell: String,
        gene: String,
        value: f32,
    },
    #[error(transparent)]
    Embedding(#[from] GeneEmbeddingError),
    #[error("the matrix has no cells")]
    NoCells,
    #[error("{0}")]
    Matrix(#[from] cellwright_data::matrix::MatrixError),
}

/// One vector per cell, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct CellEmbedding {
    pub cells: Vec<String>,
    pub dimension: usize,
    pub values: Vec<f32>,
}

impl CellEmbedding {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.values[i * self.dimension..(i + 1) * self.dimension]
    }
}

/// How many of the matrix's genes had a vector.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Coverage {
    pub used: usize,
    pub missing: usize,
    /// Up to 10 of the missing genes, in matrix order.
    pub missing_examples: Vec<String>,
    /// Cells that express only genes without a vector: their vector is zero.
    pub uncovered_cells: usize,
}

fn check_value(m: &ExpressionMatrix, i: usize, j: usize, v: f32) -> Result<(), CellEmbeddingError> {
    if v.is_finite() && v >= 0.0 {
        Ok(())
    } else {
        Err(CellEmbeddingError::BadValue {
            cell: m.cells()[i].clone(),
            gene: m.genes()[j].clone(),
            value: v,
        })
    }
}

/// GenePT-w: each cell's vector is `Σ_g x_g e_g / Σ_g x_g` over the genes `g` that have an
/// embedding `e_g`, then L2-normalised. `m` should hold normalised expression (e.g. log1p of
/// counts scaled to a common total); genes are matched by symbol, whatever their case.
pub fn genept_w(
    m: &ExpressionMatrix,
    genes: &GeneEmbeddings,
) -> Result<(CellEmbedding, Coverage), CellEmbeddingError> {
    let (n, _) = m.shape();
    if n == 0 {
        return Err(CellEmbeddingError::NoCells);
    }
    let rows: Vec<Option<usize>> = m.genes().iter().map(|g| genes.position(g)).collect();
    let missing: Vec<&String> = m
        .genes()
        .iter()
        .zip(&rows)
        .filter(|(_, r)| r.is_none())
        .map(|(g, _)| g)
        .collect();
    let mut coverage = Coverage {
        used: rows.len() - missing.len(),
        missing: missing.len(),
        missing_examples: missing.iter().take(10).map(|g| g.to_string()).collect(),
        uncovered_cells: 0,
    };
    if coverage.used == 0 {
        return Err(CellEmbeddingError::NoSharedGenes {
            genes: rows.len(),
            examples: coverage.missing_examples[..coverage.missing_examples.len().min(3)]
                .join(", "),
        });
    }
    let d = genes.dimension();
    let table = genes.values();
    let mut values = vec![0.0f64; n * d];
    let mut weights = vec![0.0f64; n];
    let mut expressed = vec![false; n];
    let mut bad = Ok(());
    m.x().for_each(|i, j, v| {
        if bad.is_err() || v == 0.0 {
            return;
        }
        if let Err(e) = check_value(m, i, j, v) {
            bad = Err(e);
            return;
        }
        expressed[i] = true;
        if let Some(r) = rows[j] {
            let w = f64::from(v);
            weights[i] += w;
            for (into, &e) in values[i * d..(i + 1) * d]
                .iter_mut()
                .zip(&table[r * d..(r + 1) * d])
            {
                *into += w * f64::from(e);
            }
        }
    });
    bad?;
    empty_cells(m, |i| !expressed[i])?;
    coverage.uncovered_cells = weights.iter().filter(|&&w| w == 0.0).count();
    let mut out = Vec::with_capacity(n * d);
    for (i, &w) in weights.iter().enumerate() {
        let row: Vec<f64> = values[i * d..(i + 1) * d]
            .iter()
            .map(|x| if w > 0.0 { x / w } else { 0.0 })
            .collect();
        let norm = row.iter().map(|x| x * x).sum::<f64>().sqrt();
        out.extend(
            row.iter()
                .map(|x| if norm > 0.0 { (x / norm) as f32 } else { 0.0 }),
        );
    }
    Ok((
        CellEmbedding {
            cells: m.cells().to_vec(),
            dimension: d,
            values: out,
        },
        coverage,
    ))
}

/// An error naming the cells `empty` picks, if any.
fn empty_cells(
    m: &ExpressionMatrix,
    empty: impl Fn(usize) -> bool,
) -> Result<(), CellEmbeddingError> {
    let cells: Vec<usize> = (0..m.shape().0).filter(|&i| empty(i)).collect();
    match cells.first() {
        Some(&first) => Err(CellEmbeddingError::EmptyCells {
            count: cells.len(),
            first: m.cells()[first].clone(),
        }),
        None => Ok(()),
    }
}

/// Each cell's `top` most expressed genes, highest first (ties by matrix order), joined by
/// spaces: the cell sentence of Cell2Sentence.
pub fn cell_sentences(m: &ExpressionMatrix, top: usize) -> Result<Vec<String>, CellEmbeddingError> {
    let (n, _) = m.shape();
    if n == 0 {
        return Err(CellEmbeddingError::NoCells);
    }
    let mut expressed: Vec<Vec<(f32, usize)>> = vec![Vec::new(); n];
    let mut bad = Ok(());
    m.x().for_each(|i, j, v| {
        if bad.is_ok() && v != 0.0 {
            bad = check_value(m, i, j, v);
            expressed[i].push((v, j));
        }
    });
    bad?;
    empty_cells(m, |i| expressed[i].is_empty())?;
    Ok(expressed
        .into_iter()
        .map(|mut genes| {
            genes.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
            genes
                .iter()
                .take(top)
                .map(|&(_, j)| m.genes()[j].as_str())
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect())
}

/// Embeds each cell's sentence ([`cell_sentences`]) with `embedder`, in chunks, with progress,
/// cancellable between chunks.
pub async fn embed_sentences(
    m: &ExpressionMatrix,
    top: usize,
    embedder: &dyn Embedder,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<CellEmbedding, CellEmbeddingError> {
    let sentences = cell_sentences(m, top)?;
    let vectors = embed_texts(
        &sentences,
        embedder,
        "embedding cell sentences",
        progress,
        cancel,
    )
    .await?;
    let d = embedder.dimension();
    Ok(CellEmbedding {
        cells: m.cells().to_vec(),
        dimension: d,
        values: vectors.into_iter().flatten().collect(),
    })
}

/// Scanpy's standard path to a cell embedding: counts scaled to 10,000 per cell and `log1p`'d
/// (values that are not counts are taken as already log-normalised), the `top_genes` most
/// variable genes (Seurat's dispersion ranking), and their first `components` principal
/// components (fewer when the data have fewer cells or genes).
pub fn pca_embedding(
    m: &ExpressionMatrix,
    components: usize,
    top_genes: usize,
) -> Result<CellEmbedding, CellEmbeddingError> {
    let (n, g) = m.shape();
    if n == 0 {
        return Err(CellEmbeddingError::NoCells);
    }
    let mut normalised = m.clone();
    if m.is_counts() {
        normalised.normalize_total(Some(1e4));
        normalised.log1p();
    }
    let top = normalised.highly_variable_genes(top_genes.min(g)).top;
    let names: Vec<&str> = top.iter().map(|&j| m.genes()[j].as_str()).collect();
    let selected = normalised.select_genes(&names)?;
    let components = components.min(n.saturating_sub(1)).min(names.len()).max(1);
    let pca = selected.pca(components, PcaSolver::Auto)?;
    Ok(CellEmbedding {
        cells: m.cells().to_vec(),
        dimension: components,
        values: pca.scores.iter().copied().collect(),
    })
}
