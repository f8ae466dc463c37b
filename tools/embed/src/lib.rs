//! Representation tools: `embed_cells` (a data set's cells as vectors, by PCA, a trained VAE,
//! GenePT-w or cell sentences), `annotate_cells` (labels moved from a labelled reference to a
//! query by nearest-neighbour votes, with confidences), `similar_genes` (nearest genes in the
//! knowledge-text gene embedding) and `cluster_cells` (Leiden or k-means clusters with a UMAP
//! plot). The CLI's `embed` and `annotate` commands run on the same functions.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cellwright_core::{ArtifactRef, CancelToken, Progress, Tool, ToolCtx, ToolError};
use cellwright_data::catalogue;
use cellwright_data::genedb::{GeneCard, GeneDb};
use cellwright_data::genesets::Collection;
use cellwright_data::load::LoadedDatasets;
use cellwright_data::matrix::{Column, ExpressionMatrix, Values};
use cellwright_data::text::Orientation;
use cellwright_embed::{
    CellEmbedding, CellEmbeddingError, GeneEmbeddingError, GeneEmbeddings, GeneText, Transfer,
    VaeError, VaeSettings, build_in_steps, embed_sentences, genept_w, knowledge_texts,
    pca_embedding, train_vae,
};
use cellwright_llm::embedded::MiniLm;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn failed(message: impl Into<String>) -> ToolError {
    ToolError::Failed {
        message: message.into(),
        retryable: false,
    }
}

fn gene_error(e: GeneEmbeddingError) -> ToolError {
    match e {
        GeneEmbeddingError::Cancelled => ToolError::Cancelled,
        e => failed(e.to_string()),
    }
}

fn cell_error(e: CellEmbeddingError) -> ToolError {
    match e {
        CellEmbeddingError::Embedding(e) => gene_error(e),
        e => failed(e.to_string()),
    }
}

fn vae_error(e: VaeError) -> ToolError {
    match e {
        VaeError::Cancelled => ToolError::Cancelled,
        e => failed(e.to_string()),
    }
}

async fn off_async<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ToolError> + Send + 'static,
) -> Result<T, ToolError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| failed(format!("the tool's work stopped: {e}")))?
}

/// The gene-embedding table in the cache.
pub fn default_table() -> PathBuf {
    cellwright_fetch::cache_dir()
        .join("embeddings")
        .join("genes-minilm.safetensors")
}

/// What gene texts are written from, and the sentence model that embeds them.
pub struct Knowledge {
    /// Every gene of org.Hs.eg.db with its name and GO terms.
    pub cards: Vec<GeneCard>,
    pub pathways: Collection,
    pub complexes: Collection,
    pub embedder: MiniLm,
}

impl std::fmt::Debug for Knowledge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Knowledge")
            .field("genes", &self.cards.len())
            .finish_non_exhaustive()
    }
}

impl Knowledge {
    /// The databases and MiniLM, fetched on first use.
    pub async fn fetch(
        progress: Arc<dyn Progress>,
        cancel: &CancelToken,
    ) -> Result<Self, ToolError> {
        let cancel = cancel.clone();
        let (org, go, pathways, complexes, embedder) = off_async(move || {
            let file = |name: &str, suffix: &str| {
                catalogue::find(name)?.fetch_file(suffix, &*progress, &cancel)
            };
            let sets = |suffix: &str, name: &str| -> Result<Collection, ToolError> {
                Collection::read_csv(&file("gene-sets", suffix)?, name)
                    .map_err(|e| failed(e.to_string()))
            };
            Ok((
                file("org.Hs.eg.db", "")?,
                file("GO.db", "")?,
                sets("pathway.csv", "pathways")?,
                sets("corum.csv", "complexes")?,
                MiniLm::fetch_default(&*progress, &cancel).map_err(|e| failed(e.to_string()))?,
            ))
        })
        .await?;
        let db = GeneDb::open(&org, &go)
            .await
            .map_err(|e| failed(e.to_string()))?;
        let cards = db.cards().await.map_err(|e| failed(e.to_string()))?;
        Ok(Self {
            cards,
            pathways,
            complexes,
            embedder,
        })
    }

    /// Every gene's text: name, GO terms, complexes and pathways.
    pub fn texts(&self) -> Vec<GeneText> {
        knowledge_texts(
            &self.cards,
            &[("Complexes", &self.complexes), ("Pathways", &self.pathways)],
        )
    }
}

/// The cells of `m` that have a label, their labels, and how many had none.
pub fn labelled_cells(
    m: &ExpressionMatrix,
    labels: Vec<Option<String>>,
) -> Result<(ExpressionMatrix, Vec<String>, usize), ToolError> {
    let labelled: Vec<&str> = m
        .cells()
        .iter()
        .zip(&labels)
        .filter(|(_, l)| l.is_some())
        .map(|(c, _)| c.as_str())
        .collect();
    let unlabelled = m.shape().0 - labelled.len();
    let kept = m
        .select_cells(&labelled)
        .map_err(|e| failed(e.to_string()))?;
    Ok((kept, labels.into_iter().flatten().collect(), unlabelled))
}

/// Newly embedded genes between saves of a growing table (about three minutes on 2 cores).
const SAVE_EVERY: usize = 2000;

/// The table at `path` (if any) extended to `texts` and saved when anything changed: only
/// genes whose text is new or changed are embedded, and the table is saved every
/// [`SAVE_EVERY`] of them, so a stopped build loses at most that many.
pub async fn extend_table(
    path: &Path,
    texts: &[GeneText],
    embedder: &MiniLm,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<GeneEmbeddings, ToolError> {
    let previous = if path.exists() {
        Some(GeneEmbeddings::load(path).map_err(gene_error)?)
    } else {
        None
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| failed(format!("creating {}: {e}", dir.display())))?;
    }
    // Kept every few thousand genes: a full build takes long, and a stopped one resumes.
    let table = build_in_steps(
        texts,
        embedder,
        previous.as_ref(),
        SAVE_EVERY,
        progress,
        cancel,
        |partial| partial.save(path),
    )
    .await
    .map_err(gene_error)?;
    if previous.as_ref() != Some(&table) {
        table.save(path).map_err(gene_error)?;
    }
    Ok(table)
}

/// The gene table at `path`, extended to `wanted` genes (every gene of org.Hs.eg.db when
/// `None`) and saved.
pub async fn gene_table(
    path: &Path,
    wanted: Option<&[String]>,
    progress: Arc<dyn Progress>,
    cancel: &CancelToken,
) -> Result<GeneEmbeddings, ToolError> {
    let known: Vec<String> = if path.exists() {
        GeneEmbeddings::load(path)
            .map_err(gene_error)?
            .genes()
            .to_vec()
    } else {
        Vec::new()
    };
    let knowledge = Knowledge::fetch(progress.clone(), cancel).await?;
    let mut texts = knowledge.texts();
    if let Some(wanted) = wanted {
        let wanted: std::collections::HashSet<String> = wanted
            .iter()
            .chain(&known)
            .map(|g| g.to_ascii_uppercase())
            .collect();
        texts.retain(|t| wanted.contains(&t.gene.to_ascii_uppercase()));
    }
    extend_table(path, &texts, &knowledge.embedder, &*progress, cancel).await
}

/// How cells become vectors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum CellMethod {
    /// The first 50 principal components of the log-normalised highly variable genes.
    #[default]
    Pca,
    /// A scVI-like variational autoencoder trained on the data.
    Vae,
    /// GenePT-w: the expression-weighted mean of the genes' knowledge-text embeddings.
    GeneptW,
    /// The 100 most expressed genes' symbols as a sentence, embedded with MiniLM.
    Sentences,
}

impl CellMethod {
    pub fn name(self) -> &'static str {
        match self {
            Self::Pca => "pca",
            Self::Vae => "vae",
            Self::GeneptW => "genept_w",
            Self::Sentences => "sentences",
        }
    }

    /// Whether a cell's vector depends on the other cells embedded with it (then a reference
    /// and a query are embedded together).
    fn joint(self) -> bool {
        matches!(self, Self::Pca | Self::Vae)
    }
}

/// Settings of [`embed_matrix`] beyond the method.
#[derive(Debug, Clone)]
pub struct EmbedOptions {
    /// The gene-embedding table (GenePT-w).
    pub table: PathBuf,
    pub pca_components: usize,
    pub pca_genes: usize,
    pub sentence_genes: usize,
    pub vae: VaeSettings,
    pub seed: u64,
    /// Where the VAE's best weights are written as it trains.
    pub checkpoint: Option<PathBuf>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        Self {
            table: default_table(),
            pca_components: 50,
            pca_genes: 2000,
            sentence_genes: 100,
            vae: VaeSettings::default(),
            seed: 0,
            checkpoint: None,
        }
    }
}

/// An embedding and what is worth saying about how it was made.
#[derive(Debug, Clone)]
pub struct Embedded {
    pub embedding: CellEmbedding,
    pub notes: Vec<String>,
}

/// Embeds the cells of `m` by `method`.
pub async fn embed_matrix(
    m: Arc<ExpressionMatrix>,
    method: CellMethod,
    options: &EmbedOptions,
    progress: Arc<dyn Progress>,
    cancel: &CancelToken,
) -> Result<Embedded, ToolError> {
    let mut notes = Vec::new();
    let embedding = match method {
        CellMethod::Pca => {
            let (components, genes) = (options.pca_components, options.pca_genes);
            off_async(move || pca_embedding(&m, components, genes).map_err(cell_error)).await?
        }
        CellMethod::Vae => {
            let (settings, seed, checkpoint) = (
                options.vae.clone(),
                options.seed,
                options.checkpoint.clone(),
            );
            let cancel = cancel.clone();
            let (embedding, report) = off_async(move || {
                let (vae, report) = train_vae(
                    &m,
                    &settings,
                    seed,
                    checkpoint.as_deref(),
                    &*progress,
                    &cancel,
                )
                .map_err(vae_error)?;
                Ok((vae.embed(&m).map_err(vae_error)?, report))
            })
            .await?;
            let best = &report.epochs[report.best_epoch - 1];
            notes.push(format!(
                "VAE with a {} likelihood: {} epochs{}, best held-out loss {:.1} per cell at epoch {}, {:.1} s",
                serde_json::to_value(report.likelihood)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_owned))
                    .unwrap_or_default()
                    .replace('_', " "),
                report.epochs.len(),
                if report.stopped_early {
                    " (stopped early)"
                } else {
                    ""
                },
                best.held_out,
                report.best_epoch,
                report.seconds
            ));
            embedding
        }
        CellMethod::GeneptW => {
            let table = gene_table(&options.table, Some(m.genes()), progress, cancel).await?;
            let (embedding, coverage) = genept_w(&m, &table).map_err(cell_error)?;
            notes.push(format!(
                "{} of {} genes have knowledge embeddings{}",
                coverage.used,
                coverage.used + coverage.missing,
                if coverage.missing > 0 {
                    format!(" (missing e.g. {})", coverage.missing_examples.join(", "))
                } else {
                    String::new()
                }
            ));
            if coverage.uncovered_cells > 0 {
                notes.push(format!(
                    "{} cells express only genes without knowledge embeddings: their vectors are zero",
                    coverage.uncovered_cells
                ));
            }
            embedding
        }
        CellMethod::Sentences => {
            let (fetch_progress, fetch_cancel) = (progress.clone(), cancel.clone());
            let embedder = off_async(move || {
                MiniLm::fetch_default(&*fetch_progress, &fetch_cancel)
                    .map_err(|e| failed(e.to_string()))
            })
            .await?;
            embed_sentences(&m, options.sentence_genes, &embedder, &*progress, cancel)
                .await
                .map_err(cell_error)?
        }
    };
    Ok(Embedded { embedding, notes })
}

/// The matrix of a data set to embed: `layer` in place of `X` when named; otherwise, when `X`
/// holds negative values (scaled data) and a `raw` layer exists, that layer (said in the
/// returned note).
pub fn expression_for_embedding(
    m: &ExpressionMatrix,
    layer: Option<&str>,
    source: &str,
) -> Result<(Arc<ExpressionMatrix>, Option<String>), ToolError> {
    let scaled = || {
        let mut negative = false;
        m.x().for_each(|_, _, v| negative |= v < 0.0);
        negative
    };
    let name = match layer {
        Some(name) => name,
        None if m.layers.contains_key("raw") && scaled() => "raw",
        None => return Ok((Arc::new(m.clone()), None)),
    };
    let Some(values) = m.layers.get(name) else {
        let have: Vec<&str> = m.layers.keys().map(String::as_str).collect();
        return Err(failed(format!(
            "{source}: no layer `{name}` (it has: {})",
            if have.is_empty() {
                "none".to_owned()
            } else {
                have.join(", ")
            }
        )));
    };
    let mut with = ExpressionMatrix::new(values.clone(), m.cells().to_vec(), m.genes().to_vec())
        .map_err(|e| failed(e.to_string()))?;
    with.obs = m.obs.clone();
    let note = layer
        .is_none()
        .then(|| "X holds scaled values (some negative), so the `raw` layer was used".to_owned());
    Ok((Arc::new(with), note))
}

/// The labels in the obs column `column`, or in the first categorical column with 2 to 200
/// categories; `None` for a cell without one.
pub fn labels_of(
    m: &ExpressionMatrix,
    column: Option<&str>,
    source: &str,
) -> Result<(String, Vec<Option<String>>), ToolError> {
    let name = match column {
        Some(c) => c.to_owned(),
        None => m
            .obs
            .iter()
            .find(|(_, c)| {
                matches!(c, Column::Categorical { categories, .. }
                    if (2..=200).contains(&categories.len()))
            })
            .map(|(n, _)| n.clone())
            .ok_or_else(|| {
                failed(format!(
                    "{source}: no categorical obs column to take labels from; name one"
                ))
            })?,
    };
    let col = m.obs_column(&name).ok_or_else(|| {
        let have: Vec<&str> = m.obs.iter().map(|(n, _)| n.as_str()).collect();
        failed(format!(
            "{source}: no obs column `{name}` (it has: {})",
            have.join(", ")
        ))
    })?;
    if !matches!(col, Column::Categorical { .. } | Column::Text(_)) {
        return Err(failed(format!(
            "{source}: obs column `{name}` holds {} values, not labels",
            col.kind()
        )));
    }
    Ok((
        name,
        (0..m.shape().0)
            .map(|i| col.label(i).map(str::to_owned))
            .collect(),
    ))
}

/// The cells of `a` then those of `b` over the genes both have (cell names prefixed with
/// `a:`/`b:` so they stay unique), for methods that embed cells together.
fn stack(a: &ExpressionMatrix, b: &ExpressionMatrix) -> Result<ExpressionMatrix, ToolError> {
    let shared: Vec<&str> = a
        .genes()
        .iter()
        .filter(|g| b.gene_position(g).is_some())
        .map(String::as_str)
        .collect();
    if shared.is_empty() {
        return Err(failed("the reference and the query have no gene in common"));
    }
    let dense = |m: &ExpressionMatrix| -> Result<ndarray::Array2<f32>, ToolError> {
        Ok(m.select_genes(&shared)
            .map_err(|e| failed(e.to_string()))?
            .x()
            .to_dense())
    };
    let x = ndarray::concatenate(ndarray::Axis(0), &[dense(a)?.view(), dense(b)?.view()])
        .map_err(|e| failed(e.to_string()))?;
    let cells = (a.cells().iter().map(|c| format!("a:{c}")))
        .chain(b.cells().iter().map(|c| format!("b:{c}")))
        .collect();
    ExpressionMatrix::new(
        Values::Dense(x),
        cells,
        shared.iter().map(|g| (*g).to_owned()).collect(),
    )
    .map_err(|e| failed(e.to_string()))
}

/// Rows `range` of `e`, named `names`.
fn rows(e: &CellEmbedding, range: std::ops::Range<usize>, names: &[String]) -> CellEmbedding {
    CellEmbedding {
        cells: names.to_vec(),
        dimension: e.dimension,
        values: e.values[range.start * e.dimension..range.end * e.dimension].to_vec(),
    }
}

/// The reference and the query in one space: embedded together (over their shared genes)
/// when the method learns from the cells, else each on its own.
pub async fn embed_pair(
    reference: Arc<ExpressionMatrix>,
    query: Arc<ExpressionMatrix>,
    method: CellMethod,
    options: &EmbedOptions,
    progress: Arc<dyn Progress>,
    cancel: &CancelToken,
) -> Result<(CellEmbedding, CellEmbedding, Vec<String>), ToolError> {
    if method.joint() {
        let both = Arc::new(stack(&reference, &query)?);
        let shared = both.shape().1;
        let mut e = embed_matrix(both, method, options, progress, cancel).await?;
        let n = reference.shape().0;
        let total = e.embedding.cells.len();
        e.notes.push(format!(
            "reference and query embedded together over their {shared} shared genes"
        ));
        return Ok((
            rows(&e.embedding, 0..n, reference.cells()),
            rows(&e.embedding, n..total, query.cells()),
            e.notes,
        ));
    }
    let r = embed_matrix(reference, method, options, progress.clone(), cancel).await?;
    let q = embed_matrix(query, method, options, progress, cancel).await?;
    let notes = r
        .notes
        .into_iter()
        .map(|n| format!("reference: {n}"))
        .chain(q.notes.into_iter().map(|n| format!("query: {n}")))
        .collect();
    Ok((r.embedding, q.embedding, notes))
}

/// Predicted labels with their cell counts and mean confidences, most frequent first.
pub fn label_summary(transfer: &Transfer) -> Vec<LabelCount> {
    let mut counts: HashMap<&str, (usize, f32)> = HashMap::new();
    for (label, c) in transfer.labels.iter().zip(&transfer.confidence) {
        let entry = counts.entry(label.as_str()).or_default();
        entry.0 += 1;
        entry.1 += c;
    }
    let mut summary: Vec<LabelCount> = counts
        .into_iter()
        .map(|(label, (cells, total))| LabelCount {
            label: label.to_owned(),
            cells,
            mean_confidence: total / cells as f32,
        })
        .collect();
    summary.sort_by(|a, b| b.cells.cmp(&a.cells).then(a.label.cmp(&b.label)));
    summary
}

/// The transferred labels as CSV: cell, label, confidence.
pub fn labels_csv(cells: &[String], transfer: &Transfer) -> Result<Vec<u8>, ToolError> {
    let records = std::iter::once(["cell".to_owned(), "label".into(), "confidence".into()]).chain(
        cells
            .iter()
            .zip(&transfer.labels)
            .zip(&transfer.confidence)
            .map(|((cell, label), c)| [cell.clone(), label.clone(), format!("{c:.3}")]),
    );
    csv_bytes(records)
}

/// CSV text from records.
fn csv_bytes<I, R>(records: I) -> Result<Vec<u8>, ToolError>
where
    I: IntoIterator<Item = R>,
    R: IntoIterator,
    R::Item: AsRef<[u8]>,
{
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in records {
        w.write_record(r).map_err(|e| failed(e.to_string()))?;
    }
    w.into_inner().map_err(|e| failed(e.to_string()))
}

/// The embedding as CSV: the cell name, then one column per dimension.
pub fn embedding_csv(e: &CellEmbedding) -> Result<Vec<u8>, ToolError> {
    let header =
        std::iter::once("cell".to_owned()).chain((0..e.dimension).map(|d| format!("dim{d}")));
    let body = e.cells.iter().enumerate().map(|(i, cell)| {
        std::iter::once(cell.clone())
            .chain(e.row(i).iter().map(|x| x.to_string()))
            .collect::<Vec<_>>()
    });
    csv_bytes(std::iter::once(header.collect::<Vec<_>>()).chain(body))
}

/// Embeddings made so far, by data set and method.
type EmbeddingCache = HashMap<(String, CellMethod), Arc<Embedded>>;

/// What the four tools share: the session's data sets, the embeddings made so far (by data
/// set and method) and where the gene-embedding table lives.
#[derive(Debug, Clone)]
pub struct EmbedState {
    datasets: LoadedDatasets,
    table: PathBuf,
    embeddings: Arc<Mutex<EmbeddingCache>>,
}

impl EmbedState {
    /// Shares `datasets` with the tools that load and simulate data; genes are embedded into
    /// the table at `table`.
    pub fn new(datasets: LoadedDatasets, table: PathBuf) -> Self {
        Self {
            datasets,
            table,
            embeddings: Arc::default(),
        }
    }

    fn options(&self, seed: u64) -> EmbedOptions {
        EmbedOptions {
            table: self.table.clone(),
            seed,
            ..EmbedOptions::default()
        }
    }

    /// The data set's matrix for embedding (see [`expression_for_embedding`]).
    async fn matrix(
        &self,
        ctx: &ToolCtx,
        dataset: &str,
        layer: Option<String>,
    ) -> Result<(Arc<ExpressionMatrix>, Option<String>), ToolError> {
        let (datasets, worker, name) = (self.datasets.clone(), ctx.clone(), dataset.to_owned());
        off_async(move || {
            let m = datasets.get_or_load(
                &name,
                Orientation::GenesByCells,
                &*worker.progress,
                &worker.cancel,
            )?;
            expression_for_embedding(&m, layer.as_deref(), &name)
        })
        .await
    }

    /// The data set's embedding by `method`, made on first use and kept.
    async fn embedding(
        &self,
        ctx: &ToolCtx,
        dataset: &str,
        method: CellMethod,
        layer: Option<String>,
    ) -> Result<(Arc<ExpressionMatrix>, Arc<Embedded>), ToolError> {
        let (m, note) = self.matrix(ctx, dataset, layer).await?;
        let key = (dataset.to_owned(), method);
        if let Some(e) = self.lock().get(&key) {
            return Ok((m, e.clone()));
        }
        let mut e = embed_matrix(
            m.clone(),
            method,
            &self.options(ctx.seed),
            ctx.progress.clone(),
            &ctx.cancel,
        )
        .await?;
        e.notes.extend(note);
        let kept = Arc::new(e);
        self.lock().insert(key, kept.clone());
        Ok((m, kept))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, EmbeddingCache> {
        self.embeddings.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn default_k() -> u32 {
    15
}

fn default_top() -> u32 {
    10
}

// ---- embed_cells ----

/// Embed the cells of a data set.
#[derive(Debug, Clone)]
pub struct EmbedCells(pub EmbedState);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmbedCellsArgs {
    /// A data set from load_dataset or simulate_network, a catalogue data set
    /// (`pbmc68k_reduced`), or a path to an .h5ad file.
    #[schemars(length(min = 1, max = 500))]
    #[schemars(extend("x-domain" = cellwright_core::domains::DATASET))]
    pub dataset: String,
    /// `pca` (default), `vae`, `genept_w` or `sentences`.
    #[serde(default)]
    pub method: CellMethod,
    /// Embed this layer instead of X (by default `raw` when X is scaled).
    #[serde(default)]
    pub layer: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct EmbedCellsOutput {
    pub dataset: String,
    pub method: CellMethod,
    pub cells: usize,
    pub dimension: usize,
    /// How the embedding was made (layer used, gene coverage, training).
    pub notes: Vec<String>,
    /// The vectors: cell, dim0, dim1, … (CSV).
    pub embedding: ArtifactRef,
}

impl Tool for EmbedCells {
    const NAME: &'static str = "embed_cells";
    type Args = EmbedCellsArgs;
    type Output = EmbedCellsOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/embed_cells.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let dataset = args.dataset.trim().to_owned();
        let (_, e) = self
            .0
            .embedding(ctx, &dataset, args.method, args.layer)
            .await?;
        let Embedded { embedding, notes } = &*e;
        let summary = format!(
            "{} cells of {dataset} × {} dimensions by {}: cell, dim0, …",
            embedding.cells.len(),
            embedding.dimension,
            args.method.name()
        );
        let artifact = ctx
            .store_artifact("artifact", "text/csv", &summary, embedding_csv(embedding)?)
            .await?;
        Ok(EmbedCellsOutput {
            dataset,
            method: args.method,
            cells: embedding.cells.len(),
            dimension: embedding.dimension,
            notes: notes.clone(),
            embedding: artifact,
        })
    }
}

// ---- annotate_cells ----

/// Transfer cell-type labels from a labelled reference to a query.
#[derive(Debug, Clone)]
pub struct AnnotateCells(pub EmbedState);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnotateCellsArgs {
    /// Labelled cells: a data set name or an .h5ad path.
    #[schemars(length(min = 1, max = 500))]
    #[schemars(extend("x-domain" = cellwright_core::domains::DATASET))]
    pub reference: String,
    /// Cells to label: a data set name or an .h5ad path.
    #[schemars(length(min = 1, max = 500))]
    #[schemars(extend("x-domain" = cellwright_core::domains::DATASET))]
    pub query: String,
    /// The reference's obs column with the labels; by default its first categorical column.
    #[serde(default)]
    pub label_column: Option<String>,
    /// How both are embedded: `pca` (default), `vae`, `genept_w` or `sentences`.
    #[serde(default)]
    pub method: CellMethod,
    /// Reference neighbours that vote on each query cell.
    #[serde(default = "default_k")]
    #[schemars(range(min = 1, max = 100))]
    pub k: u32,
}

/// One predicted label's share of the query.
#[derive(Debug, Serialize, JsonSchema)]
pub struct LabelCount {
    pub label: String,
    pub cells: usize,
    pub mean_confidence: f32,
}

/// One query cell's prediction.
#[derive(Debug, Serialize, JsonSchema)]
pub struct CellLabel {
    pub cell: String,
    pub label: String,
    /// Share of the k neighbours that voted for the label.
    pub confidence: f32,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AnnotateCellsOutput {
    pub reference: String,
    pub query: String,
    pub label_column: String,
    pub reference_cells: usize,
    pub query_cells: usize,
    pub method: CellMethod,
    /// Predicted labels, most frequent first.
    pub summary: Vec<LabelCount>,
    /// The first few query cells.
    pub first_cells: Vec<CellLabel>,
    /// When the query has the same label column: the share of its labelled cells predicted
    /// right.
    pub agreement_with_query_labels: Option<f64>,
    pub notes: Vec<String>,
    /// Every query cell: cell, label, confidence (CSV).
    pub labels: ArtifactRef,
}

impl Tool for AnnotateCells {
    const NAME: &'static str = "annotate_cells";
    type Args = AnnotateCellsArgs;
    type Output = AnnotateCellsOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/annotate_cells.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let (reference_name, query_name) = (
            args.reference.trim().to_owned(),
            args.query.trim().to_owned(),
        );
        let (reference, reference_note) = self.0.matrix(ctx, &reference_name, None).await?;
        let (query, query_note) = self.0.matrix(ctx, &query_name, None).await?;
        let mut notes: Vec<String> = reference_note.into_iter().chain(query_note).collect();
        notes.dedup();
        let (column, labels) =
            labels_of(&reference, args.label_column.as_deref(), &reference_name)?;
        let (reference, labels, unlabelled) = labelled_cells(&reference, labels)?;
        if unlabelled > 0 {
            notes.push(format!(
                "{unlabelled} reference cells without a label left out"
            ));
        }
        let reference = Arc::new(reference);
        let (r, q, embed_notes) = embed_pair(
            reference.clone(),
            query.clone(),
            args.method,
            &self.0.options(ctx.seed),
            ctx.progress.clone(),
            &ctx.cancel,
        )
        .await?;
        notes.extend(embed_notes);
        let transfer = cellwright_embed::transfer_labels(&r, &labels, &q, args.k as usize)
            .map_err(|e| failed(e.to_string()))?;
        let agreement =
            labels_of(&query, Some(&column), &query_name)
                .ok()
                .and_then(|(_, truth)| {
                    let scored: Vec<bool> = truth
                        .iter()
                        .zip(&transfer.labels)
                        .filter_map(|(t, p)| t.as_ref().map(|t| t == p))
                        .collect();
                    (!scored.is_empty()).then(|| {
                        scored.iter().filter(|&&ok| ok).count() as f64 / scored.len() as f64
                    })
                });
        let summary = label_summary(&transfer);
        let artifact = ctx.store_artifact("artifact",
            "text/csv",
            &format!(
                "labels of the {} cells of {query_name} moved from {reference_name}'s `{column}`: cell, label, confidence",
                q.cells.len()
            ),
            labels_csv(&q.cells, &transfer)?,
        )
        .await?;
        Ok(AnnotateCellsOutput {
            reference: reference_name,
            query: query_name,
            label_column: column,
            reference_cells: r.cells.len(),
            query_cells: q.cells.len(),
            method: args.method,
            summary,
            first_cells: q
                .cells
                .iter()
                .zip(&transfer.labels)
                .zip(&transfer.confidence)
                .take(5)
                .map(|((cell, label), &confidence)| CellLabel {
                    cell: cell.clone(),
                    label: label.clone(),
                    confidence,
                })
                .collect(),
            agreement_with_query_labels: agreement,
            notes,
            labels: artifact,
        })
    }
}

// ---- similar_genes ----

/// Genes nearest to a gene in the knowledge-text embedding.
#[derive(Debug, Clone)]
pub struct SimilarGenes(pub EmbedState);

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SimilarGenesArgs {
    /// A human gene symbol.
    #[schemars(length(min = 1, max = 50))]
    #[schemars(extend("x-domain" = cellwright_core::domains::GENE))]
    pub gene: String,
    #[serde(default = "default_top")]
    #[schemars(range(min = 1, max = 50))]
    pub top: u32,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SimilarGene {
    pub gene: String,
    /// Cosine similarity of the two genes' knowledge-text embeddings.
    pub similarity: f32,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct SimilarGenesOutput {
    pub gene: String,
    /// Genes in the embedding table (the search space).
    pub searched_genes: usize,
    pub nearest: Vec<SimilarGene>,
    /// Set when the table holds only some genes (`cellwright embed genes` builds all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Below this many genes the table is one being built gene by gene, not the genome's.
const PARTIAL_TABLE: usize = 10_000;

impl Tool for SimilarGenes {
    const NAME: &'static str = "similar_genes";
    type Args = SimilarGenesArgs;
    type Output = SimilarGenesOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/similar_genes.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let gene = args.gene.trim().to_owned();
        let table = gene_table(
            &self.0.table,
            Some(std::slice::from_ref(&gene)),
            ctx.progress.clone(),
            &ctx.cancel,
        )
        .await?;
        let Some(position) = table.position(&gene) else {
            return Err(ToolError::NotFound {
                what: "gene in org.Hs.eg.db".into(),
                suggestions: cellwright_core::closest_matches(
                    &gene,
                    table.genes().iter().map(String::as_str),
                    0.8,
                    3,
                ),
                name: gene,
            });
        };
        let canonical = table.genes()[position].clone();
        let nearest = table
            .nearest(&canonical, args.top as usize)
            .map_err(gene_error)?;
        let searched_genes = table.genes().len();
        Ok(SimilarGenesOutput {
            gene: canonical,
            searched_genes,
            note: (searched_genes < PARTIAL_TABLE).then(|| {
                format!(
                    "only {searched_genes} genes are in the embedding table so far (those asked \
                     about or embedded before); `cellwright embed genes` embeds every gene"
                )
            }),
            nearest: nearest
                .into_iter()
                .map(|(gene, similarity)| SimilarGene { gene, similarity })
                .collect(),
        })
    }
}

// ---- cluster_cells ----

/// Cluster the cells of a data set.
#[derive(Debug, Clone)]
pub struct ClusterCells(pub EmbedState);

/// How cells are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ClusterAlgorithm {
    /// Leiden communities of the 15-nearest-neighbour graph.
    #[default]
    Leiden,
    /// k-means with `clusters` centres.
    Kmeans,
}

fn default_resolution() -> f64 {
    1.0
}

fn default_clusters() -> u32 {
    8
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClusterCellsArgs {
    /// A data set name or an .h5ad path.
    #[schemars(length(min = 1, max = 500))]
    #[schemars(extend("x-domain" = cellwright_core::domains::DATASET))]
    pub dataset: String,
    /// The embedding clustered: `pca` (default), `vae`, `genept_w` or `sentences`.
    #[serde(default)]
    pub method: CellMethod,
    /// `leiden` (default) or `kmeans`.
    #[serde(default)]
    pub algorithm: ClusterAlgorithm,
    /// Leiden's resolution: higher gives more clusters.
    #[serde(default = "default_resolution")]
    #[schemars(range(min = 0.01, max = 10.0))]
    pub resolution: f64,
    /// k-means' number of clusters.
    #[serde(default = "default_clusters")]
    #[schemars(range(min = 2, max = 100))]
    pub clusters: u32,
    /// An obs column of labels to compare the clusters with (ARI, NMI, each cluster's most
    /// common label); by default the first categorical column, if any.
    #[serde(default)]
    pub label_column: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ClusterOut {
    pub cluster: usize,
    pub cells: usize,
    /// The most common label among the cluster's cells and its share.
    pub top_label: Option<String>,
    pub top_label_share: Option<f64>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ClusterCellsOutput {
    pub dataset: String,
    pub method: CellMethod,
    pub algorithm: ClusterAlgorithm,
    pub cells: usize,
    /// Largest first.
    pub clusters: Vec<ClusterOut>,
    pub label_column: Option<String>,
    /// Adjusted Rand index of the clusters against the labels (1 = the same partition).
    pub ari: Option<f64>,
    /// Normalised mutual information of the clusters and the labels.
    pub nmi: Option<f64>,
    pub notes: Vec<String>,
    /// cell, cluster, umap_1, umap_2 (CSV).
    pub assignments: ArtifactRef,
    /// The UMAP layout coloured by cluster (SVG).
    pub plot: ArtifactRef,
}

/// Leiden or k-means clusters of an embedding, with a UMAP layout.
pub fn cluster(
    e: &CellEmbedding,
    algorithm: ClusterAlgorithm,
    resolution: f64,
    clusters: usize,
    seed: u64,
) -> Result<(Vec<usize>, Vec<f32>), ToolError> {
    let k = 15.min(e.cells.len());
    let nn = cellwright_embed::structure::neighbours(e, k).map_err(|e| failed(e.to_string()))?;
    let edges = cellwright_embed::structure::connectivities(e, &nn);
    let assignment = match algorithm {
        ClusterAlgorithm::Leiden => {
            cellwright_embed::structure::leiden(e.cells.len(), &edges, resolution, seed)
                .map_err(|e| failed(e.to_string()))?
        }
        ClusterAlgorithm::Kmeans => {
            let settings = cellwright_embed::KMeans {
                seed,
                ..cellwright_embed::KMeans::new(clusters)
            };
            cellwright_embed::kmeans(e, &settings)
                .map_err(|e| failed(e.to_string()))?
                .assignment
        }
    };
    let layout = cellwright_embed::structure::umap_layout(e, &edges, seed)
        .map_err(|e| failed(e.to_string()))?;
    Ok((assignment, layout))
}

/// The layout as an SVG scatter coloured by `labels`.
pub fn layout_svg(layout: &[f32], labels: &[String], title: &str) -> Result<Vec<u8>, ToolError> {
    let dir = tempfile::tempdir().map_err(|e| failed(e.to_string()))?;
    let path = dir.path().join("layout.svg");
    let points: Vec<(f64, f64)> = layout
        .chunks(2)
        .map(|p| (f64::from(p[0]), f64::from(p[1])))
        .collect();
    let axes = cellwright_eval::plot::Axes {
        title,
        x: "UMAP 1",
        y: "UMAP 2",
        log_x: false,
        log_y: false,
    };
    cellwright_eval::plot::scatter(&path, &axes, &points, labels)
        .map_err(|e| failed(e.to_string()))?;
    std::fs::read(&path).map_err(|e| failed(e.to_string()))
}

impl Tool for ClusterCells {
    const NAME: &'static str = "cluster_cells";
    type Args = ClusterCellsArgs;
    type Output = ClusterCellsOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/cluster_cells.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let dataset = args.dataset.trim().to_owned();
        let (m, e) = self.0.embedding(ctx, &dataset, args.method, None).await?;
        let Embedded { embedding, notes } = &*e;
        let labels = match &args.label_column {
            Some(c) => Some(labels_of(&m, Some(c), &dataset)?),
            None => labels_of(&m, None, &dataset).ok(),
        };
        let (algorithm, resolution, clusters, seed) = (
            args.algorithm,
            args.resolution,
            args.clusters as usize,
            ctx.seed,
        );
        let cells = embedding.clone();
        let (assignment, layout) =
            off_async(move || cluster(&cells, algorithm, resolution, clusters, seed)).await?;
        let count = assignment.iter().max().map_or(0, |m| m + 1);
        let mut out: Vec<ClusterOut> = (0..count)
            .map(|c| {
                let members: Vec<usize> = (0..assignment.len())
                    .filter(|&i| assignment[i] == c)
                    .collect();
                let top = labels.as_ref().and_then(|(_, l)| {
                    let mut tally: HashMap<&str, usize> = HashMap::new();
                    for &i in &members {
                        if let Some(label) = &l[i] {
                            *tally.entry(label).or_default() += 1;
                        }
                    }
                    tally
                        .into_iter()
                        .max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(a.0)))
                        .map(|(label, n)| (label.to_owned(), n as f64 / members.len() as f64))
                });
                ClusterOut {
                    cluster: c,
                    cells: members.len(),
                    top_label_share: top.as_ref().map(|t| t.1),
                    top_label: top.map(|t| t.0),
                }
            })
            .collect();
        out.sort_by(|a, b| b.cells.cmp(&a.cells).then(a.cluster.cmp(&b.cluster)));
        let (ari, nmi) = match &labels {
            Some((_, l)) => {
                let (truth, predicted): (Vec<&str>, Vec<usize>) = l
                    .iter()
                    .zip(&assignment)
                    .filter_map(|(t, &p)| t.as_deref().map(|t| (t, p)))
                    .unzip();
                (
                    cellwright_eval::labels::adjusted_rand_index(&truth, &predicted).ok(),
                    cellwright_eval::labels::normalized_mutual_info(&truth, &predicted).ok(),
                )
            }
            None => (None, None),
        };
        let records = std::iter::once([
            "cell".to_owned(),
            "cluster".into(),
            "umap_1".into(),
            "umap_2".into(),
        ])
        .chain(embedding.cells.iter().enumerate().map(|(i, cell)| {
            [
                cell.clone(),
                assignment[i].to_string(),
                layout[2 * i].to_string(),
                layout[2 * i + 1].to_string(),
            ]
        }));
        let algorithm_name = match args.algorithm {
            ClusterAlgorithm::Leiden => "Leiden",
            ClusterAlgorithm::Kmeans => "k-means",
        };
        let assignments = ctx.store_artifact("artifact",
            "text/csv",
            &format!(
                "{count} {algorithm_name} clusters of the {} cells of {dataset} ({} embedding) with a UMAP layout: cell, cluster, umap_1, umap_2",
                assignment.len(),
                args.method.name()
            ),
            csv_bytes(records)?,
        )
        .await?;
        let names: Vec<String> = assignment.iter().map(|c| format!("cluster {c}")).collect();
        let plot = ctx
            .store_artifact(
                "artifact",
                "image/svg+xml",
                &format!("UMAP of {dataset} coloured by {algorithm_name} cluster"),
                layout_svg(
                    &layout,
                    &names,
                    &format!("{dataset}: {algorithm_name} clusters"),
                )?,
            )
            .await?;
        Ok(ClusterCellsOutput {
            dataset,
            method: args.method,
            algorithm: args.algorithm,
            cells: assignment.len(),
            clusters: out,
            label_column: labels.map(|(c, _)| c),
            ari,
            nmi,
            notes: notes.clone(),
            assignments,
            plot,
        })
    }
}
