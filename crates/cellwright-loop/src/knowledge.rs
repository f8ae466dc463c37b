//! What is known about the candidates before any experiment: gene sets (features that say
//! which genes behave alike) and a prior (which genes are likely hits, and why).

use std::collections::{HashMap, VecDeque};

use cellwright_data::boolean::{BooleanNetwork, Sign};
use cellwright_data::genesets::Collection;

use crate::task::Direction;

/// The essential machinery of a proliferating cell: knocking out its parts is harmful in
/// almost every cell line (the static knowledge prior of DepMap tasks).
pub const ESSENTIAL_SETS: [(&str, &str); 5] = [
    ("KEGG_RIBOSOME", "ribosome"),
    ("KEGG_SPLICEOSOME", "spliceosome"),
    ("KEGG_PROTEASOME", "proteasome"),
    ("KEGG_RNA_POLYMERASE", "RNA polymerase"),
    ("KEGG_DNA_REPLICATION", "DNA replication"),
];

/// Gene sets larger than this say little about their members' behaviour; they are left out.
const MAX_SET: usize = 300;

/// Knowledge about the candidates, indexed by candidate.
#[derive(Debug, Clone)]
pub struct Knowledge {
    /// Set names.
    pub sets: Vec<String>,
    /// Each candidate's sets, as indices into `sets`, with the set's weight (rarer sets weigh
    /// more).
    pub membership: Vec<Vec<(usize, f64)>>,
    /// The candidates each set holds.
    pub members: Vec<Vec<usize>>,
    /// Prior belief that a candidate is a hit (larger is likelier), oriented by the task's
    /// direction.
    pub prior: Vec<f64>,
    /// Why, for candidates with a prior reason.
    pub prior_reason: Vec<Option<String>>,
    /// A mechanistic model's prediction of each candidate's phenotype, where there is one.
    pub oracle: Option<Oracle>,
}

/// What a mechanistic model predicts before any experiment: for simulator tasks, the
/// published model simulated with kinetic rates of its own (the experiment's rates are
/// unknown to it) and fewer cells.
#[derive(Debug, Clone)]
pub struct Oracle {
    /// Predicted phenotype per candidate.
    pub predicted: Vec<f64>,
    /// Predicted phenotype with nothing knocked out.
    pub control: f64,
    /// What made the prediction, for the evidence.
    pub source: String,
}

impl Knowledge {
    fn from_sets(candidates: &[String], sets: Vec<(String, Vec<usize>)>) -> Self {
        let n = candidates.len();
        let (mut names, mut members, mut membership) =
            (Vec::new(), Vec::new(), vec![Vec::new(); n]);
        for (name, genes) in sets {
            // Rarer sets weigh more; a set holding nearly every candidate says nothing.
            let weight = (n as f64 / genes.len() as f64).ln();
            if genes.len() < 2 || genes.len() > MAX_SET || weight < 0.05 {
                continue;
            }
            for &g in &genes {
                membership[g].push((names.len(), weight));
            }
            names.push(name);
            members.push(genes);
        }
        Self {
            sets: names,
            membership,
            members,
            prior: vec![0.0; n],
            prior_reason: vec![None; n],
            oracle: None,
        }
    }

    /// Knowledge of human genes: the gene-set collections as features, and membership of the
    /// essential machinery ([`ESSENTIAL_SETS`]) as the prior of harmful knockouts (for the
    /// other direction, the prior is the reverse: non-essential genes first).
    pub fn from_collections(
        candidates: &[String],
        collections: &[Collection],
        direction: Direction,
    ) -> Self {
        let index: HashMap<&str, usize> = candidates
            .iter()
            .enumerate()
            .map(|(i, g)| (g.as_str(), i))
            .collect();
        let sets: Vec<(String, Vec<usize>)> = collections
            .iter()
            .flat_map(|c| &c.sets)
            .map(|s| {
                let genes = s
                    .genes
                    .iter()
                    .filter_map(|g| index.get(g.as_str()).copied())
                    .collect();
                (s.name.clone(), genes)
            })
            .collect();
        let mut machinery: Vec<Vec<&str>> = vec![Vec::new(); candidates.len()];
        for set in collections.iter().flat_map(|c| &c.sets) {
            if let Some((_, label)) = ESSENTIAL_SETS.iter().find(|(name, _)| *name == set.name) {
                for g in &set.genes {
                    if let Some(&i) = index.get(g.as_str()) {
                        machinery[i].push(label);
                    }
                }
            }
        }
        let mut knowledge = Self::from_sets(candidates, sets);
        for (i, labels) in machinery.into_iter().enumerate() {
            let count = labels.len() as f64;
            knowledge.prior[i] = direction.orient(-count);
            if !labels.is_empty() {
                knowledge.prior_reason[i] =
                    Some(format!("part of the {}", labels.join(" and the ")));
            }
        }
        knowledge
    }

    /// Knowledge of a model's nodes: the wiring as features (each node's regulators and its
    /// targets are sets), and closeness upstream of `node` as the prior, favouring paths
    /// whose sign moves `node` the wanted way when the gene is knocked out.
    pub fn from_network(
        candidates: &[String],
        net: &BooleanNetwork,
        node: &str,
        direction: Direction,
    ) -> Self {
        let edges = net.edges();
        let index: HashMap<&str, usize> = candidates
            .iter()
            .enumerate()
            .map(|(i, g)| (g.as_str(), i))
            .collect();
        let mut sets: Vec<(String, Vec<usize>)> = Vec::new();
        for name in net.nodes() {
            let of = |pick: &dyn Fn(&cellwright_data::boolean::Edge) -> Option<&str>| {
                edges
                    .iter()
                    .filter_map(pick)
                    .filter_map(|g| index.get(g).copied())
                    .collect::<Vec<_>>()
            };
            sets.push((
                format!("regulators of {name}"),
                of(&|e| (e.to == *name).then_some(e.from.as_str())),
            ));
            sets.push((
                format!("targets of {name}"),
                of(&|e| (e.from == *name).then_some(e.to.as_str())),
            ));
        }
        let mut knowledge = Self::from_sets(candidates, sets);
        // Breadth-first upstream of `node`: each gene's distance and the sign of its path
        // (the product of the edge signs; a dual edge leaves it unknown).
        let mut reached: HashMap<&str, (usize, Option<bool>)> = HashMap::new();
        reached.insert(node, (0, Some(true)));
        let mut queue = VecDeque::from([node]);
        while let Some(target) = queue.pop_front() {
            let (d, sign) = reached[target];
            for e in edges.iter().filter(|e| e.to == target) {
                if reached.contains_key(e.from.as_str()) {
                    continue;
                }
                let edge = match e.sign {
                    Sign::Activation => Some(true),
                    Sign::Inhibition => Some(false),
                    Sign::Dual => None,
                };
                let path = sign.zip(edge).map(|(a, b)| a == b);
                reached.insert(&e.from, (d + 1, path));
                queue.push_back(&e.from);
            }
        }
        for (i, gene) in candidates.iter().enumerate() {
            let Some(&(d, activates)) = reached.get(gene.as_str()) else {
                continue;
            };
            // Knocking out an activator of `node` lowers it; of a repressor, raises it.
            let agrees = activates.map(|a| a == (direction == Direction::Min));
            let weight = match agrees {
                Some(true) => 1.0,
                None => 0.6,
                Some(false) => 0.3,
            };
            knowledge.prior[i] = weight / d as f64;
            let how = match activates {
                Some(true) => "activates",
                Some(false) => "represses",
                None => "regulates",
            };
            knowledge.prior_reason[i] = Some(match d {
                1 => format!("directly {how} {node}"),
                _ => format!("{how} {node} through {} steps", d),
            });
        }
        knowledge
    }

    /// Cosine similarity of two candidates' weighted set memberships.
    pub fn similarity(&self, a: usize, b: usize) -> f64 {
        let (x, y) = (&self.membership[a], &self.membership[b]);
        if x.is_empty() || y.is_empty() {
            return 0.0;
        }
        let norm = |v: &[(usize, f64)]| v.iter().map(|(_, w)| w * w).sum::<f64>().sqrt();
        // Both lists are in set order: merge them.
        let (mut i, mut j, mut dot) = (0, 0, 0.0);
        while i < x.len() && j < y.len() {
            match x[i].0.cmp(&y[j].0) {
                std::cmp::Ordering::Less => i += 1,
                std::cmp::Ordering::Greater => j += 1,
                std::cmp::Ordering::Equal => {
                    dot += x[i].1 * y[j].1;
                    i += 1;
                    j += 1;
                }
            }
        }
        dot / (norm(x) * norm(y))
    }
}
