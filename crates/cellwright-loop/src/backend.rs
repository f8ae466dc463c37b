//! Where experiments run: the simulator (knockouts of a published Boolean model) or the
//! DepMap CRISPR gene-effect table (a real screen, revealed one gene at a time).

use std::collections::HashMap;
use std::path::Path;

use cellwright_core::{CancelToken, NoProgress};
use cellwright_data::boolean::BooleanNetwork;
use cellwright_sim::{Perturbation, Settings, Simulator};
use serde_json::{Value, json};

use crate::LoopError;

/// A source of experiments: knock out one gene, measure the phenotype.
pub trait Backend: Send + Sync {
    /// What is measured where, for people.
    fn describe(&self) -> String;
    /// Every gene an experiment can knock out.
    fn genes(&self) -> &[String];
    /// What running `gene` means, as stored in the ledger.
    fn design(&self, gene: &str) -> Value;
    /// Runs the experiment on `gene` and returns the phenotype.
    fn measure(&self, gene: &str, cancel: &CancelToken) -> Result<f64, LoopError>;
    /// The phenotype with nothing knocked out: what a knockout of no consequence measures.
    fn neutral(&self, cancel: &CancelToken) -> Result<f64, LoopError>;
    /// Differences in the phenotype smaller than this are measurement noise: a gene this
    /// close to the k-th best counts as a top-k hit.
    fn resolution(&self) -> f64 {
        0.0
    }
}

/// One DepMap screen's gene effects (CRISPR, Chronos scale: 0 no effect, −1 the median
/// effect of common essential genes), averaged over chosen cell lines.
#[derive(Debug, Clone)]
pub struct DepmapScreen {
    name: String,
    cell_lines: Vec<String>,
    genes: Vec<String>,
    mean: HashMap<String, f64>,
}

impl DepmapScreen {
    /// Reads a screen table: a header of DepMap ids, then one row per gene. `cell_lines`
    /// chooses the columns to average (all when `None`); a missing value is left out of its
    /// gene's mean.
    pub fn read(path: &Path, name: &str, cell_lines: Option<&[String]>) -> Result<Self, LoopError> {
        let shown = path.display().to_string();
        let bad = |message: String| LoopError::Data {
            path: shown.clone(),
            message,
        };
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_path(path)
            .map_err(|e| bad(e.to_string()))?;
        let header: Vec<String> = reader
            .headers()
            .map_err(|e| bad(e.to_string()))?
            .iter()
            .skip(1)
            .map(str::to_owned)
            .collect();
        let columns: Vec<usize> = match cell_lines {
            None => (0..header.len()).collect(),
            Some(wanted) => {
                if wanted.is_empty() {
                    return Err(LoopError::Task("backend.cell_lines is empty".into()));
                }
                wanted
                    .iter()
                    .map(|line| {
                        header.iter().position(|h| h == line).ok_or_else(|| {
                            LoopError::Task(format!(
                                "cell line {line} is not in the {name} screen{}",
                                cellwright_core::did_you_mean(&cellwright_core::closest_matches(
                                    line,
                                    header.iter().map(String::as_str),
                                    0.8,
                                    3
                                ))
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()?
            }
        };
        let (mut genes, mut mean) = (Vec::new(), HashMap::new());
        for (row, record) in reader.records().enumerate() {
            let record = record.map_err(|e| bad(e.to_string()))?;
            let gene = record.get(0).unwrap_or("").to_owned();
            let values: Vec<f64> = columns
                .iter()
                .filter_map(|&c| record.get(c + 1))
                .filter(|v| !v.is_empty())
                .map(|v| {
                    v.parse::<f64>().map_err(|_| {
                        bad(format!("row {} ({gene}): {v:?} is not a number", row + 2))
                    })
                })
                .collect::<Result<_, _>>()?;
            let finite: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
            if gene.is_empty() || finite.is_empty() {
                continue;
            }
            let m = finite.iter().sum::<f64>() / finite.len() as f64;
            if mean.insert(gene.clone(), m).is_none() {
                genes.push(gene);
            }
        }
        if genes.is_empty() {
            return Err(bad("no gene has a measured effect".into()));
        }
        Ok(Self {
            name: name.to_owned(),
            cell_lines: columns.iter().map(|&c| header[c].clone()).collect(),
            genes,
            mean,
        })
    }

    pub fn cell_lines(&self) -> &[String] {
        &self.cell_lines
    }
}

impl Backend for DepmapScreen {
    fn describe(&self) -> String {
        format!(
            "DepMap {} screen: mean CRISPR gene effect over {} cell lines (0 = no effect, −1 = a typical essential gene)",
            self.name,
            self.cell_lines.len()
        )
    }

    fn genes(&self) -> &[String] {
        &self.genes
    }

    fn design(&self, gene: &str) -> Value {
        json!({"backend": "depmap", "screen": self.name, "knockout": gene, "cell_lines": self.cell_lines.len()})
    }

    fn measure(&self, gene: &str, _cancel: &CancelToken) -> Result<f64, LoopError> {
        self.mean
            .get(gene)
            .copied()
            .ok_or_else(|| LoopError::Task(format!("{gene} is not in the {} screen", self.name)))
    }

    /// Gene effects are 0 for a knockout that changes nothing.
    fn neutral(&self, _cancel: &CancelToken) -> Result<f64, LoopError> {
        Ok(0.0)
    }
}

/// Knockouts of a published Boolean model, simulated: the phenotype is one node's mean mRNA
/// over the simulated cells, as a fraction of its maximum.
#[derive(Debug, Clone)]
pub struct SimulatedScreen {
    model: String,
    simulator: Simulator,
    net: BooleanNetwork,
    node: String,
    node_index: usize,
    cells: usize,
    genes: Vec<String>,
}

impl SimulatedScreen {
    /// `model` names the network in reports; the kinetic rates are drawn for `seed`.
    pub fn new(
        net: BooleanNetwork,
        model: &str,
        node: &str,
        cells: usize,
        seed: u64,
    ) -> Result<Self, LoopError> {
        let node_index = net.node(node).map_err(|e| LoopError::Task(e.to_string()))?;
        let simulator = Simulator::new(&net, Settings::default(), seed)
            .map_err(|e| LoopError::Experiment(e.to_string()))?;
        let genes = net
            .nodes()
            .iter()
            .filter(|n| n.as_str() != node)
            .cloned()
            .collect();
        Ok(Self {
            model: model.to_owned(),
            simulator,
            net,
            node: node.to_owned(),
            node_index,
            cells,
            genes,
        })
    }

    pub fn network(&self) -> &BooleanNetwork {
        &self.net
    }

    /// The node whose level is the phenotype.
    pub fn node(&self) -> &str {
        &self.node
    }
}

impl Backend for SimulatedScreen {
    fn describe(&self) -> String {
        format!(
            "simulated knockouts of {}: mean {} mRNA over {} cells (fraction of its maximum)",
            self.model, self.node, self.cells
        )
    }

    fn genes(&self) -> &[String] {
        &self.genes
    }

    fn design(&self, gene: &str) -> Value {
        json!({"backend": "simulator", "model": self.model, "knockout": gene, "measure": self.node, "cells": self.cells})
    }

    fn measure(&self, gene: &str, cancel: &CancelToken) -> Result<f64, LoopError> {
        if !self.genes.iter().any(|g| g == gene) {
            return Err(LoopError::Task(format!(
                "{gene} is not a node of {} other than {}",
                self.model, self.node
            )));
        }
        self.level(Perturbation::knockout([gene]), cancel)
    }

    /// A mean over a few dozen noisy cells moves by about a hundredth of the maximum.
    fn resolution(&self) -> f64 {
        0.01
    }

    /// The control cells' level.
    fn neutral(&self, cancel: &CancelToken) -> Result<f64, LoopError> {
        self.level(Perturbation::control(), cancel)
    }
}

impl SimulatedScreen {
    /// The phenotype node's mean mRNA under `perturbation`, as a fraction of its maximum.
    fn level(&self, perturbation: Perturbation, cancel: &CancelToken) -> Result<f64, LoopError> {
        let sim = self
            .simulator
            .run(&[(perturbation, self.cells)], &NoProgress, cancel)
            .map_err(|e| match e {
                cellwright_sim::SimError::Cancelled => LoopError::Cancelled,
                e => LoopError::Experiment(e.to_string()),
            })?;
        let total: f64 = sim
            .mrna
            .rows()
            .into_iter()
            .map(|row| f64::from(row[self.node_index]))
            .sum();
        Ok(total / sim.mrna.nrows().max(1) as f64 / sim.mrna_max)
    }
}
