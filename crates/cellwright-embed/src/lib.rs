//! Gene and cell representations.
//!
//! - [`genes`]: gene embeddings from knowledge text (GenePT-style): each gene described by its
//!   name, GO terms, pathways and complexes, embedded with a sentence model, stored as
//!   safetensors and rebuilt incrementally.
//! - [`annotate`]: label transfer by nearest-neighbour votes, k-means clusters.
//! - [`cells`]: cell embeddings without training: GenePT-w and cell sentences.
//! - [`structure`]: neighbours, Leiden communities and a UMAP layout of an embedding.
//! - [`vae`]: a scVI-like variational autoencoder trained with candle on the user's matrix.

pub mod annotate;
pub mod cells;
pub mod genes;
pub mod structure;
pub mod vae;

pub use annotate::{AnnotateError, Clusters, KMeans, Transfer, kmeans, transfer_labels};
pub use cells::{
    CellEmbedding, CellEmbeddingError, Coverage, cell_sentences, embed_sentences, genept_w,
    pca_embedding,
};
pub use genes::{
    GeneEmbeddingError, GeneEmbeddings, GeneText, build, build_in_steps, knowledge_texts,
};
pub use vae::{Likelihood, TrainingReport, Vae, VaeError, VaeSettings, train_vae};
