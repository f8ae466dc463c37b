//! Data for cellwright's oracles, usable as a plain library: expression matrices
//! ([`matrix`]) and their files ([`h5ad`], [`text`], one entry point in [`load`]), Boolean
//! network models, gene-set collections and enrichment, the gene databases, transcription-factor
//! regulons ([`regulons`], read from a pandas pickle by [`pickle`]), and the
//! catalogue of pinned data sets.
//!
//! ```no_run
//! use cellwright_data::load::read_expression;
//! use cellwright_data::matrix::PcaSolver;
//! use cellwright_data::text::Orientation;
//!
//! let mut m = read_expression("pbmc_raw.txt".as_ref(), Orientation::GenesByCells)?;
//! m.normalize_total(None);
//! m.log1p();
//! let variable = m.highly_variable_genes(50);
//! let pca = m.pca(10, PcaSolver::Auto)?;
//! println!("{} genes; PC1 explains {:.1}%", variable.top.len(), 100.0 * pca.explained_variance_ratio[0]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod boolean;
pub mod catalogue;
pub mod genedb;
pub mod genesets;
pub mod h5ad;
pub mod load;
pub mod matrix;
pub mod pickle;
pub mod regulons;
pub mod text;
