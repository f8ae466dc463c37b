//! Expression matrices: cells × genes, sparse (CSR or CSC) or dense `f32`, with unique cell
//! and gene names, typed annotations, and the first steps of every single-cell analysis
//! (library-size normalisation, `log1p`, highly variable genes, PCA), computed the way scanpy
//! computes them so that numbers can be compared with its users' notebooks.
//!
//! ```
//! use cellwright_data::matrix::{ExpressionMatrix, Values};
//! use ndarray::array;
//!
//! let counts = array![[1.0f32, 0.0, 3.0], [0.0, 2.0, 2.0]];
//! let mut m = ExpressionMatrix::new(
//!     Values::Dense(counts),
//!     vec!["c1".into(), "c2".into()],
//!     vec!["CD3E".into(), "MS4A1".into(), "LYZ".into()],
//! )?;
//! m.normalize_total(Some(10.0));
//! assert_eq!(m.x().to_dense()[[0, 2]], 7.5);
//! let genes = m.select_genes(&["LYZ", "CD3E"])?;
//! assert_eq!(genes.genes(), ["LYZ", "CD3E"]);
//! # Ok::<(), cellwright_data::matrix::MatrixError>(())
//! ```

use std::collections::{BTreeMap, HashMap};

use faer::Mat;
use ndarray::Array2;
use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
pub use sprs::CompressedStorage;
use sprs::CsMatI;

/// Why a matrix could not be built or a selection made.
#[derive(Debug, thiserror::Error)]
pub enum MatrixError {
    #[error("{what}: expected {expected}, found {found}")]
    Shape {
        what: String,
        expected: usize,
        found: usize,
    },
    #[error("{axis} name {name:?} appears twice (positions {first} and {second})")]
    DuplicateName {
        axis: Axis,
        name: String,
        first: usize,
        second: usize,
    },
    #[error("no {axis} named {name:?}{}", suggest(.suggestions))]
    UnknownName {
        axis: Axis,
        name: String,
        suggestions: Vec<String>,
    },
    #[error("sparse matrix structure: {0}")]
    Structure(String),
    #[error("{0}")]
    Invalid(String),
}

fn suggest(suggestions: &[String]) -> String {
    if suggestions.is_empty() {
        String::new()
    } else {
        format!("; did you mean {}?", suggestions.join(", "))
    }
}

/// Which side of the matrix a name belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Axis {
    Cell,
    Gene,
}

impl std::fmt::Display for Axis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Axis::Cell => "cell",
            Axis::Gene => "gene",
        })
    }
}

/// The numbers: dense row-major, or compressed sparse by rows (CSR) or columns (CSC).
#[derive(Debug, Clone, PartialEq)]
pub enum Values {
    Dense(Array2<f32>),
    Sparse(SparseMatrix),
}

/// Sparse values: `f32` with `u32` inner indices, as compact as AnnData's int32 and read
/// without widening, and `usize` offsets, so the stored count is not limited.
pub type SparseMatrix = CsMatI<f32, u32, usize>;

impl Values {
    /// A sparse matrix from its compressed parts, checked: `indptr` must start at 0, never
    /// decrease and end at the number of stored values; indices must lie within the inner
    /// dimension and not repeat within a row (CSR) or column (CSC). Unsorted indices are sorted.
    pub fn sparse(
        storage: CompressedStorage,
        shape: (usize, usize),
        indptr: Vec<usize>,
        indices: Vec<u32>,
        data: Vec<f32>,
    ) -> Result<Self, MatrixError> {
        let (outer, inner) = match storage {
            CompressedStorage::CSR => shape,
            CompressedStorage::CSC => (shape.1, shape.0),
        };
        let structure = |m: String| Err(MatrixError::Structure(m));
        if indptr.len() != outer + 1 {
            return structure(format!(
                "indptr has {} entries for {outer} {} (expected {})",
                indptr.len(),
                if storage == CompressedStorage::CSR {
                    "rows"
                } else {
                    "columns"
                },
                outer + 1
            ));
        }
        if indices.len() != data.len() {
            return structure(format!(
                "{} indices but {} values",
                indices.len(),
                data.len()
            ));
        }
        if indptr[0] != 0 || indptr[outer] != data.len() {
            return structure(format!(
                "indptr runs from {} to {}, expected 0 to {}",
                indptr[0],
                indptr[outer],
                data.len()
            ));
        }
        if let Some(w) = indptr.windows(2).position(|w| w[0] > w[1]) {
            return structure(format!("indptr decreases at position {}", w + 1));
        }
        if u32::try_from(inner).is_err() {
            return structure(format!(
                "{inner} inner positions exceed the u32 index range"
            ));
        }
        let made = match storage {
            CompressedStorage::CSR => SparseMatrix::new_from_unsorted(shape, indptr, indices, data),
            CompressedStorage::CSC => {
                SparseMatrix::new_from_unsorted_csc(shape, indptr, indices, data)
            }
        };
        // sprs checks the indices (range, order within a row) in the same pass as it sorts;
        // only when it refuses them is the offending one looked for, to name it.
        made.map(Values::Sparse).map_err(|(_, indices, _, e)| {
            MatrixError::Structure(match indices.iter().position(|&i| i as usize >= inner) {
                Some(p) => format!("index {} at position {p} is outside 0..{inner}", indices[p]),
                None => e.to_string(),
            })
        })
    }

    /// (rows, columns).
    pub fn shape(&self) -> (usize, usize) {
        match self {
            Values::Dense(a) => a.dim(),
            Values::Sparse(m) => m.shape(),
        }
    }

    /// Stored values: every entry when dense.
    pub fn stored(&self) -> usize {
        match self {
            Values::Dense(a) => a.len(),
            Values::Sparse(m) => m.nnz(),
        }
    }

    pub fn to_dense(&self) -> Array2<f32> {
        match self {
            Values::Dense(a) => a.clone(),
            Values::Sparse(m) => m.to_dense(),
        }
    }

    /// Visits every stored entry as (row, column, value); dense matrices visit zeros too.
    pub fn for_each(&self, mut f: impl FnMut(usize, usize, f32)) {
        match self {
            Values::Dense(a) => {
                for ((i, j), &v) in a.indexed_iter() {
                    f(i, j, v)
                }
            }
            Values::Sparse(m) => {
                let csr = m.is_csr();
                for (outer, vector) in m.outer_iterator().enumerate() {
                    for (inner, &v) in vector.iter() {
                        if csr {
                            f(outer, inner, v)
                        } else {
                            f(inner, outer, v)
                        }
                    }
                }
            }
        }
    }

    fn values_mut(&mut self) -> &mut [f32] {
        match self {
            Values::Dense(a) => a
                .as_slice_mut()
                .expect("dense values are kept in standard layout"),
            Values::Sparse(m) => m.data_mut(),
        }
    }

    /// Sums of each row, in f64.
    pub fn row_sums(&self) -> Vec<f64> {
        let mut sums = vec![0.0; self.shape().0];
        self.for_each(|i, _, v| sums[i] += f64::from(v));
        sums
    }

    /// Multiplies row `i` by `factors[i]`.
    fn scale_rows(&mut self, factors: &[f32]) {
        match self {
            Values::Dense(a) => {
                for (mut row, &f) in a.rows_mut().into_iter().zip(factors) {
                    row.mapv_inplace(|v| v * f);
                }
            }
            Values::Sparse(m) if m.is_csr() => {
                for (i, mut row) in m.outer_iterator_mut().enumerate() {
                    row.map_inplace(|v| v * factors[i]);
                }
            }
            Values::Sparse(m) => {
                for mut col in m.outer_iterator_mut() {
                    for (i, v) in col.iter_mut() {
                        *v *= factors[i];
                    }
                }
            }
        }
    }

    /// The rows and columns at the given positions, in that order, in the same storage.
    fn select(&self, rows: &[usize], cols: &[usize]) -> Values {
        match self {
            Values::Dense(a) => Values::Dense(
                a.select(ndarray::Axis(0), rows)
                    .select(ndarray::Axis(1), cols),
            ),
            Values::Sparse(m) => {
                let (outer_keep, inner_keep, inner_len) = if m.is_csr() {
                    (rows, cols, m.cols())
                } else {
                    (cols, rows, m.rows())
                };
                // Inner positions may repeat in a selection, so map each old index to its list
                // of new ones.
                let mut new_inner: Vec<Vec<usize>> = vec![Vec::new(); inner_len];
                for (new, &old) in inner_keep.iter().enumerate() {
                    new_inner[old].push(new);
                }
                let mut indptr = Vec::with_capacity(outer_keep.len() + 1);
                indptr.push(0);
                let (mut indices, mut data) = (Vec::new(), Vec::new());
                let mut entries = Vec::new();
                for &o in outer_keep {
                    entries.clear();
                    if let Some(v) = m.outer_view(o) {
                        for (old, &x) in v.iter() {
                            entries.extend(new_inner[old].iter().map(|&n| (n, x)));
                        }
                    }
                    entries.sort_unstable_by_key(|e| e.0);
                    // New inner positions are below the selection's length; `take` refuses
                    // repeated positions, so it is at most the inner dimension, within u32.
                    indices.extend(entries.iter().map(|e| e.0 as u32));
                    data.extend(entries.iter().map(|e| e.1));
                    indptr.push(indices.len());
                }
                let shape = (rows.len(), cols.len());
                Values::Sparse(if m.is_csr() {
                    SparseMatrix::new(shape, indptr, indices, data)
                } else {
                    SparseMatrix::new_csc(shape, indptr, indices, data)
                })
            }
        }
    }

    /// `self · rhs` for a dense `rhs` with as many rows as `self` has columns.
    fn mul(&self, rhs: &Mat<f64>) -> Mat<f64> {
        let mut out = Mat::<f64>::zeros(self.shape().0, rhs.ncols());
        self.for_each(|i, j, v| {
            if v != 0.0 {
                for k in 0..rhs.ncols() {
                    out[(i, k)] += f64::from(v) * rhs[(j, k)];
                }
            }
        });
        out
    }

    /// `selfᵀ · rhs` for a dense `rhs` with as many rows as `self`.
    fn mul_t(&self, rhs: &Mat<f64>) -> Mat<f64> {
        let mut out = Mat::<f64>::zeros(self.shape().1, rhs.ncols());
        self.for_each(|i, j, v| {
            if v != 0.0 {
                for k in 0..rhs.ncols() {
                    out[(j, k)] += f64::from(v) * rhs[(i, k)];
                }
            }
        });
        out
    }

    /// Per-column mean and variance (`ddof` 1) of `f(value)`, where `f(0) = 0`.
    fn column_moments(&self, f: impl Fn(f64) -> f64) -> (Vec<f64>, Vec<f64>) {
        let (n, g) = self.shape();
        let (mut sum, mut sq) = (vec![0.0f64; g], vec![0.0f64; g]);
        self.for_each(|_, j, v| {
            let x = f(f64::from(v));
            sum[j] += x;
            sq[j] += x * x;
        });
        let n = n as f64;
        let means: Vec<f64> = sum.iter().map(|s| s / n).collect();
        let vars = sq
            .iter()
            .zip(&means)
            .map(|(q, m)| ((q - n * m * m) / (n - 1.0)).max(0.0))
            .collect();
        (means, vars)
    }
}

/// One annotation column: a value per cell (or per gene).
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Labels from a fixed list; code −1 means missing.
    Categorical {
        categories: Vec<String>,
        codes: Vec<i32>,
        ordered: bool,
    },
    Float(Vec<f64>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
    Text(Vec<String>),
}

impl Column {
    pub fn len(&self) -> usize {
        match self {
            Column::Categorical { codes, .. } => codes.len(),
            Column::Float(v) => v.len(),
            Column::Int(v) => v.len(),
            Column::Bool(v) => v.len(),
            Column::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The kind, as one word: `categorical`, `float`, `int`, `bool` or `text`.
    pub fn kind(&self) -> &'static str {
        match self {
            Column::Categorical { .. } => "categorical",
            Column::Float(_) => "float",
            Column::Int(_) => "int",
            Column::Bool(_) => "bool",
            Column::Text(_) => "text",
        }
    }

    /// The label of entry `i` of a categorical or text column.
    pub fn label(&self, i: usize) -> Option<&str> {
        match self {
            Column::Categorical {
                categories, codes, ..
            } => {
                let code = usize::try_from(*codes.get(i)?).ok()?;
                categories.get(code).map(String::as_str)
            }
            Column::Text(v) => v.get(i).map(String::as_str),
            _ => None,
        }
    }

    /// The value of entry `i` as a number, for numeric and boolean columns.
    pub fn number(&self, i: usize) -> Option<f64> {
        match self {
            Column::Float(v) => v.get(i).copied(),
            Column::Int(v) => v.get(i).map(|&x| x as f64),
            Column::Bool(v) => v.get(i).map(|&b| f64::from(u8::from(b))),
            _ => None,
        }
    }

    /// Entries kept at `positions`, in that order.
    fn select(&self, positions: &[usize]) -> Column {
        fn take<T: Clone>(v: &[T], p: &[usize]) -> Vec<T> {
            p.iter().map(|&i| v[i].clone()).collect()
        }
        match self {
            Column::Categorical {
                categories,
                codes,
                ordered,
            } => Column::Categorical {
                categories: categories.clone(),
                codes: take(codes, positions),
                ordered: *ordered,
            },
            Column::Float(v) => Column::Float(take(v, positions)),
            Column::Int(v) => Column::Int(take(v, positions)),
            Column::Bool(v) => Column::Bool(take(v, positions)),
            Column::Text(v) => Column::Text(take(v, positions)),
        }
    }
}

/// Named annotation columns, in order, each as long as its axis.
pub type Annotations = Vec<(String, Column)>;

/// Unique names with a position index.
#[derive(Debug, Clone, Default, PartialEq)]
struct Names {
    names: Vec<String>,
    index: HashMap<String, usize>,
}

impl Names {
    fn new(names: Vec<String>, axis: Axis) -> Result<Self, MatrixError> {
        let mut index = HashMap::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if let Some(first) = index.insert(name.clone(), i) {
                return Err(MatrixError::DuplicateName {
                    axis,
                    name: name.clone(),
                    first,
                    second: i,
                });
            }
        }
        Ok(Self { names, index })
    }

    fn positions(&self, wanted: &[&str], axis: Axis) -> Result<Vec<usize>, MatrixError> {
        wanted
            .iter()
            .map(|name| {
                self.index
                    .get(*name)
                    .copied()
                    .ok_or_else(|| MatrixError::UnknownName {
                        axis,
                        name: (*name).to_owned(),
                        suggestions: cellwright_core::closest_matches(
                            name,
                            self.names.iter().map(String::as_str),
                            0.8,
                            3,
                        ),
                    })
            })
            .collect()
    }
}

/// Makes repeated names unique the way AnnData does: the second `X` becomes `X-1`, the third
/// `X-2`, skipping any suffix already taken.
pub fn make_unique(names: &mut [String]) {
    let mut taken: std::collections::HashSet<String> = names.iter().cloned().collect();
    let mut seen = std::collections::HashSet::new();
    let mut counters: HashMap<String, usize> = HashMap::new();
    for name in names.iter_mut() {
        if seen.insert(name.clone()) {
            continue;
        }
        let counter = counters.entry(name.clone()).or_default();
        let unique = loop {
            *counter += 1;
            let candidate = format!("{name}-{counter}");
            if !taken.contains(&candidate) {
                break candidate;
            }
        };
        taken.insert(unique.clone());
        seen.insert(unique.clone());
        *name = unique;
    }
}

/// A cells × genes expression matrix with its names and annotations.
#[derive(Debug, Clone, PartialEq)]
pub struct ExpressionMatrix {
    x: Values,
    cells: Names,
    genes: Names,
    /// Per-cell annotations (AnnData `obs`).
    pub obs: Annotations,
    /// Per-gene annotations (AnnData `var`).
    pub var: Annotations,
    /// Other matrices of the same shape (AnnData `layers`), e.g. raw counts.
    pub layers: BTreeMap<String, Values>,
    /// Per-cell embeddings (AnnData `obsm`), e.g. `X_pca`, `X_umap`.
    pub obsm: BTreeMap<String, Array2<f32>>,
}

impl ExpressionMatrix {
    /// A matrix with names and no annotations; names must be unique and match the shape.
    pub fn new(x: Values, cells: Vec<String>, genes: Vec<String>) -> Result<Self, MatrixError> {
        let (n, g) = x.shape();
        check_len("cell names", n, cells.len())?;
        check_len("gene names", g, genes.len())?;
        Ok(Self {
            x,
            cells: Names::new(cells, Axis::Cell)?,
            genes: Names::new(genes, Axis::Gene)?,
            obs: Vec::new(),
            var: Vec::new(),
            layers: BTreeMap::new(),
            obsm: BTreeMap::new(),
        })
    }

    /// Checks that every annotation, layer and embedding matches the matrix's shape.
    pub fn validate(&self) -> Result<(), MatrixError> {
        let (n, g) = self.shape();
        for (name, col) in &self.obs {
            check_len(&format!("obs column {name:?}"), n, col.len())?;
        }
        for (name, col) in &self.var {
            check_len(&format!("var column {name:?}"), g, col.len())?;
        }
        for (name, layer) in &self.layers {
            let (ln, lg) = layer.shape();
            check_len(&format!("rows of layer {name:?}"), n, ln)?;
            check_len(&format!("columns of layer {name:?}"), g, lg)?;
        }
        for (name, m) in &self.obsm {
            check_len(&format!("rows of obsm {name:?}"), n, m.nrows())?;
        }
        for (name, col) in self.obs.iter().chain(&self.var) {
            if let Column::Categorical {
                categories, codes, ..
            } = col
                && let Some(c) = codes
                    .iter()
                    .find(|&&c| c < -1 || c >= categories.len() as i32)
            {
                return Err(MatrixError::Invalid(format!(
                    "categorical {name:?} has code {c} but {} categories",
                    categories.len()
                )));
            }
        }
        Ok(())
    }

    pub fn x(&self) -> &Values {
        &self.x
    }

    pub fn shape(&self) -> (usize, usize) {
        self.x.shape()
    }

    pub fn cells(&self) -> &[String] {
        &self.cells.names
    }

    pub fn genes(&self) -> &[String] {
        &self.genes.names
    }

    pub fn cell_position(&self, name: &str) -> Option<usize> {
        self.cells.index.get(name).copied()
    }

    pub fn gene_position(&self, name: &str) -> Option<usize> {
        self.genes.index.get(name).copied()
    }

    /// The per-cell annotation called `name`.
    pub fn obs_column(&self, name: &str) -> Option<&Column> {
        self.obs.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }

    /// Scales each cell so that its values sum to `target`, or, when `None`, to the median
    /// total over cells with any counts (scanpy's `normalize_total`). Empty cells stay zero.
    pub fn normalize_total(&mut self, target: Option<f64>) {
        let totals = self.x.row_sums();
        let target = target.unwrap_or_else(|| {
            let mut positive: Vec<f64> = totals.iter().copied().filter(|&t| t > 0.0).collect();
            median(&mut positive)
        });
        let factors: Vec<f32> = totals
            .iter()
            .map(|&t| if t > 0.0 { (target / t) as f32 } else { 0.0 })
            .collect();
        self.x.scale_rows(&factors);
    }

    /// Whether every value is a whole number ≥ 0 (raw counts).
    pub fn is_counts(&self) -> bool {
        let mut counts = true;
        self.x
            .for_each(|_, _, v| counts &= v >= 0.0 && v.fract() == 0.0);
        counts
    }

    /// Replaces every value `v` by `ln(1 + v)`.
    pub fn log1p(&mut self) {
        for v in self.x.values_mut() {
            *v = v.ln_1p();
        }
    }

    /// Ranks genes by normalised dispersion, scanpy's `highly_variable_genes(flavor="seurat")`
    /// on log-normalised data: dispersion (variance over mean of `expm1(x)`) on a log scale,
    /// z-scored within 20 equal-width bins of `log1p(mean)`.
    pub fn highly_variable_genes(&self, n_top: usize) -> HighlyVariable {
        let (means, vars) = self.x.column_moments(f64::exp_m1);
        let g = means.len();
        let mut mean_log = Vec::with_capacity(g);
        let mut dispersion = Vec::with_capacity(g);
        for (&m, &v) in means.iter().zip(&vars) {
            let m = if m == 0.0 { 1e-12 } else { m };
            let d = v / m;
            dispersion.push(if d == 0.0 { f64::NAN } else { d.ln() });
            mean_log.push(m.ln_1p());
        }
        let bins = equal_width_bins(&mean_log, 20);
        let mut per_bin: BTreeMap<usize, Vec<f64>> = BTreeMap::new();
        for (b, &d) in bins.iter().zip(&dispersion) {
            if !d.is_nan() {
                per_bin.entry(*b).or_default().push(d);
            }
        }
        let stats: BTreeMap<usize, (f64, f64)> = per_bin
            .into_iter()
            .map(|(b, ds)| {
                let n = ds.len() as f64;
                let mean = ds.iter().sum::<f64>() / n;
                let sd = (ds.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
                // A bin of one gene has no spread: scanpy scores its gene 1.
                (b, if n < 2.0 { (0.0, mean) } else { (mean, sd) })
            })
            .collect();
        let normalized: Vec<f64> = bins
            .iter()
            .zip(&dispersion)
            .map(|(b, &d)| match stats.get(b) {
                Some(&(mean, sd)) if !d.is_nan() => (d - mean) / sd,
                _ => f64::NAN,
            })
            .collect();
        let mut order: Vec<usize> = (0..g).filter(|&j| !normalized[j].is_nan()).collect();
        order.sort_by(|&a, &b| normalized[b].total_cmp(&normalized[a]).then(a.cmp(&b)));
        order.truncate(n_top);
        HighlyVariable {
            means: mean_log,
            dispersions: dispersion,
            dispersions_norm: normalized,
            top: order,
        }
    }

    /// The cells named, in that order, with their annotations.
    pub fn select_cells(&self, names: &[&str]) -> Result<Self, MatrixError> {
        let rows = self.cells.positions(names, Axis::Cell)?;
        self.take(Some(&rows), None)
    }

    /// The genes named, in that order.
    pub fn select_genes(&self, names: &[&str]) -> Result<Self, MatrixError> {
        let cols = self.genes.positions(names, Axis::Gene)?;
        self.take(None, Some(&cols))
    }

    /// Rows and columns by position (all when `None`); positions must be in range and not repeat.
    pub fn take(
        &self,
        rows: Option<&[usize]>,
        cols: Option<&[usize]>,
    ) -> Result<Self, MatrixError> {
        let (n, g) = self.shape();
        let all_rows: Vec<usize>;
        let rows = match rows {
            Some(r) => r,
            None => {
                all_rows = (0..n).collect();
                &all_rows
            }
        };
        let all_cols: Vec<usize>;
        let cols = match cols {
            Some(c) => c,
            None => {
                all_cols = (0..g).collect();
                &all_cols
            }
        };
        for (positions, len, axis) in [(rows, n, Axis::Cell), (cols, g, Axis::Gene)] {
            if let Some(p) = positions.iter().find(|&&p| p >= len) {
                return Err(MatrixError::Invalid(format!(
                    "{axis} position {p} is outside 0..{len}"
                )));
            }
        }
        let pick = |names: &Names, at: &[usize], axis| {
            Names::new(at.iter().map(|&i| names.names[i].clone()).collect(), axis)
        };
        // Names first: they refuse repeated positions before any values are copied.
        let (cells, genes) = (
            pick(&self.cells, rows, Axis::Cell)?,
            pick(&self.genes, cols, Axis::Gene)?,
        );
        Ok(Self {
            x: self.x.select(rows, cols),
            cells,
            genes,
            obs: self
                .obs
                .iter()
                .map(|(k, c)| (k.clone(), c.select(rows)))
                .collect(),
            var: self
                .var
                .iter()
                .map(|(k, c)| (k.clone(), c.select(cols)))
                .collect(),
            layers: self
                .layers
                .iter()
                .map(|(k, v)| (k.clone(), v.select(rows, cols)))
                .collect(),
            obsm: self
                .obsm
                .iter()
                .map(|(k, m)| (k.clone(), m.select(ndarray::Axis(0), rows)))
                .collect(),
        })
    }

    /// Principal components of the cells, genes centred (not scaled), as scanpy's `pca` with
    /// `zero_center=True`. Sparse data is never densified: the centring is folded into the
    /// products.
    pub fn pca(&self, n_comps: usize, solver: PcaSolver) -> Result<Pca, MatrixError> {
        let (n, g) = self.shape();
        if n < 2 || n_comps == 0 || n_comps > n.min(g) {
            return Err(MatrixError::Invalid(format!(
                "PCA of {n} cells × {g} genes cannot give {n_comps} components (need 1 to {} and at least 2 cells)",
                n.min(g)
            )));
        }
        let (means, vars) = self.x.column_moments(|v| v);
        let total_variance: f64 = vars.iter().sum();
        let solver = match solver {
            PcaSolver::Auto if n.saturating_mul(g) <= 4_000_000 => PcaSolver::Exact,
            PcaSolver::Auto => PcaSolver::Randomized {
                oversamples: 10,
                power_iterations: 4,
                seed: 0,
            },
            s => s,
        };
        let mu = Mat::from_fn(g, 1, |j, _| means[j]);
        // (X − 1μᵀ)·M and (X − 1μᵀ)ᵀ·M without forming X − 1μᵀ.
        let centred_mul = |m: &Mat<f64>| -> Mat<f64> {
            let mut out = self.x.mul(m);
            let shift = mu.transpose() * m;
            for i in 0..n {
                for k in 0..m.ncols() {
                    out[(i, k)] -= shift[(0, k)];
                }
            }
            out
        };
        let centred_mul_t = |m: &Mat<f64>| -> Mat<f64> {
            let mut out = self.x.mul_t(m);
            for k in 0..m.ncols() {
                let col_sum: f64 = (0..n).map(|i| m[(i, k)]).sum();
                for j in 0..g {
                    out[(j, k)] -= means[j] * col_sum;
                }
            }
            out
        };
        let svd_failed = |e: faer::linalg::svd::SvdError| {
            MatrixError::Invalid(format!("the SVD did not converge: {e:?}"))
        };
        let (u, s, v) = match solver {
            PcaSolver::Exact | PcaSolver::Auto => {
                let mut dense = Mat::<f64>::zeros(n, g);
                self.x.for_each(|i, j, x| dense[(i, j)] = f64::from(x));
                for j in 0..g {
                    for i in 0..n {
                        dense[(i, j)] -= means[j];
                    }
                }
                let svd = dense.thin_svd().map_err(svd_failed)?;
                (
                    svd.U().to_owned(),
                    svd.S().column_vector().to_owned(),
                    svd.V().to_owned(),
                )
            }
            PcaSolver::Randomized {
                oversamples,
                power_iterations,
                seed,
            } => {
                let l = (n_comps + oversamples).min(n.min(g));
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                let omega = Mat::from_fn(g, l, |_, _| StandardNormal.sample(&mut rng));
                let mut q = orthonormal(&centred_mul(&omega));
                for _ in 0..power_iterations {
                    let z = orthonormal(&centred_mul_t(&q));
                    q = orthonormal(&centred_mul(&z));
                }
                // B = Qᵀ(X − 1μᵀ) = ((X − 1μᵀ)ᵀQ)ᵀ, small: l × g.
                let bt = centred_mul_t(&q);
                let svd = bt.transpose().to_owned().thin_svd().map_err(svd_failed)?;
                let u = &q * svd.U();
                (u, svd.S().column_vector().to_owned(), svd.V().to_owned())
            }
        };
        let mut scores = Array2::<f32>::zeros((n, n_comps));
        let mut loadings = Array2::<f32>::zeros((g, n_comps));
        let mut explained_variance = Vec::with_capacity(n_comps);
        for k in 0..n_comps {
            // The sign of a component is arbitrary: make its largest loading positive.
            let biggest = (0..g)
                .max_by(|&a, &b| v[(a, k)].abs().total_cmp(&v[(b, k)].abs()))
                .unwrap_or(0);
            let sign = if v[(biggest, k)] < 0.0 { -1.0 } else { 1.0 };
            for i in 0..n {
                scores[[i, k]] = (sign * u[(i, k)] * s[k]) as f32;
            }
            for j in 0..g {
                loadings[[j, k]] = (sign * v[(j, k)]) as f32;
            }
            explained_variance.push(s[k] * s[k] / (n as f64 - 1.0));
        }
        let explained_variance_ratio = explained_variance
            .iter()
            .map(|v| v / total_variance)
            .collect();
        Ok(Pca {
            scores,
            loadings,
            explained_variance,
            explained_variance_ratio,
        })
    }
}

fn check_len(what: &str, expected: usize, found: usize) -> Result<(), MatrixError> {
    if expected == found {
        Ok(())
    } else {
        Err(MatrixError::Shape {
            what: what.to_owned(),
            expected,
            found,
        })
    }
}

fn median(values: &mut [f64]) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// The bin of each value among `bins` equal-width bins over its range (as `pandas.cut`).
fn equal_width_bins(values: &[f64], bins: usize) -> Vec<usize> {
    let (lo, hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v), hi.max(v))
        });
    let width = (hi - lo) / bins as f64;
    values
        .iter()
        .map(|&v| {
            if width > 0.0 {
                (((v - lo) / width).ceil() as usize).clamp(1, bins) - 1
            } else {
                0
            }
        })
        .collect()
}

/// An orthonormal basis of the columns of `m` (thin Q of its QR decomposition).
fn orthonormal(m: &Mat<f64>) -> Mat<f64> {
    m.qr().compute_thin_Q()
}

/// How to compute principal components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PcaSolver {
    /// Exact for up to 4 million entries, randomized beyond.
    #[default]
    Auto,
    /// Full thin SVD of the centred matrix.
    Exact,
    /// Halko–Martinsson–Tropp randomized SVD with power iterations, seeded.
    Randomized {
        oversamples: usize,
        power_iterations: usize,
        seed: u64,
    },
}

/// Principal components.
#[derive(Debug, Clone, PartialEq)]
pub struct Pca {
    /// Cells × components (AnnData `obsm["X_pca"]`).
    pub scores: Array2<f32>,
    /// Genes × components (AnnData `varm["PCs"]`).
    pub loadings: Array2<f32>,
    /// Variance of the cells along each component.
    pub explained_variance: Vec<f64>,
    /// The same over the total variance of all genes.
    pub explained_variance_ratio: Vec<f64>,
}

/// Highly variable genes and the statistics they were ranked by.
#[derive(Debug, Clone, PartialEq)]
pub struct HighlyVariable {
    /// `log1p` of each gene's mean of `expm1(x)`.
    pub means: Vec<f64>,
    /// Log of variance over mean; NaN for genes without spread.
    pub dispersions: Vec<f64>,
    /// Dispersions z-scored within their mean bin; NaN where undefined.
    pub dispersions_norm: Vec<f64>,
    /// Positions of the top genes, most variable first.
    pub top: Vec<usize>,
}
