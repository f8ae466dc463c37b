//! Data for cellwright's oracles, usable as a plain library: Boolean network models, gene-set
//! collections and enrichment, transcription-factor regulons, and the catalogue of pinned
//! data sets.

pub mod boolean;
pub mod catalogue;
pub mod genedb;
pub mod genesets;
pub mod pickle;
pub mod regulons;
