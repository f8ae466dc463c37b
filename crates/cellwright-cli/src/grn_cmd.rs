//! `cellwright grn infer DATA --out edges.tsv …`: every regulator → target edge of an
//! expression data set, scored and ranked.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use cellwright_core::CancelToken;
use cellwright_data::load::read_expression;
use cellwright_data::text::Orientation;
use cellwright_grn::{Boosting, Forest, GrnError, Method, Options, infer};
use clap::{Args, Subcommand, ValueEnum};

use crate::exit;
use crate::progress;

#[derive(Debug, Subcommand)]
pub enum GrnCommand {
    /// Infer a regulatory network: every regulator → target edge, scored, best first.
    Infer(InferArgs),
}

#[derive(Debug, Args)]
pub struct InferArgs {
    /// Expression data: an .h5ad file, a 10x directory or matrix.mtx, or a .tsv/.csv table.
    data: PathBuf,
    /// Where to write the edges: regulator, target, score (tab-separated, best first, one
    /// header line).
    #[arg(long)]
    out: PathBuf,
    /// Candidate regulators (e.g. transcription factors), one gene per line (the first
    /// comma- or tab-separated field; `#` starts a comment). Default: every gene.
    #[arg(long)]
    tfs: Option<PathBuf>,
    /// boost: gradient boosting as in GRNBoost2; forest: GENIE3's random forest; neural: a small
    /// network per target (candle), scored by gradients; pearson or
    /// spearman: |correlation|; random: chance.
    #[arg(long, value_enum, default_value = "boost")]
    method: MethodArg,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Quantile bins per gene for the tree methods (2 to 256).
    #[arg(long, default_value_t = Options::default().max_bins)]
    bins: usize,
    /// Learning rate of --method boost (GRNBoost2's: 0.01, as accurate and ~3× slower).
    #[arg(long, default_value_t = Boosting::default().learning_rate)]
    learning_rate: f64,
    /// Trees per target for --method forest.
    #[arg(long, default_value_t = Forest::default().trees)]
    trees: usize,
    /// Leave out genes with the same value in every cell instead of stopping.
    #[arg(long)]
    drop_constant: bool,
    /// Leave out --tfs genes the data lack instead of stopping.
    #[arg(long)]
    ignore_missing_tfs: bool,
    /// Tables only: one row per cell (the default is R's one row per gene).
    #[arg(long)]
    cells_by_genes: bool,
    /// Edges to print.
    #[arg(long, default_value_t = 10)]
    top: usize,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MethodArg {
    Boost,
    Forest,
    Neural,
    #[value(alias = "corr")]
    Pearson,
    Spearman,
    Random,
}

impl From<MethodArg> for Method {
    fn from(m: MethodArg) -> Self {
        match m {
            MethodArg::Boost => Method::Boost,
            MethodArg::Forest => Method::Forest,
            MethodArg::Neural => Method::Neural,
            MethodArg::Pearson => Method::Pearson,
            MethodArg::Spearman => Method::Spearman,
            MethodArg::Random => Method::Random,
        }
    }
}

/// Gene names from a regulator list: the first field of each line, blank lines and `#`
/// comments skipped.
fn read_regulators(path: &Path) -> anyhow::Result<Vec<String>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let names: Vec<String> = text
        .lines()
        .map(|line| line.split('#').next().unwrap_or_default())
        .filter_map(|line| line.split([',', '\t']).next())
        .map(|name| name.trim().trim_matches('"').to_owned())
        .filter(|name| !name.is_empty())
        .collect();
    if names.is_empty() {
        anyhow::bail!("{}: no gene names in it", path.display());
    }
    Ok(names)
}

pub fn run(command: GrnCommand, cancel: &CancelToken) -> anyhow::Result<u8> {
    let GrnCommand::Infer(args) = command;
    let orientation = if args.cells_by_genes {
        Orientation::CellsByGenes
    } else {
        Orientation::GenesByCells
    };
    let m = read_expression(&args.data, orientation)?;
    let regulators = args.tfs.as_deref().map(read_regulators).transpose()?;
    let options = Options {
        method: args.method.into(),
        seed: args.seed,
        max_bins: args.bins,
        forest: Forest { trees: args.trees },
        boost: Boosting {
            learning_rate: args.learning_rate,
            ..Boosting::default()
        },
        drop_constant: args.drop_constant,
        ignore_missing_regulators: args.ignore_missing_tfs,
        ..Options::default()
    };
    let (cells, genes) = m.shape();
    eprintln!(
        "{}: {cells} cells × {genes} genes; method {}",
        args.data.display(),
        options.method.name()
    );
    let started = Instant::now();
    let result =
        progress::with_spinner(|shown| infer(&m, regulators.as_deref(), &options, shown, cancel));
    let network = match result {
        Ok(n) => n,
        Err(GrnError::Cancelled) => {
            eprintln!("cancelled");
            return Ok(exit::CANCELLED);
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(dir) = args.out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(&args.out, network.to_tsv())
        .with_context(|| format!("writing {}", args.out.display()))?;
    if !network.dropped_constant.is_empty() {
        eprintln!(
            "constant genes left out: {}",
            network.dropped_constant.len()
        );
    }
    if !network.missing_regulators.is_empty() {
        eprintln!(
            "regulators not in the data, left out: {}",
            network.missing_regulators.join(", ")
        );
    }
    if !network.trees.is_empty() {
        let mut trees = network.trees.clone();
        trees.sort_unstable();
        eprintln!(
            "boosting: {}–{} trees per target (median {}, {} in all)",
            trees[0],
            trees[trees.len() - 1],
            trees[trees.len() / 2],
            trees.iter().sum::<usize>()
        );
    }
    println!(
        "{} edges in {:.1} s; wrote {}",
        network.edges.len(),
        started.elapsed().as_secs_f64(),
        args.out.display()
    );
    for e in network.edges.iter().take(args.top) {
        let sign = match e.sign {
            1 => "+",
            -1 => "−",
            _ => " ",
        };
        println!(
            "  {:<14} → {:<14} {:>10.4} {sign}",
            network.genes[e.regulator], network.genes[e.target], e.score
        );
    }
    Ok(0)
}
