//! `cellwright bench <area>`: each measures a peer in the same run and reports ratios.

mod runtime;

use std::path::PathBuf;

use clap::{Args, Subcommand};

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Agent-loop overhead, tool-call throughput and trace writes, vs LangGraph.
    Runtime(BenchArgs),
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
    }
}
