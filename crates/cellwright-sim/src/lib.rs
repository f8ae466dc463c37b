//! Published Boolean models as stochastic ODEs, after BoolODE (Pratapa et al. 2020, the
//! BEELINE benchmark): single cells, knockouts and overexpression, and UMI counts, with the
//! model's signed network as ground truth.
//!
//! # The model
//!
//! Every node `i` has an mRNA level `x_i` and a protein level `p_i`:
//!
//! ```text
//! dx_i/dt = m_i f_i(p) − l_x,i x_i
//! dp_i/dt = r_i x_i − l_p,i p_i
//! ```
//!
//! `f_i` is the node's Boolean rule in BoolODE's Hill sum-of-products form. With
//! `X_j = (p_j / k_j)^n_j` for each regulator `j` of `i` (the nodes its rule reads),
//!
//! ```text
//! f_i = Σ_{S ⊆ R_i, rule_i(S) true} Π_{j ∈ S} X_j  /  Π_{j ∈ R_i} (1 + X_j)
//! ```
//!
//! where `rule_i(S)` is the rule with exactly the regulators in `S` on. `f_i` is the truth
//! table averaged with each regulator on independently with probability `X_j / (1 + X_j)`, so
//! it lies in [0, 1] and equals the rule at the corners. An input (`A, A`) is a self-activating
//! node, as BoolODE makes it; a constant rule gives a constant `f`.
//!
//! Rates ([`Kinetics`], BoolODE's defaults): `m = 20`, `l_x = 10`, `r = 10`, `l_p = 1`,
//! `n = 10`, and `k = y_max / 2 = 10`, half the steady protein of a fully-on node
//! (`x_max = m / l_x = 2`, `y_max = x_max r / l_p = 20`). For each seed every rate of every node
//! is drawn from a normal around its default with a relative standard deviation of 10 %,
//! redrawn until within ±10 % (BoolODE's `sample_std` and bounds).
//!
//! # Noise and integration
//!
//! Euler–Maruyama with multiplicative noise on every mRNA and protein:
//!
//! ```text
//! y(t + dt) = y + drift(y) dt + σ √|y| √dt ξ,   ξ ~ N(0, 1)
//! ```
//!
//! with `dt = 0.01` and `σ = 1` by default. A step that would make a level negative leaves it
//! as it was (BoolODE's guard). **Where we depart from BoolODE:** its code draws the Wiener
//! increment with standard deviation `dt` rather than `√dt` and multiplies by `c = 10`, so its
//! noise shrinks with the step instead of converging. At its default `dt = 0.01` that is our
//! `σ = 10 · √0.01 = 1`, which is why 1 is our default: the same noise at BoolODE's step, and
//! the same process at any other step.
//!
//! Every cell is one trajectory from the same start ([`Initial::HalfMax`]: mRNA at `x_max / 2`,
//! BoolODE's default, or a Boolean state), with its own random stream (ChaCha8, stream = the
//! cell's index, seeding a xoshiro128++ generator for its noise), so a seed gives the same cells
//! on any number of threads. A cell shows the end of its trajectory ([`Design::SteadyState`])
//! or a time drawn uniformly along it ([`Design::Trajectory`], BoolODE's sampling).
//!
//! Cells are integrated sixteen at a time in single precision, vectorised (the `lanes`
//! module: polynomial `log2`/`exp2`, Box–Muller normals, the rules as one shared decision
//! diagram); [`Simulator::steady_state`] takes double-precision Euler steps.
//!
//! # Perturbations
//!
//! A knockout sets `m_i = 0` and starts `x_i = p_i = 0`; overexpression holds `f_i = 1`, so the
//! node is made at its maximal rate. BoolODE has neither; these are the ODE counterparts of
//! fixing the Boolean node off or on. Any combination; a screen simulates several
//! perturbations and shares one control group.
//!
//! # Counts
//!
//! [`CountNoise`] turns mRNA levels into UMI counts (library size, capture, negative-binomial
//! sampling, optional dropout); see [`counts`].

pub mod counts;
pub mod experiment;
mod lanes;
pub mod model;

pub use counts::{CountNoise, Dropout};
pub use experiment::{
    Design, GroupSummary, Initial, Perturbation, Screen, Settings, Simulation, Simulator,
};
pub use model::{Kinetics, MAX_REGULATORS, OdeModel, SimError};
