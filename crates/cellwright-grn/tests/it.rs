//! cellwright-grn on cells simulated from a published Boolean model: the tree and neural
//! methods find its edges far better than chance, a seed gives the same network on one thread and on two,
//! and bad input is refused with a clear error.

#![allow(clippy::unwrap_used)]

use std::collections::HashSet;

use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::catalogue;
use cellwright_data::matrix::{ExpressionMatrix, Values};
use cellwright_eval::{Scored, metrics};
use cellwright_grn::{GrnError, Method, Network, Options, infer};
use cellwright_sim::{Design, Perturbation, Settings, Simulator};
use ndarray::Array2;

/// Myeloid cells along their trajectories, and the model's regulators and edges.
fn myeloid(cells: usize) -> (ExpressionMatrix, Vec<String>, HashSet<(String, String)>) {
    let (net, _) =
        catalogue::boolean_model("krumsiek_myeloid", &NoProgress, &CancelToken::new()).unwrap();
    let settings = Settings {
        design: Design::Trajectory,
        ..Settings::default()
    };
    let sim = Simulator::new(&net, settings, 1).unwrap();
    let cells = sim
        .run(
            &[(Perturbation::control(), cells)],
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
    let truth: HashSet<(String, String)> = cells
        .edges
        .iter()
        .filter(|e| e.from != e.to)
        .map(|e| (e.from.clone(), e.to.clone()))
        .collect();
    let mut regulators: Vec<String> = truth.iter().map(|(r, _)| r.clone()).collect();
    regulators.sort();
    regulators.dedup();
    (cells.expression().unwrap(), regulators, truth)
}

fn scored(net: &Network, truth: &HashSet<(String, String)>) -> Vec<Scored> {
    net.edges
        .iter()
        .map(|e| Scored {
            score: e.score,
            truth: truth.contains(&(net.genes[e.regulator].clone(), net.genes[e.target].clone())),
        })
        .collect()
}

#[test]
fn tree_methods_find_the_model_edges_far_better_than_chance() {
    let (m, regulators, truth) = myeloid(500);
    let run = |method| {
        let options = Options {
            method,
            forest: cellwright_grn::Forest { trees: 100 },
            ..Options::default()
        };
        infer(
            &m,
            Some(&regulators),
            &options,
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap()
    };
    let mut auprc = std::collections::BTreeMap::new();
    for method in Method::ALL {
        let net = run(method);
        // Every regulator → other gene edge, once.
        assert_eq!(net.edges.len(), regulators.len() * (m.shape().1 - 1));
        let metrics = metrics(&scored(&net, &truth)).unwrap();
        eprintln!("{}: {metrics:?}", method.name());
        auprc.insert(method.name(), metrics.auprc_ratio);
    }
    // A random ranking's AUPRC ratio is 1 in expectation.
    for method in ["boost", "forest", "neural"] {
        assert!(
            auprc[method] > 1.4 && auprc[method] > auprc["random"],
            "{method}: {auprc:?}"
        );
    }
    let tsv = run(Method::Boost).to_tsv();
    assert!(tsv.starts_with("regulator\ttarget\tscore\n"));
    assert_eq!(tsv.lines().count(), regulators.len() * 10 + 1);
}

#[test]
fn a_seed_gives_the_same_network_on_one_thread_and_on_two() {
    let (m, regulators, _) = myeloid(200);
    for method in [
        Method::Boost,
        Method::Forest,
        Method::Neural,
        Method::Random,
    ] {
        let options = Options {
            method,
            seed: 3,
            forest: cellwright_grn::Forest { trees: 20 },
            ..Options::default()
        };
        let on = |threads| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                infer(
                    &m,
                    Some(&regulators),
                    &options,
                    &NoProgress,
                    &CancelToken::new(),
                )
                .unwrap()
            })
        };
        let (one, two) = (on(1), on(2));
        assert_eq!(one.edges, two.edges, "{}", method.name());
        assert_eq!(one.trees, two.trees);
        let other = infer(
            &m,
            Some(&regulators),
            &Options { seed: 4, ..options },
            &NoProgress,
            &CancelToken::new(),
        )
        .unwrap();
        assert_ne!(one.edges, other.edges, "{}", method.name());
    }
}

fn matrix(rows: Vec<Vec<f32>>, genes: &[&str]) -> ExpressionMatrix {
    let (n, g) = (rows.len(), genes.len());
    let x = Array2::from_shape_fn((n, g), |(c, j)| rows[c][j]);
    ExpressionMatrix::new(
        Values::Dense(x),
        (0..n).map(|c| format!("c{c}")).collect(),
        genes.iter().map(|s| s.to_string()).collect(),
    )
    .unwrap()
}

#[test]
fn bad_input_is_a_clear_error() {
    let run = |m: &ExpressionMatrix, regs: Option<&[String]>, options: &Options| {
        infer(m, regs, options, &NoProgress, &CancelToken::new())
    };
    let opts = Options::default();
    let two = matrix(vec![vec![1.0, 2.0], vec![2.0, 1.0]], &["A", "B"]);
    let bad_rate = Options {
        boost: cellwright_grn::Boosting {
            learning_rate: f64::NAN,
            ..Default::default()
        },
        ..Options::default()
    };
    let err = run(&two, None, &bad_rate).unwrap_err();
    assert!(err.to_string().contains("learning_rate"), "{err}");
    let no_hidden = Options {
        method: Method::Neural,
        neural: cellwright_grn::Neural {
            hidden: 0,
            ..Default::default()
        },
        ..Options::default()
    };
    let err = run(&two, None, &no_hidden).unwrap_err();
    assert!(err.to_string().contains("neural.hidden"), "{err}");
    let one_cell = matrix(vec![vec![1.0, 2.0]], &["A", "B"]);
    assert!(matches!(
        run(&one_cell, None, &opts),
        Err(GrnError::TooFewCells { cells: 1 })
    ));
    let nan = matrix(vec![vec![1.0, 2.0], vec![f32::NAN, 1.0]], &["A", "B"]);
    let err = run(&nan, None, &opts).unwrap_err();
    assert!(
        err.to_string().contains("gene A") && err.to_string().contains("cell c1"),
        "{err}"
    );

    let rows = vec![
        vec![1.0, 5.0, 0.0, 2.0],
        vec![2.0, 5.0, 1.0, 1.0],
        vec![3.0, 5.0, 0.0, 3.0],
    ];
    let constant = matrix(rows, &["A", "FLAT", "B", "C"]);
    let err = run(&constant, None, &opts).unwrap_err();
    assert!(matches!(err, GrnError::Constant { count: 1, .. }), "{err}");
    assert!(err.to_string().contains("FLAT") && err.to_string().contains("--drop-constant"));
    let dropped = Options {
        drop_constant: true,
        method: Method::Pearson,
        ..Options::default()
    };
    let net = run(&constant, None, &dropped).unwrap();
    assert_eq!(net.dropped_constant, vec!["FLAT"]);
    assert_eq!(net.genes, vec!["A", "B", "C"]);

    let tfs: Vec<String> = vec!["A".into(), "GATA9".into()];
    let err = run(&constant, Some(&tfs), &dropped).unwrap_err();
    assert!(
        matches!(err, GrnError::MissingRegulators { count: 1, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("GATA9"));
    let lenient = Options {
        ignore_missing_regulators: true,
        ..dropped.clone()
    };
    let net = run(&constant, Some(&tfs), &lenient).unwrap();
    assert_eq!(net.missing_regulators, vec!["GATA9"]);
    assert!(net.edges.iter().all(|e| net.genes[e.regulator] == "A"));
    let none: Vec<String> = vec!["FLAT".into()];
    let err = run(&constant, Some(&none), &lenient).unwrap_err();
    assert!(err.to_string().contains("none of the regulators"), "{err}");
}
