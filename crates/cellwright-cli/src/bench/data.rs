//! `cellwright bench data`: .h5ad reads against Python's `anndata.read_h5ad` on the same
//! files (scanpy's pbmc68k_reduced and a synthetic sparse file we write), and gene-set
//! enrichment over every canonical pathway against scipy's hypergeometric test.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::catalogue;
use cellwright_data::genesets::Collection;
use cellwright_data::h5ad;
use cellwright_data::matrix::{Column, ExpressionMatrix};
use cellwright_data::text::csr_from_entries;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

use super::{BenchArgs, median, peer_python, python_json};
use crate::paths;

const REQUIREMENTS: &str = include_str!("../../../../tests/data/anndata/requirements.txt");
const SCRIPT: &str = include_str!("../../../../bench/anndata_read.py");

/// A cells × genes count matrix with the sparsity of 10x data (about 7% non-zero), a
/// categorical cell type and a numeric annotation, seeded.
fn synthetic(cells: usize, genes: usize) -> anyhow::Result<ExpressionMatrix> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(11);
    let mut entries = Vec::with_capacity(cells * genes / 14);
    for c in 0..cells {
        for g in 0..genes {
            if rng.gen_bool(0.07) {
                entries.push((c, g, f32::from(rng.gen_range(1u8..20))));
            }
        }
    }
    let x = csr_from_entries((cells, genes), entries)?;
    let mut m = ExpressionMatrix::new(
        x,
        (0..cells).map(|c| format!("cell{c:06}-1")).collect(),
        (0..genes).map(|g| format!("GENE{g:05}")).collect(),
    )?;
    m.obs.push((
        "cell_type".into(),
        Column::Categorical {
            categories: (0..12).map(|t| format!("type {t}")).collect(),
            codes: (0..cells).map(|c| (c % 12) as i32).collect(),
            ordered: false,
        },
    ));
    m.obs
        .push(("n_counts".into(), Column::Float(m.x().row_sums())));
    Ok(m)
}

fn time_reads(path: &Path, repeats: usize) -> anyhow::Result<f64> {
    h5ad::read(path)?; // warm the page cache, as the peer's first read also does
    let mut times = Vec::new();
    for _ in 0..repeats {
        let started = Instant::now();
        let m = h5ad::read(path)?;
        times.push(started.elapsed().as_secs_f64());
        drop(m);
    }
    Ok(median(&times))
}

pub fn run(args: BenchArgs) -> anyhow::Result<u8> {
    let (cells, repeats, queries) = if args.quick {
        (20_000, 3, 20)
    } else {
        (100_000, 5, 100)
    };
    let genes = 2_000;
    let bar = crate::progress::spinner();
    let cancel = CancelToken::new();
    bar.set_message("fetching pbmc68k_reduced and the gene sets");
    let pbmc = catalogue::find("pbmc68k_reduced")?
        .fetch(&NoProgress, &cancel)?
        .remove(0);
    let dir = paths::cache_dir().join("bench").join("data");
    std::fs::create_dir_all(&dir)?;
    let synthetic_path = dir.join(format!("synthetic_{cells}x{genes}.h5ad"));
    if !synthetic_path.exists() {
        bar.set_message(format!("writing a synthetic {cells} × {genes} sparse file"));
        h5ad::write(&synthetic(cells, genes)?, &synthetic_path)?;
    }
    let files: Vec<PathBuf> = vec![pbmc, synthetic_path];
    let mut ours = serde_json::Map::new();
    for f in &files {
        bar.set_message(format!("ours: reading {}", f.display()));
        ours.insert(f.display().to_string(), json!(time_reads(f, repeats)?));
    }

    bar.set_message("ours: enrichment over the canonical pathways");
    let sets_path = catalogue::find("gene-sets")?
        .fetch(&NoProgress, &cancel)?
        .into_iter()
        .find(|f| f.ends_with("pathway.csv"))
        .context("the gene-sets data set has no pathway.csv")?;
    let pathways = Collection::read_csv(&sets_path, "canonical pathways")?;
    let background: Vec<String> = pathways.genes().into_iter().map(str::to_owned).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let query_lists: Vec<Vec<String>> = (0..queries)
        .map(|_| {
            (0..100)
                .map(|_| background[rng.gen_range(0..background.len())].clone())
                .collect()
        })
        .collect();
    let mut times = Vec::new();
    for _ in 0..repeats {
        let started = Instant::now();
        for q in &query_lists {
            std::hint::black_box(pathways.enrich(q, None));
        }
        times.push(started.elapsed().as_secs_f64() / queries as f64);
    }
    let enrich_ours = median(&times);

    let mut peer = Value::Null;
    let mut ratios = serde_json::Map::new();
    if args.no_peer {
        bar.println("peer skipped (--no-peer)");
    } else {
        let run = || -> anyhow::Result<Value> {
            let python = peer_python("anndata", REQUIREMENTS, &bar)?;
            let work = tempfile::tempdir()?;
            let script = work.path().join("anndata_read.py");
            std::fs::write(&script, SCRIPT)?;
            let spec = work.path().join("sets.json");
            let sets: serde_json::Map<String, Value> = pathways
                .sets
                .iter()
                .map(|s| (s.id.clone(), json!(s.genes)))
                .collect();
            std::fs::write(
                &spec,
                serde_json::to_string(
                    &json!({"background": background, "sets": sets, "queries": query_lists}),
                )?,
            )?;
            bar.set_message("peer: anndata.read_h5ad and scipy");
            python_json(
                Command::new(python)
                    .arg(&script)
                    .arg("--files")
                    .args(&files)
                    .args(["--repeats", &repeats.to_string()])
                    .arg("--sets")
                    .arg(&spec),
            )
        };
        match run() {
            Ok(p) => {
                let mut per_file = Vec::new();
                for f in &files {
                    let key = f.display().to_string();
                    if let (Some(a), Some(b)) = (ours[&key].as_f64(), p["read_s"][&key].as_f64()) {
                        per_file.push(b / a);
                    }
                }
                if let [pbmc, synthetic] = per_file[..] {
                    ratios.insert("h5ad_read_anndata_over_ours_pbmc68k".into(), json!(pbmc));
                    ratios.insert(
                        "h5ad_read_anndata_over_ours_synthetic".into(),
                        json!(synthetic),
                    );
                    // The headline: the large file, where reading dominates the fixed costs.
                    ratios.insert("h5ad_read_anndata_over_ours".into(), json!(synthetic));
                }
                if let Some(s) = p["enrichment_s_per_query"].as_f64() {
                    ratios.insert("enrichment_scipy_over_ours".into(), json!(s / enrich_ours));
                }
                peer = p;
            }
            Err(e) => bar.println(format!("anndata peer failed, no ratios: {e:#}")),
        }
    }
    bar.finish_and_clear();
    let report = json!({
        "bench": "data",
        "quick": args.quick,
        "synthetic": {"cells": cells, "genes": genes, "density": 0.07},
        "repeats": repeats,
        "queries": queries,
        "ours": {"read_s": ours, "enrichment_s_per_query": enrich_ours, "sets": pathways.sets.len()},
        "peer": peer,
        "ratios": ratios,
    });
    println!("\nh5ad reads, median of {repeats} (seconds)");
    for f in &files {
        let key = f.display().to_string();
        let fmt = |v: &Value| v.as_f64().map_or_else(|| "-".into(), |x| format!("{x:.4}"));
        println!(
            "  {:<60} ours {:>8}  anndata {:>8}",
            f.file_name().unwrap_or_default().to_string_lossy(),
            fmt(&report["ours"]["read_s"][&key]),
            fmt(&report["peer"]["read_s"][&key])
        );
    }
    println!(
        "enrichment over {} canonical pathways: ours {:.3} ms/query, scipy {} ms/query",
        pathways.sets.len(),
        enrich_ours * 1e3,
        report["peer"]["enrichment_s_per_query"]
            .as_f64()
            .map_or_else(|| "-".into(), |s| format!("{:.3}", s * 1e3))
    );
    for (k, v) in &ratios {
        println!("  {k}: {:.2}", v.as_f64().unwrap_or(f64::NAN));
    }
    super::write_report(args.json.as_deref(), &report)?;
    Ok(0)
}
