//! Screens and fitted models, kept per session: what the tools and `cellwright perturb` share.
//!
//! A screen is named by a catalogue Boolean model (or a `.bnet` file), whose screen of every
//! single knockout and overexpression plus some double knockouts is simulated, or by an
//! expression data set whose `obs.perturbation` names each cell's perturbation (a data set of
//! the session, an .h5ad file, a catalogue data set). Every model is fitted on all the
//! perturbed groups of its screen.

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use cellwright_core::{CancelToken, Progress, ToolError, closest_matches};
use cellwright_data::catalogue::{self, ModelError};
use cellwright_data::load::{LoadError, LoadedDatasets};
use cellwright_data::matrix::ExpressionMatrix;
use cellwright_data::text::Orientation;
use cellwright_perturb::{
    Direction, Fitted, MechanisticOptions, Method, PerturbError, ScreenData, ScreenDesign,
};
use cellwright_sim::{Perturbation, SimError};
use schemars::JsonSchema;
use serde::Serialize;

/// Double knockouts in a simulated screen, at most (fewer when the model has fewer pairs).
pub const DEFAULT_PAIRS: usize = 40;
/// The obs column naming each cell's perturbation.
pub const COLUMN: &str = "perturbation";
/// Predicted changes smaller than this (in log-normalised expression) round to 0.
const SMALLEST: f64 = 0.0005;

fn failed(message: String) -> ToolError {
    ToolError::Failed {
        message,
        retryable: false,
    }
}

/// A change rounded to 3 decimals, without a negative zero.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0 + 0.0
}

/// `error` of the screen `data` as a tool error: an unknown gene is not found (with close
/// names), a cancellation is cancelled, anything else a failed call naming the screen.
pub fn perturb_error(data: &str, error: PerturbError) -> ToolError {
    match error {
        PerturbError::Cancelled | PerturbError::Sim(SimError::Cancelled) => ToolError::Cancelled,
        PerturbError::UnknownGene { gene, suggestions } => ToolError::NotFound {
            what: format!("gene of {data}"),
            name: gene,
            suggestions,
        },
        PerturbError::NoPerturbationColumn { column } => failed(format!(
            "{data} has no `obs.{column}` column naming each cell's perturbation \
             (`control`, `GATA1 KO`, `GATA1 KO + PU1 OE`): give a catalogue Boolean model or \
             a screen such as run_knockout_screen makes"
        )),
        e => failed(format!("{data}: {e}")),
    }
}

/// A screen to learn from.
#[derive(Debug)]
pub struct Screen {
    /// The name it was asked for by.
    pub name: String,
    /// Where it came from, in words.
    pub source: String,
    pub data: ScreenData,
    /// The data set it was read from; `None` for a simulated screen.
    matrix: Option<Arc<ExpressionMatrix>>,
}

impl Screen {
    /// Single perturbations, combinations, and cells in all (control included).
    pub fn counts(&self) -> (usize, usize, usize) {
        let groups = &self.data.groups;
        let singles = groups
            .iter()
            .filter(|g| g.perturbation.knockouts.len() + g.perturbation.overexpressed.len() == 1)
            .count();
        let cells =
            self.data.control.nrows() + groups.iter().map(|g| g.cells.nrows()).sum::<usize>();
        (singles, groups.len() - singles, cells)
    }

    /// One line: where the screen came from and what it holds.
    pub fn describe(&self) -> String {
        let (singles, combinations, cells) = self.counts();
        format!(
            "{}: {} genes, {singles} single and {combinations} combined perturbations, {cells} cells",
            self.source,
            self.data.genes.len()
        )
    }

    /// The perturbation of `genes`, each perturbed `direction`, in the screen's spelling of
    /// the names (matched ignoring case when not exact). A gene the screen does not measure,
    /// or one named twice, is refused by name.
    pub fn perturbation(
        &self,
        genes: &[String],
        direction: Direction,
    ) -> Result<Perturbation, ToolError> {
        let mut names: Vec<String> = Vec::with_capacity(genes.len());
        for wanted in genes.iter().map(|g| g.trim()) {
            let all = &self.data.genes;
            let found = all.iter().find(|g| *g == wanted).or_else(|| {
                let mut same = all.iter().filter(|g| g.eq_ignore_ascii_case(wanted));
                match (same.next(), same.next()) {
                    (Some(g), None) => Some(g),
                    _ => None,
                }
            });
            let Some(name) = found else {
                return Err(ToolError::NotFound {
                    what: format!("gene of {}", self.name),
                    name: wanted.to_owned(),
                    suggestions: closest_matches(wanted, all.iter().map(String::as_str), 0.7, 3),
                });
            };
            if names.contains(name) {
                return Err(failed(format!("{name} is named twice")));
            }
            names.push(name.clone());
        }
        if names.is_empty() {
            return Err(failed("no gene to perturb".into()));
        }
        names.sort();
        Ok(match direction {
            Direction::Knockout => Perturbation {
                knockouts: names,
                overexpressed: Vec::new(),
            },
            Direction::Overexpression => Perturbation {
                knockouts: Vec::new(),
                overexpressed: names,
            },
        })
    }
}

/// A model fitted on every perturbed group of a screen.
#[derive(Debug)]
pub struct Model {
    pub screen: Arc<Screen>,
    pub fitted: Fitted,
    pub seed: u64,
}

/// One gene's predicted change.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct GeneChange {
    pub gene: String,
    /// Predicted change from control, in log-normalised expression.
    pub predicted: f64,
    /// The change measured in the screen, when this perturbation was measured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<f64>,
    /// The learned regulatory path from a perturbed gene to this one, e.g.
    /// "GATA1 inhibits PU1; PU1 activates CEBPA"; null when the learned network has none.
    /// Only the mechanistic and ensemble models have a network.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<Option<String>>,
}

/// A perturbation's predicted effect.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Prediction {
    /// Where the screen came from and what it holds.
    pub data: String,
    /// The perturbation, e.g. "GATA1 KO" or "GATA1 KO + PU1 KO".
    pub perturbation: String,
    pub model: Method,
    /// Whether the screen measured this perturbation (the model was fitted on it too).
    pub measured: bool,
    /// The genes that change most, largest first, the perturbed genes left out.
    pub changes: Vec<GeneChange>,
    /// The prediction in one line.
    pub summary: String,
}

/// One gene's predicted changes under two perturbations.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Difference {
    pub gene: String,
    pub delta_a: f64,
    pub delta_b: f64,
    /// delta_a - delta_b.
    pub difference: f64,
}

/// Two perturbations' predicted effects, side by side.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Comparison {
    /// Where the screen came from and what it holds.
    pub data: String,
    pub model: Method,
    /// The first perturbation, e.g. "GATA1 KO".
    pub a: String,
    /// The second perturbation.
    pub b: String,
    /// The genes whose predicted changes differ most, largest difference first; genes
    /// perturbed in a or b left out.
    pub genes: Vec<Difference>,
    /// The comparison in one line.
    pub summary: String,
}

/// `+0.512` / `-0.3`: a signed change for a sentence.
fn signed(x: f64) -> String {
    format!("{x:+}")
}

/// The indices of the genes `p` does not perturb, by the size of `key`, largest first
/// (ties in gene order), leaving out those that round to 0.
fn ranked(model: &Model, p: &[&Perturbation], key: &[f64]) -> Vec<usize> {
    let genes = &model.screen.data.genes;
    let perturbed = |j: usize| {
        p.iter()
            .any(|p| p.knockouts.contains(&genes[j]) || p.overexpressed.contains(&genes[j]))
    };
    let mut order: Vec<usize> = (0..genes.len())
        .filter(|&j| !perturbed(j) && key[j].abs() >= SMALLEST)
        .collect();
    order.sort_by(|&a, &b| key[b].abs().total_cmp(&key[a].abs()).then(a.cmp(&b)));
    order
}

impl Model {
    fn name(&self) -> &str {
        &self.screen.name
    }

    /// The predicted change of every gene under `p`.
    pub fn delta(&self, p: &Perturbation) -> Result<Vec<f64>, ToolError> {
        self.fitted
            .predictor
            .predict(p)
            .map_err(|e| perturb_error(self.name(), e))
    }

    /// The learned path from a gene of `p` to `gene` as a sentence; `None` when the model
    /// has no network, `Some(None)` when its network has no path.
    pub fn path(&self, p: &Perturbation, gene: &str) -> Option<Option<String>> {
        let m = self.fitted.mechanistic.as_ref()?;
        Some(m.explain(p, gene).map(|steps| {
            steps
                .iter()
                .map(|s| format!("{} {} {}", s.from, s.effect, s.to))
                .collect::<Vec<_>>()
                .join("; ")
        }))
    }

    /// The `top` genes that `p` changes most, with their paths and, when the screen measured
    /// `p`, the observed changes.
    pub fn predict(&self, p: &Perturbation, top: usize) -> Result<Prediction, ToolError> {
        let data = &self.screen.data;
        let delta = self.delta(p)?;
        let observed = data.find(p).map(|g| data.delta(g));
        let order = ranked(self, &[p], &delta);
        let changes: Vec<GeneChange> = order
            .iter()
            .take(top)
            .map(|&j| GeneChange {
                gene: data.genes[j].clone(),
                predicted: round3(delta[j]),
                observed: observed.map(|o| round3(o[j])),
                path: self.path(p, &data.genes[j]),
            })
            .collect();
        let label = p.label();
        let others = data.genes.len() - p.knockouts.len() - p.overexpressed.len();
        let method = self.fitted.method.name();
        let summary = match changes.first() {
            Some(c) => format!(
                "{label} ({method}): {} of {others} other genes change by 0.001 or more; the largest change is {} {}",
                order.len(),
                c.gene,
                signed(c.predicted)
            ),
            None => format!("{label} ({method}): no other gene changes by 0.001 or more"),
        };
        Ok(Prediction {
            data: self.screen.describe(),
            perturbation: label,
            model: self.fitted.method,
            measured: observed.is_some(),
            changes,
            summary,
        })
    }

    /// The `top` genes whose predicted changes differ most between `a` and `b`.
    pub fn compare(
        &self,
        a: &Perturbation,
        b: &Perturbation,
        top: usize,
    ) -> Result<Comparison, ToolError> {
        let genes = &self.screen.data.genes;
        let (da, db) = (self.delta(a)?, self.delta(b)?);
        let difference: Vec<f64> = da.iter().zip(&db).map(|(x, y)| x - y).collect();
        let order = ranked(self, &[a, b], &difference);
        let rows: Vec<Difference> = order
            .iter()
            .take(top)
            .map(|&j| Difference {
                gene: genes[j].clone(),
                delta_a: round3(da[j]),
                delta_b: round3(db[j]),
                difference: round3(difference[j]),
            })
            .collect();
        let (la, lb) = (a.label(), b.label());
        let method = self.fitted.method.name();
        let summary = match rows.first() {
            Some(d) => format!(
                "{la} vs {lb} ({method}): {} genes differ by 0.001 or more; the most is {} ({} under {la}, {} under {lb})",
                order.len(),
                d.gene,
                signed(d.delta_a),
                signed(d.delta_b)
            ),
            None => format!("{la} vs {lb} ({method}): no gene differs by 0.001 or more"),
        };
        Ok(Comparison {
            data: self.screen.describe(),
            model: self.fitted.method,
            a: la,
            b: lb,
            genes: rows,
            summary,
        })
    }
}

/// A cache entry, filled once; concurrent callers of one key wait for the first.
type Slot<T> = Arc<Mutex<Option<Arc<T>>>>;
/// Cache entries by key.
type Kept<K, T> = Arc<Mutex<HashMap<K, Slot<T>>>>;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn slot<K: std::hash::Hash + Eq, T>(map: &Mutex<HashMap<K, Slot<T>>>, key: K) -> Slot<T> {
    lock(map).entry(key).or_default().clone()
}

/// Where a screen's cells come from.
enum Origin {
    Matrix(Arc<ExpressionMatrix>),
    Network(cellwright_data::boolean::BooleanNetwork, String),
}

/// The data sets of the session, and the screens and models made from them, by name (and
/// seed; and method for models). A data set replaced under its name is read again.
#[derive(Debug, Clone)]
pub struct PerturbState {
    datasets: LoadedDatasets,
    pairs: usize,
    screens: Kept<(String, u64), Screen>,
    models: Kept<(String, Method, u64), Model>,
}

impl Default for PerturbState {
    fn default() -> Self {
        Self::new(LoadedDatasets::default())
    }
}

impl PerturbState {
    /// Shares `datasets` with the tools that load and simulate data.
    pub fn new(datasets: LoadedDatasets) -> Self {
        Self {
            datasets,
            pairs: DEFAULT_PAIRS,
            screens: Arc::default(),
            models: Arc::default(),
        }
    }

    /// Simulated screens get up to `pairs` double knockouts instead of [`DEFAULT_PAIRS`].
    pub fn with_pairs(mut self, pairs: usize) -> Self {
        self.pairs = pairs;
        self
    }

    fn origin(
        &self,
        name: &str,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<Origin, ToolError> {
        let load = |name: &str| {
            self.datasets
                .get_or_load(name, Orientation::GenesByCells, progress, cancel)
        };
        if let Some(m) = self.datasets.get(name) {
            return Ok(Origin::Matrix(m));
        }
        let path = Path::new(name);
        let model_file = path.extension().is_some_and(|e| e == "bnet");
        if path.exists() && !model_file {
            return Ok(Origin::Matrix(load(name)?));
        }
        let models = match catalogue::boolean_model(name, progress, cancel) {
            Ok((net, source)) => return Ok(Origin::Network(net, source)),
            Err(ModelError::Unknown { suggestions, .. }) => suggestions,
            Err(e) => return Err(e.into()),
        };
        match load(name) {
            Ok(m) => Ok(Origin::Matrix(m)),
            Err(LoadError::Unknown { suggestions, .. }) => {
                let mut close = models;
                for s in suggestions {
                    if !close.contains(&s) {
                        close.push(s);
                    }
                }
                close.truncate(5);
                Err(ToolError::NotFound {
                    what: "Boolean model or data set".into(),
                    name: name.to_owned(),
                    suggestions: close,
                })
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The screen `name` names: a data set of the session (or a file, or a catalogue data
    /// set) with `obs.perturbation`, or a Boolean model whose screen is simulated with `seed`.
    /// Kept for later calls.
    pub fn screen(
        &self,
        name: &str,
        seed: u64,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<Arc<Screen>, ToolError> {
        let origin = self.origin(name, progress, cancel)?;
        let slot = slot(&self.screens, (name.to_owned(), seed));
        let mut kept = lock(&slot);
        if let Some(s) = kept.as_ref() {
            let same = match (&origin, &s.matrix) {
                (Origin::Matrix(m), Some(read)) => Arc::ptr_eq(m, read),
                (Origin::Network(..), None) => true,
                _ => false,
            };
            if same {
                return Ok(s.clone());
            }
        }
        let screen = match origin {
            Origin::Matrix(m) => Screen {
                name: name.to_owned(),
                source: name.to_owned(),
                data: ScreenData::from_matrix(&m, COLUMN).map_err(|e| perturb_error(name, e))?,
                matrix: Some(m),
            },
            Origin::Network(net, source) => {
                let n = net.len();
                let design = ScreenDesign {
                    pairs: self.pairs.min(n * n.saturating_sub(1) / 2),
                    ..ScreenDesign::default()
                };
                let cells = design
                    .simulate(&net, seed, progress, cancel)
                    .map_err(|e| perturb_error(name, e))?;
                Screen {
                    name: name.to_owned(),
                    source: format!("{source}, simulated (seed {seed})"),
                    data: ScreenData::from_matrix(&cells, COLUMN)
                        .map_err(|e| perturb_error(name, e))?,
                    matrix: None,
                }
            }
        };
        let screen = Arc::new(screen);
        *kept = Some(screen.clone());
        Ok(screen)
    }

    /// `method` fitted (with `seed`) on every perturbed group of the screen `name`; kept for
    /// later calls.
    pub fn model(
        &self,
        name: &str,
        method: Method,
        seed: u64,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<Arc<Model>, ToolError> {
        let screen = self.screen(name, seed, progress, cancel)?;
        let slot = slot(&self.models, (name.to_owned(), method, seed));
        let mut kept = lock(&slot);
        if let Some(m) = kept.as_ref().filter(|m| Arc::ptr_eq(&m.screen, &screen)) {
            return Ok(m.clone());
        }
        let train: Vec<usize> = (0..screen.data.groups.len()).collect();
        let options = MechanisticOptions {
            seed,
            ..MechanisticOptions::default()
        };
        let fitted = Fitted::fit(method, &screen.data, &train, &options, progress, cancel)
            .map_err(|e| perturb_error(name, e))?;
        let model = Arc::new(Model {
            screen,
            fitted,
            seed,
        });
        *kept = Some(model.clone());
        Ok(model)
    }
}
