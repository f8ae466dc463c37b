//! `cellwright bench <area>`: each measures a peer in the same run and reports ratios.

mod data;
mod embed;
mod grn;
mod loops;
mod models;
mod perturb;
mod runtime;
mod sim;

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use indicatif::ProgressBar;
use serde_json::Value;

use crate::paths;

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Agent-loop overhead, tool-call throughput and trace writes, vs LangGraph.
    Runtime(BenchArgs),
    /// The embedded chat model vs llama.cpp on the same GGUF file and threads.
    Llm(BenchArgs),
    /// The embedded embedder vs sentence-transformers on the same weights and texts.
    Embedder(BenchArgs),
    /// The embedded model's tool choice on labelled requests, with and without the grammar
    /// and the router (no peer: the variants are the comparison).
    Tools(BenchArgs),
    /// .h5ad reads vs Python's anndata on the same files; enrichment vs scipy.
    Data(BenchArgs),
    /// The network simulator vs the same equations vectorised in NumPy.
    Sim(BenchArgs),
    /// GRN inference on simulated published models vs arboreto's GRNBoost2 and GENIE3;
    /// scaling; precision on real data. Plots go beside --json (FILE.plots/).
    Grn(grn::GrnBenchArgs),
    /// Cell embeddings (PCA, VAE, GenePT-w, cell sentences) on labelled and simulated cells:
    /// kNN macro-F1, ARI/NMI, ASW, time, memory; gene-embedding checks on GO-BP and CORUM.
    Embed(BenchArgs),
    /// Perturbation-response models (mechanistic, linear, ensemble) vs the published
    /// baselines and the ceiling on simulated screens of published models, GEARS's splits.
    Perturb(BenchArgs),
    /// Hypothesis loops: the agent vs random, greedy and the static knowledge prior on
    /// simulator and DepMap tasks (examples/loops), hits of the true top k per budget.
    Loop(loops::LoopBenchArgs),
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// A smaller run that takes a few minutes at most.
    #[arg(long)]
    pub quick: bool,
    /// Also write the results as JSON (top-level "ratios" object) to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Skip the peer (no Python environment is created).
    #[arg(long)]
    pub no_peer: bool,
}

pub async fn run(cmd: BenchCommand) -> anyhow::Result<u8> {
    match cmd {
        BenchCommand::Runtime(args) => runtime::run(args).await,
        BenchCommand::Llm(args) => tokio::task::block_in_place(|| models::llm(args)),
        BenchCommand::Embedder(args) => tokio::task::block_in_place(|| models::embedder(args)),
        BenchCommand::Tools(args) => models::tool_choice(args).await,
        BenchCommand::Data(args) => tokio::task::block_in_place(|| data::run(args)),
        BenchCommand::Sim(args) => tokio::task::block_in_place(|| sim::run(args)),
        BenchCommand::Grn(args) => tokio::task::block_in_place(|| grn::run(args)),
        BenchCommand::Embed(args) => embed::run(args).await,
        BenchCommand::Perturb(args) => tokio::task::block_in_place(|| perturb::run(args)),
        BenchCommand::Loop(args) => loops::run(args).await,
    }
}

/// Writes a bench's report as pretty JSON to `path` (the `--json` file), when there is one.
pub(crate) fn write_report(
    path: Option<&std::path::Path>,
    report: &impl serde::Serialize,
) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(path, serde_json::to_string_pretty(report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The Python of a peer's virtualenv under the cache, created (once per requirements text)
/// with the pinned `requirements`.
pub(crate) fn peer_python(
    name: &str,
    requirements: &str,
    bar: &ProgressBar,
) -> anyhow::Result<PathBuf> {
    let venv = paths::cache_dir()
        .join("bench")
        .join(format!("venv-{name}"));
    let python = venv.join("bin").join("python");
    let stamp = venv.join("requirements.txt");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == requirements) {
        return Ok(python);
    }
    bar.set_message(format!(
        "peer: creating a virtualenv with {name} in {} (once; may take minutes)",
        venv.display()
    ));
    std::fs::create_dir_all(venv.parent().unwrap_or(&venv))?;
    run_cmd(
        Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv),
        "python3 -m venv",
    )?;
    let req = venv.join("requirements.in");
    std::fs::write(&req, requirements)?;
    run_cmd(
        Command::new(venv.join("bin").join("pip"))
            .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
            .arg(&req),
        &format!("pip install ({name})"),
    )?;
    std::fs::write(&stamp, requirements)?;
    Ok(python)
}

pub(crate) fn run_cmd(cmd: &mut Command, what: &str) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("cannot start {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed: {}",
            String::from_utf8_lossy(&out.stderr)
                .lines()
                .last()
                .unwrap_or("")
        );
    }
    Ok(())
}

/// Runs a peer script and reads the JSON object on its last line.
pub(crate) fn python_json(cmd: &mut Command) -> anyhow::Result<Value> {
    let out = cmd.output().context("cannot start the peer script")?;
    if !out.status.success() {
        bail!(
            "the peer script failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().unwrap_or("");
    serde_json::from_str(line).with_context(|| format!("the peer script printed no JSON: {line}"))
}

/// The median of some measurements.
pub(crate) fn median(values: &[f64]) -> f64 {
    let mut xs = values.to_vec();
    xs.sort_by(f64::total_cmp);
    match xs.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => xs[n / 2],
        n => (xs[n / 2 - 1] + xs[n / 2]) / 2.0,
    }
}

/// A file-name-safe form of `name`: ASCII letters and digits, runs of anything else as one `-`.
pub(crate) fn slug(name: &str) -> String {
    name.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect::<String>()
        .split('-')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join("-")
}
