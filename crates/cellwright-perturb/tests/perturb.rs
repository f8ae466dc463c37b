#![allow(clippy::unwrap_used)]

use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::boolean::BooleanNetwork;
use cellwright_perturb::{
    Additive, Category, Fitted, Group, Linear, Mechanistic, MechanisticOptions, Method, Neural,
    NeuralOptions, Opposite, PerturbError, Predictor, ScreenData, ScreenDesign, Split,
    SplitOptions, TrainMean,
};
use cellwright_sim::{CountNoise, Perturbation, Settings, Simulator};
use ndarray::Array2;

fn constant_cells(profile: &[f32], cells: usize) -> Array2<f32> {
    Array2::from_shape_fn((cells, profile.len()), |(_, g)| profile[g])
}

fn genes(names: &[&str]) -> Vec<String> {
    names.iter().map(|s| s.to_string()).collect()
}

fn pair(a: &str, b: &str) -> Perturbation {
    Perturbation::knockout([a, b])
}

/// Control at 1 everywhere; A KO and B KO move different genes; their pair is their sum.
fn additive_screen() -> ScreenData {
    let control = [1.0f32, 1.0, 1.0, 1.0];
    let a = [0.0f32, 1.5, 1.0, 1.0];
    let b = [1.0f32, 0.0, 0.2, 1.0];
    let ab = [0.0f32, 0.5, 0.2, 1.0];
    let groups = vec![
        Group {
            perturbation: Perturbation::knockout(["A"]),
            cells: constant_cells(&a, 4),
        },
        Group {
            perturbation: Perturbation::knockout(["B"]),
            cells: constant_cells(&b, 4),
        },
        Group {
            perturbation: pair("B", "A"),
            cells: constant_cells(&ab, 4),
        },
    ];
    ScreenData::new(
        genes(&["A", "B", "C", "D"]),
        constant_cells(&control, 6),
        groups,
    )
    .unwrap()
}

#[test]
fn a_purely_additive_pair_is_predicted_exactly_by_the_additive_baseline() {
    let data = additive_screen();
    let additive = Additive::fit(&data, &[0, 1]).unwrap();
    let predicted = additive.predict(&pair("A", "B")).unwrap();
    let observed = data.delta(data.find(&pair("A", "B")).unwrap());
    for (p, o) in predicted.iter().zip(observed) {
        assert!((p - o).abs() < 1e-6, "{predicted:?} vs {observed:?}");
    }
    // An item never seen alone adds nothing; the train mean ignores what is perturbed.
    let only_a = Additive::fit(&data, &[0]).unwrap();
    let p = only_a.predict(&pair("A", "B")).unwrap();
    assert!((p[1] - 0.5).abs() < 1e-6 && p[0] == -1.0, "{p:?}");
    let mean = TrainMean::fit(&data, &[0, 1]).unwrap();
    assert_eq!(
        mean.predict(&pair("A", "B")).unwrap(),
        mean.predict(&Perturbation::knockout(["C"])).unwrap()
    );
}

/// Gene A is on (2.0, lifting B to 1.5) in three of four control cells and off (0.0, B at
/// 0.5) in the fourth. Overexpressing A turns every cell on; knocking it out turns every cell
/// off, a change three times as large the other way.
fn mixture_screen() -> ScreenData {
    let (on, off) = ([2.0f32, 1.5, 0.25], [0.0f32, 0.5, 0.25]);
    let mut control = constant_cells(&on, 4);
    control.row_mut(3).assign(&ndarray::arr1(&off));
    let group = |p: Perturbation, profile: &[f32]| Group {
        perturbation: p,
        cells: constant_cells(profile, 4),
    };
    let oe_a = Perturbation {
        knockouts: Vec::new(),
        overexpressed: vec!["A".into()],
    };
    let groups = vec![
        group(oe_a, &on),
        group(Perturbation::knockout(["A"]), &off),
        group(Perturbation::knockout(["C"]), &[2.0, 1.5, 0.0]),
    ];
    ScreenData::new(genes(&["A", "B", "C"]), control, groups).unwrap()
}

#[test]
fn a_knockout_is_read_from_its_overexpression_as_a_mixture_of_on_and_off_cells() {
    let data = mixture_screen();
    // Trained on A OE and C KO only: A KO is predicted from A OE, scaled by −f/(1 − f) = −3.
    let opposite = Opposite::fit(&data, &[0, 2]).unwrap();
    let predicted = opposite.predict(&Perturbation::knockout(["A"])).unwrap();
    let observed = data.delta(1);
    for (p, o) in predicted.iter().zip(observed) {
        assert!((p - o).abs() < 1e-5, "{predicted:?} vs {observed:?}");
    }
    // C was never overexpressed: its knockout adds nothing, so the pair is A KO's part alone.
    let both = opposite.predict(&pair("A", "C")).unwrap();
    assert_eq!(both, predicted);
    let c_oe = Perturbation {
        knockouts: Vec::new(),
        overexpressed: vec!["C".into()],
    };
    // C OE is read from C KO with the plain mirror (C sits at its highest in control, so no
    // mixture can be read from its levels): minus C KO's delta.
    let mirrored = opposite.predict(&c_oe).unwrap();
    for (m, o) in mirrored.iter().zip(data.delta(2)) {
        assert!((m + o).abs() < 1e-6, "{mirrored:?}");
    }
    assert!(matches!(
        opposite.predict(&Perturbation::knockout(["Z"])),
        Err(PerturbError::UnknownGene { .. })
    ));
}

#[test]
fn bad_input_gets_named_errors() {
    let data = additive_screen();
    let linear = Linear::fit(&data, &[0, 1, 2]).unwrap();
    let e = linear.predict(&Perturbation::knockout(["Z"])).unwrap_err();
    assert!(
        matches!(e, PerturbError::UnknownGene { ref gene, .. } if gene == "Z"),
        "{e}"
    );
    assert!(
        TrainMean::fit(&data, &[])
            .unwrap_err()
            .to_string()
            .contains("no training")
    );
    assert!(TrainMean::fit(&data, &[7]).is_err());
    // A training group the screen does not have is named, by every reader of the cells.
    for e in [
        data.range(&[0, 7]).unwrap_err(),
        data.pooled(&[0, 7]).map(|_| ()).unwrap_err(),
    ] {
        assert!(e.to_string().contains("training group 7"), "{e}");
    }
    // A matrix without control cells, and one without the column.
    let m = cellwright_data::matrix::ExpressionMatrix::new(
        cellwright_data::matrix::Values::Dense(Array2::zeros((2, 1))),
        genes(&["c1", "c2"]),
        genes(&["A"]),
    )
    .unwrap();
    let e = ScreenData::from_matrix(&m, "perturbation").unwrap_err();
    assert!(e.to_string().contains("obs.perturbation"), "{e}");
    let mut labelled = m.clone();
    labelled.obs.push((
        "perturbation".into(),
        cellwright_data::matrix::Column::Text(genes(&["A KO", "A KO"])),
    ));
    let e = ScreenData::from_matrix(&labelled, "perturbation").unwrap_err();
    assert!(matches!(e, PerturbError::EmptyControl), "{e}");
    // A screen design naming a gene the network lacks.
    let net = cascade();
    let design = ScreenDesign {
        genes: genes(&["A", "Q"]),
        ..ScreenDesign::default()
    };
    let e = design
        .simulate(&net, 0, &NoProgress, &CancelToken::default())
        .unwrap_err();
    assert!(e.to_string().contains('Q'), "{e}");
}

/// A is on; B copies A; C is on when B is off; D copies C.
fn cascade() -> BooleanNetwork {
    BooleanNetwork::parse_bnet("A, 1\nB, A\nC, !B\nD, C\n", "cascade").unwrap()
}

/// The cascade's screen, simulated as counts and read back from the matrix.
fn cascade_screen(groups: &[Perturbation], seed: u64) -> ScreenData {
    let sim = Simulator::new(&cascade(), Settings::default(), seed).unwrap();
    let mut all = vec![(Perturbation::control(), 300)];
    all.extend(groups.iter().map(|p| (p.clone(), 150)));
    let run = sim.run(&all, &NoProgress, &CancelToken::default()).unwrap();
    let noise = CountNoise {
        umis_at_max: 20.0,
        ..CountNoise::default()
    };
    ScreenData::from_matrix(&run.counts(&noise).unwrap(), "perturbation").unwrap()
}

#[test]
fn the_mechanistic_model_predicts_an_unseen_knockout_through_learned_rules_and_explains_it() {
    let oe_c = Perturbation {
        knockouts: Vec::new(),
        overexpressed: vec!["C".into()],
    };
    let train = [
        Perturbation::knockout(["A"]),
        oe_c,
        Perturbation::knockout(["D"]),
        pair("A", "D"),
    ];
    let mut all = train.to_vec();
    all.push(Perturbation::knockout(["B"]));
    let data = cascade_screen(&all, 3);
    let train: Vec<usize> = train.iter().map(|p| data.find(p).unwrap()).collect();
    let options = MechanisticOptions {
        cells: 256,
        ..MechanisticOptions::default()
    };
    let model = Mechanistic::fit(
        &data,
        &train,
        &options,
        &NoProgress,
        &CancelToken::default(),
    )
    .unwrap();
    let rule = |g: &str| {
        model
            .rules()
            .iter()
            .find(|r| r.gene == g)
            .unwrap()
            .rule
            .clone()
    };
    assert_eq!(rule("C"), "!B", "{:?}", model.rules());
    assert_eq!(rule("D"), "C", "{:?}", model.rules());
    // B was never perturbed: its knockout turns C and D on.
    let ko_b = Perturbation::knockout(["B"]);
    let predicted = model.predict(&ko_b).unwrap();
    let observed = data.delta(data.find(&ko_b).unwrap());
    for g in [2, 3] {
        assert!(
            predicted[g] > 0.5 * observed[g] && observed[g] > 0.5,
            "{predicted:?} vs {observed:?}"
        );
    }
    let path = model.explain(&ko_b, "D").unwrap();
    let chain: Vec<(&str, &str, &str)> = path
        .iter()
        .map(|s| (s.from.as_str(), s.effect.as_str(), s.to.as_str()))
        .collect();
    assert_eq!(chain, [("B", "inhibits", "C"), ("C", "activates", "D")]);
    // The same seed gives the same model.
    let again = Mechanistic::fit(
        &data,
        &train,
        &options,
        &NoProgress,
        &CancelToken::default(),
    )
    .unwrap();
    assert_eq!(again.predict(&ko_b).unwrap(), predicted);
    let e = model.predict(&Perturbation::knockout(["E"])).unwrap_err();
    assert!(matches!(e, PerturbError::UnknownGene { .. }), "{e}");

    // The neural model and the stacked ensemble: a seed gives the same model, and the
    // ensemble's weights are never negative.
    let options = NeuralOptions::default();
    let neural = Neural::fit(&data, &train, &options, &CancelToken::default()).unwrap();
    let first = neural.predict(&ko_b).unwrap();
    assert!(first.iter().all(|v| v.is_finite()) && first.len() == 4);
    let again = Neural::fit(&data, &train, &options, &CancelToken::default()).unwrap();
    assert_eq!(again.predict(&ko_b).unwrap(), first);
    assert!(neural.predict(&Perturbation::knockout(["E"])).is_err());
    let fitted = Fitted::fit(
        Method::Ensemble,
        &data,
        &train,
        &MechanisticOptions {
            cells: 64,
            ..MechanisticOptions::default()
        },
        &NoProgress,
        &CancelToken::default(),
    )
    .unwrap();
    let stacking = fitted.stacking.unwrap();
    assert_eq!(
        stacking.members,
        ["mechanistic", "neural", "linear", "opposite"]
    );
    assert!(stacking.weights.iter().all(|w| *w >= 0.0), "{stacking:?}");
    assert!(fitted.mechanistic.is_some());
}

#[test]
fn splits_never_train_on_a_held_out_item_and_count_seen_items() {
    let design = ScreenDesign {
        pairs: 6,
        cells_per_perturbation: 5,
        control_cells: 10,
        ..ScreenDesign::default()
    };
    let m = design
        .simulate(&cascade(), 1, &NoProgress, &CancelToken::default())
        .unwrap();
    let data = ScreenData::from_matrix(&m, "perturbation").unwrap();
    assert_eq!(data.groups.len(), 4 + 4 + 6);
    for seed in 0..25 {
        let split = Split::gears(&data, SplitOptions::default(), seed).unwrap();
        assert_eq!(
            split,
            Split::gears(&data, SplitOptions::default(), seed).unwrap()
        );
        let mut all: Vec<usize> = split.train.clone();
        all.extend(split.test.iter().map(|(g, _)| *g));
        all.sort_unstable();
        assert_eq!(
            all,
            (0..data.groups.len()).collect::<Vec<_>>(),
            "each group once"
        );
        let items = |g: usize| cellwright_perturb::data::items(&data.groups[g].perturbation);
        let trained: Vec<_> = split.train.iter().flat_map(|&g| items(g)).collect();
        let seen_alone: Vec<_> = split
            .train
            .iter()
            .filter(|&&g| items(g).len() == 1)
            .flat_map(|&g| items(g))
            .collect();
        for &(g, category) in &split.test {
            let its = items(g);
            let seen = its.iter().filter(|i| seen_alone.contains(i)).count();
            match category {
                Category::UnseenSingle => {
                    assert_eq!(its.len(), 1);
                    assert!(!trained.contains(&its[0]), "seed {seed}: {its:?} leaked");
                }
                Category::PairsSeen0 => assert_eq!(seen, 0),
                Category::PairsSeen1 => assert_eq!(seen, 1),
                Category::PairsSeen2 => assert_eq!(seen, 2),
            }
        }
        assert!(split.test.iter().any(|(_, c)| *c == Category::UnseenSingle));
    }
    let bad = SplitOptions {
        unseen_singles: 1.5,
        ..SplitOptions::default()
    };
    assert!(Split::gears(&data, bad, 0).is_err());
}
