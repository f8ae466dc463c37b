//! Gene-set collections and over-representation tests: which sets hold more of a gene list
//! than chance would put there (one-sided hypergeometric test, Benjamini–Hochberg q-values).
//!
//! ```
//! use cellwright_data::genesets::{Collection, GeneSet};
//!
//! let sets = Collection::new("toy", vec![
//!     GeneSet::new("S1", "cell cycle", ["CDK1", "CCNB1", "PLK1", "AURKA"]),
//!     GeneSet::new("S2", "glycolysis", ["HK1", "PFKM", "GAPDH", "ENO1"]),
//! ]);
//! let hits = sets.enrich(&["CDK1", "CCNB1", "PLK1"], None);
//! assert_eq!(hits.results[0].id, "S1");
//! // 3 of the 4 cell-cycle genes in a draw of 3 from 8: C(4,3) / C(8,3).
//! assert!((hits.results[0].p - 4.0 / 56.0).abs() < 1e-12);
//! ```

use std::collections::{BTreeSet, HashSet};
use std::path::Path;

/// A named set of gene symbols.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct GeneSet {
    pub id: String,
    pub name: String,
    pub genes: BTreeSet<String>,
}

impl GeneSet {
    pub fn new<G: Into<String>>(
        id: impl Into<String>,
        name: impl Into<String>,
        genes: impl IntoIterator<Item = G>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            genes: genes.into_iter().map(Into::into).collect(),
        }
    }
}

/// Gene sets that belong together (one database, one release).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Collection {
    pub name: String,
    pub sets: Vec<GeneSet>,
}

/// Why a collection could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GeneSetError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Format {
        path: String,
        line: u64,
        message: String,
    },
}

/// One set's result.
#[derive(Debug, Clone, PartialEq, serde::Serialize, schemars::JsonSchema)]
pub struct Enrichment {
    pub id: String,
    pub name: String,
    /// Genes of the set within the background.
    pub set_size: usize,
    /// Query genes in the set, sorted.
    pub overlap: Vec<String>,
    /// P(X ≥ overlap) for X hypergeometric: this many set genes among a random draw of as
    /// many background genes as the query has.
    pub p: f64,
    /// Benjamini–Hochberg adjusted over every set tested.
    pub q: f64,
}

/// A whole test: the results, and what the query lost to the background.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EnrichmentReport {
    pub background_size: usize,
    /// Query genes found in the background (those tested).
    pub query_size: usize,
    /// Query genes not in the background, and so not tested.
    pub unknown: Vec<String>,
    /// Sets sharing at least one gene with the query, by p then id.
    pub results: Vec<Enrichment>,
    /// How many sets were tested (the number the q-values correct for).
    pub tested: usize,
}

impl Collection {
    pub fn new(name: impl Into<String>, sets: Vec<GeneSet>) -> Self {
        Self {
            name: name.into(),
            sets,
        }
    }

    /// Reads a CSV with columns `ID`, `Name` and `Genes` (`;`-separated symbols), as the
    /// gene-set files of the `gene-sets` catalogue entry are written.
    pub fn read_csv(path: &Path, name: impl Into<String>) -> Result<Self, GeneSetError> {
        let shown = path.display().to_string();
        let format = |line: u64, message: String| GeneSetError::Format {
            path: shown.clone(),
            line,
            message,
        };
        let mut reader = csv::Reader::from_path(path).map_err(|e| match e.into_kind() {
            csv::ErrorKind::Io(source) => GeneSetError::Io {
                path: shown.clone(),
                source,
            },
            other => format(1, format!("{other:?}")),
        })?;
        let headers = reader
            .headers()
            .map_err(|e| format(1, e.to_string()))?
            .clone();
        let column = |wanted: &str| {
            headers
                .iter()
                .position(|h| h == wanted)
                .ok_or_else(|| format(1, format!("no `{wanted}` column")))
        };
        let (id, title, genes) = (column("ID")?, column("Name")?, column("Genes")?);
        let mut sets = Vec::new();
        let mut seen = HashSet::new();
        for record in reader.records() {
            let record = record.map_err(|e| {
                let line = e.position().map_or(0, csv::Position::line);
                format(line, e.to_string())
            })?;
            let line = record.position().map_or(0, csv::Position::line);
            let field = |i: usize| record.get(i).unwrap_or_default().trim();
            if field(id).is_empty() {
                return Err(format(line, "a set without an ID".into()));
            }
            if !seen.insert(field(id).to_owned()) {
                return Err(format(line, format!("set {} appears twice", field(id))));
            }
            sets.push(GeneSet::new(
                field(id),
                field(title),
                field(genes)
                    .split(';')
                    .map(str::trim)
                    .filter(|g| !g.is_empty()),
            ));
        }
        Ok(Self::new(name, sets))
    }

    /// Every gene in some set of the collection.
    pub fn genes(&self) -> BTreeSet<&str> {
        self.sets
            .iter()
            .flat_map(|s| s.genes.iter().map(String::as_str))
            .collect()
    }

    /// Tests each set for over-representation of `query` against `background` (default:
    /// every gene of the collection). Query genes outside the background are reported, not
    /// tested; sets with no gene in the background are not tested.
    pub fn enrich<S: AsRef<str>>(&self, query: &[S], background: Option<&[S]>) -> EnrichmentReport {
        let whole = background.is_none();
        let background: HashSet<&str> = match background {
            Some(b) => b.iter().map(AsRef::as_ref).collect(),
            None => self
                .sets
                .iter()
                .flat_map(|s| s.genes.iter().map(String::as_str))
                .collect(),
        };
        let mut unknown = BTreeSet::new();
        let mut tested_query = HashSet::new();
        for gene in query {
            let gene = gene.as_ref();
            if background.contains(gene) {
                tested_query.insert(gene);
            } else {
                unknown.insert(gene.to_owned());
            }
        }
        let (total, drawn) = (background.len() as u64, tested_query.len() as u64);
        let mut results = Vec::new();
        let mut tested = 0;
        for set in &self.sets {
            // Against the whole collection every gene of the set is in the background.
            let size = if whole {
                set.genes.len()
            } else {
                set.genes
                    .iter()
                    .filter(|g| background.contains(g.as_str()))
                    .count()
            };
            if size == 0 {
                continue;
            }
            tested += 1;
            // Walk the smaller side: a query is usually shorter than a set.
            let overlap: Vec<String> = if tested_query.len() < set.genes.len() {
                let mut hits: Vec<String> = tested_query
                    .iter()
                    .filter(|g| set.genes.contains(**g))
                    .map(|g| (*g).to_owned())
                    .collect();
                hits.sort_unstable();
                hits
            } else {
                set.genes
                    .iter()
                    .filter(|g| tested_query.contains(g.as_str()))
                    .cloned()
                    .collect()
            };
            if overlap.is_empty() {
                continue;
            }
            results.push(Enrichment {
                id: set.id.clone(),
                name: set.name.clone(),
                set_size: size,
                p: hypergeometric_sf(overlap.len() as u64, total, size as u64, drawn),
                overlap,
                q: 1.0,
            });
        }
        results.sort_by(|a, b| a.p.total_cmp(&b.p).then_with(|| a.id.cmp(&b.id)));
        // Benjamini–Hochberg over all `tested` sets; untested-because-empty ones have p = 1
        // and rank last, so they only enter through `tested`.
        let m = tested as f64;
        let mut running = 1.0f64;
        for (rank, r) in results.iter_mut().enumerate().rev() {
            running = running.min(r.p * m / (rank + 1) as f64);
            r.q = running.min(1.0);
        }
        EnrichmentReport {
            background_size: background.len(),
            query_size: tested_query.len(),
            unknown: unknown.into_iter().collect(),
            results,
            tested,
        }
    }
}

/// P(X ≥ k) for X hypergeometric: `drawn` items from `total`, of which `marked` are marked.
pub fn hypergeometric_sf(k: u64, total: u64, marked: u64, drawn: u64) -> f64 {
    let lo = k.max((drawn + marked).saturating_sub(total));
    let hi = marked.min(drawn);
    if lo > hi {
        return 0.0;
    }
    let denominator = ln_choose(total, drawn);
    let terms: Vec<f64> = (lo..=hi)
        .map(|i| ln_choose(marked, i) + ln_choose(total - marked, drawn - i) - denominator)
        .collect();
    let max = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = terms.iter().map(|t| (t - max).exp()).sum();
    (max + sum.ln()).exp().min(1.0)
}

fn ln_choose(n: u64, k: u64) -> f64 {
    statrs::function::factorial::ln_binomial(n, k)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tail_sums_to_one_and_matches_small_cases_by_hand() {
        // 10 balls, 4 marked, draw 3: P(X ≥ 2) = (C(4,2)C(6,1) + C(4,3)) / C(10,3) = 40/120.
        assert!((hypergeometric_sf(2, 10, 4, 3) - 40.0 / 120.0).abs() < 1e-12);
        assert!((hypergeometric_sf(0, 10, 4, 3) - 1.0).abs() < 1e-12);
        assert_eq!(hypergeometric_sf(4, 10, 4, 3), 0.0);
    }

    #[test]
    fn q_values_are_monotone_and_unknown_genes_are_reported() {
        let sets = Collection::new(
            "toy",
            (0..20)
                .map(|i| {
                    GeneSet::new(
                        format!("S{i:02}"),
                        "",
                        (0..10).map(|g| format!("G{}", i * 5 + g)),
                    )
                })
                .collect(),
        );
        let query = ["G0", "G1", "G2", "G3", "G50", "NOPE"];
        let report = sets.enrich(&query, None);
        assert_eq!(report.unknown, ["NOPE"]);
        assert_eq!(report.query_size, 5);
        assert_eq!(report.tested, 20);
        assert_eq!(report.results[0].id, "S00");
        assert!(
            report
                .results
                .windows(2)
                .all(|w| w[0].p <= w[1].p && w[0].q <= w[1].q)
        );
        assert!(report.results.iter().all(|r| r.q >= r.p));
    }
}
