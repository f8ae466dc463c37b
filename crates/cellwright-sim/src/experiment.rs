//! Experiments on the ODE model: perturbations, designs, the Euler–Maruyama integration of
//! each cell, and the noise-free steady states the tests compare with the Boolean model.

use std::sync::atomic::{AtomicU64, Ordering};

use cellwright_core::{CancelToken, Progress};
use cellwright_data::boolean::{BooleanNetwork, Edge, Sign};
use cellwright_data::matrix::{Column, ExpressionMatrix, MatrixError, Values};
use ndarray::Array2;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::counts::CountNoise;
use crate::lanes::{Block, Kernel, LANES, LaneRng};
use crate::model::{Kinetics, OdeModel, SimError};

/// Genes held off (production 0, starting at 0) or on (production at its maximum, `f = 1`).
#[derive(
    Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(default, deny_unknown_fields)]
pub struct Perturbation {
    pub knockouts: Vec<String>,
    pub overexpressed: Vec<String>,
}

impl Perturbation {
    pub fn control() -> Self {
        Self::default()
    }

    pub fn knockout<S: Into<String>>(genes: impl IntoIterator<Item = S>) -> Self {
        Self {
            knockouts: genes.into_iter().map(Into::into).collect(),
            overexpressed: Vec::new(),
        }
    }

    /// `control`, or the genes with their kind, e.g. `GATA1 KO + PU1 OE`.
    pub fn label(&self) -> String {
        if self.knockouts.is_empty() && self.overexpressed.is_empty() {
            return "control".into();
        }
        let ko = self.knockouts.iter().map(|g| format!("{g} KO"));
        let oe = self.overexpressed.iter().map(|g| format!("{g} OE"));
        ko.chain(oe).collect::<Vec<_>>().join(" + ")
    }
}

/// Which time point of its trajectory each cell shows.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Design {
    /// The end of the run: cells at (noisy) steady state.
    #[default]
    SteadyState,
    /// A time drawn uniformly along the run, recorded in `obs.time` (BoolODE's sampling).
    Trajectory,
}

/// Where every trajectory starts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Initial {
    /// mRNA at half its maximum, protein at the level that mRNA sustains (BoolODE's
    /// default); noise then chooses among the attractors.
    #[default]
    HalfMax,
    /// A Boolean state, one value per node: on at the maximum, off at 0.
    State(Vec<bool>),
}

/// How to integrate: step, length, noise, design and start.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub kinetics: Kinetics,
    /// Euler–Maruyama step, in protein lifetimes.
    pub dt: f64,
    /// Length of each trajectory, in protein lifetimes.
    pub duration: f64,
    /// `σ` of the multiplicative noise `σ √|y| dW` on every mRNA and protein.
    pub noise: f64,
    pub design: Design,
    pub initial: Initial,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            kinetics: Kinetics::default(),
            dt: 0.01,
            duration: 20.0,
            noise: 1.0,
            design: Design::SteadyState,
            initial: Initial::HalfMax,
        }
    }
}

impl Settings {
    fn steps(&self) -> Result<usize, SimError> {
        let ok = |v: f64| v.is_finite() && v > 0.0;
        if !(ok(self.dt) && ok(self.duration) && self.noise.is_finite() && self.noise >= 0.0) {
            return Err(SimError::Invalid(format!(
                "dt and duration must be positive and noise non-negative, got dt {}, duration {}, noise {}",
                self.dt, self.duration, self.noise
            )));
        }
        let steps = (self.duration / self.dt).round();
        if steps > 1e8 {
            return Err(SimError::Invalid(format!(
                "{steps} steps of {} for a duration of {} is too many",
                self.dt, self.duration
            )));
        }
        Ok((steps as usize).max(1))
    }
}

/// A network ready to simulate under one seed.
#[derive(Debug, Clone)]
pub struct Simulator {
    model: OdeModel,
    edges: Vec<Edge>,
    settings: Settings,
    /// Integration steps per trajectory, from the settings.
    steps: usize,
    seed: u64,
}

/// What one perturbation does to the model's nodes.
struct Applied {
    transcription: Vec<f64>,
    forced_on: Vec<bool>,
    knocked_out: Vec<bool>,
}

/// Cells simulated by [`Simulator::run`]: mRNA levels, and what each cell is.
#[derive(Debug, Clone)]
pub struct Simulation {
    pub nodes: Vec<String>,
    /// Cells × nodes.
    pub mrna: Array2<f32>,
    /// Each cell's perturbation, as an index into `perturbations`.
    pub perturbation: Vec<usize>,
    pub perturbations: Vec<Perturbation>,
    /// Each cell's time point, in protein lifetimes.
    pub time: Vec<f64>,
    pub seed: u64,
    /// The steady mRNA level of a fully-on node.
    pub mrna_max: f64,
    /// The ground truth: the model's signed regulator → target edges.
    pub edges: Vec<Edge>,
}

impl Simulator {
    /// The model of `net` with rates drawn for `seed`.
    pub fn new(net: &BooleanNetwork, settings: Settings, seed: u64) -> Result<Self, SimError> {
        let steps = settings.steps()?;
        let model = OdeModel::new(net, &settings.kinetics, seed)?;
        if let Initial::State(state) = &settings.initial
            && state.len() != model.len()
        {
            return Err(SimError::Invalid(format!(
                "the initial state has {} values for {} nodes",
                state.len(),
                model.len()
            )));
        }
        Ok(Self {
            model,
            edges: net.edges(),
            settings,
            steps,
            seed,
        })
    }

    pub fn model(&self) -> &OdeModel {
        &self.model
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    fn node(&self, name: &str) -> Result<usize, SimError> {
        let names = self.model.names();
        names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| SimError::UnknownNode {
                name: name.to_owned(),
                suggestions: cellwright_core::closest_matches(
                    name,
                    names.iter().map(String::as_str),
                    0.8,
                    3,
                ),
            })
    }

    fn apply(&self, perturbation: &Perturbation) -> Result<Applied, SimError> {
        let n = self.model.len();
        let mut applied = Applied {
            transcription: self.model.transcription.clone(),
            forced_on: vec![false; n],
            knocked_out: vec![false; n],
        };
        for name in &perturbation.knockouts {
            let i = self.node(name)?;
            applied.transcription[i] = 0.0;
            applied.knocked_out[i] = true;
        }
        for name in &perturbation.overexpressed {
            let i = self.node(name)?;
            if applied.knocked_out[i] {
                return Err(SimError::Invalid(format!(
                    "{name} is both knocked out and overexpressed"
                )));
            }
            applied.forced_on[i] = true;
        }
        Ok(applied)
    }

    /// The starting mRNA and protein levels.
    fn start(&self, applied: &Applied, from: Option<&[bool]>) -> (Vec<f64>, Vec<f64>) {
        let m = &self.model;
        let from = from.or(match &self.settings.initial {
            Initial::State(s) => Some(s.as_slice()),
            Initial::HalfMax => None,
        });
        let x: Vec<f64> = (0..m.len())
            .map(|i| {
                let max = m.transcription[i] / m.mrna_degradation[i];
                match (applied.knocked_out[i], from) {
                    (true, _) => 0.0,
                    (false, Some(s)) => {
                        if s[i] {
                            max
                        } else {
                            0.0
                        }
                    }
                    (false, None) => max / 2.0,
                }
            })
            .collect();
        let p = (0..m.len())
            .map(|i| x[i] * m.translation[i] / m.protein_degradation[i])
            .collect();
        (x, p)
    }

    /// The drift of every mRNA and protein, in double precision.
    fn drift(
        &self,
        applied: &Applied,
        (x, p): (&[f64], &[f64]),
        (dx, dp): (&mut [f64], &mut [f64]),
        scratch: &mut Scratch,
    ) {
        let m = &self.model;
        m.activities(p, &mut scratch.q);
        m.production(&scratch.q, &mut scratch.values, &mut scratch.f);
        for i in 0..m.len() {
            let f = if applied.forced_on[i] {
                1.0
            } else {
                scratch.f[i]
            };
            dx[i] = applied.transcription[i] * f - m.mrna_degradation[i] * x[i];
            dp[i] = m.translation[i] * x[i] - m.protein_degradation[i] * p[i];
        }
    }

    /// The noise-free steady mRNA levels reached from the Boolean state `from` (or the
    /// settings' start) under `perturbation`: Euler steps of `dt` until no level moves by
    /// more than 1e-9 per step; [`SimError::NotSettled`] if none is reached within 1,000
    /// protein lifetimes (the model oscillates, as a cell cycle does).
    pub fn steady_state(
        &self,
        perturbation: &Perturbation,
        from: Option<&[bool]>,
    ) -> Result<Vec<f64>, SimError> {
        let applied = self.apply(perturbation)?;
        let n = self.model.len();
        if let Some(s) = from
            && s.len() != n
        {
            return Err(SimError::Invalid(format!(
                "the state has {} values for {n} nodes",
                s.len()
            )));
        }
        let (mut x, mut p) = self.start(&applied, from);
        let (mut dx, mut dp) = (vec![0.0; n], vec![0.0; n]);
        let mut scratch = Scratch {
            q: vec![0.0; n],
            f: vec![0.0; n],
            values: Vec::new(),
        };
        let dt = self.settings.dt;
        let steps = (1000.0 / dt) as usize;
        for _ in 0..steps {
            self.drift(&applied, (&x, &p), (&mut dx, &mut dp), &mut scratch);
            let mut moved = 0.0f64;
            for i in 0..n {
                x[i] += dx[i] * dt;
                p[i] += dp[i] * dt;
                moved = moved.max((dx[i] * dt).abs()).max((dp[i] * dt).abs());
            }
            if moved < 1e-9 {
                return Ok(x);
            }
        }
        Err(SimError::NotSettled {
            after: steps as f64 * dt,
        })
    }

    /// The block of cells from `first` on, one per entry of `groups` (each cell's
    /// perturbation); lanes past the last cell idle. Each cell's random stream (the time it
    /// is shown at, and the seed of its noise) is its index, so nothing depends on which
    /// thread runs the block.
    fn block(&self, applied: &[Applied], groups: &[usize], first: usize) -> Block {
        let n = self.model.len();
        let (mut x, mut p) = (vec![[0.0; LANES]; n], vec![[0.0; LANES]; n]);
        let mut transcription = vec![[0.0; LANES]; n];
        let mut forced_on = vec![[false; LANES]; n];
        let (mut shown, mut seeds) = ([1; LANES], [[0u32; 4]; LANES]);
        for (l, &g) in groups.iter().enumerate() {
            let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
            rng.set_stream((first + l) as u64);
            shown[l] = match self.settings.design {
                Design::SteadyState => self.steps,
                Design::Trajectory => rng.gen_range(1..=self.steps),
            };
            seeds[l] = rng.r#gen();
            let (x0, p0) = self.start(&applied[g], None);
            for i in 0..n {
                x[i][l] = x0[i] as f32;
                p[i][l] = p0[i] as f32;
                transcription[i][l] = applied[g].transcription[i] as f32;
                forced_on[i][l] = applied[g].forced_on[i];
            }
        }
        Block {
            x,
            p,
            transcription,
            forced_on,
            rng: LaneRng::new(seeds),
            shown,
        }
    }

    /// `cells` cells for each perturbation, every cell its own trajectory, integrated in
    /// blocks of sixteen ([`crate::lanes`]) in parallel. `progress` hears of finished
    /// blocks; `cancel` stops the run within a thousand steps.
    pub fn run(
        &self,
        groups: &[(Perturbation, usize)],
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<Simulation, SimError> {
        if groups.is_empty() {
            return Err(SimError::Invalid("no perturbations to simulate".into()));
        }
        let applied = groups
            .iter()
            .map(|(p, _)| self.apply(p))
            .collect::<Result<Vec<_>, _>>()?;
        let jobs: Vec<usize> = groups
            .iter()
            .enumerate()
            .flat_map(|(g, (_, cells))| std::iter::repeat_n(g, *cells))
            .collect();
        let total = jobs.len();
        if total == 0 {
            return Err(SimError::Invalid("no cells to simulate".into()));
        }
        let n = self.model.len();
        let kernel = Kernel::new(&self.model, self.settings.dt, self.settings.noise);
        let (mut mrna, mut time) = (vec![0.0f32; total * n], vec![0.0f64; total]);
        let done = AtomicU64::new(0);
        mrna.par_chunks_mut(LANES * n)
            .zip(time.par_chunks_mut(LANES))
            .zip(jobs.par_chunks(LANES))
            .enumerate()
            .try_for_each(|(b, ((rows, times), cells))| {
                if cancel.is_cancelled() {
                    return Err(SimError::Cancelled);
                }
                let mut block = self.block(&applied, cells, b * LANES);
                let mut out = vec![0.0; LANES * n];
                if !kernel.integrate(&mut block, &mut out, cancel) {
                    return Err(SimError::Cancelled);
                }
                rows.copy_from_slice(&out[..rows.len()]);
                for (t, &shown) in times.iter_mut().zip(&block.shown) {
                    *t = shown as f64 * self.settings.dt;
                }
                let finished = done.fetch_add(cells.len() as u64, Ordering::Relaxed);
                progress.report(
                    finished + cells.len() as u64,
                    Some(total as u64),
                    "simulating cells",
                );
                Ok(())
            })?;
        Ok(Simulation {
            nodes: self.model.names().to_vec(),
            mrna: Array2::from_shape_vec((total, n), mrna)
                .map_err(|e| SimError::Invalid(e.to_string()))?,
            perturbation: jobs,
            perturbations: groups.iter().map(|(p, _)| p.clone()).collect(),
            time,
            seed: self.seed,
            mrna_max: self.model.kinetics().mrna_max(),
            edges: self.edges.clone(),
        })
    }
}

/// Buffers of the double-precision drift.
struct Scratch {
    q: Vec<f64>,
    f: Vec<f64>,
    values: Vec<f64>,
}

impl Simulation {
    fn annotate(&self, x: Values) -> Result<ExpressionMatrix, MatrixError> {
        let cells = (0..self.mrna.nrows())
            .map(|c| format!("cell{c:06}"))
            .collect();
        let mut m = ExpressionMatrix::new(x, cells, self.nodes.clone())?;
        m.obs.push((
            "perturbation".into(),
            Column::Categorical {
                categories: self.perturbations.iter().map(Perturbation::label).collect(),
                codes: self.perturbation.iter().map(|&g| g as i32).collect(),
                ordered: false,
            },
        ));
        m.obs
            .push(("time".into(), Column::Float(self.time.clone())));
        m.obs.push((
            "seed".into(),
            Column::Int(vec![self.seed as i64; self.mrna.nrows()]),
        ));
        Ok(m)
    }

    /// The mRNA levels as a matrix (cells × nodes, dense), with `obs` columns `perturbation`,
    /// `time` and `seed`.
    pub fn expression(&self) -> Result<ExpressionMatrix, MatrixError> {
        self.annotate(Values::Dense(self.mrna.clone()))
    }

    /// UMI counts drawn from the mRNA levels (sparse X), with the levels kept as the layer
    /// `mrna` and each cell's capture factor as `obs.capture`.
    pub fn counts(&self, noise: &CountNoise) -> Result<ExpressionMatrix, SimError> {
        let (counts, capture) = noise.sample(&self.mrna, self.mrna_max, self.seed)?;
        let mut m = self
            .annotate(counts)
            .map_err(|e| SimError::Invalid(e.to_string()))?;
        m.obs.push(("capture".into(), Column::Float(capture)));
        m.layers
            .insert("mrna".into(), Values::Dense(self.mrna.clone()));
        Ok(m)
    }
}

/// A knockout screen: single knockouts, some double knockouts, and a shared control group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Screen {
    /// Genes knocked out one at a time; empty means every node of the model.
    #[serde(default)]
    pub singles: Vec<String>,
    /// How many double knockouts, drawn (seeded) from all pairs of `singles`.
    #[serde(default)]
    pub pairs: usize,
    pub cells_per_perturbation: usize,
    /// Cells of the shared control group; `cells_per_perturbation` when absent.
    #[serde(default)]
    pub control_cells: Option<usize>,
}

impl Simulator {
    /// The groups of `screen`: control first, then the singles in order, then the pairs.
    pub fn screen_groups(&self, screen: &Screen) -> Result<Vec<(Perturbation, usize)>, SimError> {
        let singles: Vec<String> = if screen.singles.is_empty() {
            self.model.names().to_vec()
        } else {
            for g in &screen.singles {
                self.node(g)?;
            }
            screen.singles.clone()
        };
        let mut all_pairs = Vec::new();
        for (i, a) in singles.iter().enumerate() {
            for b in &singles[i + 1..] {
                all_pairs.push((a.clone(), b.clone()));
            }
        }
        if screen.pairs > all_pairs.len() {
            return Err(SimError::Invalid(format!(
                "{} pairs asked for, but {} genes make only {}",
                screen.pairs,
                singles.len(),
                all_pairs.len()
            )));
        }
        // A seeded partial shuffle picks the pairs; they are then kept in order.
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed);
        rng.set_stream(crate::model::PARAMETER_STREAM - 1);
        let mut picked: Vec<usize> = (0..all_pairs.len()).collect();
        for i in 0..screen.pairs {
            let j = rng.gen_range(i..picked.len());
            picked.swap(i, j);
        }
        let mut picked = picked[..screen.pairs].to_vec();
        picked.sort_unstable();
        let n = screen.cells_per_perturbation;
        let mut groups = vec![(Perturbation::control(), screen.control_cells.unwrap_or(n))];
        groups.extend(
            singles
                .iter()
                .map(|g| (Perturbation::knockout([g.as_str()]), n)),
        );
        groups.extend(picked.into_iter().map(|p| {
            let (a, b) = &all_pairs[p];
            (Perturbation::knockout([a.as_str(), b.as_str()]), n)
        }));
        Ok(groups)
    }
}

/// One perturbation's cells at a glance.
#[derive(Debug, Clone, PartialEq, Serialize, schemars::JsonSchema)]
pub struct GroupSummary {
    pub perturbation: String,
    pub cells: usize,
    /// Nodes whose mean mRNA is above half the maximum, in model order.
    pub mostly_on: Vec<String>,
}

impl Simulation {
    /// Each perturbation's cell count and the nodes mostly on in it.
    pub fn summary(&self) -> Vec<GroupSummary> {
        // One pass over the cells: per group, its cell count and each node's sum.
        let groups = self.perturbations.len();
        let mut cells = vec![0usize; groups];
        let mut sums = vec![vec![0.0f64; self.nodes.len()]; groups];
        for (row, &g) in self.mrna.rows().into_iter().zip(&self.perturbation) {
            cells[g] += 1;
            for (sum, &x) in sums[g].iter_mut().zip(row) {
                *sum += f64::from(x);
            }
        }
        self.perturbations
            .iter()
            .zip(cells.into_iter().zip(sums))
            .map(|(p, (cells, sums))| GroupSummary {
                perturbation: p.label(),
                cells,
                mostly_on: self
                    .nodes
                    .iter()
                    .zip(&sums)
                    .filter(|(_, sum)| *sum / cells.max(1) as f64 > self.mrna_max / 2.0)
                    .map(|(n, _)| n.clone())
                    .collect(),
            })
            .collect()
    }

    /// The ground-truth network as a table: `regulator`, `target`, `sign` (activation,
    /// inhibition or dual), tab-separated, with a header.
    pub fn network_tsv(&self) -> String {
        let mut text = String::from("regulator\ttarget\tsign\n");
        for e in &self.edges {
            let sign = match e.sign {
                Sign::Activation => "activation",
                Sign::Inhibition => "inhibition",
                Sign::Dual => "dual",
            };
            text.push_str(&format!("{}\t{}\t{sign}\n", e.from, e.to));
        }
        text
    }
}
