#![allow(clippy::unwrap_used)]
use cellwright_core::{CancelToken, NoProgress};
use cellwright_perturb::study::{StudyOptions, run};

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Ok(m) = std::env::var("RULES") {
        rules(&m);
        return;
    }
    let pairs: usize = std::env::var("PAIRS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    for name in &args {
        let (net, _) =
            cellwright_data::catalogue::boolean_model(name, &NoProgress, &CancelToken::default())
                .unwrap();
        let mut options = StudyOptions::default();
        let all = net.len() * (net.len() - 1) / 2;
        options.design.pairs = pairs.min(all);
        for seed in 0..2u64 {
            let r = run(name, &net, seed, &options, &CancelToken::default()).unwrap();
            println!(
                "== {name} seed {seed}: {} genes, {} train, {} test, sim {:.1}s fit {:?}",
                r.genes, r.train, r.test, r.simulate_seconds, r.fit_seconds
            );
            for s in &r.summaries {
                println!(
                    "{:14} {:12} n={:3} r={:6.3} r20={:6.3} mae={:.4} des={:.3} pds={:.3} vcc={:.3}",
                    s.category.name(),
                    s.method,
                    s.perturbations,
                    s.pearson_delta,
                    s.pearson_delta_top20,
                    s.mae,
                    s.des,
                    s.pds,
                    s.vcc_score
                );
            }
        }
    }
}

#[allow(dead_code)]
pub fn rules(name: &str) {
    use cellwright_perturb::*;
    let (net, _) =
        cellwright_data::catalogue::boolean_model(name, &NoProgress, &CancelToken::default())
            .unwrap();
    let mut options = StudyOptions::default();
    options.design.pairs = 40;
    let screen = options
        .design
        .simulate(&net, 0, &NoProgress, &CancelToken::default())
        .unwrap();
    let data = ScreenData::from_matrix(&screen, "perturbation").unwrap();
    let split = Split::gears(&data, options.split, 0).unwrap();
    let m = Mechanistic::fit(
        &data,
        &split.train,
        &options.mechanistic,
        &NoProgress,
        &CancelToken::default(),
    )
    .unwrap();
    let truth = net.to_bnet();
    for r in m.rules() {
        let t = truth
            .lines()
            .find(|l| l.starts_with(&format!("{}, ", r.gene)))
            .unwrap_or("");
        println!(
            "{:>10} err {:.3}  learned {:40}  true {}",
            r.gene, r.error, r.rule, t
        );
    }
}
