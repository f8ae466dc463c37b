//! Metrics and plots for the oracles, shared by their tests, benchmarks and tools.
//!
//! - [`ranking`]: a ranked list of candidates against a set of true ones: AUPRC (average
//!   precision), AUPRC ratio, AUROC, early precision (EPR), precision–recall curves. Used to
//!   score inferred gene-regulatory networks, BEELINE's way.
//! - [`signed`]: the same for activating and inhibitory edges apart, and sign accuracy.
//! - [`labels`]: predicted labels and clusters against true labels (macro-F1, ARI, NMI), how
//!   well an embedding keeps labels apart (silhouette, cross-validated kNN macro-F1).
//! - [`plot`]: SVG line plots (PR curves, timings against size).
//! - [`questions`]: question sets for the agent and the checks on its answers
//!   (`cellwright eval`).

pub mod labels;
pub mod plot;
pub mod questions;
pub mod ranking;
pub mod response;
pub mod signed;

pub use labels::{
    LabelError, adjusted_rand_index, knn_macro_f1, macro_f1, nearest_vote, normalized_mutual_info,
    silhouette,
};
pub use ranking::{Curve, EvalError, Metrics, Scored, metrics, pr_curve};
pub use signed::{SignedMetrics, SignedScored, signed_metrics};
