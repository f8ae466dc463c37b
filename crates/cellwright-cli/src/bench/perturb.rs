//! `cellwright bench perturb`: perturbation-response models against the published baselines
//! on simulated screens of published Boolean models (cellwright-perturb's `study`), with the
//! ceiling (the true model simulated again with another seed).
//!
//! Per model and seed: a screen of every single knockout and overexpression plus double
//! knockouts, split GEARS's way; every method scored per category (Pearson delta on all
//! genes and on the top 20 observed changes, MAE, DES, PDS, the VCC score); fit times;
//! scatter plots of predicted against observed top-20 deltas. "Ours" is the ensemble (the
//! mechanistic, neural, linear and opposite models weighted by stacking on the training
//! perturbations); the mechanistic, neural and opposite models alone are reported too.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Context;
use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::catalogue;
use cellwright_eval::plot::{Axes, scatter};
use cellwright_perturb::Category;
use cellwright_perturb::study::{self, StudyOptions, StudyRun};
use serde_json::{Value, json};

use super::BenchArgs;

/// Published models, smallest first.
const MODELS: [&str; 5] = [
    "krumsiek_myeloid",
    "arellano_rootstem",
    "tournier_apoptosis",
    "dahlhaus_neuroplastoma",
    "calzone_cellfate",
];
const BASELINES: [&str; 4] = ["no_change", "train_mean", "additive", "linear"];
const OURS: &str = "ensemble";
const PLOTTED: [&str; 5] = ["linear", "mechanistic", "neural", "ensemble", "ceiling"];

/// The mean of `metric` for `method` in `category` over `runs`.
fn pooled(runs: &[StudyRun], method: &str, category: Category, metric: &str) -> f64 {
    let values: Vec<f64> = runs
        .iter()
        .flat_map(|r| &r.summaries)
        .filter(|s| s.method == method && s.category == category)
        .filter_map(|s| serde_json::to_value(s).ok()?.get(metric)?.as_f64())
        .filter(|v| v.is_finite())
        .collect();
    values.iter().sum::<f64>() / values.len() as f64
}

/// The best baseline's pooled `metric` in `category`, and its name.
fn best_baseline(runs: &[StudyRun], category: Category, metric: &str) -> (f64, &'static str) {
    BASELINES
        .iter()
        .map(|b| (pooled(runs, b, category, metric), *b))
        .filter(|(v, _)| v.is_finite())
        .fold((f64::NAN, ""), |best, x| {
            if best.0.is_nan() || x.0 > best.0 {
                x
            } else {
                best
            }
        })
}

/// Mean PDS of `method` over every test perturbation of `runs`.
fn pds_all(runs: &[StudyRun], method: &str) -> f64 {
    let values: Vec<f64> = runs
        .iter()
        .flat_map(|r| &r.scored)
        .filter(|s| s.method == method && s.pds.is_finite())
        .map(|s| s.pds)
        .collect();
    values.iter().sum::<f64>() / values.len() as f64
}

fn plot(runs: &[StudyRun], dir: &std::path::Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for run in runs.iter().filter(|r| r.seed == runs[0].seed) {
        for method in PLOTTED {
            let (mut points, mut labels) = (Vec::new(), Vec::new());
            for s in run.scored.iter().filter(|s| s.method == method) {
                for (p, o) in s.predicted_top20.iter().zip(&s.observed_top20) {
                    points.push((*o, *p));
                    labels.push(s.category.name().to_owned());
                }
            }
            let file = dir.join(format!("scatter-{}-{method}.svg", super::slug(&run.model)));
            let title = format!("{} (seed {}): {method}, top-20 genes", run.model, run.seed);
            let axes = Axes {
                title: &title,
                x: "observed delta from control",
                y: "predicted delta",
                log_x: false,
                log_y: false,
            };
            scatter(&file, &axes, &points, &labels)?;
            files.push(file);
        }
    }
    Ok(files)
}

pub fn run(args: BenchArgs) -> anyhow::Result<u8> {
    let cancel = crate::ask::cancel_on_signals();
    let models: &[&str] = if args.quick { &MODELS[..2] } else { &MODELS };
    let seeds: &[u64] = if args.quick { &[0] } else { &[0, 1, 2] };
    let plots = match &args.json {
        Some(path) => path.with_extension("plots"),
        None => PathBuf::from("bench-perturb.plots"),
    };
    std::fs::create_dir_all(&plots).with_context(|| format!("creating {}", plots.display()))?;
    let bar = indicatif::ProgressBar::new((models.len() * seeds.len()) as u64);
    let mut runs = Vec::new();
    for model in models {
        let (net, source) = catalogue::boolean_model(model, &NoProgress, &CancelToken::new())?;
        let mut options = StudyOptions::default();
        // Enough pairs that every run has pairs of two unseen genes to score (with 40 there
        // were one to six per run) and the models train on combinations.
        options.design.pairs = 120.min(net.len() * (net.len() - 1) / 2);
        for &seed in seeds {
            bar.set_message(format!("{model}, seed {seed}"));
            let run = study::run(model, &net, seed, &options, &cancel)
                .with_context(|| format!("{model} ({source}), seed {seed}"))?;
            bar.inc(1);
            bar.suspend(|| print_run(&run));
            runs.push(run);
        }
    }
    bar.finish_and_clear();
    let files = plot(&runs, &plots)?;

    let metric = "pearson_delta_top20";
    let mut per_category = BTreeMap::new();
    for category in Category::ALL {
        let (best, name) = best_baseline(&runs, category, metric);
        let ours = pooled(&runs, OURS, category, metric);
        let mechanistic = pooled(&runs, "mechanistic", category, metric);
        let neural = pooled(&runs, "neural", category, metric);
        let opposite = pooled(&runs, "opposite", category, metric);
        let (best_all, _) = best_baseline(&runs, category, "pearson_delta");
        let ours_all = pooled(&runs, OURS, category, "pearson_delta");
        let ceiling_all = pooled(&runs, "ceiling", category, "pearson_delta");
        // Per model and seed: does ours beat that run's best baseline?
        let wins: Vec<bool> = runs
            .iter()
            .filter_map(|r| {
                let one = std::slice::from_ref(r);
                let (b, _) = best_baseline(one, category, metric);
                let o = pooled(one, OURS, category, metric);
                (b.is_finite() && o.is_finite()).then_some(o > b)
            })
            .collect();
        per_category.insert(
            category.name(),
            json!({
                "best_baseline": name, "best_baseline_value": best, "ours": ours,
                "mechanistic": mechanistic, "neural": neural, "opposite": opposite,
                "ceiling": pooled(&runs, "ceiling", category, metric),
                "ours_over_best_baseline": ours / best,
                "mechanistic_over_best_baseline": mechanistic / best,
                "neural_over_best_baseline": neural / best,
                "gap_closed": (ours_all - best_all) / (ceiling_all - best_all),
                "runs_won": wins.iter().filter(|w| **w).count(), "runs": wins.len(),
            }),
        );
    }
    // Per model, over its seeds: where we win and where we lose.
    let mut per_model = Vec::new();
    println!("\nper model (Pearson delta, top 20; ours / best baseline / ceiling)");
    for model in models {
        let these: Vec<StudyRun> = runs.iter().filter(|r| r.model == *model).cloned().collect();
        let mut line = format!("  {model:<24}");
        for category in Category::ALL {
            let (best, name) = best_baseline(&these, category, metric);
            let ours = pooled(&these, OURS, category, metric);
            let ceiling = pooled(&these, "ceiling", category, metric);
            line.push_str(&format!(
                " {}: {ours:.2}/{best:.2}/{ceiling:.2}",
                category.name()
            ));
            per_model.push(json!({
                "model": model, "category": category.name(), "ours": ours,
                "best_baseline": name, "best_baseline_value": best, "ceiling": ceiling,
            }));
        }
        println!("{line}");
    }
    let best_pds = BASELINES
        .iter()
        .map(|b| pds_all(&runs, b))
        .fold(f64::NAN, f64::max);
    let ratio = |category: &str, key: &str| per_category[category][key].clone();
    let report = json!({
        "bench": "perturb",
        "quick": args.quick,
        "models": models,
        "seeds": seeds,
        "ours": OURS,
        "categories": per_category,
        "per_model": per_model,
        // Per run, everything but the per-perturbation scores (those are plotted instead).
        "runs": runs.iter().map(|r| {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            if let Some(o) = v.as_object_mut() {
                o.remove("scored");
            }
            v
        }).collect::<Vec<_>>(),
        "plots": files,
        "ratios": {
            "pearson_delta_top20_ours_over_best_baseline_unseen_single": ratio("unseen_single", "ours_over_best_baseline"),
            "pearson_delta_top20_ours_over_best_baseline_pairs_seen0": ratio("pairs_seen0", "ours_over_best_baseline"),
            "pearson_delta_top20_ours_over_best_baseline_pairs_seen1": ratio("pairs_seen1", "ours_over_best_baseline"),
            "pds_ours_over_best_baseline": pds_all(&runs, OURS) / best_pds,
            "gap_closed_unseen_single": ratio("unseen_single", "gap_closed"),
            "gap_closed_pairs_seen0": ratio("pairs_seen0", "gap_closed"),
        },
    });
    println!("\npooled over {} runs (Pearson delta, top 20)", runs.len());
    for (category, v) in &per_category {
        println!(
            "  {category:<14} ours {:.3}  mechanistic {:.3}  neural {:.3}  opposite {:.3}  best baseline {:.3} ({})  ceiling {:.3}  gap closed {:.2}  runs won {}/{}",
            num(&v["ours"]),
            num(&v["mechanistic"]),
            num(&v["neural"]),
            num(&v["opposite"]),
            num(&v["best_baseline_value"]),
            v["best_baseline"].as_str().unwrap_or(""),
            num(&v["ceiling"]),
            num(&v["gap_closed"]),
            v["runs_won"],
            v["runs"],
        );
    }
    println!("\nratios");
    for (k, v) in report["ratios"].as_object().into_iter().flatten() {
        println!("  {k:<60} {:.3}", num(v));
    }
    println!("plots in {}", plots.display());
    super::write_report(args.json.as_deref(), &report)?;
    Ok(0)
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn print_run(run: &StudyRun) {
    println!(
        "\n{} (seed {}): {} genes, {} training and {} test perturbations; simulated in {:.1} s; fit {}",
        run.model,
        run.seed,
        run.genes,
        run.train,
        run.test,
        run.simulate_seconds,
        run.fit_seconds
            .iter()
            .map(|(m, s)| format!("{m} {s:.2} s"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if let Some(s) = &run.stacking {
        let weights: Vec<String> = s
            .members
            .iter()
            .zip(&s.weights)
            .map(|(m, w)| format!("{m} {w:.2}"))
            .collect();
        println!(
            "  ensemble weights (stacked on {} held-out training perturbations): {}",
            s.held_out,
            weights.join(", ")
        );
    }
    crate::perturb_cmd::print_summaries(&run.summaries);
}
