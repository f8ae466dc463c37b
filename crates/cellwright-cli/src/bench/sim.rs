//! `cellwright bench sim`: cells per second of the stochastic ODEs on five published models of
//! growing size, against the same equations vectorised in NumPy (`bench/sim_numpy.py`), same
//! models, rates, step, steps and cells, timed in the same run. A noise-free run of both first
//! checks that they integrate the same equations.

use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::catalogue;
use cellwright_sim::{Perturbation, Settings, Simulator};
use serde_json::{Value, json};

use super::{BenchArgs, peer_python, python_json};

const SCRIPT: &str = include_str!("../../../../bench/sim_numpy.py");
const REQUIREMENTS: &str = "numpy==2.4.6\n";
const MODELS: [&str; 5] = [
    "raf",
    "xiao_wnt5a",
    "krumsiek_myeloid",
    "dahlhaus_neuroplastoma",
    "selvaggio_emt",
];
const DT: f64 = 0.01;
const CHECK_STEPS: usize = 300;

fn seconds_on(
    threads: usize,
    work: impl FnOnce() -> anyhow::Result<()> + Send,
) -> anyhow::Result<f64> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let started = Instant::now();
    pool.install(work)?;
    Ok(started.elapsed().as_secs_f64())
}

pub fn run(args: BenchArgs) -> anyhow::Result<u8> {
    let (cells, steps) = if args.quick { (200, 500) } else { (1000, 2000) };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let bar = crate::progress::spinner();
    let cancel = CancelToken::new();
    let mut specs = Vec::new();
    let mut ours = serde_json::Map::new();
    for name in MODELS {
        bar.set_message(format!("ours: {name}"));
        let (net, _) = catalogue::boolean_model(name, &NoProgress, &cancel)?;
        let settings = Settings {
            duration: steps as f64 * DT,
            dt: DT,
            ..Settings::default()
        };
        let sim = Simulator::new(&net, settings.clone(), 1)?;
        let groups = [(Perturbation::control(), cells)];
        let run = || -> anyhow::Result<()> {
            sim.run(&groups, &NoProgress, &cancel)?;
            Ok(())
        };
        let all = seconds_on(threads, run)?;
        let one = seconds_on(1, run)?;
        // The noise-free check: the same start, steps and rates.
        let quiet = Simulator::new(
            &net,
            Settings {
                noise: 0.0,
                duration: CHECK_STEPS as f64 * DT,
                ..settings
            },
            1,
        )?;
        let check = quiet.run(&[(Perturbation::control(), 1)], &NoProgress, &cancel)?;
        let mut spec = serde_json::to_value(sim.model())?;
        spec["name"] = json!(name);
        specs.push(spec);
        ours.insert(
            name.into(),
            json!({
                "nodes": net.len(),
                "seconds": all,
                "seconds_one_thread": one,
                "cells_per_s": cells as f64 / all,
                "check_final_mrna": check.mrna.row(0).to_vec(),
            }),
        );
    }

    let mut ratios = serde_json::Map::new();
    let mut peer = Value::Null;
    if args.no_peer {
        bar.println("peer skipped (--no-peer)");
    } else {
        let python = peer_python("numpy", REQUIREMENTS, &bar)?;
        let work = tempfile::tempdir()?;
        let script = work.path().join("sim_numpy.py");
        std::fs::write(&script, SCRIPT)?;
        let spec = work.path().join("spec.json");
        std::fs::write(
            &spec,
            serde_json::to_string(&json!({
                "models": specs, "cells": cells, "steps": steps, "dt": DT, "sigma": 1.0,
                "seed": 1, "check_steps": CHECK_STEPS,
            }))?,
        )?;
        bar.set_message("peer: the same equations in NumPy");
        let p = python_json(Command::new(python).arg(&script).arg("--spec").arg(&spec))?;
        // Per precision, each model's ratio; the headline is single precision, as ours.
        let mut medians = Vec::new();
        for (dtype, key) in [("float32", ""), ("float64", "_f64")] {
            let mut per_model = Vec::new();
            for name in MODELS {
                let theirs = &p["models"][name][dtype];
                let mine = &ours[name];
                let t = theirs["seconds"].as_f64().context("peer seconds")?;
                let diff = max_abs_diff(&theirs["check_final_mrna"], &mine["check_final_mrna"]);
                if diff.is_nan() || diff > 1e-3 {
                    anyhow::bail!(
                        "{name}: NumPy ({dtype}) and ours disagree without noise (max |Δ| {diff})"
                    );
                }
                let ratio = t / mine["seconds"].as_f64().unwrap_or(f64::NAN);
                let single = t / mine["seconds_one_thread"].as_f64().unwrap_or(f64::NAN);
                ratios.insert(format!("sim_numpy{key}_over_ours_{name}"), json!(ratio));
                ratios.insert(
                    format!("sim_numpy{key}_over_ours_one_thread_{name}"),
                    json!(single),
                );
                ours[name][format!("check_max_abs_diff_{dtype}")] = json!(diff);
                per_model.push(ratio);
            }
            per_model.sort_by(f64::total_cmp);
            medians.push((
                format!("sim_numpy{key}_over_ours"),
                per_model[per_model.len() / 2],
            ));
        }
        for (k, v) in medians {
            ratios.insert(k, json!(v));
        }
        peer = p;
    }
    bar.finish_and_clear();
    println!("{cells} cells × {steps} steps of {DT}, {threads} threads (seconds)");
    for name in MODELS {
        let o = &ours[name];
        println!(
            "  {name:<24} {:>3} nodes  ours {:>7.3} (1 thread {:>7.3})  numpy (f32) {:>8}",
            o["nodes"],
            o["seconds"].as_f64().unwrap_or(f64::NAN),
            o["seconds_one_thread"].as_f64().unwrap_or(f64::NAN),
            peer["models"][name]["float32"]["seconds"]
                .as_f64()
                .map_or_else(|| "-".into(), |s| format!("{s:.3}"))
        );
    }
    for (k, v) in &ratios {
        println!("  {k}: {:.1}", v.as_f64().unwrap_or(f64::NAN));
    }
    let report = json!({
        "bench": "sim", "quick": args.quick, "cells": cells, "steps": steps, "dt": DT,
        "threads": threads, "ours": ours, "peer": peer, "ratios": ratios,
    });
    super::write_report(args.json.as_deref(), &report)?;
    Ok(0)
}

/// The largest absolute difference between two JSON arrays of numbers (NaN if either is not
/// one, or they differ in length).
fn max_abs_diff(a: &Value, b: &Value) -> f64 {
    match (a.as_array(), b.as_array()) {
        (Some(a), Some(b)) if a.len() == b.len() => a
            .iter()
            .zip(b)
            .map(|(a, b)| (a.as_f64().unwrap_or(f64::NAN) - b.as_f64().unwrap_or(f64::NAN)).abs())
            .fold(0.0, |m, d| if d > m || d.is_nan() { d } else { m }),
        _ => f64::NAN,
    }
}
