//! Gene-regulatory network inference: which genes regulate which, from expression alone.
//!
//! Every gene is a target, regressed on the candidate regulators (a TF list, or all genes)
//! other than itself; how much each regulator helps predict the target is the score of the
//! edge regulator → target, and all edges are ranked together (GENIE3's formulation).
//!
//! - [`Method::Boost`]: GRNBoost2's stochastic gradient boosting with early stopping (learning
//!   rate 0.03 by default; [`Boosting::GRNBOOST2`] has all of GRNBoost2's settings).
//! - [`Method::Forest`]: GENIE3's random forest.
//! - [`Method::Neural`]: a small network per target trained with candle, scored by gradients.
//! - [`Method::Pearson`], [`Method::Spearman`]: |correlation|; [`Method::Random`].
//!
//! The trees are histogram trees: every gene is cut once into at most 256 quantile bins
//! (`bins`), shared by every tree of every target, so a split is found by one pass over a
//! node's cells per candidate feature, not by sorting. Targets run in parallel (rayon), each
//! on its own random stream, so a seed gives the same network on any number of threads.
//! Every edge also carries the sign of the regulator–target correlation.

mod bins;
mod ensemble;
mod infer;
mod neural;
mod tree;

pub use ensemble::{Boosting, Forest};
pub use infer::{GrnError, Method, Network, Options, ScoredEdge, Sign, infer, score};
pub use neural::Neural;
