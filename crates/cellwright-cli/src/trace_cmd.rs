//! `cellwright trace list|show|export`.

use std::io::Write;
use std::path::PathBuf;

use cellwright_core::{RunId, TraceStore};
use clap::{Subcommand, ValueEnum};

use crate::{Globals, ask::open_store, render};

#[derive(Debug, Subcommand)]
pub enum TraceCommand {
    /// The newest runs.
    List {
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// A readable transcript of one run: steps, tool calls with timings, answer and claims.
    Show { run_id: String },
    /// Every event of a run, one JSON object per line.
    Export {
        run_id: String,
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Jsonl,
}

pub async fn run(globals: &Globals, cmd: TraceCommand) -> anyhow::Result<u8> {
    let store = open_store(globals).await?;
    match cmd {
        TraceCommand::List { limit, json } => {
            let runs = store.runs(limit).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&runs)?);
            } else if runs.is_empty() {
                println!("no runs in {}", globals.db.display());
            } else {
                for r in runs {
                    let started = std::time::UNIX_EPOCH
                        + std::time::Duration::from_millis(r.started_ms.max(0) as u64);
                    println!(
                        "{}  {}  {:<16} {:>2} steps {:>3} calls  {}  {}",
                        r.run_id,
                        humantime::format_rfc3339_seconds(started),
                        r.status.as_str(),
                        r.steps,
                        r.tool_calls,
                        r.model,
                        r.question
                            .replace('\n', " ")
                            .chars()
                            .take(60)
                            .collect::<String>()
                    );
                }
            }
        }
        TraceCommand::Show { run_id } => {
            let events = store.events(&RunId::new(run_id.clone())).await?;
            print!("{}", render::transcript(&run_id, &events));
        }
        TraceCommand::Export {
            run_id,
            format: ExportFormat::Jsonl,
            out,
        } => {
            let events = store.events(&RunId::new(run_id)).await?;
            let mut sink: Box<dyn Write> = match &out {
                Some(path) => Box::new(std::io::BufWriter::new(std::fs::File::create(path)?)),
                None => Box::new(std::io::stdout().lock()),
            };
            crate::eval_cmd::write_events(&mut sink, &events)?;
        }
    }
    Ok(0)
}
