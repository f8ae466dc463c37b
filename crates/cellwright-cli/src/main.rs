//! `cellwright`: ask questions of an agent with scientific tools, inspect and resume its
//! runs, call tools directly, and benchmark the runtime.

mod ask;
mod bench;
mod data_cmd;
mod embed_cmd;
mod eval_cmd;
mod grn_cmd;
mod loop_cmd;
mod models_cmd;
mod paths;
mod perturb_cmd;
mod progress;
mod registry;
mod render;
mod serve;
mod simulate_cmd;
mod tools_cmd;
mod trace_cmd;
mod vocabulary;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "cellwright",
    version,
    about = "Agents and oracles for virtual-cell science"
)]
struct Cli {
    /// The run database (SQLite file). Default: $XDG_DATA_HOME/cellwright/cellwright.db.
    #[arg(long, global = true, env = "CELLWRIGHT_DB")]
    db: Option<PathBuf>,
    /// The lab notebook the `record_note`/`read_notes` tools use.
    #[arg(long, global = true, env = "CELLWRIGHT_NOTEBOOK")]
    notebook: Option<PathBuf>,
    /// More logging (-v info, -vv debug); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Ask a research question; the agent answers with cited claims.
    Ask(ask::AskArgs),
    /// Ask every question of a set and check each answer: the agent's score.
    Eval(eval_cmd::EvalArgs),
    /// A hypothesis loop: pick knockouts, run them (simulator or DepMap), learn, repeat;
    /// resumable from its experiment ledger.
    Loop(loop_cmd::LoopArgs),
    /// Continue a run that was interrupted (killed, crashed, cancelled before the end).
    Resume(ask::ResumeArgs),
    /// Inspect stored runs.
    #[command(subcommand)]
    Trace(trace_cmd::TraceCommand),
    /// List the tools, or call one directly.
    #[command(subcommand)]
    Tools(tools_cmd::ToolsCommand),
    /// Serve the embedded models over an OpenAI-compatible HTTP API.
    Serve(serve::ServeArgs),
    /// The embedded models: list them, or fetch them ahead of time.
    #[command(subcommand)]
    Models(models_cmd::ModelsCommand),
    /// The data sets: list them, show one, or fetch them ahead of time.
    #[command(subcommand)]
    Data(data_cmd::DataCommand),
    /// Simulate cells from a Boolean model's stochastic ODEs: one condition, or a knockout screen.
    Simulate(simulate_cmd::SimulateArgs),
    /// Gene-regulatory networks: infer one from expression data.
    #[command(subcommand)]
    Grn(grn_cmd::GrnCommand),
    /// Perturbation responses: score the models on a screen's held-out perturbations, or
    /// predict one perturbation with the regulatory path behind each change.
    #[command(subcommand)]
    Perturb(perturb_cmd::PerturbCommand),
    /// Label query cells from a labelled reference (nearest neighbours in GenePT-w space).
    Annotate(embed_cmd::AnnotateArgs),
    /// Gene and cell embeddings.
    #[command(subcommand)]
    Embed(embed_cmd::EmbedCommand),
    /// Benchmarks against peers, measured in the same run.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
}

/// Exit statuses: 0 done, 1 error, 2 bad usage (clap), 3 a run ended without completing,
/// 130 cancelled.
pub mod exit {
    pub const ERROR: u8 = 1;
    pub const INCOMPLETE: u8 = 3;
    pub const CANCELLED: u8 = 130;
}

/// Resolved global options.
#[derive(Debug, Clone)]
pub struct Globals {
    pub db: PathBuf,
    pub notebook: PathBuf,
}

fn main() -> ExitCode {
    // `cellwright … | head` closes stdout early: stop quietly, as other Unix tools do,
    // rather than report `println!`'s failure as a crash.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let payload = info.payload();
        let message = payload
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| payload.downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.contains("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default_hook(info);
    }));
    let cli = Cli::parse();
    init_tracing(cli.verbose);
    let globals = Globals {
        db: cli.db.unwrap_or_else(paths::default_db),
        notebook: cli.notebook.unwrap_or_else(paths::default_notebook),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::ERROR);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Ask(args) => ask::ask(&globals, args).await,
            Command::Eval(args) => eval_cmd::run(&globals, args).await,
            Command::Loop(args) => loop_cmd::run(&globals, args).await,
            Command::Resume(args) => ask::resume(&globals, args).await,
            Command::Trace(cmd) => trace_cmd::run(&globals, cmd).await,
            Command::Tools(cmd) => tools_cmd::run(&globals, cmd).await,
            Command::Serve(args) => serve::run(args, ask::cancel_on_signals()).await,
            Command::Models(cmd) => tokio::task::block_in_place(|| models_cmd::run(cmd)),
            Command::Data(cmd) => {
                let cancel = ask::cancel_on_signals();
                tokio::task::block_in_place(|| data_cmd::run(cmd, &cancel))
            }
            Command::Simulate(args) => {
                let cancel = ask::cancel_on_signals();
                tokio::task::block_in_place(|| simulate_cmd::run(args, &cancel))
            }
            Command::Grn(cmd) => {
                let cancel = ask::cancel_on_signals();
                tokio::task::block_in_place(|| grn_cmd::run(cmd, &cancel))
            }
            Command::Perturb(cmd) => {
                let cancel = ask::cancel_on_signals();
                tokio::task::block_in_place(|| perturb_cmd::run(cmd, &cancel))
            }
            Command::Annotate(args) => embed_cmd::annotate(args, &ask::cancel_on_signals()).await,
            Command::Embed(cmd) => embed_cmd::run(cmd, &ask::cancel_on_signals()).await,
            Command::Bench(cmd) => bench::run(cmd).await,
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(exit::ERROR)
        }
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
