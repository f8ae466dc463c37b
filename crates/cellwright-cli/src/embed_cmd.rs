//! `cellwright embed genes|cells`: knowledge-text gene embeddings, and cell embeddings built on
//! them or on cell sentences.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cellwright_core::{CancelToken, Progress};
use cellwright_data::catalogue;
use cellwright_data::genedb::GeneDb;
use cellwright_data::genesets::Collection;
use cellwright_data::load::read_expression;
use cellwright_data::matrix::{Column, ExpressionMatrix};
use cellwright_data::text::Orientation;
use cellwright_embed::{
    CellEmbedding, CellEmbeddingError, GeneEmbeddingError, GeneEmbeddings, build, embed_sentences,
    genept_w, knowledge_texts, transfer_labels,
};
use cellwright_llm::embedded::MiniLm;
use clap::{Subcommand, ValueEnum};

use crate::{exit, paths, progress};

#[derive(Debug, Subcommand)]
pub enum EmbedCommand {
    /// Build or update the gene embeddings from knowledge text (name, GO terms, pathways,
    /// complexes) with MiniLM, in the cache; only new or changed texts are embedded.
    Genes(GenesArgs),
    /// Embed the cells of an expression data set; writes a CSV (cell, then one column per
    /// dimension).
    Cells(CellsArgs),
}

#[derive(Debug, clap::Args)]
pub struct GenesArgs {
    /// Only these genes (comma-separated symbols) besides those already in the table; default:
    /// every gene of org.Hs.eg.db.
    #[arg(long, value_delimiter = ',')]
    genes: Vec<String>,
    /// Print the genes nearest to these (comma-separated symbols).
    #[arg(long, value_delimiter = ',')]
    similar: Vec<String>,
    /// Neighbours to print per --similar gene.
    #[arg(long, default_value_t = 10)]
    top: usize,
    /// The gene-embedding table (safetensors) to read and extend. Default: in the cache.
    #[arg(long)]
    table: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum CellMethod {
    /// Expression-weighted mean of the genes' knowledge embeddings.
    GeneptW,
    /// The most expressed genes' symbols as a sentence, embedded with MiniLM.
    Sentences,
}

#[derive(Debug, clap::Args)]
pub struct CellsArgs {
    /// Expression data: .h5ad, a 10x directory or .h5, or a table.
    data: PathBuf,
    #[arg(long, value_enum, default_value = "genept-w")]
    method: CellMethod,
    /// Where to write the embedding (CSV).
    #[arg(long)]
    out: PathBuf,
    /// Genes per cell sentence (--method sentences).
    #[arg(long, default_value_t = 100)]
    sentence_genes: usize,
    /// Tables only: one row per cell (the default is R's one row per gene).
    #[arg(long)]
    cells_by_genes: bool,
    /// Embed this layer of an .h5ad instead of `X` (e.g. `raw`, when `X` is scaled).
    #[arg(long)]
    layer: Option<String>,
    /// The gene-embedding table (safetensors) to read and extend. Default: in the cache.
    #[arg(long)]
    table: Option<PathBuf>,
}

/// The gene-embedding table in the cache.
fn default_table() -> PathBuf {
    paths::cache_dir()
        .join("embeddings")
        .join("genes-minilm.safetensors")
}

/// The gene table at `path`, extended to `wanted` genes (every gene when `None`) and saved:
/// texts come from the databases, and only genes whose text is not yet embedded are embedded.
pub async fn gene_table(
    path: &Path,
    wanted: Option<&[String]>,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> anyhow::Result<GeneEmbeddings> {
    let previous = if path.exists() {
        Some(GeneEmbeddings::load(path)?)
    } else {
        None
    };
    let (org, go, pathways, complexes, embedder) = tokio::task::block_in_place(|| {
        let file =
            |name: &str, suffix: &str| catalogue::find(name)?.fetch_file(suffix, progress, cancel);
        anyhow::Ok((
            file("org.Hs.eg.db", "")?,
            file("GO.db", "")?,
            Collection::read_csv(&file("gene-sets", "pathway.csv")?, "pathways")?,
            Collection::read_csv(&file("gene-sets", "corum.csv")?, "complexes")?,
            MiniLm::fetch_default(progress, cancel)?,
        ))
    })?;
    let db = GeneDb::open(&org, &go).await?;
    let cards = db.cards().await?;
    let mut texts = knowledge_texts(
        &cards,
        &[("Complexes", &complexes), ("Pathways", &pathways)],
    );
    if let Some(wanted) = wanted {
        let keep = |g: &str| {
            wanted.iter().any(|w| w.eq_ignore_ascii_case(g))
                || previous.as_ref().is_some_and(|p| p.position(g).is_some())
        };
        texts.retain(|t| keep(&t.gene));
    }
    let table = build(&texts, &embedder, previous.as_ref(), progress, cancel).await?;
    if previous.as_ref() != Some(&table) {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        table.save(path)?;
    }
    Ok(table)
}

pub async fn run(command: EmbedCommand, cancel: &CancelToken) -> anyhow::Result<u8> {
    cancelled_as_exit(match command {
        EmbedCommand::Genes(args) => genes(args, cancel).await,
        EmbedCommand::Cells(args) => cells(args, cancel).await,
    })
}

/// A cancelled embedding as the cancelled exit status, other results as they are.
fn cancelled_as_exit(result: anyhow::Result<u8>) -> anyhow::Result<u8> {
    match result {
        Err(e) if cancelled(&e) => {
            eprintln!("cancelled");
            Ok(exit::CANCELLED)
        }
        other => other,
    }
}

/// Whether embedding stopped because it was cancelled (directly, or under a cell method).
fn cancelled(e: &anyhow::Error) -> bool {
    matches!(
        e.downcast_ref::<GeneEmbeddingError>(),
        Some(GeneEmbeddingError::Cancelled)
    ) || matches!(
        e.downcast_ref::<CellEmbeddingError>(),
        Some(CellEmbeddingError::Embedding(GeneEmbeddingError::Cancelled))
    )
}

async fn genes(args: GenesArgs, cancel: &CancelToken) -> anyhow::Result<u8> {
    let wanted = (!args.genes.is_empty()).then_some(args.genes.as_slice());
    let bar = progress::CountBar::new();
    let path = args.table.unwrap_or_else(default_table);
    let table = gene_table(&path, wanted, &bar, cancel).await;
    bar.0.finish_and_clear();
    let table = table?;
    println!(
        "{} genes × {} dimensions ({}) in {}",
        table.genes().len(),
        table.dimension(),
        table.embedder(),
        path.display()
    );
    for gene in &args.similar {
        println!("nearest to {gene}:");
        for (other, similarity) in table.nearest(gene, args.top)? {
            println!("  {other:<14} {similarity:.3}");
        }
    }
    Ok(0)
}

async fn cells(args: CellsArgs, cancel: &CancelToken) -> anyhow::Result<u8> {
    let orientation = if args.cells_by_genes {
        Orientation::CellsByGenes
    } else {
        Orientation::GenesByCells
    };
    let m = read(&args.data, orientation, args.layer.as_deref())?;
    let (n, g) = m.shape();
    eprintln!("{}: {n} cells × {g} genes", args.data.display());
    let bar = progress::CountBar::new();
    let embedding = match args.method {
        CellMethod::GeneptW => {
            let path = args.table.clone().unwrap_or_else(default_table);
            let table = gene_table(&path, Some(m.genes()), &bar, cancel).await;
            bar.0.finish_and_clear();
            let (embedding, coverage) = genept_w(&m, &table?)?;
            eprintln!(
                "{} of {g} genes have embeddings{}",
                coverage.used,
                if coverage.missing > 0 {
                    format!(" (missing e.g. {})", coverage.missing_examples.join(", "))
                } else {
                    String::new()
                }
            );
            embedding
        }
        CellMethod::Sentences => {
            let embedder = tokio::task::block_in_place(|| MiniLm::fetch_default(&bar, cancel))?;
            let embedding = embed_sentences(&m, args.sentence_genes, &embedder, &bar, cancel).await;
            bar.0.finish_and_clear();
            embedding?
        }
    };
    write_csv(&args.out, &embedding)?;
    println!(
        "{} cells × {} dimensions; wrote {}",
        embedding.cells.len(),
        embedding.dimension,
        args.out.display()
    );
    Ok(0)
}

/// Expression data, with `layer` in place of `X` when given.
fn read(
    path: &Path,
    orientation: Orientation,
    layer: Option<&str>,
) -> anyhow::Result<ExpressionMatrix> {
    let m = tokio::task::block_in_place(|| read_expression(path, orientation))?;
    let Some(name) = layer else {
        return Ok(m);
    };
    let Some(values) = m.layers.get(name) else {
        let have: Vec<&str> = m.layers.keys().map(String::as_str).collect();
        anyhow::bail!(
            "{}: no layer `{name}` (it has: {})",
            path.display(),
            if have.is_empty() {
                "none".to_owned()
            } else {
                have.join(", ")
            }
        );
    };
    let mut with = ExpressionMatrix::new(values.clone(), m.cells().to_vec(), m.genes().to_vec())?;
    with.obs = m.obs;
    Ok(with)
}

#[derive(Debug, clap::Args)]
pub struct AnnotateArgs {
    /// Labelled cells (.h5ad) whose labels are transferred.
    #[arg(long)]
    reference: PathBuf,
    /// Cells (.h5ad) to label.
    #[arg(long)]
    query: PathBuf,
    /// The reference's `obs` column with the labels. Default: its first categorical column
    /// with 2 to 200 categories.
    #[arg(long)]
    label: Option<String>,
    /// Where to write the labels (CSV: cell, label, confidence).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Reference neighbours that vote on each query cell.
    #[arg(long, default_value_t = 15)]
    k: usize,
    /// Use this layer of both files instead of `X` (e.g. `raw`, when `X` is scaled).
    #[arg(long)]
    layer: Option<String>,
    /// The gene-embedding table (safetensors) to read and extend. Default: in the cache.
    #[arg(long)]
    table: Option<PathBuf>,
}

/// The reference labels from `column`, or from the first categorical column that looks like
/// labels.
fn labels_of(
    m: &ExpressionMatrix,
    column: Option<&str>,
    path: &Path,
) -> anyhow::Result<(String, Vec<Option<String>>)> {
    let name = match column {
        Some(c) => c.to_owned(),
        None => m
            .obs
            .iter()
            .find(|(_, c)| matches!(c, Column::Categorical { categories, .. } if (2..=200).contains(&categories.len())))
            .map(|(n, _)| n.clone())
            .with_context(|| format!("{}: no categorical obs column to take labels from; name one with --label", path.display()))?,
    };
    let col = m.obs_column(&name).with_context(|| {
        let have: Vec<&str> = m.obs.iter().map(|(n, _)| n.as_str()).collect();
        format!(
            "{}: no obs column `{name}` (it has: {})",
            path.display(),
            have.join(", ")
        )
    })?;
    if !matches!(col, Column::Categorical { .. } | Column::Text(_)) {
        anyhow::bail!(
            "{}: obs column `{name}` holds {} values, not labels",
            path.display(),
            col.kind()
        );
    }
    Ok((
        name,
        (0..m.shape().0)
            .map(|i| col.label(i).map(str::to_owned))
            .collect(),
    ))
}

pub async fn annotate(args: AnnotateArgs, cancel: &CancelToken) -> anyhow::Result<u8> {
    cancelled_as_exit(transfer(args, cancel).await)
}

async fn transfer(args: AnnotateArgs, cancel: &CancelToken) -> anyhow::Result<u8> {
    let reference = read(
        &args.reference,
        Orientation::GenesByCells,
        args.layer.as_deref(),
    )?;
    let query = read(
        &args.query,
        Orientation::GenesByCells,
        args.layer.as_deref(),
    )?;
    let (column, labels) = labels_of(&reference, args.label.as_deref(), &args.reference)?;
    let labelled: Vec<&str> = reference
        .cells()
        .iter()
        .zip(&labels)
        .filter(|(_, l)| l.is_some())
        .map(|(c, _)| c.as_str())
        .collect();
    let unlabelled = reference.shape().0 - labelled.len();
    let reference = reference.select_cells(&labelled)?;
    let labels: Vec<String> = labels.into_iter().flatten().collect();
    eprintln!(
        "reference {}: {} labelled cells by `{column}`{}; query {}: {} cells",
        args.reference.display(),
        labels.len(),
        if unlabelled > 0 {
            format!(" ({unlabelled} without a label left out)")
        } else {
            String::new()
        },
        args.query.display(),
        query.shape().0
    );
    let mut wanted = reference.genes().to_vec();
    wanted.extend(query.genes().iter().cloned());
    let path = args.table.clone().unwrap_or_else(default_table);
    let bar = progress::CountBar::new();
    let table = gene_table(&path, Some(&wanted), &bar, cancel).await;
    bar.0.finish_and_clear();
    let table = table?;
    let (reference, _) = genept_w(&reference, &table).context("embedding the reference")?;
    let (query_cells, coverage) = genept_w(&query, &table).context("embedding the query")?;
    eprintln!(
        "query: {} of {} genes have embeddings",
        coverage.used,
        coverage.used + coverage.missing
    );
    let transfer = transfer_labels(&reference, &labels, &query_cells, args.k)?;
    if let Some(out) = &args.out {
        let mut w = create_csv(out)?;
        w.write_record(["cell", "label", "confidence"])?;
        for ((cell, label), confidence) in query_cells
            .cells
            .iter()
            .zip(&transfer.labels)
            .zip(&transfer.confidence)
        {
            w.write_record([cell.as_str(), label.as_str(), &format!("{confidence:.3}")])?;
        }
        w.flush()
            .with_context(|| format!("writing {}", out.display()))?;
    }
    let mut counts: BTreeMap<&str, (usize, f32)> = BTreeMap::new();
    for (label, c) in transfer.labels.iter().zip(&transfer.confidence) {
        let entry = counts.entry(label.as_str()).or_default();
        entry.0 += 1;
        entry.1 += c;
    }
    let mut rows: Vec<_> = counts.into_iter().collect();
    rows.sort_by(|a, b| b.1.0.cmp(&a.1.0).then(a.0.cmp(b.0)));
    println!("{:<28} {:>6} {:>16}", "label", "cells", "mean confidence");
    for (label, (n, total)) in rows {
        println!("{label:<28} {n:>6} {:>16.2}", total / n as f32);
    }
    if let Some(out) = &args.out {
        println!("wrote {}", out.display());
    }
    Ok(0)
}

/// The cell name, then one column per dimension (`dim0`, `dim1`, …).
fn write_csv(path: &Path, e: &CellEmbedding) -> anyhow::Result<()> {
    let mut out = create_csv(path)?;
    let header =
        std::iter::once("cell".to_owned()).chain((0..e.dimension).map(|d| format!("dim{d}")));
    out.write_record(header)?;
    for (i, cell) in e.cells.iter().enumerate() {
        let row = std::iter::once(cell.clone()).chain(e.row(i).iter().map(|x| x.to_string()));
        out.write_record(row)?;
    }
    out.flush()
        .with_context(|| format!("writing {}", path.display()))
}

/// A CSV writer on `path`, its folder created first.
fn create_csv(path: &Path) -> anyhow::Result<csv::Writer<std::fs::File>> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    csv::Writer::from_path(path).with_context(|| format!("writing {}", path.display()))
}
