//! One benchmark run: a published model's screen simulated for a seed, split GEARS's way,
//! every method fitted on the training groups and scored on the test ones, beside the
//! ceiling (the true model simulated again with another seed).

use std::time::Instant;

use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::boolean::BooleanNetwork;
use serde::Serialize;

use crate::baselines::{Opposite, Predictor, baselines};
use crate::data::{PerturbError, ScreenData, ScreenDesign};
use crate::evaluate::{Replicate, Scored, Summary, score_split, summarise};
use crate::mechanistic::MechanisticOptions;
use crate::split::{Split, SplitOptions};
use crate::{Fitted, Method, Stacking};

/// The ceiling's screen is simulated with the seed plus this.
pub const CEILING_SEED_OFFSET: u64 = 1_000_003;

/// What one run compares.
#[derive(Debug, Clone, Default)]
pub struct StudyOptions {
    pub design: ScreenDesign,
    pub split: SplitOptions,
    pub mechanistic: MechanisticOptions,
}

/// The results of one model and seed.
#[derive(Debug, Clone, Serialize)]
pub struct StudyRun {
    pub model: String,
    pub seed: u64,
    pub genes: usize,
    pub train: usize,
    pub test: usize,
    pub scored: Vec<Scored>,
    pub summaries: Vec<Summary>,
    /// Seconds each method took to fit.
    pub fit_seconds: Vec<(String, f64)>,
    pub simulate_seconds: f64,
    /// The ensemble's members and weights.
    pub stacking: Option<Stacking>,
}

/// Runs the study of `net` for `seed`.
pub fn run(
    name: &str,
    net: &BooleanNetwork,
    seed: u64,
    options: &StudyOptions,
    cancel: &CancelToken,
) -> Result<StudyRun, PerturbError> {
    let started = Instant::now();
    let screen = options.design.simulate(net, seed, &NoProgress, cancel)?;
    let data = ScreenData::from_matrix(&screen, "perturbation")?;
    let replicate =
        options
            .design
            .replicate(net, seed, seed + CEILING_SEED_OFFSET, &NoProgress, cancel)?;
    let ceiling = Replicate {
        data: ScreenData::from_matrix(&replicate, "perturbation")?,
    };
    let simulate_seconds = started.elapsed().as_secs_f64();
    let split = Split::gears(&data, options.split, seed)?;
    let mut fit_seconds = Vec::new();
    let started = Instant::now();
    let mut methods: Vec<Box<dyn Predictor>> = baselines(&data, &split.train)?;
    fit_seconds.push(("baselines".to_owned(), started.elapsed().as_secs_f64()));
    let mechanistic = MechanisticOptions {
        seed,
        ..options.mechanistic.clone()
    };
    let mut stacking = None;
    for method in [Method::Mechanistic, Method::Neural, Method::Ensemble] {
        let started = Instant::now();
        let fitted = Fitted::fit(
            method,
            &data,
            &split.train,
            &mechanistic,
            &NoProgress,
            cancel,
        )?;
        fit_seconds.push((method.name().to_owned(), started.elapsed().as_secs_f64()));
        stacking = stacking.or(fitted.stacking);
        methods.push(fitted.predictor);
    }
    // The ensemble's member for genes measured only the other way, alone, to show what it adds.
    methods.push(Box::new(Opposite::fit(&data, &split.train)?));
    let mut all: Vec<&dyn Predictor> = methods.iter().map(|m| m.as_ref()).collect();
    all.push(&ceiling);
    let scored = score_split(&data, &split, &all)?;
    let summaries = summarise(&scored, "train_mean");
    Ok(StudyRun {
        model: name.to_owned(),
        seed,
        genes: data.genes.len(),
        train: split.train.len(),
        test: split.test.len(),
        scored,
        summaries,
        fit_seconds,
        simulate_seconds,
        stacking,
    })
}
