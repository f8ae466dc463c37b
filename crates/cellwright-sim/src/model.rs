//! A Boolean network as BoolODE's ODEs: per node an mRNA `x` and a protein `p`, production
//! `f` from the node's truth table in Hill sum-of-products form, and rates drawn per seed.

use cellwright_data::boolean::{BooleanNetwork, NetworkError};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Regulators beyond which a node's production table (2^k terms) is refused.
pub const MAX_REGULATORS: usize = 16;

/// The random stream the rates are drawn from; cells use streams from 0 up.
pub(crate) const PARAMETER_STREAM: u64 = u64::MAX;

/// Kinetic rates shared by every node before the per-seed draw: BoolODE's defaults
/// (`parameters.yaml`). Time is in units of the protein lifetime (1 / `protein_degradation`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Kinetics {
    /// `m`: mRNA made per unit time when the rule is fully on (BoolODE `mRNATranscription`).
    pub transcription: f64,
    /// `l_x` (BoolODE `mRNADegradation`).
    pub mrna_degradation: f64,
    /// `r`: protein made per mRNA per unit time (BoolODE `proteinTranslation`).
    pub translation: f64,
    /// `l_p` (BoolODE `proteinDegradation`).
    pub protein_degradation: f64,
    /// `n`, the Hill coefficient of every regulator (BoolODE `hillCoefficient`).
    pub hill: f64,
    /// Relative spread of the per-seed draw: each rate of each node is drawn from a normal
    /// around its default with this relative standard deviation, redrawn until it lies within
    /// ± the same fraction (BoolODE's `sample_std` 0.1 with bounds 0.9–1.1). 0 keeps defaults.
    pub spread: f64,
}

impl Default for Kinetics {
    fn default() -> Self {
        Self {
            transcription: 20.0,
            mrna_degradation: 10.0,
            translation: 10.0,
            protein_degradation: 1.0,
            hill: 10.0,
            spread: 0.1,
        }
    }
}

impl Kinetics {
    /// The steady mRNA level of a node whose rule is fully on: `m / l_x` (2 by default).
    pub fn mrna_max(&self) -> f64 {
        self.transcription / self.mrna_degradation
    }

    /// The steady protein level of a node whose rule is fully on: `x_max r / l_p` (20).
    pub fn protein_max(&self) -> f64 {
        self.mrna_max() * self.translation / self.protein_degradation
    }

    fn check(&self) -> Result<(), SimError> {
        for (what, v) in [
            ("transcription", self.transcription),
            ("mrna_degradation", self.mrna_degradation),
            ("translation", self.translation),
            ("protein_degradation", self.protein_degradation),
            ("hill", self.hill),
        ] {
            if !(v.is_finite() && v > 0.0) {
                return Err(SimError::Invalid(format!(
                    "kinetics.{what} must be a positive number, got {v}"
                )));
            }
        }
        if !(0.0..1.0).contains(&self.spread) {
            return Err(SimError::Invalid(format!(
                "kinetics.spread must be in [0, 1), got {}",
                self.spread
            )));
        }
        Ok(())
    }
}

/// Why a simulation could not be set up or finished.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("the model has no nodes")]
    Empty,
    #[error("node {node} has {count} regulators; production tables stop at {MAX_REGULATORS}")]
    TooManyRegulators { node: String, count: usize },
    #[error(transparent)]
    Network(#[from] NetworkError),
    #[error(
        "no node named {name} in the model{}",
        cellwright_core::did_you_mean(suggestions)
    )]
    UnknownNode {
        name: String,
        suggestions: Vec<String>,
    },
    #[error("{0}")]
    Invalid(String),
    #[error("the noise-free dynamics did not settle within {after} protein lifetimes")]
    NotSettled { after: f64 },
    #[error("the simulation was cancelled")]
    Cancelled,
}

/// The ODE model of one network under one seed's rates. Serialises to its tables and rates
/// (what `cellwright bench sim` hands its NumPy reference).
#[derive(Debug, Clone, Serialize)]
pub struct OdeModel {
    pub(crate) names: Vec<String>,
    /// Each node's regulators (the nodes its rule reads), ascending.
    pub(crate) regulators: Vec<Vec<usize>>,
    /// Each node's truth table over its regulators: entry `s` is the rule's value when
    /// regulator `b` is on exactly when bit `b` of `s` is set (all other nodes off).
    pub(crate) tables: Vec<Vec<f64>>,
    pub(crate) transcription: Vec<f64>,
    pub(crate) mrna_degradation: Vec<f64>,
    pub(crate) translation: Vec<f64>,
    pub(crate) protein_degradation: Vec<f64>,
    pub(crate) hill: Vec<f64>,
    /// `k`: the protein level at which a regulator is half on; half of the default `y_max`.
    pub(crate) threshold: Vec<f64>,
    #[serde(skip)]
    pub(crate) kinetics: Kinetics,
    #[serde(skip)]
    pub(crate) program: Program,
}

impl OdeModel {
    /// The model of `net` with rates drawn for `seed` around `kinetics`.
    pub fn new(net: &BooleanNetwork, kinetics: &Kinetics, seed: u64) -> Result<Self, SimError> {
        if net.is_empty() {
            return Err(SimError::Empty);
        }
        kinetics.check()?;
        let n = net.len();
        let mut regulators = Vec::with_capacity(n);
        let mut tables = Vec::with_capacity(n);
        for node in 0..n {
            let rule = net.rule(node);
            let regs: Vec<usize> = rule.variables().into_iter().collect();
            if regs.len() > MAX_REGULATORS {
                return Err(SimError::TooManyRegulators {
                    node: net.nodes()[node].clone(),
                    count: regs.len(),
                });
            }
            let table = (0..1usize << regs.len())
                .map(|s| {
                    let on = |v: usize| {
                        regs.iter()
                            .position(|&r| r == v)
                            .is_some_and(|b| s >> b & 1 == 1)
                    };
                    if rule.eval_with(&on) { 1.0 } else { 0.0 }
                })
                .collect();
            regulators.push(regs);
            tables.push(table);
        }
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(PARAMETER_STREAM);
        let spread = kinetics.spread;
        let mut draw = |default: f64| -> Vec<f64> {
            (0..n)
                .map(|_| {
                    if spread == 0.0 {
                        return default;
                    }
                    loop {
                        let z: f64 = StandardNormal.sample(&mut rng);
                        if z.abs() <= 1.0 {
                            break default * (1.0 + spread * z);
                        }
                    }
                })
                .collect()
        };
        Ok(Self {
            names: net.nodes().to_vec(),
            transcription: draw(kinetics.transcription),
            mrna_degradation: draw(kinetics.mrna_degradation),
            translation: draw(kinetics.translation),
            protein_degradation: draw(kinetics.protein_degradation),
            hill: draw(kinetics.hill),
            threshold: draw(kinetics.protein_max() / 2.0),
            program: Program::new(&regulators, &tables),
            regulators,
            tables,
            kinetics: *kinetics,
        })
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn kinetics(&self) -> &Kinetics {
        &self.kinetics
    }

    /// How far each node's protein turns its targets on: `q = X / (1 + X)` with
    /// `X = (p / k)^n`, written `1 / (1 + (k / p)^n)` so that it stays finite at both ends.
    pub(crate) fn activities(&self, p: &[f64], q: &mut [f64]) {
        for &j in &self.program.read {
            q[j] = if p[j] > 0.0 {
                1.0 / (1.0 + (self.threshold[j] / p[j]).powf(self.hill[j]))
            } else {
                0.0
            };
        }
    }

    /// Every node's `f_i` from the activities `q`, into `f`; `values` is scratch.
    pub(crate) fn production(&self, q: &[f64], values: &mut Vec<f64>, f: &mut [f64]) {
        let program = &self.program;
        values.clear();
        values.extend([0.0, 1.0]);
        for b in &program.branches {
            let (lo, hi) = (values[b.lo as usize], values[b.hi as usize]);
            values.push(lo + (hi - lo) * q[b.var as usize]);
        }
        for (f, &root) in f.iter_mut().zip(&program.roots) {
            *f = values[root as usize];
        }
    }
}

/// Every rule's production as one reduced, shared decision diagram.
///
/// `f_i` is the rule's truth table averaged with each regulator on with probability `q_j`
/// (BoolODE's sum of products divided through by `Π (1 + X_j)`). Folding the table one
/// regulator at a time, `t[s] ← t[s] + (t[s + 2^b] − t[s]) q_b`, costs 2^k steps; the fold is a
/// decision tree, and merging its equal subtrees (and skipping a regulator whose two branches
/// agree, where the fold would add `0 · q`) gives the same numbers, bit for bit, in as many
/// steps as the diagram has branches. Subtrees are shared across rules too: `A & B` is
/// computed once however many rules contain it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Program {
    /// In evaluation order: a branch's operands are computed before it.
    pub(crate) branches: Vec<Branch>,
    /// Each node's `f` as a value slot.
    pub(crate) roots: Vec<u32>,
    /// The nodes some rule reads, ascending: only their activities are needed.
    pub(crate) read: Vec<usize>,
}

/// `value = lo + (hi − lo) q[var]`. Slots 0 and 1 hold the constants 0 and 1; branch `b`
/// writes slot `b + 2`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct Branch {
    pub(crate) var: u32,
    pub(crate) lo: u32,
    pub(crate) hi: u32,
}

impl Program {
    fn new(regulators: &[Vec<usize>], tables: &[Vec<f64>]) -> Self {
        let mut program = Program::default();
        let mut interned = std::collections::HashMap::new();
        for (regs, table) in regulators.iter().zip(tables) {
            let root = program.build(&mut interned, regs, table, 0, 0);
            program.roots.push(root);
        }
        let mut read: Vec<usize> = program.branches.iter().map(|b| b.var as usize).collect();
        read.sort_unstable();
        read.dedup();
        program.read = read;
        program
    }

    /// The slot of the table's part with regulators `0..bit` fixed as in `offset`.
    fn build(
        &mut self,
        interned: &mut std::collections::HashMap<Branch, u32>,
        regs: &[usize],
        table: &[f64],
        bit: usize,
        offset: usize,
    ) -> u32 {
        if bit == regs.len() {
            return u32::from(table[offset] != 0.0);
        }
        let lo = self.build(interned, regs, table, bit + 1, offset);
        let hi = self.build(interned, regs, table, bit + 1, offset | 1 << bit);
        if lo == hi {
            return lo;
        }
        let branch = Branch {
            var: regs[bit] as u32,
            lo,
            hi,
        };
        *interned.entry(branch).or_insert_with(|| {
            self.branches.push(branch);
            self.branches.len() as u32 + 1
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_is_boolodes_sum_of_products() {
        // C = A & !B: f = X_A / ((1 + X_A)(1 + X_B)).
        let net = BooleanNetwork::parse_bnet("A, A\nB, B\nC, A & !B\n", "t.bnet").unwrap();
        let model = OdeModel::new(&net, &Kinetics::default(), 1).unwrap();
        let p = [7.0, 12.0, 0.0];
        let (mut q, mut f) = ([0.0; 3], [0.0; 3]);
        model.activities(&p, &mut q);
        model.production(&q, &mut Vec::new(), &mut f);
        let x = |j: usize| (p[j] / model.threshold[j]).powf(model.hill[j]);
        let expected = x(0) / ((1.0 + x(0)) * (1.0 + x(1)));
        assert!((f[2] - expected).abs() < 1e-12, "{} vs {expected}", f[2]);
        // A self-activating input: f = X_A / (1 + X_A).
        assert!((f[0] - x(0) / (1.0 + x(0))).abs() < 1e-12);
    }

    /// The truth table folded one regulator at a time, highest bit first.
    fn folded(table: &[f64], regs: &[usize], q: &[f64]) -> f64 {
        let mut t = table.to_vec();
        for (b, &j) in regs.iter().enumerate().rev() {
            let half = 1usize << b;
            for s in 0..half {
                t[s] += (t[s + half] - t[s]) * q[j];
            }
        }
        t[0]
    }

    #[test]
    fn the_shared_diagram_is_the_table_fold_bit_for_bit() {
        // Rules with shared parts, redundant regulators and constants.
        let text = "A, A\nB, !A | C\nC, A & B\nD, (A & B) | (C & !E)\n\
                    E, (A & B) | (C & !E) | (B & !B)\nF, 1\nG, A | !A\nH, (A | B) & (C | D) & !(E & F)\n";
        let net = BooleanNetwork::parse_bnet(text, "t.bnet").unwrap();
        let model = OdeModel::new(&net, &Kinetics::default(), 2).unwrap();
        let table_steps: usize = model.tables.iter().map(|t| t.len() - 1).sum();
        assert!(model.program.branches.len() < table_steps);
        // G reads A but is constant: no branch, no activity of G's own needed.
        assert_eq!(model.program.roots[6], 1);
        let mut f = [0.0; 8];
        let mut values = Vec::new();
        for s in 0..50 {
            let q: Vec<f64> = (0..8)
                .map(|j| ((s * 7 + j * 3) % 11) as f64 / 10.0)
                .collect();
            model.production(&q, &mut values, &mut f);
            for (i, got) in f.iter().enumerate() {
                let want = folded(&model.tables[i], &model.regulators[i], &q);
                assert_eq!(got.to_bits(), want.to_bits(), "node {i}, q {q:?}");
            }
        }
    }

    #[test]
    fn rates_are_drawn_within_the_spread_and_fixed_by_the_seed() {
        let net = BooleanNetwork::parse_bnet("A, !B\nB, !A\n", "t.bnet").unwrap();
        let k = Kinetics::default();
        let a = OdeModel::new(&net, &k, 3).unwrap();
        let b = OdeModel::new(&net, &k, 3).unwrap();
        let c = OdeModel::new(&net, &k, 4).unwrap();
        assert_eq!(a.transcription, b.transcription);
        assert_ne!(a.transcription, c.transcription);
        for &m in &a.transcription {
            assert!((18.0..=22.0).contains(&m), "{m}");
        }
        let fixed = OdeModel::new(&net, &Kinetics { spread: 0.0, ..k }, 3).unwrap();
        assert_eq!(fixed.threshold, vec![10.0, 10.0]);
    }
}
