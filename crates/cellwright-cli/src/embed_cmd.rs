//! `cellwright embed genes|cells` and `cellwright annotate`: knowledge-text gene embeddings,
//! cell embeddings (PCA, VAE, GenePT-w, cell sentences), label transfer, UMAP plots. The work
//! is done by the same functions as the agent's tools (cellwright-tools-embed).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use cellwright_core::{CancelToken, Progress, ToolError};
use cellwright_data::load::read_expression;
use cellwright_data::matrix::ExpressionMatrix;
use cellwright_data::text::Orientation;
use cellwright_embed::{CellEmbedding, VaeSettings, transfer_labels};
use cellwright_tools_embed::{
    CellMethod, ClusterAlgorithm, EmbedOptions, cluster, default_table, embed_matrix, embed_pair,
    embedding_csv, expression_for_embedding, gene_table, label_summary, labelled_cells, labels_csv,
    labels_of, layout_svg,
};
use clap::{Subcommand, ValueEnum};

use crate::{exit, progress};

#[derive(Debug, Subcommand)]
pub enum EmbedCommand {
    /// Build or update the gene embeddings from knowledge text (name, GO terms, pathways,
    /// complexes) with MiniLM, in the cache; only new or changed texts are embedded.
    Genes(GenesArgs),
    /// Embed the cells of an expression data set; writes a CSV (cell, then one column per
    /// dimension) and, with --plot, a UMAP of the cells.
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
enum Method {
    /// Principal components of the log-normalised highly variable genes.
    Pca,
    /// A scVI-like variational autoencoder trained on the data (negative binomial on counts,
    /// Gaussian on normalised values).
    Vae,
    /// Expression-weighted mean of the genes' knowledge embeddings.
    GeneptW,
    /// The most expressed genes' symbols as a sentence, embedded with MiniLM.
    Sentences,
}

impl From<Method> for CellMethod {
    fn from(m: Method) -> Self {
        match m {
            Method::Pca => CellMethod::Pca,
            Method::Vae => CellMethod::Vae,
            Method::GeneptW => CellMethod::GeneptW,
            Method::Sentences => CellMethod::Sentences,
        }
    }
}

/// How cells are embedded: options both commands share.
#[derive(Debug, clap::Args)]
struct EmbedFlags {
    #[arg(long, value_enum, default_value = "pca")]
    method: Method,
    /// Use this layer instead of `X` (default: `raw` when `X` is scaled and has one).
    #[arg(long)]
    layer: Option<String>,
    /// Principal components (--method pca).
    #[arg(long, default_value_t = 50)]
    components: usize,
    /// Genes per cell sentence (--method sentences).
    #[arg(long, default_value_t = 100)]
    sentence_genes: usize,
    /// The VAE's latent dimensions (--method vae).
    #[arg(long, default_value_t = 10)]
    latent: usize,
    /// The VAE's most training epochs (--method vae).
    #[arg(long, default_value_t = 400)]
    epochs: usize,
    /// Where the VAE's best weights are written while it trains (safetensors).
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Seed of the VAE's training, Leiden and k-means.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The gene-embedding table (safetensors) to read and extend. Default: in the cache.
    #[arg(long)]
    table: Option<PathBuf>,
}

impl EmbedFlags {
    fn options(&self) -> EmbedOptions {
        EmbedOptions {
            table: self.table.clone().unwrap_or_else(default_table),
            pca_components: self.components,
            sentence_genes: self.sentence_genes,
            vae: VaeSettings {
                latent: self.latent,
                max_epochs: self.epochs,
                ..VaeSettings::default()
            },
            seed: self.seed,
            checkpoint: self.checkpoint.clone(),
            ..EmbedOptions::default()
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct CellsArgs {
    /// Expression data: .h5ad, a 10x directory or .h5, or a table.
    data: PathBuf,
    #[command(flatten)]
    embed: EmbedFlags,
    /// Where to write the embedding (CSV).
    #[arg(long)]
    out: PathBuf,
    /// Tables only: one row per cell (the default is R's one row per gene).
    #[arg(long)]
    cells_by_genes: bool,
    /// Also draw a UMAP of the cells here (SVG), coloured by --color or by Leiden clusters.
    #[arg(long)]
    plot: Option<PathBuf>,
    /// The obs column that colours the plot.
    #[arg(long)]
    color: Option<String>,
}

/// A bar for the terminal and the same bar as the shared progress the library reports to.
fn bars() -> (indicatif::ProgressBar, Arc<dyn Progress>) {
    let bar = progress::CountBar::new();
    (bar.0.clone(), Arc::new(bar))
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
        Err(e) if matches!(e.downcast_ref::<ToolError>(), Some(ToolError::Cancelled)) => {
            eprintln!("cancelled");
            Ok(exit::CANCELLED)
        }
        other => other,
    }
}

async fn genes(args: GenesArgs, cancel: &CancelToken) -> anyhow::Result<u8> {
    let wanted = (!args.genes.is_empty()).then_some(args.genes.as_slice());
    let (shown, progress) = bars();
    let path = args.table.unwrap_or_else(default_table);
    let table = gene_table(&path, wanted, progress, cancel).await;
    shown.finish_and_clear();
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

/// Expression data for embedding, its layer chosen as the tools choose it (said on stderr).
fn read(
    path: &Path,
    orientation: Orientation,
    layer: Option<&str>,
) -> anyhow::Result<Arc<ExpressionMatrix>> {
    let shown = path.display().to_string();
    let m = tokio::task::block_in_place(|| read_expression(path, orientation))?;
    let (m, note) = expression_for_embedding(&m, layer, &shown)?;
    if let Some(note) = note {
        eprintln!("{shown}: {note}");
    }
    Ok(m)
}

/// Writes `bytes` to `path`, its folder created first.
fn write(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// A UMAP of `e` coloured by `labels` (or by Leiden clusters when `None`), written to `path`.
fn plot(
    e: &CellEmbedding,
    labels: Option<Vec<String>>,
    title: &str,
    seed: u64,
    path: &Path,
) -> anyhow::Result<()> {
    let (clusters, layout) =
        tokio::task::block_in_place(|| cluster(e, ClusterAlgorithm::Leiden, 1.0, 0, seed))?;
    let labels =
        labels.unwrap_or_else(|| clusters.iter().map(|c| format!("cluster {c}")).collect());
    write(path, &layout_svg(&layout, &labels, title)?)?;
    println!("wrote {}", path.display());
    Ok(())
}

async fn cells(args: CellsArgs, cancel: &CancelToken) -> anyhow::Result<u8> {
    let orientation = if args.cells_by_genes {
        Orientation::CellsByGenes
    } else {
        Orientation::GenesByCells
    };
    let m = read(&args.data, orientation, args.embed.layer.as_deref())?;
    let (n, g) = m.shape();
    eprintln!("{}: {n} cells × {g} genes", args.data.display());
    // The colours are checked before the (possibly long) embedding.
    let colours = match (&args.plot, &args.color) {
        (Some(_), Some(column)) => {
            let (_, labels) = labels_of(&m, Some(column), &args.data.display().to_string())?;
            Some(
                labels
                    .into_iter()
                    .map(|l| l.unwrap_or_else(|| "(none)".into()))
                    .collect(),
            )
        }
        _ => None,
    };
    let (shown, progress) = bars();
    let embedded = embed_matrix(
        m,
        args.embed.method.into(),
        &args.embed.options(),
        progress,
        cancel,
    )
    .await;
    shown.finish_and_clear();
    let embedded = embedded?;
    for note in &embedded.notes {
        eprintln!("{note}");
    }
    let e = &embedded.embedding;
    write(&args.out, &embedding_csv(e)?)?;
    println!(
        "{} cells × {} dimensions; wrote {}",
        e.cells.len(),
        e.dimension,
        args.out.display()
    );
    if let Some(path) = &args.plot {
        let title = format!(
            "{}: {}",
            args.data.display(),
            CellMethod::from(args.embed.method).name()
        );
        plot(e, colours, &title, args.embed.seed, path)?;
    }
    Ok(0)
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
    #[command(flatten)]
    embed: EmbedFlags,
    /// Also draw a UMAP of the query cells coloured by their predicted label (SVG).
    #[arg(long)]
    plot: Option<PathBuf>,
}

pub async fn annotate(args: AnnotateArgs, cancel: &CancelToken) -> anyhow::Result<u8> {
    cancelled_as_exit(transfer(args, cancel).await)
}

async fn transfer(args: AnnotateArgs, cancel: &CancelToken) -> anyhow::Result<u8> {
    let layer = args.embed.layer.as_deref();
    let reference = read(&args.reference, Orientation::GenesByCells, layer)?;
    let query = read(&args.query, Orientation::GenesByCells, layer)?;
    let shown = args.reference.display().to_string();
    let (column, labels) = labels_of(&reference, args.label.as_deref(), &shown)?;
    let (reference, labels, unlabelled) = labelled_cells(&reference, labels)?;
    let reference = Arc::new(reference);
    eprintln!(
        "reference {shown}: {} labelled cells by `{column}`{}; query {}: {} cells",
        labels.len(),
        if unlabelled > 0 {
            format!(" ({unlabelled} without a label left out)")
        } else {
            String::new()
        },
        args.query.display(),
        query.shape().0
    );
    let (bar, progress) = bars();
    let pair = embed_pair(
        reference,
        query,
        args.embed.method.into(),
        &args.embed.options(),
        progress,
        cancel,
    )
    .await;
    bar.finish_and_clear();
    let (reference, query, notes) = pair?;
    for note in notes {
        eprintln!("{note}");
    }
    let transfer = transfer_labels(&reference, &labels, &query, args.k)?;
    if let Some(out) = &args.out {
        write(out, &labels_csv(&query.cells, &transfer)?)?;
    }
    println!("{:<28} {:>6} {:>16}", "label", "cells", "mean confidence");
    for row in label_summary(&transfer) {
        println!(
            "{:<28} {:>6} {:>16.2}",
            row.label, row.cells, row.mean_confidence
        );
    }
    if let Some(out) = &args.out {
        println!("wrote {}", out.display());
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "{}: labels from {}",
            args.query.display(),
            args.reference.display()
        );
        plot(
            &query,
            Some(transfer.labels.clone()),
            &title,
            args.embed.seed,
            path,
        )?;
    }
    Ok(0)
}
