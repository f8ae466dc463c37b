//! cellwright-sim against the Boolean models it comes from: noise-free steady states are the
//! Boolean fixed points, knockouts move them as the Boolean knockouts do, a seed gives the
//! same cells on any number of threads, and counts have the mean–variance relation and the
//! zeros their distribution promises.

#![allow(clippy::unwrap_used)]

use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::boolean::BooleanNetwork;
use cellwright_data::catalogue;
use cellwright_sim::{
    CountNoise, Design, Initial, Perturbation, Settings, SimError, Simulation, Simulator,
};
use ndarray::Array2;

fn model(name: &str) -> BooleanNetwork {
    catalogue::boolean_model(name, &NoProgress, &CancelToken::new())
        .unwrap_or_else(|e| panic!("{name}: {e} (run `cellwright data fetch pyboolnet-models`)"))
        .0
}

fn bits(net: &BooleanNetwork, state: u64) -> Vec<bool> {
    (0..net.len()).map(|i| state >> i & 1 == 1).collect()
}

/// Each node on when its mRNA is above half of the maximum (2 by default).
fn pattern(levels: &[f64]) -> Vec<bool> {
    levels.iter().map(|&x| x > 1.0).collect()
}

fn on_nodes(net: &BooleanNetwork, state: &[bool]) -> Vec<String> {
    net.nodes()
        .iter()
        .zip(state)
        .filter(|(_, on)| **on)
        .map(|(n, _)| n.clone())
        .collect()
}

const MODELS: [&str; 5] = [
    "krumsiek_myeloid",
    "raf",
    "xiao_wnt5a",
    "arellano_rootstem",
    "davidich_yeast",
];

#[test]
fn noise_free_steady_states_are_the_boolean_fixed_points() {
    for name in MODELS {
        let net = model(name);
        let fixed = net.fixed_points().unwrap();
        assert!(!fixed.is_empty(), "{name} has no fixed point");
        for seed in [1, 2] {
            let sim = Simulator::new(&net, Settings::default(), seed).unwrap();
            for &state in &fixed {
                let start = bits(&net, state);
                let reached = sim
                    .steady_state(&Perturbation::control(), Some(&start))
                    .unwrap();
                assert_eq!(
                    on_nodes(&net, &pattern(&reached)),
                    on_nodes(&net, &start),
                    "{name}, seed {seed}: the ODE left the Boolean fixed point (levels {reached:?})"
                );
            }
        }
    }
}

/// The single-precision vector integration of cells (`run`) without noise lands where the
/// double-precision Euler steps of `steady_state` do: from every Boolean fixed point, and from
/// BoolODE's half-maximal start where that settles.
#[test]
fn cells_without_noise_settle_where_the_double_precision_steady_state_does() {
    let mut from_half_max = 0;
    for name in MODELS {
        let net = model(name);
        let mut starts: Vec<Option<Vec<bool>>> = net
            .fixed_points()
            .unwrap()
            .into_iter()
            .map(|s| Some(bits(&net, s)))
            .collect();
        starts.push(None);
        for start in starts {
            let settings = Settings {
                noise: 0.0,
                duration: 40.0,
                initial: start.clone().map_or(Initial::HalfMax, Initial::State),
                ..Settings::default()
            };
            let sim = Simulator::new(&net, settings, 4).unwrap();
            let want = match sim.steady_state(&Perturbation::control(), start.as_deref()) {
                Ok(levels) => levels,
                Err(SimError::NotSettled { .. }) if start.is_none() => continue,
                Err(e) => panic!("{name}: {e}"),
            };
            let cells = sim
                .run(
                    &[(Perturbation::control(), 3)],
                    &NoProgress,
                    &CancelToken::new(),
                )
                .unwrap();
            for (i, &w) in want.iter().enumerate() {
                let got = f64::from(cells.mrna[[2, i]]);
                assert!(
                    (got - w).abs() < 1e-3,
                    "{name} from {start:?}, {}: {got} vs {w}",
                    net.nodes()[i]
                );
            }
            from_half_max += usize::from(start.is_none());
        }
    }
    assert!(
        from_half_max >= 3,
        "only {from_half_max} models settle from half maximum"
    );
}

/// The fixed points that asynchronous updates (one node at a time, any order) can reach from
/// `state`, and whether every path ends in one (no cycle is reachable that never leaves).
fn reachable_fixed_points(net: &BooleanNetwork, state: u64) -> (Vec<u64>, bool) {
    let mut seen = std::collections::HashSet::from([state]);
    let mut todo = vec![state];
    let mut fixed = Vec::new();
    while let Some(s) = todo.pop() {
        let next = net.step(s);
        if next == s {
            fixed.push(s);
            continue;
        }
        for i in 0..net.len() {
            if (next ^ s) >> i & 1 == 1 {
                let t = s ^ 1 << i;
                if seen.insert(t) {
                    todo.push(t);
                }
            }
        }
    }
    fixed.sort_unstable();
    // Every reachable state can reach a fixed point iff no terminal cycle exists; with at
    // most 2^20 states a backward sweep from the fixed points decides it.
    let mut reaches: std::collections::HashSet<u64> = fixed.iter().copied().collect();
    loop {
        let before = reaches.len();
        for &s in &seen {
            if reaches.contains(&s) {
                continue;
            }
            let next = net.step(s);
            if (0..net.len()).any(|i| (next ^ s) >> i & 1 == 1 && reaches.contains(&(s ^ 1 << i))) {
                reaches.insert(s);
            }
        }
        if reaches.len() == before {
            break;
        }
    }
    (fixed, reaches.len() == seen.len())
}

#[test]
fn knockouts_move_the_steady_state_as_the_boolean_knockouts_move_the_fixed_points() {
    // The myeloid model (Krumsiek 2011), by hand: knocking out a lineage's defining factor
    // in its own state turns it into the sister lineage.
    let net = model("krumsiek_myeloid");
    let sim = Simulator::new(&net, Settings::default(), 7).unwrap();
    let state = |on: &[&str]| -> Vec<bool> {
        net.nodes()
            .iter()
            .map(|n| on.contains(&n.as_str()))
            .collect()
    };
    let table: [(&[&str], &str, &[&str]); 3] = [
        // monocyte, PU.1 knocked out: cJun and EgrNab fall, Gfi1 rises.
        (
            &["CEBPA", "PU1", "cJun", "EgrNab"],
            "PU1",
            &["CEBPA", "Gfi1"],
        ),
        // granulocyte, Gfi1 knocked out: cJun and EgrNab rise: a monocyte.
        (
            &["CEBPA", "PU1", "Gfi1"],
            "Gfi1",
            &["CEBPA", "PU1", "cJun", "EgrNab"],
        ),
        // erythrocyte, EKLF knocked out: Fli1 rises: a megakaryocyte.
        (
            &["GATA1", "FOG1", "EKLF", "SCL"],
            "EKLF",
            &["GATA1", "FOG1", "Fli1", "SCL"],
        ),
    ];
    for (from, ko, expected) in table {
        let reached = sim
            .steady_state(&Perturbation::knockout([ko]), Some(&state(from)))
            .unwrap();
        assert_eq!(
            on_nodes(&net, &pattern(&reached)),
            on_nodes(&net, &state(expected)),
            "{ko} knocked out from {from:?}"
        );
    }

    // Every model, every fixed point, every single knockout: the ODE settles in a fixed point
    // that asynchronous updates of the knocked-out network can reach; where only one is
    // reachable, in that one.
    for name in MODELS {
        let net = model(name);
        let sim = Simulator::new(&net, Settings::default(), 3).unwrap();
        let (mut compared, mut unique, mut oscillating) = (0, 0, 0);
        for wild in net.fixed_points().unwrap() {
            for (g, gene) in net.nodes().iter().enumerate() {
                let knocked = net.with_override(gene, false).unwrap();
                let (fixed, always) = reachable_fixed_points(&knocked, wild & !(1 << g));
                if !always {
                    continue;
                }
                let reached = match sim.steady_state(
                    &Perturbation::knockout([gene.as_str()]),
                    Some(&bits(&net, wild)),
                ) {
                    Ok(levels) => pattern(&levels),
                    Err(SimError::NotSettled { .. }) => {
                        oscillating += 1;
                        continue;
                    }
                    Err(e) => panic!("{e}"),
                };
                let candidates: Vec<Vec<bool>> = fixed.iter().map(|&f| bits(&net, f)).collect();
                assert!(
                    candidates.contains(&reached),
                    "{name}: {gene} knocked out from {:?} reached {:?}, not one of {:?}",
                    on_nodes(&net, &bits(&net, wild)),
                    on_nodes(&net, &reached),
                    candidates
                        .iter()
                        .map(|c| on_nodes(&net, c))
                        .collect::<Vec<_>>()
                );
                compared += 1;
                unique += usize::from(candidates.len() == 1);
            }
        }
        assert!(
            unique > 0,
            "{name}: no knockout with a single reachable fixed point"
        );
        // Continuous dynamics may cycle where Boolean ones settle (a cell cycle does); rarely.
        assert!(
            oscillating * 10 <= compared,
            "{name}: {oscillating} of {compared} oscillate"
        );
        eprintln!(
            "{name}: {compared} knockouts compared, {unique} with one reachable fixed point, \
             {oscillating} oscillating"
        );
    }
}

fn screen(sim: &Simulator) -> Simulation {
    let groups = [
        (Perturbation::control(), 40),
        (Perturbation::knockout(["PU1"]), 30),
        (
            Perturbation {
                knockouts: vec!["GATA1".into()],
                overexpressed: vec!["CEBPA".into()],
            },
            30,
        ),
    ];
    sim.run(&groups, &NoProgress, &CancelToken::new()).unwrap()
}

#[test]
fn a_seed_gives_the_same_cells_on_one_thread_and_on_two() {
    let net = model("krumsiek_myeloid");
    let settings = Settings {
        design: Design::Trajectory,
        duration: 5.0,
        ..Settings::default()
    };
    let sim = Simulator::new(&net, settings, 11).unwrap();
    let on = |threads| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| screen(&sim))
    };
    let (one, two) = (on(1), on(2));
    let bytes = |s: &Simulation| -> Vec<u32> { s.mrna.iter().map(|v| v.to_bits()).collect() };
    assert_eq!(bytes(&one), bytes(&two));
    assert_eq!(one.time, two.time);
    let noise = CountNoise::default();
    let counts = |s: &Simulation| s.counts(&noise).unwrap().x().to_dense();
    assert_eq!(counts(&one), counts(&two));

    // A different seed gives different cells; cells differ among themselves.
    let other = Simulator::new(
        &net,
        Settings {
            duration: 5.0,
            ..Settings::default()
        },
        12,
    )
    .unwrap();
    assert_ne!(bytes(&one), bytes(&screen(&other)));
    assert_ne!(one.mrna.row(0), one.mrna.row(1));

    // Annotations: perturbation labels, times inside the run, the seed.
    let m = one.expression().unwrap();
    assert_eq!(m.genes(), net.nodes());
    let labels: Vec<&str> = (0..m.shape().0)
        .map(|i| m.obs_column("perturbation").unwrap().label(i).unwrap())
        .collect();
    assert_eq!(labels[0], "control");
    assert_eq!(labels[40], "PU1 KO");
    assert_eq!(labels[99], "GATA1 KO + CEBPA OE");
    assert!(one.time.iter().all(|&t| t > 0.0 && t <= 5.0 + 1e-9));
    // Knocked-out genes stay at 0, overexpressed ones near their maximum.
    let (pu1, cebpa) = (
        m.gene_position("PU1").unwrap(),
        m.gene_position("CEBPA").unwrap(),
    );
    assert!((40..70).all(|c| one.mrna[[c, pu1]] == 0.0));
    let mean_cebpa: f32 = (70..100).map(|c| one.mrna[[c, cebpa]]).sum::<f32>() / 30.0;
    let mean_ctrl: f32 = (0..40).map(|c| one.mrna[[c, cebpa]]).sum::<f32>() / 40.0;
    assert!(mean_cebpa > mean_ctrl, "{mean_cebpa} vs {mean_ctrl}");
}

#[test]
fn counts_have_the_promised_mean_variance_and_zeros() {
    // Constant mRNA levels per gene, so every cell of a gene shares one mean.
    let (cells, levels) = (20_000, [0.1f32, 0.5, 1.0, 2.0, 4.0]);
    let mrna = Array2::from_shape_fn((cells, levels.len()), |(_, g)| levels[g]);
    for (sdlog, dispersion) in [(0.0, 0.1), (0.4, 0.1), (0.3, 0.0)] {
        let noise = CountNoise {
            library_sdlog: sdlog,
            dispersion,
            ..CountNoise::default()
        };
        let (counts, capture) = noise.sample(&mrna, 2.0, 5).unwrap();
        assert_eq!(capture.len(), cells);
        let dense = counts.to_dense();
        let v = (sdlog * sdlog).exp() - 1.0; // variance of the capture factor
        for (g, &x) in levels.iter().enumerate() {
            let col: Vec<f64> = dense.column(g).iter().map(|&c| f64::from(c)).collect();
            let mean = col.iter().sum::<f64>() / cells as f64;
            let var = col.iter().map(|c| (c - mean).powi(2)).sum::<f64>() / (cells as f64 - 1.0);
            let mu = noise.umis_at_max * f64::from(x) / 2.0;
            let expected_var = mu + mu * mu * (dispersion * (1.0 + v) + v);
            assert!(
                (mean - mu).abs() < 0.03 * mu + 0.01,
                "sdlog {sdlog}: mean {mean} vs {mu}"
            );
            assert!(
                (var - expected_var).abs() < 0.08 * expected_var,
                "sdlog {sdlog}, φ {dispersion}: variance {var} vs {expected_var} at mean {mu}"
            );
            if sdlog == 0.0 {
                let zeros = col.iter().filter(|&&c| c == 0.0).count() as f64 / cells as f64;
                let expected = (1.0 + dispersion * mu).powf(-1.0 / dispersion);
                assert!(
                    (zeros - expected).abs() < 0.015,
                    "zeros {zeros} vs {expected} at {mu}"
                );
            }
        }
    }
}

#[test]
fn bad_input_is_a_clear_error() {
    let net = model("krumsiek_myeloid");
    let sim = Simulator::new(&net, Settings::default(), 1).unwrap();
    let run = |groups: &[(Perturbation, usize)]| {
        sim.run(groups, &NoProgress, &CancelToken::new())
            .unwrap_err()
    };
    let err = run(&[(Perturbation::knockout(["PU.1"]), 5)]);
    assert!(err.to_string().contains("no node named PU.1"), "{err}");
    assert!(
        err.to_string().contains("PU1"),
        "suggests the close name: {err}"
    );
    let err = run(&[(
        Perturbation {
            knockouts: vec!["PU1".into()],
            overexpressed: vec!["PU1".into()],
        },
        5,
    )]);
    assert!(
        err.to_string()
            .contains("both knocked out and overexpressed"),
        "{err}"
    );
    assert!(
        run(&[(Perturbation::control(), 0)])
            .to_string()
            .contains("no cells")
    );
    assert!(run(&[]).to_string().contains("no perturbations"));

    let empty = BooleanNetwork::parse_bnet("", "empty.bnet");
    if let Ok(empty) = empty {
        assert!(matches!(
            Simulator::new(&empty, Settings::default(), 1),
            Err(SimError::Empty)
        ));
    }
    for settings in [
        Settings {
            dt: 0.0,
            ..Settings::default()
        },
        Settings {
            duration: -1.0,
            ..Settings::default()
        },
        Settings {
            noise: f64::NAN,
            ..Settings::default()
        },
    ] {
        assert!(matches!(
            Simulator::new(&net, settings, 1),
            Err(SimError::Invalid(_))
        ));
    }
    let cancel = CancelToken::new();
    cancel.cancel();
    assert!(matches!(
        sim.run(&[(Perturbation::control(), 10)], &NoProgress, &cancel),
        Err(SimError::Cancelled)
    ));
}
