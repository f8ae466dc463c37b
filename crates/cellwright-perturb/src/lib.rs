//! Perturbation-response prediction: how a cell's expression changes when genes are knocked
//! out or overexpressed, including genes and combinations never perturbed in training.
//!
//! - [`data`]: screens (control and perturbed cells, log-normalised), read from a matrix with
//!   `obs.perturbation` or simulated from a published Boolean model (cellwright-sim).
//! - [`split`]: GEARS's splits by perturbation: unseen singles, and combinations with 0, 1 or
//!   2 items seen alone in training.
//! - [`baselines`]: no change, train mean, additive, and Ahlmann-Eltze et al.'s linear model;
//!   and the opposite model (a gene's measured opposite perturbation, mirrored).
//! - [`mechanistic`]: a Boolean network learned from the training cells and simulated under
//!   the perturbation; each predicted change comes with the regulatory path behind it.
//! - [`neural`]: a candle network from gene embeddings (the inferred network's coefficients,
//!   PCA scores) to the delta.
//! - [`ensemble`]: stacking of the models on out-of-fold predictions, and anchoring to the
//!   measured singles.
//! - [`evaluate`]: the Virtual Cell Challenge's metrics per test perturbation and category.
//! - [`study`]: one benchmark run (`cellwright bench perturb`), with the ceiling.

pub mod baselines;
pub mod data;
pub mod ensemble;
pub mod evaluate;
pub mod mechanistic;
pub mod neural;
pub mod split;
pub mod study;

pub use baselines::{Additive, Linear, NoChange, Opposite, Predictor, TrainMean, baselines};
pub use data::{Direction, Group, PerturbError, ScreenData, ScreenDesign, parse_label};
pub use ensemble::{Anchored, Ensemble, Stacking};
pub use evaluate::{Replicate, Scored, Summary, score_split, summarise};
pub use mechanistic::{LearnedRule, Mechanistic, MechanisticOptions, Start, Step};
pub use neural::{Neural, NeuralOptions};
pub use split::{Category, Split, SplitOptions};

use cellwright_core::{CancelToken, Progress};

/// The models a user can ask for by name.
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// The mechanistic, neural, linear and opposite models' predictions, weighted by stacking
    /// and anchored to the measured singles.
    #[default]
    Ensemble,
    /// A Boolean network learned from the cells, simulated; explains each change.
    Mechanistic,
    /// A candle network on gene embeddings from the inferred network and from expression.
    Neural,
    /// Ahlmann-Eltze et al.'s ridge model on PCA gene embeddings.
    Linear,
    /// The sum of the perturbed genes' single deltas seen in training.
    Additive,
    /// The mean training delta.
    TrainMean,
    /// No change.
    NoChange,
}

impl Method {
    pub const ALL: [Method; 7] = [
        Method::Ensemble,
        Method::Mechanistic,
        Method::Neural,
        Method::Linear,
        Method::Additive,
        Method::TrainMean,
        Method::NoChange,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Method::Ensemble => "ensemble",
            Method::Mechanistic => "mechanistic",
            Method::Neural => "neural",
            Method::Linear => "linear",
            Method::Additive => "additive",
            Method::TrainMean => "train_mean",
            Method::NoChange => "no_change",
        }
    }
}

/// A fitted model of any method; the mechanistic one (alone or in the ensemble) also explains.
#[derive(Debug)]
pub struct Fitted {
    pub method: Method,
    pub predictor: Box<dyn Predictor>,
    pub mechanistic: Option<Mechanistic>,
    /// The ensemble's weights.
    pub stacking: Option<Stacking>,
}

/// Folds of the ensemble's stacking.
const STACKING_FOLDS: usize = 3;

impl Fitted {
    /// Fits `method` on the groups `train` of `data`.
    pub fn fit(
        method: Method,
        data: &ScreenData,
        train: &[usize],
        options: &MechanisticOptions,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<Self, PerturbError> {
        let mechanistic =
            |train: &[usize]| Mechanistic::fit(data, train, options, progress, cancel);
        let neural_options = NeuralOptions {
            seed: options.seed,
            ..NeuralOptions::default()
        };
        let neural = |train: &[usize]| Neural::fit(data, train, &neural_options, cancel);
        let (predictor, mechanistic, stacking): (Box<dyn Predictor>, _, _) = match method {
            Method::Ensemble => {
                // The members after the mechanistic one, which is fitted once on `train`
                // and kept for its explanations.
                let others = |train: &[usize]| -> Result<Vec<Box<dyn Predictor>>, PerturbError> {
                    Ok(vec![
                        Box::new(neural(train)?),
                        Box::new(Linear::fit(data, train)?),
                        Box::new(Opposite::fit(data, train)?),
                    ])
                };
                let members = |train: &[usize]| -> Result<Vec<Box<dyn Predictor>>, PerturbError> {
                    let mut all: Vec<Box<dyn Predictor>> = vec![Box::new(mechanistic(train)?)];
                    all.extend(others(train)?);
                    Ok(all)
                };
                let m = mechanistic(train)?;
                let mut fitted: Vec<Box<dyn Predictor>> = vec![Box::new(m.clone())];
                fitted.extend(others(train)?);
                let (ensemble, stacking) = Ensemble::stacked(
                    Method::Ensemble.name(),
                    data,
                    train,
                    fitted,
                    (STACKING_FOLDS, options.seed),
                    &members,
                )?;
                let anchored = Anchored::new(Box::new(ensemble), data, train);
                (Box::new(anchored), Some(m), Some(stacking))
            }
            Method::Mechanistic => {
                let m = mechanistic(train)?;
                (Box::new(m.clone()), Some(m), None)
            }
            Method::Neural => (Box::new(neural(train)?), None, None),
            Method::Linear => (Box::new(Linear::fit(data, train)?), None, None),
            Method::Additive => (Box::new(Additive::fit(data, train)?), None, None),
            Method::TrainMean => (Box::new(TrainMean::fit(data, train)?), None, None),
            Method::NoChange => (Box::new(NoChange::fit(data)), None, None),
        };
        Ok(Self {
            method,
            predictor,
            mechanistic,
            stacking,
        })
    }
}
