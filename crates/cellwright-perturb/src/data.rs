//! Screens: a control group and perturbed groups of cells, log-normalised, with each group's
//! mean and delta from control; read from a matrix with an `obs.perturbation` column, or
//! simulated from a published Boolean model.

use cellwright_core::{CancelToken, Progress};
use cellwright_data::boolean::BooleanNetwork;
use cellwright_data::matrix::{Column, ExpressionMatrix};
use cellwright_sim::{CountNoise, Perturbation, Screen, Settings, SimError, Simulator};
use ndarray::Array2;
use serde::{Deserialize, Serialize};

/// Why a screen could not be read, simulated or used.
#[derive(Debug, thiserror::Error)]
pub enum PerturbError {
    #[error("the matrix has no `obs.{column}` column naming each cell's perturbation")]
    NoPerturbationColumn { column: String },
    #[error("no control cells: a group labelled `control` is needed to measure changes against")]
    EmptyControl,
    #[error("perturbation label `{label}`: {message}")]
    Label { label: String, message: String },
    #[error("unknown gene {gene}{}", cellwright_core::did_you_mean(suggestions))]
    UnknownGene {
        gene: String,
        suggestions: Vec<String>,
    },
    #[error("perturbation {0} is not in the screen")]
    UnknownPerturbation(String),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Sim(#[from] SimError),
    #[error("the model failed: {0}")]
    Model(String),
    #[error("cancelled")]
    Cancelled,
}

/// Knocked out (production 0) or overexpressed (production at its maximum).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    Knockout,
    Overexpression,
}

impl Direction {
    /// Knockout for overexpression and the other way round.
    pub fn opposite(self) -> Self {
        match self {
            Direction::Knockout => Direction::Overexpression,
            Direction::Overexpression => Direction::Knockout,
        }
    }
}

/// One gene perturbed one way: the unit that is "seen" or "unseen" in training.
pub type Item = (String, Direction);

/// The perturbation of `items` together.
pub fn perturbation<'a>(items: impl IntoIterator<Item = &'a Item>) -> Perturbation {
    let mut p = Perturbation::control();
    for (gene, direction) in items {
        match direction {
            Direction::Knockout => p.knockouts.push(gene.clone()),
            Direction::Overexpression => p.overexpressed.push(gene.clone()),
        }
    }
    p
}

/// A perturbation's items, knockouts first, each list sorted.
pub fn items(p: &Perturbation) -> Vec<Item> {
    let ko = p.knockouts.iter().map(|g| (g.clone(), Direction::Knockout));
    let oe = p
        .overexpressed
        .iter()
        .map(|g| (g.clone(), Direction::Overexpression));
    ko.chain(oe).collect()
}

/// The perturbation with its gene lists sorted, so `B KO + A KO` and `A KO + B KO` are one.
pub fn canonical(p: &Perturbation) -> Perturbation {
    let mut p = p.clone();
    p.knockouts.sort();
    p.overexpressed.sort();
    p
}

/// Reads a label as [`Perturbation::label`] writes it: `control`, or items such as
/// `GATA1 KO + PU1 OE` joined by ` + `.
pub fn parse_label(label: &str) -> Result<Perturbation, PerturbError> {
    let bad = |message: &str| PerturbError::Label {
        label: label.to_owned(),
        message: message.to_owned(),
    };
    let trimmed = label.trim();
    if trimmed.eq_ignore_ascii_case("control") {
        return Ok(Perturbation::control());
    }
    let mut p = Perturbation::control();
    for part in trimmed.split('+') {
        let mut words = part.split_whitespace();
        let (Some(gene), Some(kind), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad("expected `control` or items like `GATA1 KO + PU1 OE`"));
        };
        match kind.to_ascii_uppercase().as_str() {
            "KO" => p.knockouts.push(gene.to_owned()),
            "OE" => p.overexpressed.push(gene.to_owned()),
            _ => return Err(bad("each gene is followed by KO or OE")),
        }
    }
    let p = canonical(&p);
    let genes: Vec<&String> = p.knockouts.iter().chain(&p.overexpressed).collect();
    if (1..genes.len()).any(|i| genes[..i].contains(&genes[i])) {
        return Err(bad("a gene is perturbed twice"));
    }
    Ok(p)
}

/// One perturbation's cells.
#[derive(Debug, Clone)]
pub struct Group {
    pub perturbation: Perturbation,
    /// Cells × genes, log-normalised.
    pub cells: Array2<f32>,
}

/// Training cells pooled: see [`ScreenData::pooled`].
#[derive(Debug, Clone)]
pub struct Pooled {
    /// `columns[gene][cell]`.
    pub columns: Vec<Vec<f32>>,
    /// Per cell, the indices of the genes it has perturbed.
    pub perturbed: Vec<Vec<usize>>,
}

/// A screen ready for models: genes, control cells and perturbed groups, log-normalised
/// (counts scaled to the median cell total and `log1p`'d; values that are not counts are
/// taken as normalised already).
#[derive(Debug, Clone)]
pub struct ScreenData {
    pub genes: Vec<String>,
    /// Control cells × genes.
    pub control: Array2<f32>,
    pub groups: Vec<Group>,
    control_mean: Vec<f64>,
    deltas: Vec<Vec<f64>>,
}

fn column_means(cells: &Array2<f32>) -> Vec<f64> {
    let n = cells.nrows().max(1) as f64;
    cells
        .columns()
        .into_iter()
        .map(|c| c.iter().map(|&v| f64::from(v)).sum::<f64>() / n)
        .collect()
}

impl ScreenData {
    /// A screen from its parts. Refused when there are no control cells, a group is empty or
    /// perturbs a gene that is not measured, a perturbation repeats, or the shapes disagree.
    pub fn new(
        genes: Vec<String>,
        control: Array2<f32>,
        groups: Vec<Group>,
    ) -> Result<Self, PerturbError> {
        if control.nrows() == 0 {
            return Err(PerturbError::EmptyControl);
        }
        let mut seen = std::collections::HashSet::new();
        for g in &groups {
            if g.cells.ncols() != genes.len() || control.ncols() != genes.len() {
                return Err(PerturbError::Invalid(format!(
                    "{} genes, but cells with {} values",
                    genes.len(),
                    g.cells.ncols().min(control.ncols())
                )));
            }
            if g.cells.nrows() == 0 {
                return Err(PerturbError::Invalid(format!(
                    "perturbation {} has no cells",
                    g.perturbation.label()
                )));
            }
            if items(&g.perturbation).is_empty() {
                return Err(PerturbError::Invalid(
                    "a perturbed group perturbs nothing: control cells go in `control`".into(),
                ));
            }
            if !seen.insert(canonical(&g.perturbation)) {
                return Err(PerturbError::Invalid(format!(
                    "perturbation {} appears twice",
                    g.perturbation.label()
                )));
            }
            for (gene, _) in items(&g.perturbation) {
                gene_index(&genes, &gene)?;
            }
        }
        let control_mean = column_means(&control);
        let deltas = groups
            .iter()
            .map(|g| {
                column_means(&g.cells)
                    .iter()
                    .zip(&control_mean)
                    .map(|(m, c)| m - c)
                    .collect()
            })
            .collect();
        let groups = groups
            .into_iter()
            .map(|g| Group {
                perturbation: canonical(&g.perturbation),
                cells: g.cells,
            })
            .collect();
        Ok(Self {
            genes,
            control,
            groups,
            control_mean,
            deltas,
        })
    }

    /// The screen in `m`, whose `obs.<column>` names each cell's perturbation
    /// ([`parse_label`]); the cells labelled `control` are the control group.
    pub fn from_matrix(m: &ExpressionMatrix, column: &str) -> Result<Self, PerturbError> {
        let labels: Vec<String> = match m.obs_column(column) {
            Some(c @ (Column::Categorical { .. } | Column::Text(_))) => (0..m.shape().0)
                .map(|i| c.label(i).unwrap_or_default().to_owned())
                .collect(),
            _ => {
                return Err(PerturbError::NoPerturbationColumn {
                    column: column.to_owned(),
                });
            }
        };
        let mut normalised = m.clone();
        if m.is_counts() {
            normalised.normalize_total(None);
            normalised.log1p();
        }
        let x = normalised.x().to_dense();
        let mut order: Vec<(Perturbation, Vec<usize>)> = Vec::new();
        let mut parsed = std::collections::HashMap::new();
        for (cell, label) in labels.iter().enumerate() {
            let p = match parsed.get(label) {
                Some(p) => Clone::clone(p),
                None => {
                    let p = parse_label(label)?;
                    parsed.insert(label.clone(), p.clone());
                    p
                }
            };
            match order.iter_mut().find(|(q, _)| *q == p) {
                Some((_, cells)) => cells.push(cell),
                None => order.push((p, vec![cell])),
            }
        }
        let rows = |cells: &[usize]| x.select(ndarray::Axis(0), cells);
        let control = order
            .iter()
            .find(|(p, _)| items(p).is_empty())
            .map(|(_, cells)| rows(cells))
            .ok_or(PerturbError::EmptyControl)?;
        let groups = order
            .iter()
            .filter(|(p, _)| !items(p).is_empty())
            .map(|(p, cells)| Group {
                perturbation: p.clone(),
                cells: rows(cells),
            })
            .collect();
        Self::new(m.genes().to_vec(), control, groups)
    }

    /// The mean control profile.
    pub fn control_mean(&self) -> &[f64] {
        &self.control_mean
    }

    /// Group `g`'s mean minus the control mean, per gene.
    pub fn delta(&self, g: usize) -> &[f64] {
        &self.deltas[g]
    }

    /// The group of `p`, in any gene order.
    pub fn find(&self, p: &Perturbation) -> Option<usize> {
        let p = canonical(p);
        self.groups.iter().position(|g| g.perturbation == p)
    }

    pub fn gene(&self, name: &str) -> Result<usize, PerturbError> {
        gene_index(&self.genes, name)
    }

    /// The indices of the genes `p` perturbs; an unknown gene is refused by name.
    pub fn targets(&self, p: &Perturbation) -> Result<Vec<usize>, PerturbError> {
        items(p).iter().map(|(g, _)| self.gene(g)).collect()
    }

    /// The items perturbed alone among the groups `train`, in that order, with their deltas.
    pub fn singles(&self, train: &[usize]) -> Vec<(Item, Vec<f64>)> {
        train
            .iter()
            .filter_map(|&g| match items(&self.groups[g].perturbation).as_slice() {
                [item] => Some((item.clone(), self.delta(g).to_vec())),
                _ => None,
            })
            .collect()
    }

    /// The control cells and the cells of the groups `train`, pooled gene by gene
    /// (`columns[gene][cell]`, control first), with the genes each cell has perturbed.
    pub fn pooled(&self, train: &[usize]) -> Result<Pooled, PerturbError> {
        let mut pooled = Pooled {
            columns: vec![Vec::new(); self.genes.len()],
            perturbed: Vec::new(),
        };
        let mut add = |cells: &Array2<f32>, targets: Vec<usize>| {
            for row in cells.rows() {
                for (c, &v) in pooled.columns.iter_mut().zip(row) {
                    c.push(v);
                }
                pooled.perturbed.push(targets.clone());
            }
        };
        add(&self.control, Vec::new());
        for &g in train {
            let group = self.training_group(g)?;
            add(&group.cells, self.targets(&group.perturbation)?);
        }
        Ok(pooled)
    }

    /// Group `g`, named in a list of training groups.
    fn training_group(&self, g: usize) -> Result<&Group, PerturbError> {
        self.groups.get(g).ok_or_else(|| {
            PerturbError::Invalid(format!(
                "training group {g} of a screen with {}",
                self.groups.len()
            ))
        })
    }

    /// Each gene's lowest and highest value over the control cells and those of the groups
    /// `train`.
    pub fn range(&self, train: &[usize]) -> Result<(Vec<f64>, Vec<f64>), PerturbError> {
        let n = self.genes.len();
        let (mut low, mut high) = (vec![f64::INFINITY; n], vec![f64::NEG_INFINITY; n]);
        let mut cells = vec![&self.control];
        for &g in train {
            cells.push(&self.training_group(g)?.cells);
        }
        for row in cells.into_iter().flat_map(|c| c.rows()) {
            for ((l, h), &v) in low.iter_mut().zip(high.iter_mut()).zip(row) {
                *l = l.min(f64::from(v));
                *h = h.max(f64::from(v));
            }
        }
        Ok((low, high))
    }

    /// Group `g`'s cells, or the control's, as one `Vec` per cell.
    pub fn cell_rows(&self, g: Option<usize>) -> Vec<Vec<f64>> {
        let cells = g.map_or(&self.control, |g| &self.groups[g].cells);
        cells
            .rows()
            .into_iter()
            .map(|r| r.iter().map(|&v| f64::from(v)).collect())
            .collect()
    }
}

pub(crate) fn gene_index(genes: &[String], name: &str) -> Result<usize, PerturbError> {
    genes
        .iter()
        .position(|g| g == name)
        .ok_or_else(|| PerturbError::UnknownGene {
            gene: name.to_owned(),
            suggestions: cellwright_core::closest_matches(
                name,
                genes.iter().map(String::as_str),
                0.8,
                3,
            ),
        })
}

/// A simulated screen: every single knockout (and overexpression), some double knockouts,
/// one shared control group, UMI counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct ScreenDesign {
    /// Genes perturbed one at a time; empty means every node of the model.
    pub genes: Vec<String>,
    /// Also overexpress each of `genes` alone.
    pub overexpression: bool,
    /// Double knockouts, drawn (seeded) from all pairs of `genes`.
    pub pairs: usize,
    pub cells_per_perturbation: usize,
    pub control_cells: usize,
    pub noise: CountNoise,
    pub settings: Settings,
}

impl Default for ScreenDesign {
    fn default() -> Self {
        Self {
            genes: Vec::new(),
            overexpression: true,
            pairs: 0,
            cells_per_perturbation: 300,
            control_cells: 1000,
            noise: CountNoise {
                umis_at_max: 20.0,
                ..CountNoise::default()
            },
            settings: Settings::default(),
        }
    }
}

impl ScreenDesign {
    /// The perturbations of this design for `net` under `seed`, with their cell counts:
    /// control, knockouts, overexpressions, then pairs.
    pub fn groups(&self, sim: &Simulator) -> Result<Vec<(Perturbation, usize)>, PerturbError> {
        let screen = Screen {
            singles: self.genes.clone(),
            pairs: self.pairs,
            cells_per_perturbation: self.cells_per_perturbation,
            control_cells: Some(self.control_cells),
        };
        let mut groups = sim.screen_groups(&screen)?;
        if self.overexpression {
            let singles: Vec<String> = match self.genes.is_empty() {
                true => sim.model().names().to_vec(),
                false => self.genes.clone(),
            };
            let at = 1 + singles.len();
            let oe = singles.into_iter().map(|g| {
                let p = Perturbation {
                    knockouts: Vec::new(),
                    overexpressed: vec![g],
                };
                (p, self.cells_per_perturbation)
            });
            groups.splice(at..at, oe);
        }
        Ok(groups)
    }

    /// Simulates the screen on `net` (rates, cells and counts from `seed`) as a count matrix
    /// with `obs.perturbation`.
    pub fn simulate(
        &self,
        net: &BooleanNetwork,
        seed: u64,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<ExpressionMatrix, PerturbError> {
        self.replicate(net, seed, seed, progress, cancel)
    }

    /// The screen of `seed` (the same perturbations, pairs included) simulated again with
    /// rates, cells and counts from `other_seed`: a replicate experiment.
    pub fn replicate(
        &self,
        net: &BooleanNetwork,
        seed: u64,
        other_seed: u64,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<ExpressionMatrix, PerturbError> {
        let groups = self.groups(&Simulator::new(net, self.settings.clone(), seed)?)?;
        let sim = Simulator::new(net, self.settings.clone(), other_seed)?;
        let simulation = sim.run(&groups, progress, cancel)?;
        Ok(simulation.counts(&self.noise)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_round_trip_and_bad_ones_are_named() {
        let p = parse_label("PU1 OE + GATA1 KO + CEBPa KO").unwrap();
        assert_eq!(p.knockouts, ["CEBPa", "GATA1"]);
        assert_eq!(p.overexpressed, ["PU1"]);
        assert_eq!(parse_label(&p.label()).unwrap(), p);
        assert_eq!(parse_label("control").unwrap(), Perturbation::control());
        for bad in ["GATA1", "GATA1 XX", "A KO + A OE", ""] {
            let e = parse_label(bad).unwrap_err().to_string();
            assert!(e.contains(&format!("`{bad}`")), "{e}");
        }
    }

    #[test]
    fn a_screen_without_control_cells_is_refused() {
        let cells = Array2::<f32>::zeros((3, 2));
        let group = Group {
            perturbation: Perturbation::knockout(["A"]),
            cells: cells.clone(),
        };
        let genes = vec!["A".to_owned(), "B".to_owned()];
        let e = ScreenData::new(genes.clone(), Array2::zeros((0, 2)), vec![group.clone()]);
        assert!(matches!(e, Err(PerturbError::EmptyControl)));
        let stray = Group {
            perturbation: Perturbation::knockout(["C"]),
            cells,
        };
        let e = ScreenData::new(genes, Array2::zeros((2, 2)), vec![group, stray]).unwrap_err();
        assert!(e.to_string().contains("unknown gene C"), "{e}");
    }
}
