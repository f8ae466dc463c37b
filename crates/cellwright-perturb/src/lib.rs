//! Perturbation-response prediction: how a cell's expression changes when genes are knocked
//! out or overexpressed, including genes and combinations never perturbed in training.
//!
//! - [`data`]: screens (control and perturbed cells, log-normalised), read from a matrix with
//!   `obs.perturbation` or simulated from a published Boolean model (cellwright-sim).
//! - [`split`]: GEARS's splits by perturbation: unseen singles, and combinations with 0, 1 or
//!   2 items seen alone in training.
//! - [`baselines`]: no change, train mean, additive, and Ahlmann-Eltze et al.'s linear model.
//! - [`mechanistic`]: a Boolean network learned from the training cells and simulated under
//!   the perturbation; each predicted change comes with the regulatory path behind it.
//! - [`evaluate`]: the Virtual Cell Challenge's metrics per test perturbation and category.

pub mod baselines;
pub mod data;
pub mod evaluate;
pub mod mechanistic;
pub mod split;
pub mod study;

pub use baselines::{Additive, Linear, NoChange, Predictor, TrainMean, baselines};
pub use data::{Direction, Group, PerturbError, ScreenData, ScreenDesign, parse_label};
pub use evaluate::{Replicate, Scored, Summary, score_split, summarise};
pub use mechanistic::{LearnedRule, Mechanistic, MechanisticOptions, Step};
pub use split::{Category, Split, SplitOptions};
