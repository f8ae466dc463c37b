//! `cellwright bench embed`: cell representations against the PCA baseline, scIB's way.
//!
//! - **Cells.** pbmc68k_reduced (its log-normalised `raw` layer, 10 `bulk_labels` types) and
//!   cells simulated from the fixed points of published Boolean models (each cell started in
//!   one attractor state and integrated with noise, then counted with UMI noise; the label is
//!   the attractor). Methods: PCA-50 on the log-normalised highly variable genes (the
//!   baseline), the trained VAE, GenePT-w and cell sentences. Metrics: kNN (k = 15) macro-F1
//!   under stratified 5-fold cross-validation, ARI and NMI of Leiden (resolution 1) and of
//!   k-means (k = the number of labels) clusters, average silhouette width by label; wall time
//!   and peak memory of each embedding. A UMAP per method, coloured by label, beside --json.
//! - **Genes.** The knowledge-text gene embedding, with texts that leave out what is being
//!   tested (no GO biological-process terms, no complexes: name, GO function and component,
//!   pathways): mean cosine similarity within sampled GO-BP gene sets against random pairs,
//!   and how often a CORUM complex member's nearest gene is a partner in a complex, against
//!   the rate of a random gene.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use cellwright_core::{CancelToken, NoProgress, Progress};
use cellwright_data::catalogue;
use cellwright_data::genedb::Aspect;
use cellwright_data::genesets::Collection;
use cellwright_data::load::LoadedDatasets;
use cellwright_data::matrix::ExpressionMatrix;
use cellwright_data::text::Orientation;
use cellwright_embed::{CellEmbedding, knowledge_texts};
use cellwright_eval::labels;
use cellwright_sim::{CountNoise, Initial, Perturbation, Settings, Simulation, Simulator};
use cellwright_tools_embed::{
    CellMethod, ClusterAlgorithm, EmbedOptions, Knowledge, cluster, embed_matrix,
    expression_for_embedding, extend_table, labels_of, layout_svg,
};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use super::BenchArgs;

const METHODS: [CellMethod; 4] = [
    CellMethod::Pca,
    CellMethod::Vae,
    CellMethod::GeneptW,
    CellMethod::Sentences,
];
/// Published models whose fixed points are the simulated cell states.
const MODELS: [&str; 2] = ["krumsiek_myeloid", "arellano_rootstem"];

/// Cells with known labels.
struct Labelled {
    name: String,
    matrix: Arc<ExpressionMatrix>,
    labels: Vec<String>,
    /// Cells removed for having no counts at all.
    removed: usize,
}

fn pbmc68k() -> anyhow::Result<Labelled> {
    let name = "pbmc68k_reduced";
    let m = LoadedDatasets::default().get_or_load(
        name,
        Orientation::GenesByCells,
        &NoProgress,
        &CancelToken::new(),
    )?;
    let (m, _) = expression_for_embedding(&m, Some("raw"), name)?;
    let (_, labels) = labels_of(&m, Some("bulk_labels"), name)?;
    let keep: Vec<usize> = (0..labels.len()).filter(|&i| labels[i].is_some()).collect();
    anyhow::ensure!(keep.len() == labels.len(), "{name}: unlabelled cells");
    Ok(Labelled {
        name: name.into(),
        matrix: m,
        labels: labels.into_iter().flatten().collect(),
        removed: 0,
    })
}

/// `per_state` cells started in each fixed point of `model` (at most 8 fixed points), as UMI
/// counts; labelled by fixed point.
fn attractor_cells(model: &str, per_state: usize, seed: u64) -> anyhow::Result<Labelled> {
    let (net, _) = catalogue::boolean_model(model, &NoProgress, &CancelToken::new())?;
    let points = net.fixed_points()?;
    anyhow::ensure!(
        points.len() >= 2,
        "{model} has {} fixed points",
        points.len()
    );
    let n = net.len();
    let mut runs: Vec<Simulation> = Vec::new();
    for &state in points.iter().take(8) {
        let bits: Vec<bool> = (0..n).map(|i| state >> i & 1 == 1).collect();
        let settings = Settings {
            initial: Initial::State(bits),
            ..Settings::default()
        };
        let sim = Simulator::new(&net, settings, seed)?;
        runs.push(sim.run(
            &[(Perturbation::control(), per_state)],
            &NoProgress,
            &CancelToken::new(),
        )?);
    }
    let first = &runs[0];
    let views: Vec<_> = runs.iter().map(|r| r.mrna.view()).collect();
    let mrna = ndarray::concatenate(ndarray::Axis(0), &views)?;
    let labels: Vec<String> = (0..runs.len())
        .flat_map(|s| std::iter::repeat_n(format!("state {s}"), per_state))
        .collect();
    let total = labels.len();
    let all = Simulation {
        nodes: first.nodes.clone(),
        mrna,
        perturbation: vec![0; total],
        perturbations: first.perturbations.clone(),
        time: vec![0.0; total],
        seed,
        mrna_max: first.mrna_max,
        edges: first.edges.clone(),
    };
    // Model genes only, so measured deeper than scRNA-seq measures a transcription factor;
    // cells left without a single count (a state with every gene off) carry no signal and
    // are removed, as quality control removes them.
    let counts = all.counts(&CountNoise {
        umis_at_max: 20.0,
        ..CountNoise::default()
    })?;
    let mut totals = vec![0.0f64; total];
    counts.x().for_each(|i, _, v| totals[i] += f64::from(v));
    let keep: Vec<usize> = (0..total).filter(|&i| totals[i] > 0.0).collect();
    let names: Vec<&str> = keep.iter().map(|&i| counts.cells()[i].as_str()).collect();
    let kept_labels: Vec<String> = keep.iter().map(|&i| labels[i].clone()).collect();
    let states = kept_labels.iter().collect::<HashSet<_>>().len();
    Ok(Labelled {
        name: format!("{model} ({states} states)"),
        matrix: Arc::new(counts.select_cells(&names)?),
        labels: kept_labels,
        removed: total - keep.len(),
    })
}

/// Resets the peak resident memory (`VmHWM`) so that the next reading covers what follows.
fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn peak_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// kNN macro-F1, ARI/NMI of Leiden and k-means clusters, ASW, and the UMAP layout.
fn score(e: &CellEmbedding, truth: &[String], seed: u64) -> anyhow::Result<(Value, Vec<f32>)> {
    let f1 = labels::knn_macro_f1(&e.values, e.dimension, truth, 15, 5, seed)?;
    let asw = labels::silhouette(&e.values, e.dimension, truth)?;
    let (leiden, layout) = cluster(e, ClusterAlgorithm::Leiden, 1.0, 0, seed)?;
    let types = truth.iter().collect::<HashSet<_>>().len();
    let settings = cellwright_embed::KMeans {
        seed,
        ..cellwright_embed::KMeans::new(types)
    };
    let kmeans = cellwright_embed::kmeans(e, &settings)?.assignment;
    let clusters = leiden.iter().collect::<HashSet<_>>().len();
    Ok((
        json!({
            "knn_macro_f1": f1,
            "asw": asw,
            "leiden_clusters": clusters,
            "leiden_ari": labels::adjusted_rand_index(truth, &leiden)?,
            "leiden_nmi": labels::normalized_mutual_info(truth, &leiden)?,
            "kmeans_ari": labels::adjusted_rand_index(truth, &kmeans)?,
            "kmeans_nmi": labels::normalized_mutual_info(truth, &kmeans)?,
        }),
        layout,
    ))
}

/// kNN macro-F1 of PCA and of the VAE for `count` seeds from `first` (each seed trains the
/// VAE and draws the CV folds of both): means, standard deviations and per-seed ratios.
async fn seed_study(
    d: &Labelled,
    first: u64,
    count: u64,
    progress: Arc<dyn Progress>,
    cancel: &CancelToken,
) -> anyhow::Result<Value> {
    let mut rows = Vec::new();
    for seed in first..first + count {
        let options = EmbedOptions {
            seed,
            ..EmbedOptions::default()
        };
        let mut f1 = Vec::new();
        for method in [CellMethod::Pca, CellMethod::Vae] {
            let e = embed_matrix(d.matrix.clone(), method, &options, progress.clone(), cancel)
                .await?
                .embedding;
            f1.push(labels::knn_macro_f1(
                &e.values,
                e.dimension,
                &d.labels,
                15,
                5,
                seed,
            )?);
        }
        rows.push((seed, f1[0], f1[1]));
    }
    let stats = |v: Vec<f64>| {
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let sd = (v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
        let min = v.iter().copied().fold(f64::INFINITY, f64::min);
        (mean, sd, min)
    };
    let (pca_mean, pca_sd, _) = stats(rows.iter().map(|r| r.1).collect());
    let (vae_mean, vae_sd, _) = stats(rows.iter().map(|r| r.2).collect());
    let (ratio_mean, _, ratio_min) = stats(rows.iter().map(|r| r.2 / r.1).collect());
    Ok(json!({
        "data": d.name,
        "seeds": rows.iter().map(|r| json!({"seed": r.0, "pca": r.1, "vae": r.2})).collect::<Vec<_>>(),
        "pca_mean": pca_mean, "pca_sd": pca_sd, "vae_mean": vae_mean, "vae_sd": vae_sd,
        "ratio_mean": ratio_mean, "ratio_min": ratio_min,
    }))
}

/// Within-set cosine against random pairs for GO-BP sets, and CORUM nearest-neighbour hits
/// against chance, on texts without GO-BP terms and complexes.
async fn gene_sanity(
    sets: usize,
    seed: u64,
    progress: Arc<dyn Progress>,
    cancel: &CancelToken,
) -> anyhow::Result<Value> {
    let knowledge = Knowledge::fetch(progress.clone(), cancel).await?;
    let gobp = Collection::read_csv(
        &catalogue::find("gene-sets")?.fetch_file("gobp.csv", &*progress, cancel)?,
        "GO-BP",
    )?;
    let known: HashSet<&str> = knowledge.cards.iter().map(|c| c.symbol.as_str()).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut pick = |c: &Collection, sizes: std::ops::RangeInclusive<usize>| -> Vec<Vec<String>> {
        let mut chosen: Vec<Vec<String>> = c
            .sets
            .iter()
            .map(|s| {
                s.genes
                    .iter()
                    .filter(|g| known.contains(g.as_str()))
                    .cloned()
                    .collect::<Vec<_>>()
            })
            .filter(|g| sizes.contains(&g.len()))
            .collect();
        chosen.shuffle(&mut rng);
        chosen.truncate(sets);
        chosen
    };
    let processes = pick(&gobp, 10..=30);
    let complexes = pick(&knowledge.complexes, 3..=10);
    let universe: HashSet<&str> = processes
        .iter()
        .chain(&complexes)
        .flatten()
        .map(String::as_str)
        .collect();
    // Texts without what is tested: no GO biological process, no complexes.
    let cards: Vec<_> = knowledge
        .cards
        .iter()
        .filter(|c| universe.contains(c.symbol.as_str()))
        .map(|c| {
            let mut c = c.clone();
            c.go.remove(&Aspect::BiologicalProcess);
            c
        })
        .collect();
    let texts = knowledge_texts(&cards, &[("Pathways", &knowledge.pathways)]);
    let path = cellwright_fetch::cache_dir()
        .join("bench")
        .join("embed")
        .join("genes-without-bp-and-complexes.safetensors");
    let table = extend_table(&path, &texts, &knowledge.embedder, &*progress, cancel).await?;
    let vector = |g: &str| table.get(g);
    let cosine =
        |a: &[f32], b: &[f32]| -> f64 { a.iter().zip(b).map(|(x, y)| f64::from(x * y)).sum() };
    // GO-BP: mean pairwise cosine inside each set, then over sets.
    let mut within = Vec::new();
    for set in &processes {
        let v: Vec<&[f32]> = set.iter().filter_map(|g| vector(g)).collect();
        let mut sum = (0.0, 0usize);
        for i in 0..v.len() {
            for j in i + 1..v.len() {
                sum = (sum.0 + cosine(v[i], v[j]), sum.1 + 1);
            }
        }
        if sum.1 > 0 {
            within.push(sum.0 / sum.1 as f64);
        }
    }
    let genes: Vec<&str> = {
        let mut g: Vec<&str> = universe
            .iter()
            .copied()
            .filter(|g| vector(g).is_some())
            .collect();
        g.sort_unstable();
        g
    };
    let random: Vec<f64> = (0..5000)
        .filter_map(|_| {
            let (a, b) = (rng.gen_range(0..genes.len()), rng.gen_range(0..genes.len()));
            if a == b {
                return None;
            }
            Some(cosine(vector(genes[a])?, vector(genes[b])?))
        })
        .collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    // CORUM: is each member's nearest gene (in this universe) a complex partner?
    let mut partners: HashMap<&str, HashSet<&str>> = HashMap::new();
    for complex in &complexes {
        for a in complex {
            for b in complex {
                if a != b {
                    partners.entry(a).or_default().insert(b);
                }
            }
        }
    }
    let (mut hits, mut chance, mut members) = (0usize, 0.0f64, 0usize);
    for (&gene, mates) in &partners {
        let Some(v) = vector(gene) else { continue };
        let nearest = genes.iter().filter(|&&g| g != gene).max_by(|a, b| {
            cosine(v, vector(a).unwrap_or(v)).total_cmp(&cosine(v, vector(b).unwrap_or(v)))
        });
        members += 1;
        hits += usize::from(nearest.is_some_and(|g| mates.contains(g)));
        chance +=
            mates.iter().filter(|g| vector(g).is_some()).count() as f64 / (genes.len() - 1) as f64;
    }
    let hit_rate = hits as f64 / members.max(1) as f64;
    let chance_rate = chance / members.max(1) as f64;
    Ok(json!({
        "texts": "name, GO molecular function and cellular component, pathways (no GO biological process, no complexes)",
        "genes": genes.len(),
        "go_bp_sets": within.len(),
        "go_bp_within_set_cosine": mean(&within),
        "random_pair_cosine": mean(&random),
        "corum_complexes": complexes.len(),
        "corum_members": members,
        "corum_nn_hit_rate": hit_rate,
        "corum_random_hit_rate": chance_rate,
    }))
}

pub async fn run(args: BenchArgs) -> anyhow::Result<u8> {
    let seed = 0;
    let plots = match &args.json {
        Some(path) => path.with_extension("plots"),
        None => PathBuf::from("bench-embed.plots"),
    };
    std::fs::create_dir_all(&plots).with_context(|| format!("creating {}", plots.display()))?;
    let bar = crate::progress::CountBar::new();
    let shown = bar.0.clone();
    let progress: Arc<dyn Progress> = Arc::new(bar);
    let cancel = crate::ask::cancel_on_signals();

    let models: &[&str] = if args.quick { &MODELS[..1] } else { &MODELS };
    let per_state = if args.quick { 100 } else { 250 };
    let mut data = vec![tokio::task::block_in_place(pbmc68k)?];
    for model in models {
        data.push(tokio::task::block_in_place(|| {
            attractor_cells(model, per_state, seed)
        })?);
    }

    let mut table = Vec::new();
    for d in &data {
        let (cells, genes) = d.matrix.shape();
        println!("\n{}: {cells} cells × {genes} genes", d.name);
        if d.removed > 0 {
            println!("  ({} cells without a single count removed)", d.removed);
        }
        println!(
            "  {:<10} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
            "method", "kNN-F1", "ASW", "L-ARI", "L-NMI", "KM-ARI", "KM-NMI", "sec", "peak MB"
        );
        for method in METHODS {
            shown.set_message(format!("{}: {}", d.name, method.name()));
            reset_peak();
            let started = Instant::now();
            let options = EmbedOptions {
                seed,
                ..EmbedOptions::default()
            };
            let embedded = embed_matrix(
                d.matrix.clone(),
                method,
                &options,
                progress.clone(),
                &cancel,
            )
            .await;
            let seconds = started.elapsed().as_secs_f64();
            let peak = peak_mb();
            shown.set_message("");
            let embedded = match embedded {
                Ok(e) => e,
                Err(e) => {
                    println!("  {:<10} could not embed: {e}", method.name());
                    table.push(json!({
                        "data": d.name, "method": method.name(), "error": e.to_string(),
                    }));
                    continue;
                }
            };
            let (scores, layout) =
                tokio::task::block_in_place(|| score(&embedded.embedding, &d.labels, seed))?;
            let file = plots.join(format!(
                "umap-{}-{}.svg",
                super::slug(&d.name),
                method.name()
            ));
            std::fs::write(
                &file,
                layout_svg(
                    &layout,
                    &d.labels,
                    &format!("{}: {}", d.name, method.name()),
                )?,
            )?;
            let number = |k: &str| scores[k].as_f64().unwrap_or(f64::NAN);
            println!(
                "  {:<10} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.3} {:>8.1} {:>8.0}",
                method.name(),
                number("knn_macro_f1"),
                number("asw"),
                number("leiden_ari"),
                number("leiden_nmi"),
                number("kmeans_ari"),
                number("kmeans_nmi"),
                seconds,
                peak.unwrap_or(f64::NAN)
            );
            let mut row = json!({
                "data": d.name, "method": method.name(), "cells": cells, "genes": genes,
                "removed_cells": d.removed,
                "dimension": embedded.embedding.dimension, "seconds": seconds,
                "peak_rss_mb": peak, "notes": embedded.notes,
            });
            if let (Some(row), Some(scores)) = (row.as_object_mut(), scores.as_object()) {
                row.extend(scores.clone());
            }
            table.push(row);
        }
    }

    shown.set_message("pbmc68k_reduced: PCA and the VAE over seeds");
    let seeds = seed_study(
        &data[0],
        seed,
        if args.quick { 3 } else { 5 },
        progress.clone(),
        &cancel,
    )
    .await?;
    println!(
        "\n{} over {} seeds (VAE training and CV folds): kNN-F1 PCA {:.3} ± {:.3}, VAE {:.3} ± {:.3}; VAE ÷ PCA {:.3} (min {:.3})",
        data[0].name,
        seeds["seeds"].as_array().map_or(0, Vec::len),
        seeds["pca_mean"].as_f64().unwrap_or(f64::NAN),
        seeds["pca_sd"].as_f64().unwrap_or(f64::NAN),
        seeds["vae_mean"].as_f64().unwrap_or(f64::NAN),
        seeds["vae_sd"].as_f64().unwrap_or(f64::NAN),
        seeds["ratio_mean"].as_f64().unwrap_or(f64::NAN),
        seeds["ratio_min"].as_f64().unwrap_or(f64::NAN),
    );

    shown.set_message("gene embeddings: GO-BP sets and CORUM complexes");
    let genes = gene_sanity(
        if args.quick { 10 } else { 40 },
        seed,
        progress.clone(),
        &cancel,
    )
    .await?;
    shown.finish_and_clear();
    println!(
        "\ngene embeddings ({} genes; {})",
        genes["genes"], genes["texts"]
    );
    println!(
        "  GO-BP within-set cosine {:.3} vs random pairs {:.3} ({} sets)",
        genes["go_bp_within_set_cosine"]
            .as_f64()
            .unwrap_or(f64::NAN),
        genes["random_pair_cosine"].as_f64().unwrap_or(f64::NAN),
        genes["go_bp_sets"]
    );
    println!(
        "  CORUM nearest-gene hit rate {:.3} vs random {:.3} ({} members of {} complexes)",
        genes["corum_nn_hit_rate"].as_f64().unwrap_or(f64::NAN),
        genes["corum_random_hit_rate"].as_f64().unwrap_or(f64::NAN),
        genes["corum_members"],
        genes["corum_complexes"]
    );

    let f1 = |data: &str, method: &str| {
        table
            .iter()
            .find(|r| r["data"] == data && r["method"] == method)
            .and_then(|r| r["knn_macro_f1"].as_f64())
    };
    let pbmc = &data[0].name;
    let pca = f1(pbmc, "pca").unwrap_or(f64::NAN);
    let best = METHODS[1..]
        .iter()
        .filter_map(|m| f1(pbmc, m.name()))
        .fold(f64::NAN, f64::max);
    let ratio =
        |a: &Value, b: &Value| a.as_f64().unwrap_or(f64::NAN) / b.as_f64().unwrap_or(f64::NAN);
    let report = json!({
        "bench": "embed",
        "quick": args.quick,
        "seed": seed,
        "table": table,
        "genes": genes,
        "seeds": seeds,
        "plots": plots,
        "ratios": {
            "best_macro_f1_over_pca": best / pca,
            "vae_macro_f1_over_pca": f1(pbmc, "vae").unwrap_or(f64::NAN) / pca,
            "vae_macro_f1_over_pca_mean_over_seeds": seeds["ratio_mean"],
            "go_bp_within_over_random_cosine": ratio(&genes["go_bp_within_set_cosine"], &genes["random_pair_cosine"]),
            "corum_nn_hit_over_random": ratio(&genes["corum_nn_hit_rate"], &genes["corum_random_hit_rate"]),
        },
    });
    println!("\nratios (pbmc68k_reduced for the cells)");
    for (k, v) in report["ratios"].as_object().into_iter().flatten() {
        println!("  {k:<36} {:.3}", v.as_f64().unwrap_or(f64::NAN));
    }
    println!("plots in {}", plots.display());
    super::write_report(args.json.as_deref(), &report)?;
    Ok(0)
}
