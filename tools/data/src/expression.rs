//! [`LoadDataset`] and [`DescribeDataset`]: expression data sets, from the catalogue or the
//! user's files, held in memory for the run and summarised for the model.

use cellwright_core::{Tool, ToolCtx, ToolError, closest_matches};
use cellwright_data::load::LoadedDatasets;
use cellwright_data::matrix::{Column, ExpressionMatrix};
use cellwright_data::text::Orientation;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{failed, off_async};

/// Loads expression data for later questions.
#[derive(Debug, Clone, Default)]
pub struct LoadDataset(pub LoadedDatasets);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LoadDatasetArgs {
    /// A catalogue data set (`pbmc68k_reduced`, `pbmc_raw`) or a path to an .h5ad file, a
    /// 10x directory or a .tsv/.csv table.
    #[schemars(length(min = 1, max = 500))]
    #[schemars(extend("x-domain" = cellwright_core::domains::DATASET))]
    pub source: String,
    /// Tables only: rows are cells (default: rows are genes, as R writes them).
    #[serde(default)]
    pub cells_by_genes: bool,
}

/// What a data set holds.
#[derive(Debug, Serialize, JsonSchema)]
pub struct DatasetSummary {
    /// The name to give `describe_dataset`.
    pub name: String,
    pub cells: usize,
    pub genes: usize,
    /// Stored values: every entry when dense, the non-zeros when sparse.
    pub stored_values: usize,
    pub sparse: bool,
    pub cell_annotations: Vec<AnnotationSummary>,
    pub gene_annotations: Vec<String>,
    /// Other matrices of the same shape, e.g. `raw`.
    pub layers: Vec<String>,
    /// Per-cell embeddings, e.g. `X_pca`, `X_umap`.
    pub embeddings: Vec<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AnnotationSummary {
    pub name: String,
    /// `categorical`, `float`, `int`, `bool` or `text`.
    pub kind: String,
    /// For categorical columns, the 20 commonest labels with their cell counts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<LabelCount>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LabelCount {
    pub label: String,
    pub cells: usize,
}

fn summarise(name: &str, m: &ExpressionMatrix) -> DatasetSummary {
    let (cells, genes) = m.shape();
    DatasetSummary {
        name: name.to_owned(),
        cells,
        genes,
        stored_values: m.x().stored(),
        sparse: matches!(m.x(), cellwright_data::matrix::Values::Sparse(_)),
        cell_annotations: m
            .obs
            .iter()
            .map(|(name, col)| AnnotationSummary {
                name: name.clone(),
                kind: col.kind().to_owned(),
                categories: label_counts(col).into_iter().take(20).collect(),
            })
            .collect(),
        gene_annotations: m.var.iter().map(|(n, _)| n.clone()).collect(),
        layers: m.layers.keys().cloned().collect(),
        embeddings: m.obsm.keys().cloned().collect(),
    }
}

/// Labels of a categorical column by cell count, commonest first.
fn label_counts(col: &Column) -> Vec<LabelCount> {
    let Column::Categorical {
        categories, codes, ..
    } = col
    else {
        return Vec::new();
    };
    let mut counts = vec![0usize; categories.len()];
    for &c in codes {
        if let Ok(c) = usize::try_from(c) {
            counts[c] += 1;
        }
    }
    let mut out: Vec<LabelCount> = categories
        .iter()
        .zip(counts)
        .map(|(label, cells)| LabelCount {
            label: label.clone(),
            cells,
        })
        .collect();
    out.sort_by(|a, b| b.cells.cmp(&a.cells).then_with(|| a.label.cmp(&b.label)));
    out
}

impl Tool for LoadDataset {
    const NAME: &'static str = "load_dataset";
    type Args = LoadDatasetArgs;
    type Output = DatasetSummary;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/load_dataset.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let (loaded, ctx) = (self.0.clone(), ctx.clone());
        off_async(move || {
            let orientation = if args.cells_by_genes {
                Orientation::CellsByGenes
            } else {
                Orientation::GenesByCells
            };
            let m = loaded.get_or_load(&args.source, orientation, &*ctx.progress, &ctx.cancel)?;
            Ok(summarise(&args.source, &m))
        })
        .await
    }
}

/// Summarises a data set: shape, annotations, most expressed and most variable genes, and
/// the genes that mark each group of cells.
#[derive(Debug, Clone, Default)]
pub struct DescribeDataset(pub LoadedDatasets);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DescribeDatasetArgs {
    /// A name given to `load_dataset`, or a catalogue data set (loaded if need be).
    #[schemars(length(min = 1, max = 500))]
    #[schemars(extend("x-domain" = cellwright_core::domains::DATASET))]
    pub name: String,
    /// A categorical cell annotation (e.g. `bulk_labels`): list the marker genes of each group;
    /// or one group of one (e.g. `CD19+ B`): list its marker genes.
    #[serde(default)]
    #[schemars(extend("x-cues" = cellwright_core::cues::MARKERS))]
    pub group_by: Option<String>,
    /// Genes per list.
    #[serde(default = "default_top")]
    #[schemars(range(min = 1, max = 50))]
    pub top: u32,
}

fn default_top() -> u32 {
    10
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DatasetDescription {
    pub summary: DatasetSummary,
    /// Which values the gene lists were computed on.
    pub values: String,
    /// Highest mean expression first.
    pub top_expressed: Vec<GeneMean>,
    /// Highest normalised dispersion first (scanpy's `seurat` flavour).
    pub most_variable: Vec<String>,
    /// Present when `group_by` was given: per group, genes most above their mean elsewhere.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub markers: Vec<GroupMarkers>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GeneMean {
    pub gene: String,
    pub mean: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct GroupMarkers {
    pub group: String,
    pub cells: usize,
    pub genes: Vec<Marker>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Marker {
    pub gene: String,
    /// Mean in the group.
    pub mean_in: f64,
    /// Mean in every other cell.
    pub mean_out: f64,
}

/// Log-normalised values to rank genes on: the `raw` layer when X has been scaled (as in
/// pbmc68k_reduced), normalised and `log1p`-ed first when they are raw counts.
fn log_normalised(m: &ExpressionMatrix) -> Result<(ExpressionMatrix, String), ToolError> {
    let (mut values, source) = match m.layers.get("raw") {
        Some(raw) => {
            let mut v = ExpressionMatrix::new(raw.clone(), m.cells().to_vec(), m.genes().to_vec())
                .map_err(|e| failed(&e))?;
            v.obs = m.obs.clone();
            (v, "the raw layer")
        }
        None => (m.clone(), "X"),
    };
    let mut counts = true;
    values
        .x()
        .for_each(|_, _, v| counts &= v >= 0.0 && v.fract() == 0.0);
    if counts {
        values.normalize_total(None);
        values.log1p();
        Ok((
            values,
            format!("{source}, library-size normalised and log1p-transformed (it held counts)"),
        ))
    } else {
        Ok((values, format!("{source} as stored")))
    }
}

fn describe(
    name: &str,
    m: &ExpressionMatrix,
    group_by: Option<&str>,
    top: usize,
) -> Result<DatasetDescription, ToolError> {
    let (values, source) = log_normalised(m)?;
    let (n, g) = values.shape();
    let mut sums = vec![0.0f64; g];
    values.x().for_each(|_, j, v| sums[j] += f64::from(v));
    let mut order: Vec<usize> = (0..g).collect();
    order.sort_by(|&a, &b| sums[b].total_cmp(&sums[a]));
    let top_expressed = order
        .iter()
        .take(top)
        .map(|&j| GeneMean {
            gene: values.genes()[j].clone(),
            mean: sums[j] / n as f64,
        })
        .collect();
    let most_variable = values
        .highly_variable_genes(top)
        .top
        .into_iter()
        .map(|j| values.genes()[j].clone())
        .collect();
    let markers = match group_by {
        None => Vec::new(),
        Some(column) => markers(&values, column, &sums, top)?,
    };
    Ok(DatasetDescription {
        summary: summarise(name, m),
        values: source,
        top_expressed,
        most_variable,
        markers,
    })
}

fn markers(
    values: &ExpressionMatrix,
    column: &str,
    totals: &[f64],
    top: usize,
) -> Result<Vec<GroupMarkers>, ToolError> {
    // A group's name stands for its column, narrowed to that group.
    let (column, only) = match values.obs_column(column) {
        Some(Column::Categorical { .. }) => (column, None),
        _ => match group_named(values, column) {
            Some((name, group)) => (name, Some(group)),
            None => (column, None),
        },
    };
    let Some(
        col @ Column::Categorical {
            categories, codes, ..
        },
    ) = values.obs_column(column)
    else {
        let categorical: Vec<&str> = values
            .obs
            .iter()
            .filter(|(_, c)| matches!(c, Column::Categorical { .. }))
            .map(|(n, _)| n.as_str())
            .collect();
        return Err(ToolError::NotFound {
            what: "categorical cell annotation".into(),
            name: column.to_owned(),
            suggestions: closest_matches(column, categorical.iter().copied(), 0.0, 5),
        });
    };
    let (n, g) = values.shape();
    let mut group_sums = vec![vec![0.0f64; g]; categories.len()];
    values.x().for_each(|i, j, v| {
        if let Ok(c) = usize::try_from(codes[i]) {
            group_sums[c][j] += f64::from(v);
        }
    });
    let counts = label_counts(col);
    Ok(counts
        .into_iter()
        .filter(|c| c.cells > 0 && only.as_ref().is_none_or(|o| *o == c.label))
        .take(30)
        .map(|lc| {
            let c = categories.iter().position(|l| *l == lc.label).unwrap_or(0);
            let inside = lc.cells as f64;
            let outside = (n - lc.cells).max(1) as f64;
            let mut scored: Vec<Marker> = (0..g)
                .map(|j| Marker {
                    gene: values.genes()[j].clone(),
                    mean_in: group_sums[c][j] / inside,
                    mean_out: (totals[j] - group_sums[c][j]) / outside,
                })
                .collect();
            scored.sort_by(|a, b| (b.mean_in - b.mean_out).total_cmp(&(a.mean_in - a.mean_out)));
            scored.truncate(top);
            GroupMarkers {
                group: lc.label,
                cells: lc.cells,
                genes: scored,
            }
        })
        .collect())
}

/// The categorical annotation that has a group named `name` (ignoring case and a trailing
/// "cells"), or else the group whose name `name` holds (the longest: "markers of CD19+ B
/// cells"), or else the one group whose name starts with `name`, with the group's own
/// spelling.
fn group_named<'a>(values: &'a ExpressionMatrix, name: &str) -> Option<(&'a str, String)> {
    let text = name.trim().to_lowercase();
    let name = text
        .strip_suffix(" cells")
        .or_else(|| text.strip_suffix(" cell"))
        .unwrap_or(&text);
    let groups = || {
        values.obs.iter().flat_map(|(column, c)| match c {
            Column::Categorical { categories, .. } => categories
                .iter()
                .map(|g| (column.as_str(), g))
                .collect::<Vec<_>>(),
            _ => Vec::new(),
        })
    };
    let held = |g: &str| {
        let g = g.to_lowercase();
        text.match_indices(&g).any(|(at, _)| {
            let before = text[..at].chars().next_back();
            let after = text[at + g.len()..].chars().next();
            !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric)
        })
    };
    // The one group whose name starts with `name` as a word ("CD56+" for "CD56+ NK"; "CD4+"
    // starts several, and names none).
    let started = || {
        let mut by_start = groups().filter(|(_, g)| {
            g.to_lowercase()
                .strip_prefix(name)
                .is_some_and(|rest| rest.starts_with(|c: char| !c.is_alphanumeric()))
        });
        match (by_start.next(), by_start.next()) {
            (Some(one), None) => Some(one),
            _ => None,
        }
    };
    groups()
        .find(|(_, g)| g.to_lowercase() == name)
        .or_else(|| {
            groups()
                .filter(|(_, g)| held(g))
                .max_by_key(|(_, g)| g.chars().count())
        })
        .or_else(|| (!name.is_empty()).then(started).flatten())
        .map(|(column, g)| (column, g.clone()))
}

impl Tool for DescribeDataset {
    const NAME: &'static str = "describe_dataset";
    type Args = DescribeDatasetArgs;
    type Output = DatasetDescription;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/describe_dataset.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let (loaded, ctx) = (self.0.clone(), ctx.clone());
        off_async(move || {
            let m = loaded.get_or_load(
                &args.name,
                Orientation::GenesByCells,
                &*ctx.progress,
                &ctx.cancel,
            )?;
            describe(&args.name, &m, args.group_by.as_deref(), args.top as usize)
        })
        .await
    }
}
