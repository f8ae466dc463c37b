//! The mechanistic model: learn a Boolean network from the control and training cells,
//! simulate it as stochastic ODEs (cellwright-sim) under the perturbation asked about, and
//! explain each predicted change by the regulatory path from a perturbed gene.
//!
//! Fitting:
//! 1. Each gene is called on or off in every cell, at the midpoint of its two 1-D k-means
//!    centres over the training cells; its expression when off and when on are the means of
//!    the two sides (cells where it is perturbed left out).
//! 2. Candidate regulators: each target's best-scored regulators in a network inferred from
//!    the same cells (cellwright-grn, GRNBoost2's boosting).
//! 3. Each gene's rule: the subset of up to `max_regulators` candidates, and its truth table,
//!    that best predicts the gene's state in the cells where it is not perturbed. A table row
//!    is the majority state of the cells with that pattern; a row no cell shows copies the
//!    nearest shown row. Every regulator costs `penalty` of the cells in errors, so a rule
//!    only grows when the data ask for it. Knocked-out and overexpressed training cells are
//!    what tell a cause from a correlate: there, a regulator's state is set from outside.
//! 4. A gene that no rule predicts but that is on in some cells and off in others keeps its
//!    state (`X, X`: a self-sustaining switch, how published models write their inputs).
//!
//! Predicting: the learned network runs in the simulator (BoolODE's default rates, cells from
//! the half-maximal start, as the screen's were) with the perturbation applied, and with
//! none; each gene's simulated mRNA is mapped linearly between its off and on expression, and
//! the prediction is the difference of the means. The same random streams serve both runs,
//! so the difference is not blurred by sampling noise.

use std::collections::VecDeque;

use cellwright_core::{CancelToken, NoProgress, Progress};
use cellwright_data::boolean::{BooleanNetwork, Expr, Sign};
use cellwright_sim::{Perturbation, Settings, Simulator};
use serde::{Deserialize, Serialize};

use crate::baselines::Predictor;
use crate::data::{PerturbError, Pooled, ScreenData, gene_index, items};

/// How the network is learned and simulated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct MechanisticOptions {
    /// Candidate regulators per gene, from the inferred network.
    pub candidates: usize,
    /// Most regulators in one rule.
    pub max_regulators: usize,
    /// The price of one more regulator, as a share of the cells.
    pub penalty: f64,
    /// A gene whose best rule misses more than this share of cells keeps its state instead.
    pub self_sustaining_above: f64,
    /// Cells simulated per prediction.
    pub cells: usize,
    /// Most cells the network inference sees (a seeded sample).
    pub inference_cells: usize,
    pub settings: Settings,
    /// Where simulated cells start.
    pub start: Start,
    pub seed: u64,
}

/// Where the learned network's simulated cells start.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Start {
    /// Every gene at half its maximum (BoolODE's start, and the simulated screens').
    #[default]
    HalfMax,
    /// The on/off states of the control cells, most frequent first (those covering 95 % of
    /// them): the perturbation is applied to the cells as they are, for screens of cells
    /// perturbed at rest (the simulated screens start at half maximum instead).
    Control,
}

/// Most distinct control states simulated from.
const MAX_STARTS: usize = 32;

impl Default for MechanisticOptions {
    fn default() -> Self {
        Self {
            candidates: 8,
            max_regulators: 3,
            penalty: 0.005,
            self_sustaining_above: 0.15,
            cells: 1024,
            inference_cells: 3000,
            settings: Settings::default(),
            start: Start::default(),
            seed: 0,
        }
    }
}

/// A learned rule.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct LearnedRule {
    pub gene: String,
    /// The rule in `.bnet` syntax over the screen's gene names.
    pub rule: String,
    pub regulators: Vec<String>,
    /// Share of the training cells (where the gene is not perturbed) whose state it misses.
    pub error: f64,
}

/// One step of an explanation: `from` raises (activation) or lowers (inhibition) `to`.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Step {
    pub from: String,
    pub to: String,
    pub effect: String,
}

/// The fitted model.
#[derive(Debug, Clone)]
pub struct Mechanistic {
    genes: Vec<String>,
    net: BooleanNetwork,
    rules: Vec<LearnedRule>,
    off: Vec<f64>,
    on: Vec<f64>,
    /// One simulator per start, with its share of the cells.
    starts: Vec<(Simulator, usize)>,
    control: Vec<f64>,
}

/// Node names the simulator accepts, whatever the genes are called.
fn node(i: usize) -> String {
    format!("g{i}")
}

/// The midpoint of the two 1-D k-means centres of `values`, or `None` when they are closer
/// than `min_gap` (the gene does not switch).
fn threshold(values: &[f32], min_gap: f64) -> Option<f64> {
    let (mut lo, mut hi) = values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(f64::from(v)), hi.max(f64::from(v)))
        });
    if hi - lo < min_gap || hi.is_nan() || lo.is_nan() {
        return None;
    }
    for _ in 0..50 {
        let cut = (lo + hi) / 2.0;
        let (mut s, mut n) = ([0.0f64; 2], [0usize; 2]);
        for &v in values {
            let side = usize::from(f64::from(v) > cut);
            s[side] += f64::from(v);
            n[side] += 1;
        }
        if n[0] == 0 || n[1] == 0 {
            break;
        }
        let (a, b) = (s[0] / n[0] as f64, s[1] / n[1] as f64);
        if a == lo && b == hi {
            break;
        }
        (lo, hi) = (a, b);
    }
    (hi - lo >= min_gap).then_some((lo + hi) / 2.0)
}

/// The best truth table of `target` over `inputs`: per pattern (first input the most
/// significant bit), the majority state; unshown patterns copy the nearest shown one.
/// Returns the table and its errors.
fn fit_table(
    states: &[Vec<bool>],
    rows: &[usize],
    target: usize,
    inputs: &[usize],
) -> (Vec<bool>, usize) {
    let patterns = 1usize << inputs.len();
    let mut counts = vec![[0usize; 2]; patterns];
    for &r in rows {
        let pattern = inputs
            .iter()
            .fold(0usize, |acc, &i| acc << 1 | usize::from(states[i][r]));
        counts[pattern][usize::from(states[target][r])] += 1;
    }
    let errors = counts.iter().map(|c| c[0].min(c[1])).sum();
    let shown: Vec<usize> = (0..patterns)
        .filter(|&p| counts[p][0] + counts[p][1] > 0)
        .collect();
    let table = (0..patterns)
        .map(|p| {
            let nearest = shown
                .iter()
                .min_by_key(|&&q| ((p ^ q).count_ones(), q))
                .copied()
                .unwrap_or(p);
            counts[nearest][1] > counts[nearest][0]
        })
        .collect();
    (table, errors)
}

/// Every subset of `candidates` with 1 to `max` members, in lexicographic order.
fn subsets(candidates: &[usize], max: usize) -> Vec<Vec<usize>> {
    let mut out: Vec<Vec<usize>> = vec![Vec::new()];
    let mut all = Vec::new();
    for _ in 0..max.min(candidates.len()) {
        let mut next = Vec::new();
        for s in &out {
            let from = s
                .last()
                .and_then(|l| candidates.iter().position(|c| c == l))
                .map_or(0, |p| p + 1);
            for &c in &candidates[from..] {
                let mut t = s.clone();
                t.push(c);
                next.push(t);
            }
        }
        all.extend(next.iter().cloned());
        out = next;
    }
    all
}

impl Mechanistic {
    /// Learns the network from the control cells and the training groups `train` of `data`.
    pub fn fit(
        data: &ScreenData,
        train: &[usize],
        options: &MechanisticOptions,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<Self, PerturbError> {
        if train.iter().any(|&g| g >= data.groups.len()) {
            return Err(PerturbError::Invalid(
                "a training group is out of range".into(),
            ));
        }
        if options.max_regulators == 0 || options.max_regulators > 8 || options.cells == 0 {
            return Err(PerturbError::Invalid(
                "max_regulators must be 1 to 8 and cells at least 1".into(),
            ));
        }
        let n = data.genes.len();
        // The pooled training cells, gene-major, and which genes each cell has perturbed.
        let Pooled { columns, perturbed } = data.pooled(train)?;
        let cells = perturbed.len();
        // 1. On/off calls, and each gene's expression when off and on.
        let mut states = vec![vec![false; cells]; n];
        let (mut off, mut on) = (vec![0.0; n], vec![0.0; n]);
        let mut switches = vec![false; n];
        for j in 0..n {
            let free: Vec<usize> = (0..cells).filter(|&c| !perturbed[c].contains(&j)).collect();
            let values: Vec<f32> = free.iter().map(|&c| columns[j][c]).collect();
            let mean =
                |v: &[f32]| v.iter().map(|&x| f64::from(x)).sum::<f64>() / v.len().max(1) as f64;
            match threshold(&values, 0.1) {
                Some(cut) => {
                    switches[j] = true;
                    for c in 0..cells {
                        states[j][c] = f64::from(columns[j][c]) > cut;
                    }
                    let (hi, lo): (Vec<f32>, Vec<f32>) =
                        values.iter().partition(|&&v| f64::from(v) > cut);
                    (off[j], on[j]) = (mean(&lo), mean(&hi));
                }
                None => {
                    off[j] = mean(&values);
                    on[j] = off[j];
                }
            }
        }
        if cancel.is_cancelled() {
            return Err(PerturbError::Cancelled);
        }
        // 2. Candidate regulators from the inferred network.
        let varying: Vec<usize> = (0..n).filter(|&j| switches[j]).collect();
        let mut candidates = vec![Vec::new(); n];
        if varying.len() >= 2 {
            let step = (cells / options.inference_cells.max(2)).max(1);
            let sample: Vec<Vec<f32>> = varying
                .iter()
                .map(|&j| columns[j].iter().step_by(step).copied().collect())
                .collect();
            let grn = cellwright_grn::Options {
                seed: options.seed,
                ..cellwright_grn::Options::default()
            };
            let all: Vec<usize> = (0..varying.len()).collect();
            let (edges, _) = cellwright_grn::score(&sample, &all, &grn, &NoProgress, cancel)
                .map_err(|e| PerturbError::Model(format!("network inference: {e}")))?;
            for e in edges {
                let list = &mut candidates[varying[e.target]];
                if list.len() < options.candidates {
                    list.push(varying[e.regulator]);
                }
            }
        }
        // 3–4. Each gene's rule.
        let mut rules = Vec::with_capacity(n);
        let mut learned = Vec::with_capacity(n);
        for j in 0..n {
            if cancel.is_cancelled() {
                return Err(PerturbError::Cancelled);
            }
            progress.report(j as u64, Some(n as u64), "learning rules");
            let rows: Vec<usize> = (0..cells).filter(|&c| !perturbed[c].contains(&j)).collect();
            let on_share =
                rows.iter().filter(|&&c| states[j][c]).count() as f64 / rows.len().max(1) as f64;
            let constant_errors =
                ((on_share.min(1.0 - on_share)) * rows.len() as f64).round() as usize;
            let price = options.penalty * rows.len() as f64;
            let mut best: (f64, Vec<usize>, Vec<bool>, usize) = (
                constant_errors as f64,
                Vec::new(),
                vec![on_share > 0.5],
                constant_errors,
            );
            if switches[j] {
                for inputs in subsets(&candidates[j], options.max_regulators) {
                    let (table, errors) = fit_table(&states, &rows, j, &inputs);
                    let cost = errors as f64 + price * inputs.len() as f64;
                    if cost < best.0 {
                        best = (cost, inputs, table, errors);
                    }
                }
            }
            let (_, inputs, table, errors) = best;
            let error = errors as f64 / rows.len().max(1) as f64;
            let bistable = on_share.min(1.0 - on_share) > 0.1;
            let rule = if switches[j] && error > options.self_sustaining_above && bistable {
                Expr::Var(j)
            } else if inputs.is_empty() {
                Expr::Const(table[0])
            } else {
                Expr::Table {
                    inputs: inputs.clone(),
                    outputs: table,
                }
            };
            let regulators = match &rule {
                Expr::Var(_) => vec![data.genes[j].clone()],
                _ => inputs.iter().map(|&i| data.genes[i].clone()).collect(),
            };
            rules.push(rule);
            learned.push((j, regulators, error));
        }
        let names: Vec<String> = (0..n).map(node).collect();
        let net = BooleanNetwork::from_rules(names, rules)
            .map_err(|e| PerturbError::Model(format!("the learned network: {e}")))?;
        let bnet = net.to_bnet();
        let rule_text: Vec<String> = bnet
            .lines()
            .skip(1)
            .map(|l| {
                let rule = l.split_once(", ").map_or("", |(_, r)| r);
                // Node names back to gene names, longest index first so g12 is not read as g1.
                let mut text = rule.to_owned();
                for i in (0..n).rev() {
                    text = text.replace(&node(i), &format!("\u{0}{i}\u{0}"));
                }
                for i in 0..n {
                    text = text.replace(&format!("\u{0}{i}\u{0}"), &data.genes[i]);
                }
                text
            })
            .collect();
        let rules = learned
            .into_iter()
            .zip(rule_text)
            .map(|((j, regulators, error), rule)| LearnedRule {
                gene: data.genes[j].clone(),
                rule,
                regulators,
                error,
            })
            .collect();
        let starts = match options.start {
            Start::HalfMax => vec![(
                Simulator::new(&net, options.settings.clone(), options.seed)?,
                options.cells,
            )],
            Start::Control => {
                let controls = data.control.nrows();
                let mut counts: std::collections::HashMap<Vec<bool>, usize> =
                    std::collections::HashMap::new();
                // Control cells come first among the pooled cells.
                let state = |c: usize| -> Vec<bool> { states.iter().map(|s| s[c]).collect() };
                for c in 0..controls {
                    *counts.entry(state(c)).or_default() += 1;
                }
                let mut counts: Vec<(Vec<bool>, usize)> = counts.into_iter().collect();
                counts.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                let mut kept = Vec::new();
                let mut covered = 0;
                for (state, count) in counts.into_iter().take(MAX_STARTS) {
                    if covered as f64 >= 0.95 * controls as f64 {
                        break;
                    }
                    covered += count;
                    kept.push((state, count));
                }
                kept.into_iter()
                    .map(|(state, count)| {
                        let settings = Settings {
                            initial: cellwright_sim::Initial::State(state),
                            ..options.settings.clone()
                        };
                        let cells = (options.cells * count).div_ceil(covered).max(1);
                        Ok((Simulator::new(&net, settings, options.seed)?, cells))
                    })
                    .collect::<Result<Vec<_>, PerturbError>>()?
            }
        };
        let mut model = Self {
            genes: data.genes.clone(),
            net,
            rules,
            off,
            on,
            starts,
            control: Vec::new(),
        };
        model.control = model.expression(&Perturbation::control(), cancel)?;
        Ok(model)
    }

    /// The mean expression the learned network gives under `p`.
    fn expression(&self, p: &Perturbation, cancel: &CancelToken) -> Result<Vec<f64>, PerturbError> {
        let index = |g: &String| gene_index(&self.genes, g).map(node);
        let renamed = Perturbation {
            knockouts: p.knockouts.iter().map(index).collect::<Result<_, _>>()?,
            overexpressed: p
                .overexpressed
                .iter()
                .map(index)
                .collect::<Result<_, _>>()?,
        };
        let mut out = vec![0.0; self.genes.len()];
        let total: usize = self.starts.iter().map(|(_, cells)| cells).sum();
        for (simulator, cells) in &self.starts {
            let run = simulator.run(&[(renamed.clone(), *cells)], &NoProgress, cancel)?;
            for row in run.mrna.rows() {
                for (j, &x) in row.iter().enumerate() {
                    let level = (f64::from(x) / run.mrna_max).clamp(0.0, 1.0);
                    out[j] += (self.off[j] + (self.on[j] - self.off[j]) * level) / total as f64;
                }
            }
        }
        Ok(out)
    }

    /// The learned rules, one per gene.
    pub fn rules(&self) -> &[LearnedRule] {
        &self.rules
    }

    /// The shortest chain of learned regulations from a gene `p` perturbs to `gene`, or
    /// `None` when the learned network has no such path.
    pub fn explain(&self, p: &Perturbation, gene: &str) -> Option<Vec<Step>> {
        let target = self.genes.iter().position(|g| g == gene)?;
        let edges = self.net.edges();
        let index = |name: &str| name.strip_prefix('g').and_then(|i| i.parse::<usize>().ok());
        let mut before: Vec<Option<(usize, Sign)>> = vec![None; self.genes.len()];
        let mut visited = vec![false; self.genes.len()];
        let mut queue = VecDeque::new();
        for (g, _) in items(p) {
            let i = self.genes.iter().position(|x| *x == g)?;
            visited[i] = true;
            queue.push_back(i);
        }
        while let Some(i) = queue.pop_front() {
            if i == target {
                break;
            }
            for e in &edges {
                let (Some(from), Some(to)) = (index(&e.from), index(&e.to)) else {
                    continue;
                };
                if from == i && !visited[to] {
                    visited[to] = true;
                    before[to] = Some((i, e.sign));
                    queue.push_back(to);
                }
            }
        }
        if !visited[target] {
            return None;
        }
        let mut steps = Vec::new();
        let mut at = target;
        while let Some((from, sign)) = before[at] {
            steps.push(Step {
                from: self.genes[from].clone(),
                to: self.genes[at].clone(),
                effect: match sign {
                    Sign::Activation => "activates",
                    Sign::Inhibition => "inhibits",
                    Sign::Dual => "regulates",
                }
                .into(),
            });
            at = from;
        }
        steps.reverse();
        Some(steps)
    }
}

impl Predictor for Mechanistic {
    fn name(&self) -> &str {
        "mechanistic"
    }

    fn predict(&self, p: &Perturbation) -> Result<Vec<f64>, PerturbError> {
        let perturbed = self.expression(p, &CancelToken::default())?;
        Ok(perturbed
            .iter()
            .zip(&self.control)
            .map(|(a, b)| a - b)
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_split_two_levels_and_refuse_one() {
        let values = [0.0f32, 0.1, 0.05, 2.0, 2.1, 1.9];
        let cut = threshold(&values, 0.1).unwrap();
        assert!(cut > 0.1 && cut < 1.9, "{cut}");
        assert_eq!(threshold(&[1.0, 1.01, 1.0], 0.1), None);
    }

    #[test]
    fn subsets_are_every_combination_up_to_the_size() {
        let s = subsets(&[4, 7, 9], 2);
        assert_eq!(
            s,
            vec![
                vec![4],
                vec![7],
                vec![9],
                vec![4, 7],
                vec![4, 9],
                vec![7, 9]
            ]
        );
    }

    #[test]
    fn tables_take_the_majority_and_fill_unshown_rows() {
        // Target = a AND NOT b over cells showing (0,0), (1,0), (1,1) only.
        let a = vec![false, true, true, true];
        let b = vec![false, false, true, true];
        let t = vec![false, true, false, true];
        let states = vec![a, b, t];
        let (table, errors) = fit_table(&states, &[0, 1, 2, 3], 2, &[0, 1]);
        assert_eq!(errors, 1);
        // (0,1) is unshown: nearest shown rows are (0,0) and (1,1); the lower index wins.
        assert_eq!(table, vec![false, false, true, false]);
    }
}
