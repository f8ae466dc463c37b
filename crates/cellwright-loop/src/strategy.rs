//! How the next batch is chosen: the agent (a language model choosing among the candidates
//! its evidence ranks highest, with a hypothesis per pick) and three baselines.

use std::sync::Arc;

use cellwright_core::{ChatModel, ChatRequest, Message, ToolChoice, ToolSpec};
use futures::future::BoxFuture;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};

use crate::LoopError;
use crate::knowledge::Knowledge;
use crate::task::{Direction, StrategyKind, Task};

/// The system prompt of the agent's language model.
pub const PROPOSE_PROMPT: &str = include_str!("../../../prompts/loop/propose.md");

/// One chosen experiment.
#[derive(Debug, Clone, PartialEq)]
pub struct Pick {
    /// Index into the candidates.
    pub gene: usize,
    pub hypothesis: String,
}

/// What a strategy knows when it plans a round.
#[derive(Debug)]
pub struct RoundInput<'a> {
    pub task: &'a Task,
    /// What the backend measures, for the language model.
    pub describe: &'a str,
    pub round: u32,
    pub candidates: &'a [String],
    pub knowledge: &'a Knowledge,
    /// The phenotype of a knockout of no consequence: what a gene with no evidence is
    /// expected to measure.
    pub neutral: f64,
    /// Candidates no earlier round picked.
    pub untested: Vec<usize>,
    /// Measured candidates and their phenotype, in the order they were run.
    pub tested: Vec<(usize, f64)>,
}

impl RoundInput<'_> {
    /// Experiments this round runs.
    pub fn batch(&self) -> usize {
        (self.task.batch as usize).min(self.untested.len())
    }

    /// A random stream for this strategy and round: the same for the same task seed.
    fn rng(&self, kind: StrategyKind) -> ChaCha8Rng {
        let mut rng = ChaCha8Rng::seed_from_u64(self.task.seed);
        rng.set_stream(u64::from(self.round) << 8 | kind as u64);
        rng
    }

    /// The untested candidates by `score` (larger first), ties in a random order.
    fn ranked(&self, kind: StrategyKind, score: impl Fn(usize) -> f64) -> Vec<usize> {
        let mut order = self.untested.clone();
        order.shuffle(&mut self.rng(kind));
        let scores: Vec<f64> = order.iter().map(|&g| score(g)).collect();
        let mut idx: Vec<usize> = (0..order.len()).collect();
        idx.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
        idx.into_iter().map(|i| order[i]).collect()
    }

    /// The tested phenotypes turned so that larger is better.
    fn oriented(&self) -> Vec<(usize, f64)> {
        let d = self.task.direction;
        self.tested.iter().map(|&(g, v)| (g, d.orient(v))).collect()
    }
}

/// A way of choosing experiments. Strategies keep no state between rounds: a round's picks
/// follow from the task, the round and the results so far, so a resumed loop needs nothing
/// but its ledger.
pub trait Strategy: Send + Sync {
    fn kind(&self) -> StrategyKind;
    fn propose<'a>(
        &'a self,
        input: &'a RoundInput<'a>,
    ) -> BoxFuture<'a, Result<Vec<Pick>, LoopError>>;
}

/// Uniformly random picks: the floor.
#[derive(Debug, Clone, Copy, Default)]
pub struct RandomPicks;

impl Strategy for RandomPicks {
    fn kind(&self) -> StrategyKind {
        StrategyKind::Random
    }

    fn propose<'a>(
        &'a self,
        input: &'a RoundInput<'a>,
    ) -> BoxFuture<'a, Result<Vec<Pick>, LoopError>> {
        let mut order = input.untested.clone();
        order.shuffle(&mut input.rng(self.kind()));
        let picks = order
            .into_iter()
            .take(input.batch())
            .map(|gene| Pick {
                gene,
                hypothesis: "random pick (baseline)".into(),
            })
            .collect();
        Box::pin(async move { Ok(picks) })
    }
}

/// Prior knowledge only, with no experiment informing it: the bar a learner must clear.
#[derive(Debug, Clone, Copy, Default)]
pub struct KnowledgePrior;

impl Strategy for KnowledgePrior {
    fn kind(&self) -> StrategyKind {
        StrategyKind::KnowledgePrior
    }

    fn propose<'a>(
        &'a self,
        input: &'a RoundInput<'a>,
    ) -> BoxFuture<'a, Result<Vec<Pick>, LoopError>> {
        let k = input.knowledge;
        let picks = input
            .ranked(self.kind(), |g| k.prior[g])
            .into_iter()
            .take(input.batch())
            .map(|gene| Pick {
                gene,
                hypothesis: k.prior_reason[gene]
                    .clone()
                    .unwrap_or_else(|| "no prior evidence (ties broken at random)".into()),
            })
            .collect();
        Box::pin(async move { Ok(picks) })
    }
}

/// What the tested genes say about an untested one: the similarity-weighted mean of how
/// far their (oriented) phenotypes lay from what was expected of them (`expected`), shrunk
/// towards 0 by [`SHRINK`], and the most similar tested gene.
#[derive(Debug, Clone, Copy)]
struct Neighbours {
    shift: f64,
    nearest: Option<(usize, f64)>,
}

/// Evidence weight (in squared similarity) of the expectation a gene starts from.
const SHRINK: f64 = 0.5;

fn neighbours(
    k: &Knowledge,
    tested: &[(usize, f64)],
    gene: usize,
    expected: impl Fn(usize) -> f64,
) -> Neighbours {
    let (mut sum, mut weight, mut nearest) = (0.0, 0.0, None::<(usize, f64)>);
    for &(t, value) in tested {
        let s = k.similarity(gene, t);
        if s <= 0.0 {
            continue;
        }
        // Squared: a close relative counts far more than a distant one.
        let w = s * s;
        sum += w * (value - expected(t));
        weight += w;
        if nearest.is_none_or(|(_, best)| s > best) {
            nearest = Some((t, s));
        }
    }
    Neighbours {
        shift: sum / (weight + SHRINK),
        nearest,
    }
}

/// The best predicted by similarity to the genes tested so far (gene-set membership as the
/// features); random in the first round, when nothing is tested.
#[derive(Debug, Clone, Copy, Default)]
pub struct Greedy;

impl Strategy for Greedy {
    fn kind(&self) -> StrategyKind {
        StrategyKind::Greedy
    }

    fn propose<'a>(
        &'a self,
        input: &'a RoundInput<'a>,
    ) -> BoxFuture<'a, Result<Vec<Pick>, LoopError>> {
        let (k, tested) = (input.knowledge, input.oriented());
        let neutral = input.task.direction.orient(input.neutral);
        let estimates: Vec<Option<Neighbours>> = (0..input.candidates.len())
            .map(|g| {
                input
                    .untested
                    .contains(&g)
                    .then(|| neighbours(k, &tested, g, |_| neutral))
            })
            .collect();
        let score = |g: usize| neutral + estimates[g].map_or(0.0, |n| n.shift);
        let d = input.task.direction;
        let picks = input
            .ranked(self.kind(), score)
            .into_iter()
            .take(input.batch())
            .map(|gene| Pick {
                gene,
                hypothesis: match estimates[gene].and_then(|n| n.nearest.map(|x| (n, x))) {
                    Some((n, (t, s))) => format!(
                        "predicted {:.2} from similar tested genes (nearest {}, similarity {s:.2}, measured {:.2})",
                        d.orient(neutral + n.shift),
                        input.candidates[t],
                        lookup(&input.tested, t)
                    ),
                    None => "no similar gene tested yet (random)".into(),
                },
            })
            .collect();
        Box::pin(async move { Ok(picks) })
    }
}

fn lookup(tested: &[(usize, f64)], gene: usize) -> f64 {
    tested
        .iter()
        .find(|t| t.0 == gene)
        .map_or(f64::NAN, |t| t.1)
}

/// Chooses among a shortlist: the agent's language model.
pub trait Chooser: Send + Sync {
    /// `backend:name` of the model.
    fn id(&self) -> String;
    /// Up to `batch` genes of `shortlist` to test next, given the `brief`.
    fn choose<'a>(
        &'a self,
        brief: &'a str,
        shortlist: &'a [String],
        batch: usize,
    ) -> BoxFuture<'a, Result<Vec<String>, String>>;
}

/// A chat model as a [`Chooser`]: one required call of `propose_experiments`, whose genes
/// are held to the shortlist by the schema.
pub struct ModelChooser {
    pub model: Arc<dyn ChatModel>,
    pub seed: u64,
}

impl std::fmt::Debug for ModelChooser {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelChooser")
            .field("model", &self.model.id())
            .finish()
    }
}

impl ModelChooser {
    fn spec(shortlist: &[String], batch: usize) -> ToolSpec {
        ToolSpec {
            name: "propose_experiments".into(),
            description: "The genes to knock out next, the most promising first.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "genes": {
                        "type": "array",
                        "items": {"type": "string", "enum": shortlist},
                        "minItems": 1,
                        "maxItems": batch,
                    }
                },
                "required": ["genes"],
                "additionalProperties": false,
            }),
            output: json!({}),
            effects: cellwright_core::Effects::Pure,
            answer: None,
        }
    }
}

impl Chooser for ModelChooser {
    fn id(&self) -> String {
        self.model.id()
    }

    fn choose<'a>(
        &'a self,
        brief: &'a str,
        shortlist: &'a [String],
        batch: usize,
    ) -> BoxFuture<'a, Result<Vec<String>, String>> {
        Box::pin(async move {
            let request = ChatRequest {
                messages: vec![Message::system(PROPOSE_PROMPT), Message::user(brief)],
                tools: vec![Self::spec(shortlist, batch)],
                tool_choice: ToolChoice::Named("propose_experiments".into()),
                max_tokens: Some(512),
                temperature: Some(0.0),
                seed: Some(self.seed),
            };
            let response = self.model.chat(&request).await.map_err(|e| e.to_string())?;
            let call = response
                .message
                .tool_calls
                .first()
                .ok_or("the model called no tool")?;
            let args: Value = serde_json::from_str(&call.arguments)
                .map_err(|e| format!("the model's arguments are not JSON: {e}"))?;
            let genes = args["genes"]
                .as_array()
                .ok_or("the model's arguments have no genes")?
                .iter()
                .filter_map(|g| g.as_str().map(str::to_owned))
                .collect();
            Ok(genes)
        })
    }
}

/// The agent: ranks every untested candidate by what the results so far say about it
/// (the phenotypes of similar tested genes, and the prior knowledge as recalibrated on the
/// results), writes the evidence for the best `2 × batch`, and lets a language model choose
/// the batch among them, with a hypothesis per pick. Without a model (or when the model
/// fails) it takes the ranking's top picks and says so.
pub struct Agent {
    pub chooser: Option<Box<dyn Chooser>>,
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let model = self.chooser.as_ref().map(|c| c.id());
        f.debug_struct("Agent").field("chooser", &model).finish()
    }
}

/// A candidate, its expected (oriented) phenotype and the evidence for it.
type Assessed = (usize, f64, Vec<String>);

impl Agent {
    /// Each untested candidate's expected (oriented) phenotype and what the tested genes
    /// most like it say, in the order of `input.untested`.
    fn estimate(input: &RoundInput<'_>) -> Vec<(f64, Neighbours)> {
        let (k, tested) = (input.knowledge, input.oriented());
        let d = input.task.direction;
        // The prior as a predictor: a gene with no prior evidence is expected to do nothing
        // (the neutral phenotype); the prior's slope is fitted on the tested genes (least
        // squares through that anchor), so a prior the results contradict loses its say.
        let neutral = d.orient(input.neutral);
        // The mechanistic model's predicted change where there is one, else the static prior.
        let prior: Vec<f64> = match &k.oracle {
            Some(o) => o
                .predicted
                .iter()
                .map(|p| d.orient(p - o.control))
                .collect(),
            None => k.prior.clone(),
        };
        let slope = prior_slope(tested.iter().map(|&(g, v)| (prior[g], v - neutral)));
        let expected = |g: usize| neutral + slope * prior[g];
        input
            .untested
            .iter()
            .map(|&g| {
                let n = neighbours(k, &tested, g, expected);
                (expected(g) + n.shift, n)
            })
            .collect()
    }

    /// Each untested candidate's expected (oriented) phenotype, in the order of
    /// `input.untested`.
    pub(crate) fn expected(input: &RoundInput<'_>) -> Vec<f64> {
        Self::estimate(input).into_iter().map(|(v, _)| v).collect()
    }

    /// Each untested candidate's expected (oriented) phenotype and the evidence for it.
    fn assess(input: &RoundInput<'_>) -> Vec<Assessed> {
        let k = input.knowledge;
        let d = input.task.direction;
        input
            .untested
            .iter()
            .zip(Self::estimate(input))
            .map(|(&g, (score, n))| {
                let mut evidence = Vec::new();
                if let Some(reason) = &k.prior_reason[g] {
                    evidence.push(reason.clone());
                }
                if let Some(o) = &k.oracle {
                    evidence.push(format!(
                        "{} predicts {:.2} (control {:.2})",
                        o.source, o.predicted[g], o.control
                    ));
                }
                if let Some(line) = best_set(k, &input.tested, g, d) {
                    evidence.push(line);
                }
                if let Some((t, s)) = n.nearest {
                    evidence.push(format!(
                        "most like tested {} (similarity {s:.2}, measured {:.2})",
                        input.candidates[t],
                        lookup(&input.tested, t)
                    ));
                }
                if !input.tested.is_empty() {
                    evidence.push(format!("expected {:.2}", d.orient(score)));
                }
                if evidence.is_empty() {
                    evidence.push("no evidence yet".into());
                }
                (g, score, evidence)
            })
            .collect()
    }

    fn brief(input: &RoundInput<'_>, shortlist: &[Assessed]) -> String {
        let d = input.task.direction;
        let goal = match d {
            Direction::Min => "lower the phenotype most",
            Direction::Max => "raise the phenotype most",
        };
        let mut text = format!(
            "Goal: find the {} knockouts that {goal}.\nMeasured: {}.\nRound {} of {}; {} experiments this round.\n",
            input.task.top_k,
            input.describe,
            input.round + 1,
            input.task.rounds,
            input.batch()
        );
        let mut best = input.tested.clone();
        best.sort_by(|a, b| d.orient(b.1).total_cmp(&d.orient(a.1)));
        if best.is_empty() {
            text.push_str("No experiment has run yet.\n");
        } else {
            let shown: Vec<String> = best
                .iter()
                .take(8)
                .map(|&(g, v)| format!("{} {v:.2}", input.candidates[g]))
                .collect();
            text.push_str(&format!(
                "{} tested; best so far: {}.\n",
                best.len(),
                shown.join(", ")
            ));
        }
        text.push_str("Candidates:\n");
        for (g, _, evidence) in shortlist {
            text.push_str(&format!(
                "- {}: {}\n",
                input.candidates[*g],
                evidence.join("; ")
            ));
        }
        text
    }
}

/// The slope of the least-squares line through the origin and `points` (prior, shift from
/// neutral); before any experiment, 1 (the prior taken at its word).
fn prior_slope(points: impl Iterator<Item = (f64, f64)>) -> f64 {
    let (mut sxy, mut sxx) = (0.0, 0.0);
    for (x, y) in points {
        sxy += x * y;
        sxx += x * x;
    }
    if sxx > 1e-12 { sxy / sxx } else { 1.0 }
}

/// The gene's set whose tested members did best (at least two tested), as evidence.
fn best_set(k: &Knowledge, tested: &[(usize, f64)], gene: usize, d: Direction) -> Option<String> {
    k.membership[gene]
        .iter()
        .filter_map(|&(s, _)| {
            let values: Vec<f64> = k.members[s]
                .iter()
                .filter_map(|&m| tested.iter().find(|t| t.0 == m).map(|t| t.1))
                .collect();
            (values.len() >= 2).then(|| {
                let m = values.iter().sum::<f64>() / values.len() as f64;
                (s, values.len(), m)
            })
        })
        .max_by(|a, b| d.orient(a.2).total_cmp(&d.orient(b.2)))
        .map(|(s, n, m)| format!("{} has {n} tested members, mean {m:.2}", k.sets[s]))
}

impl Strategy for Agent {
    fn kind(&self) -> StrategyKind {
        StrategyKind::Agent
    }

    fn propose<'a>(
        &'a self,
        input: &'a RoundInput<'a>,
    ) -> BoxFuture<'a, Result<Vec<Pick>, LoopError>> {
        Box::pin(async move {
            let batch = input.batch();
            // Each untested candidate's assessment, by candidate; the best 2 × batch, in order.
            let mut by_gene = vec![None; input.candidates.len()];
            for a in Self::assess(input) {
                let gene = a.0;
                by_gene[gene] = Some(a);
            }
            let order = input.ranked(self.kind(), |g| {
                by_gene[g].as_ref().map_or(f64::MIN, |a: &Assessed| a.1)
            });
            let assessed: Vec<Assessed> = order
                .into_iter()
                .take(2 * batch)
                .filter_map(|g| by_gene[g].take())
                .collect();
            let names: Vec<String> = assessed
                .iter()
                .map(|a| input.candidates[a.0].clone())
                .collect();
            let (chosen, how) = match &self.chooser {
                None => (Vec::new(), "ranked first by the evidence".to_owned()),
                Some(chooser) => {
                    let brief = Self::brief(input, &assessed);
                    match chooser.choose(&brief, &names, batch).await {
                        Ok(genes) => (genes, format!("chosen by {}", chooser.id())),
                        Err(e) => (
                            Vec::new(),
                            format!(
                                "ranked first by the evidence ({} failed: {e})",
                                chooser.id()
                            ),
                        ),
                    }
                }
            };
            // The model's picks first (each once, only from the shortlist), then the ranking.
            let mut picked: Vec<usize> = Vec::new();
            for gene in chosen
                .iter()
                .filter_map(|c| names.iter().position(|n| n == c))
            {
                if !picked.contains(&gene) && picked.len() < batch {
                    picked.push(gene);
                }
            }
            let from_model = picked.len();
            for i in 0..assessed.len() {
                if picked.len() < batch && !picked.contains(&i) {
                    picked.push(i);
                }
            }
            Ok(picked
                .into_iter()
                .enumerate()
                .map(|(n, i)| {
                    let (gene, _, evidence) = &assessed[i];
                    let source = if n < from_model {
                        how.as_str()
                    } else {
                        "ranked first by the evidence"
                    };
                    Pick {
                        gene: *gene,
                        hypothesis: format!("{} ({source})", evidence.join("; ")),
                    }
                })
                .collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_prior_slope_is_fitted_through_the_neutral_point() {
        assert_eq!(prior_slope(std::iter::empty()), 1.0);
        assert_eq!(prior_slope([(0.0, 3.0)].into_iter()), 1.0);
        let b = prior_slope([(1.0, 2.0), (2.0, 4.0), (0.0, 5.0)].into_iter());
        assert!((b - 2.0).abs() < 1e-12, "{b}");
    }
}
