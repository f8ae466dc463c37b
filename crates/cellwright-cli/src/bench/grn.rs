//! `cellwright bench grn`: gene-regulatory network inference, BEELINE's way, against
//! arboreto's GRNBoost2 and GENIE3 on the same data and threads in the same run.
//!
//! - **Accuracy.** Cells simulated (trajectory design) from published Boolean models of
//!   pyboolnet and Cell Collective, three seeds, 500 and 2,000 cells; the truth is the model's
//!   edges without self-edges, the candidate regulators the nodes with out-edges. AUPRC ratio,
//!   EPR, AUROC and wall time per method; PR curves as SVG.
//! - **Scaling.** Wall time against genes, on disjoint unions of copies of one model (each
//!   copy its own seed), up to 1,008 genes × 5,000 cells with at most 100 regulators: ours
//!   against GRNBoost2.
//! - **Real data.** pbmc68k_reduced with the human TF list: the share of our top-k edges that
//!   Pathway Commons lists, against the share among all candidate edges of the same TFs (what
//!   random edges from them would score).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::boolean::Sign;
use cellwright_data::catalogue;
use cellwright_data::regulons::Regulons;
use cellwright_eval::plot::{self, Axes, Series};
use cellwright_eval::signed::{DOWN, UP};
use cellwright_eval::{
    Curve, Metrics, Scored, SignedMetrics, SignedScored, metrics, pr_curve, signed_metrics,
};
use cellwright_grn::{Boosting, Method, Options, ScoredEdge};
use cellwright_sim::{Design, Perturbation, Settings, Simulator};
use indicatif::ProgressBar;
use serde_json::{Value, json};

use super::{BenchArgs, median, peer_python, python_json, slug};

const SCRIPT: &str = include_str!("../../../../bench/grn_arboreto.py");
/// arboreto 0.1.6 breaks on current dask; this set works (BENCHMARKS.md).
const REQUIREMENTS: &str = "arboreto==0.1.6\ndask[dataframe]==2023.12.1\n\
    distributed==2023.12.1\npandas==2.1.4\nnumpy==1.26.4\nscikit-learn==1.9.1\nscipy==1.17.1\n";

const MODELS: [&str; 7] = [
    "krumsiek_myeloid",
    "xiao_wnt5a",
    "arellano_rootstem",
    "dahlhaus_neuroplastoma",
    "Cortical Area Development",
    "Human Gonadal Sex Determination",
    "Lymphoid and myeloid cell specification and transdifferentiation",
];
const QUICK_MODELS: [&str; 2] = ["krumsiek_myeloid", "Cortical Area Development"];
const SCALING_MODEL: &str = "selvaggio_emt";
const SCALING_REGULATORS: usize = 100;
#[derive(Debug, clap::Args)]
pub struct GrnBenchArgs {
    #[command(flatten)]
    common: BenchArgs,
    /// Only the accuracy study, on these catalogue models (comma-separated) instead of the
    /// benchmark's seven: e.g. to choose settings on models the headline table does not use.
    #[arg(long, value_delimiter = ',')]
    models: Vec<String>,
}

/// Our methods as benchmarked: each at its defaults (forest with GENIE3's settings, boost at
/// learning rate 0.03), and boosting with all of GRNBoost2's settings (`boost_grnboost2`).
fn ours() -> Vec<(&'static str, Options)> {
    let at = |method| Options {
        method,
        ..Options::default()
    };
    vec![
        ("boost", at(Method::Boost)),
        (
            "boost_grnboost2",
            Options {
                boost: Boosting::GRNBOOST2,
                ..at(Method::Boost)
            },
        ),
        ("forest", at(Method::Forest)),
        ("neural", at(Method::Neural)),
        ("pearson", at(Method::Pearson)),
        ("spearman", at(Method::Spearman)),
        ("random", at(Method::Random)),
    ]
}
const PEERS: [&str; 2] = ["grnboost2", "genie3"];

/// Expression by gene, the true edges and the candidate regulators.
struct Data {
    name: String,
    genes: Vec<String>,
    columns: Vec<Vec<f32>>,
    regulators: Vec<usize>,
    truth: HashSet<(usize, usize)>,
    /// The sign of each true edge: `UP`, `DOWN`, or 0 for dual.
    signs: HashMap<(usize, usize), i8>,
}

impl Data {
    /// Cells of `copies` disjoint copies of `model`, copy `c` simulated with seed `seed + c`
    /// and its nodes suffixed `.c` when there are several; genes constant across cells are
    /// left out.
    fn simulate(model: &str, cells: usize, seed: u64, copies: usize) -> anyhow::Result<Self> {
        let (net, _) = catalogue::boolean_model(model, &NoProgress, &CancelToken::new())?;
        let settings = Settings {
            design: Design::Trajectory,
            ..Settings::default()
        };
        let mut genes = Vec::new();
        let mut columns: Vec<Vec<f32>> = Vec::new();
        let mut named_edges = Vec::new();
        for c in 0..copies {
            let sim = Simulator::new(&net, settings.clone(), seed + c as u64)?;
            let run = sim.run(
                &[(Perturbation::control(), cells)],
                &NoProgress,
                &CancelToken::new(),
            )?;
            let name = |n: &str| {
                if copies == 1 {
                    n.to_owned()
                } else {
                    format!("{n}.{c}")
                }
            };
            for (j, node) in run.nodes.iter().enumerate() {
                genes.push(name(node));
                columns.push(run.mrna.column(j).to_vec());
            }
            named_edges.extend(
                run.edges
                    .iter()
                    .filter(|e| e.from != e.to)
                    .map(|e| (name(&e.from), name(&e.to), e.sign)),
            );
        }
        let keep: Vec<usize> = (0..genes.len())
            .filter(|&g| columns[g].iter().any(|&v| v != columns[g][0]))
            .collect();
        let genes: Vec<String> = keep.iter().map(|&g| genes[g].clone()).collect();
        let columns: Vec<Vec<f32>> = keep.into_iter().map(|g| columns[g].clone()).collect();
        let index: HashMap<&str, usize> = genes
            .iter()
            .enumerate()
            .map(|(i, g)| (g.as_str(), i))
            .collect();
        let signs: HashMap<(usize, usize), i8> = named_edges
            .iter()
            .filter_map(|(r, t, sign)| {
                let sign = match sign {
                    Sign::Activation => UP,
                    Sign::Inhibition => DOWN,
                    Sign::Dual => 0,
                };
                Some(((*index.get(r.as_str())?, *index.get(t.as_str())?), sign))
            })
            .collect();
        let truth: HashSet<(usize, usize)> = signs.keys().copied().collect();
        let mut regulators: Vec<usize> = truth.iter().map(|&(r, _)| r).collect();
        regulators.sort_unstable();
        regulators.dedup();
        Ok(Self {
            name: format!("{model} / {cells} cells / seed {seed}"),
            genes,
            columns,
            regulators,
            truth,
            signs,
        })
    }

    /// Writes the cells × genes table and the regulator list for the peer.
    fn write(&self, dir: &Path, stem: &str) -> anyhow::Result<(PathBuf, PathBuf)> {
        let (table, tfs) = (
            dir.join(format!("{stem}.tsv")),
            dir.join(format!("{stem}.tfs")),
        );
        let cells = self.columns.first().map_or(0, Vec::len);
        let mut text = String::from("cell");
        for g in &self.genes {
            write!(text, "\t{g}")?;
        }
        text.push('\n');
        for c in 0..cells {
            write!(text, "c{c}")?;
            for column in &self.columns {
                write!(text, "\t{}", column[c])?;
            }
            text.push('\n');
        }
        std::fs::write(&table, text)?;
        let list: String = self
            .regulators
            .iter()
            .map(|&r| format!("{}\n", self.genes[r]))
            .collect();
        std::fs::write(&tfs, list)?;
        Ok((table, tfs))
    }

    /// Every candidate edge (regulator ≠ target) scored by `score`, as a ranking.
    fn ranking(&self, score: impl Fn(usize, usize) -> f64) -> Vec<Scored> {
        let mut out = Vec::new();
        for &r in &self.regulators {
            for t in 0..self.genes.len() {
                if r != t {
                    out.push(Scored {
                        score: score(r, t),
                        truth: self.truth.contains(&(r, t)),
                    });
                }
            }
        }
        out
    }

    fn ours(&self, edges: &[ScoredEdge]) -> Vec<Scored> {
        let scores: HashMap<(usize, usize), f64> = edges
            .iter()
            .map(|e| ((e.regulator, e.target), e.score))
            .collect();
        self.ranking(|r, t| scores.get(&(r, t)).copied().unwrap_or(0.0))
    }

    /// Our edges as a signed ranking.
    fn signed(&self, edges: &[ScoredEdge]) -> Vec<SignedScored> {
        edges
            .iter()
            .map(|e| SignedScored {
                score: e.score,
                predicted: e.sign,
                truth: self.signs.get(&(e.regulator, e.target)).copied(),
            })
            .collect()
    }

    /// A peer's edge file as a ranking; edges it did not list score 0.
    fn theirs(&self, path: &Path) -> anyhow::Result<Vec<Scored>> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let index: HashMap<&str, usize> = self
            .genes
            .iter()
            .enumerate()
            .map(|(i, g)| (g.as_str(), i))
            .collect();
        let mut scores = HashMap::new();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            if let [r, t, s] = f[..]
                && let (Some(&r), Some(&t)) = (index.get(r), index.get(t))
            {
                scores.insert((r, t), s.parse::<f64>().unwrap_or(f64::NAN));
            }
        }
        Ok(self.ranking(|r, t| scores.get(&(r, t)).copied().unwrap_or(0.0)))
    }
}

/// Ours with `method` on `data`: the edges and the seconds taken.
fn infer(data: &Data, options: &Options) -> anyhow::Result<(Vec<ScoredEdge>, f64)> {
    let started = Instant::now();
    let (edges, _) = cellwright_grn::score(
        &data.columns,
        &data.regulators,
        options,
        &NoProgress,
        &CancelToken::new(),
    )?;
    Ok((edges, started.elapsed().as_secs_f64()))
}

/// Runs the peer script on `items` (name, table, regulators, methods, output stem).
fn peer(
    python: &Path,
    work: &Path,
    items: &[Value],
    threads: usize,
    bar: &ProgressBar,
    what: &str,
) -> anyhow::Result<Value> {
    let script = work.join("grn_arboreto.py");
    std::fs::write(&script, SCRIPT)?;
    let manifest = work.join(format!("manifest-{what}.json"));
    std::fs::write(
        &manifest,
        serde_json::to_string(&json!({"datasets": items, "threads": threads, "seed": 0}))?,
    )?;
    bar.set_message(format!("peer: arboreto on the {what} data sets"));
    python_json(
        Command::new(python)
            .arg(&script)
            .arg("--manifest")
            .arg(&manifest),
    )
}

fn row(m: &Metrics, seconds: f64) -> Value {
    json!({
        "auprc_ratio": m.auprc_ratio, "epr": m.epr, "auroc": m.auroc, "auprc": m.auprc,
        "seconds": seconds,
    })
}

pub fn run(grn_args: GrnBenchArgs) -> anyhow::Result<u8> {
    let args = &grn_args.common;
    let only_accuracy = !grn_args.models.is_empty();
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (mut models, seeds, cell_counts): (Vec<&str>, &[u64], &[usize]) = if args.quick {
        (QUICK_MODELS.to_vec(), &[1], &[500])
    } else {
        (MODELS.to_vec(), &[1, 2, 3], &[500, 2000])
    };
    if only_accuracy {
        models = grn_args.models.iter().map(String::as_str).collect();
    }
    let plots = match &args.json {
        Some(path) => path.with_extension("plots"),
        None => PathBuf::from("bench-grn.plots"),
    };
    std::fs::create_dir_all(&plots)?;
    let work = tempfile::tempdir()?;
    let bar = crate::progress::spinner();
    let python = if args.no_peer {
        None
    } else {
        Some(peer_python("arboreto", REQUIREMENTS, &bar)?)
    };

    // Accuracy: every model, seed and cell count.
    let mut sets = Vec::new();
    for &model in &models {
        for &cells in cell_counts {
            for &seed in seeds {
                bar.set_message(format!("simulating {model}, {cells} cells, seed {seed}"));
                sets.push(Data::simulate(model, cells, seed, 1)?);
            }
        }
    }
    // PR curves for the first seed at the largest cell count.
    let largest = cell_counts[cell_counts.len() - 1];
    let plotted = |data: &Data| data.name.ends_with(&format!("/ {largest} cells / seed 1"));
    let mut curves: BTreeMap<usize, Vec<(String, Curve)>> = BTreeMap::new();
    let mut results: Vec<BTreeMap<String, (Metrics, f64)>> = Vec::new();
    let mut signed: Vec<BTreeMap<String, SignedMetrics>> = Vec::new();
    let mut items = Vec::new();
    for (i, data) in sets.iter().enumerate() {
        let mut per = BTreeMap::new();
        let mut per_signed = BTreeMap::new();
        for (name, options) in ours() {
            bar.set_message(format!("ours ({name}): {}", data.name));
            let (edges, seconds) = infer(data, &options)?;
            let ranking = data.ours(&edges);
            if plotted(data) && name != "random" {
                let label = format!("ours ({name})");
                curves
                    .entry(i)
                    .or_default()
                    .push((label, pr_curve(&ranking)?));
            }
            per.insert(name.to_owned(), (metrics(&ranking)?, seconds));
            per_signed.insert(name.to_owned(), signed_metrics(&data.signed(&edges))?);
        }
        results.push(per);
        signed.push(per_signed);
        let (table, tfs) = data.write(work.path(), &format!("set{i}"))?;
        items.push(json!({
            "name": data.name, "data": table, "tfs": tfs, "methods": PEERS,
            "out": work.path().join(format!("set{i}")),
        }));
    }
    if let Some(python) = &python {
        let p = peer(python, work.path(), &items, threads, &bar, "accuracy")?;
        for (i, (data, per)) in sets.iter().zip(results.iter_mut()).enumerate() {
            for method in PEERS {
                let r = &p[&data.name][method];
                let path = r["edges"].as_str().context("peer edge file")?;
                let seconds = r["seconds"].as_f64().context("peer seconds")?;
                let ranking = data.theirs(Path::new(path))?;
                if let Some(c) = curves.get_mut(&i) {
                    c.push((method.to_owned(), pr_curve(&ranking)?));
                }
                per.insert(method.into(), (metrics(&ranking)?, seconds));
            }
        }
    }
    for (&i, c) in &curves {
        let data = &sets[i];
        let file = plots.join(format!("pr-{}.svg", slug(&data.name)));
        plot::pr_curves(&file, &data.name, c, results[i]["boost"].0.density)?;
    }

    // Scaling: copies of one model, 5,000 cells (quick: 1,000).
    let (copies, scale_cells): (&[usize], usize) = if only_accuracy {
        (&[], 0)
    } else if args.quick {
        (&[1, 4], 1000)
    } else {
        (&[1, 4, 9, 18], 5000)
    };
    let mut scaling = Vec::new();
    let mut scale_items = Vec::new();
    for &k in copies {
        bar.set_message(format!("scaling: simulating {k} × {SCALING_MODEL}"));
        let mut data = Data::simulate(SCALING_MODEL, scale_cells, 10, k)?;
        // A TF list is a small share of the genes (1,672 of ~20,000 human genes): at most
        // SCALING_REGULATORS candidate regulators, the first copies' ones.
        data.regulators.truncate(SCALING_REGULATORS);
        bar.set_message(format!("scaling: ours on {} genes", data.genes.len()));
        let (_, seconds) = infer(&data, &Options::default())?;
        let (table, tfs) = data.write(work.path(), &format!("scale{k}"))?;
        scale_items.push(json!({
            "name": format!("scale{k}"), "data": table, "tfs": tfs, "methods": ["grnboost2"],
            "out": work.path().join(format!("scale{k}")),
        }));
        scaling.push(json!({
            "genes": data.genes.len(), "regulators": data.regulators.len(),
            "cells": scale_cells, "ours_seconds": seconds,
        }));
    }
    if let Some(python) = &python {
        let p = peer(python, work.path(), &scale_items, threads, &bar, "scaling")?;
        for (k, point) in copies.iter().zip(scaling.iter_mut()) {
            point["grnboost2_seconds"] = p[&format!("scale{k}")]["grnboost2"]["seconds"].clone();
        }
    }
    let series = |key: &str, name: &str| Series {
        name: name.into(),
        points: scaling
            .iter()
            .filter_map(|p| Some((p["genes"].as_f64()?, p[key].as_f64()?)))
            .collect(),
    };
    plot::lines(
        &plots.join("scaling.svg"),
        &Axes {
            title: &format!("GRN inference, {scale_cells} cells, {threads} threads"),
            x: "genes",
            y: "seconds",
            log_x: true,
            log_y: true,
        },
        &[
            series("ours_seconds", "ours (boost)"),
            series("grnboost2_seconds", "arboreto GRNBoost2"),
        ],
        None,
    )
    .or_else(|e| match e {
        plot::PlotError::Empty(_) => Ok(()),
        e => Err(e),
    })?;

    // Real data: pbmc68k_reduced against Pathway Commons.
    bar.set_message("real data: pbmc68k_reduced");
    let real = if only_accuracy {
        Value::Null
    } else {
        real_data(if args.quick { 300 } else { 2000 })?
    };
    bar.finish_and_clear();

    // Tables and ratios.
    let mut ratios = serde_json::Map::new();
    let per_set: Vec<Value> = sets
        .iter()
        .zip(results.iter().zip(&signed))
        .map(|(d, (per, signed))| {
            let methods: serde_json::Map<String, Value> = per
                .iter()
                .map(|(k, (m, s))| (k.clone(), row(m, *s)))
                .collect();
            json!({"data": d.name, "genes": d.genes.len(), "regulators": d.regulators.len(),
                   "true_edges": d.truth.len(), "methods": methods, "signed": signed})
        })
        .collect();
    // Signed scoring of ours: medians over the data sets that have edges of the sign.
    println!("signed (ours; sign = that of the Pearson correlation), medians:");
    let mut signed_medians = serde_json::Map::new();
    for name in signed
        .first()
        .map(|s| s.keys().cloned().collect::<Vec<_>>())
        .unwrap_or_default()
    {
        let of = |f: &dyn Fn(&SignedMetrics) -> Option<f64>| {
            median(
                &signed
                    .iter()
                    .filter_map(|s| f(&s[&name]))
                    .collect::<Vec<_>>(),
            )
        };
        let row = json!({
            "activation_auprc_ratio": of(&|s| Some(s.activation?.auprc_ratio)),
            "inhibition_auprc_ratio": of(&|s| Some(s.inhibition?.auprc_ratio)),
            "sign_accuracy": of(&|s| s.sign_accuracy),
        });
        println!("  {name:<12} {row}");
        signed_medians.insert(name, row);
    }
    println!("AUPRC ratio (median over seeds) and seconds, {threads} threads");
    let methods: Vec<String> = results
        .first()
        .map(|r| r.keys().cloned().collect())
        .unwrap_or_default();
    print!("  {:<44}", "model / cells");
    for m in &methods {
        print!(" {m:>16}");
    }
    println!();
    for &model in &models {
        for &cells in cell_counts {
            let prefix = format!("{model} / {cells} cells /");
            let rows: Vec<&BTreeMap<String, (Metrics, f64)>> = sets
                .iter()
                .zip(&results)
                .filter(|(d, _)| d.name.starts_with(&prefix))
                .map(|(_, r)| r)
                .collect();
            let label: String = format!("{model} / {cells}").chars().take(44).collect();
            print!("  {label:<44}");
            for m in &methods {
                let auprc = median(&rows.iter().map(|r| r[m].0.auprc_ratio).collect::<Vec<_>>());
                let secs: f64 = rows.iter().map(|r| r[m].1).sum::<f64>() / rows.len() as f64;
                print!(" {auprc:>7.2} {secs:>7.2}s");
            }
            println!();
        }
    }
    let column = |m: &str| -> Vec<f64> {
        results
            .iter()
            .filter_map(|r| r.get(m).map(|x| x.0.auprc_ratio))
            .collect()
    };
    for m in &methods {
        ratios.insert(format!("auprc_ratio_median_{m}"), json!(median(&column(m))));
    }
    let total = |m: &str| -> f64 { results.iter().filter_map(|r| r.get(m)).map(|x| x.1).sum() };
    let over = |a: &str, b: &str| -> Vec<f64> {
        results
            .iter()
            .filter_map(|r| Some(r.get(a)?.0.auprc_ratio / r.get(b)?.0.auprc_ratio))
            .collect()
    };
    if python.is_some() {
        ratios.insert(
            "grnboost2_time_over_ours".into(),
            json!(total("grnboost2") / total("boost")),
        );
        ratios.insert(
            "grnboost2_time_over_ours_grnboost2_settings".into(),
            json!(total("grnboost2") / total("boost_grnboost2")),
        );
        ratios.insert(
            "auprc_ratio_ours_grnboost2_settings_over_grnboost2_median".into(),
            json!(median(&over("boost_grnboost2", "grnboost2"))),
        );
        ratios.insert(
            "genie3_time_over_ours_forest".into(),
            json!(total("genie3") / total("forest")),
        );
        ratios.insert(
            "auprc_ratio_ours_over_grnboost2_median".into(),
            json!(median(&over("boost", "grnboost2"))),
        );
        ratios.insert(
            "auprc_ratio_ours_over_genie3_median".into(),
            json!(median(&over("boost", "genie3"))),
        );
        ratios.insert(
            "auprc_ratio_ours_forest_over_genie3_median".into(),
            json!(median(&over("forest", "genie3"))),
        );
        let best_peer = median(&column("grnboost2")).max(median(&column("genie3")));
        ratios.insert(
            "auprc_ratio_median_ours_over_best_peer".into(),
            json!(median(&column("boost")) / best_peer),
        );
        if let Some(last) = scaling.last()
            && let (Some(t), Some(o)) = (
                last["grnboost2_seconds"].as_f64(),
                last["ours_seconds"].as_f64(),
            )
        {
            ratios.insert("grnboost2_time_over_ours_largest".into(), json!(t / o));
        }
    }
    if !scaling.is_empty() {
        println!("scaling ({SCALING_MODEL} copies, {scale_cells} cells):");
    }
    for p in &scaling {
        println!(
            "  {:>5} genes ({} regulators): ours {:.2} s, GRNBoost2 {}",
            p["genes"],
            p["regulators"],
            p["ours_seconds"].as_f64().unwrap_or(f64::NAN),
            p["grnboost2_seconds"]
                .as_f64()
                .map_or_else(|| "-".into(), |s| format!("{s:.2} s"))
        );
    }
    println!("real data (pbmc68k_reduced vs Pathway Commons): {real}");
    if let Some(r) = real["precision_over_random_top"].as_object() {
        for (k, v) in r {
            ratios.insert(format!("real_precision_over_random_top{k}"), v.clone());
        }
    }
    for (k, v) in &ratios {
        println!("  {k}: {:.3}", v.as_f64().unwrap_or(f64::NAN));
    }
    println!("plots in {}", plots.display());
    let report = json!({
        "bench": "grn", "quick": args.quick, "threads": threads, "data_sets": per_set,
        "scaling": scaling, "real_data": real, "ratios": ratios, "signed": signed_medians,
        "plots": plots,
    });
    super::write_report(args.json.as_deref(), &report)?;
    Ok(0)
}

/// pbmc68k_reduced with the human TFs it holds: the share of our top-k edges (boosting)
/// that Pathway Commons lists, and that share among all candidate edges of the same TFs.
fn real_data(max_k: usize) -> anyhow::Result<Value> {
    let cancel = CancelToken::new();
    let file =
        |name: &str, ends: &str| catalogue::find(name)?.fetch_file(ends, &NoProgress, &cancel);
    let m = cellwright_data::h5ad::read(&file("pbmc68k_reduced", ".h5ad")?)?;
    let tfs = catalogue::human_tfs(&NoProgress, &cancel)?;
    let regulons = Regulons::read(&file("pathway-commons-regulons", ".pkl")?)?;
    let options = Options {
        drop_constant: true,
        ignore_missing_regulators: true,
        ..Options::default()
    };
    let started = Instant::now();
    let net = cellwright_grn::infer(&m, Some(&tfs), &options, &NoProgress, &cancel)?;
    let seconds = started.elapsed().as_secs_f64();
    let known = |r: usize, t: usize| {
        regulons.targets_of(&net.genes[r]).is_ok_and(|targets| {
            targets
                .iter()
                .any(|i| i.target.eq_ignore_ascii_case(&net.genes[t]))
        })
    };
    let hits: Vec<bool> = net
        .edges
        .iter()
        .map(|e| known(e.regulator, e.target))
        .collect();
    let base = hits.iter().filter(|&&h| h).count() as f64 / hits.len().max(1) as f64;
    let mut precision = serde_json::Map::new();
    let mut over = serde_json::Map::new();
    for k in [100, 500, 1000, 2000].into_iter().filter(|&k| k <= max_k) {
        let k = k.min(hits.len());
        let p = hits[..k].iter().filter(|&&h| h).count() as f64 / k as f64;
        precision.insert(k.to_string(), json!(p));
        over.insert(k.to_string(), json!(p / base));
    }
    let regulators: HashSet<usize> = net.edges.iter().map(|e| e.regulator).collect();
    Ok(json!({
        "cells": m.shape().0, "genes": net.genes.len(), "tfs_in_data": regulators.len(),
        "candidate_edges": hits.len(), "seconds": seconds,
        "random_precision": base, "precision_top": precision, "precision_over_random_top": over,
    }))
}
