//! The argument domains of the project's tools, read from the catalogue's cached data (nothing
//! is fetched here: a domain whose data are not cached yet cannot tell, and admits all).

use std::collections::HashSet;
use std::sync::OnceLock;

use cellwright_core::{Vocabulary, domains};
use cellwright_data::boolean::BooleanNetwork;
use cellwright_data::catalogue::{self, CATALOGUE, Kind, MODEL_DATASETS};
use cellwright_data::genedb::GeneDb;
use cellwright_llm::embedded::EmbeddedChat;

/// `chat` reading its tools' argument domains from the catalogue's cache, as every command
/// that runs the embedded model does.
pub fn with_catalogue(chat: EmbeddedChat) -> EmbeddedChat {
    chat.with_vocabulary(std::sync::Arc::new(CatalogueVocabulary::default()))
}

/// Genes, Boolean models, their nodes and data sets, each read once its data are cached.
#[derive(Debug)]
pub struct CatalogueVocabulary {
    /// Symbols and aliases as spelled, and lower-case.
    genes: Loaded<(HashSet<String>, HashSet<String>)>,
    /// Model names and node names, lower-case.
    models: Loaded<(HashSet<String>, HashSet<String>)>,
}

impl Default for CatalogueVocabulary {
    fn default() -> Self {
        Self {
            genes: Loaded(OnceLock::new(), read_genes),
            models: Loaded(OnceLock::new(), read_models),
        }
    }
}

/// A value read on first use that finds its data: until then each use looks again (a look
/// at the cache's files), so data a tool fetches during the run count from then on.
#[derive(Debug)]
struct Loaded<T>(OnceLock<T>, fn() -> Option<T>);

impl<T> Loaded<T> {
    fn get(&self) -> Option<&T> {
        if let Some(value) = self.0.get() {
            return Some(value);
        }
        let value = (self.1)()?;
        Some(self.0.get_or_init(|| value))
    }
}

impl Vocabulary for CatalogueVocabulary {
    fn admits(&self, domain: &str, value: &str) -> Option<bool> {
        let key = value.trim().to_lowercase();
        let file = || std::path::Path::new(value.trim()).exists();
        match domain {
            domains::GENE => {
                let value = value.trim();
                let entrez = !key.is_empty() && key.bytes().all(|b| b.is_ascii_digit());
                let (spelled, lower) = self.genes.get()?;
                // A plain lower-case word ("set", "was") is a gene only as spelled; one or two
                // letters ("T", "GO") never are, though aliases.
                let plain = value.chars().all(|c| c.is_ascii_lowercase());
                let short = value.chars().count() < 3 && !value.chars().any(|c| c.is_ascii_digit());
                Some(
                    entrez
                        || (!short
                            && if plain {
                                spelled.contains(value)
                            } else {
                                lower.contains(&key)
                            }),
                )
            }
            domains::BOOLEAN_MODEL => {
                let (models, _) = self.models.get()?;
                Some(models.contains(&key) || file())
            }
            domains::MODEL_NODE => {
                let (_, nodes) = self.models.get()?;
                Some(nodes.contains(&key))
            }
            domains::DATASET => Some(
                key.starts_with("simulated:")
                    || file()
                    || CATALOGUE
                        .iter()
                        .any(|d| d.kind == Kind::Expression && d.name.eq_ignore_ascii_case(&key)),
            ),
            _ => None,
        }
    }
}

/// org.Hs.eg.db's symbols and aliases (as spelled, and lower-case), if it and GO.db are
/// cached.
fn read_genes() -> Option<(HashSet<String>, HashSet<String>)> {
    let file = |name: &str| catalogue::find(name).ok()?.cached()?.into_iter().next();
    let (org, go) = (file("org.Hs.eg.db")?, file("GO.db")?);
    // The database is async; this may run on a runtime's thread, so on one of its own.
    let names = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .ok()?;
        runtime
            .block_on(async { GeneDb::open(&org, &go).await?.names().await })
            .ok()
    })
    .join()
    .ok()??;
    let lower = names.iter().map(|n| n.to_lowercase()).collect();
    Some((names.into_iter().collect(), lower))
}

/// The cached catalogue models' names (file stems) and their nodes' names.
fn read_models() -> Option<(HashSet<String>, HashSet<String>)> {
    let files: Vec<_> = MODEL_DATASETS
        .iter()
        .filter_map(|d| catalogue::find(d).ok()?.cached())
        .flatten()
        .collect();
    if files.is_empty() {
        return None;
    }
    let (mut models, mut nodes) = (HashSet::new(), HashSet::new());
    for file in files {
        if let Some(stem) = file.file_stem() {
            models.insert(stem.to_string_lossy().to_lowercase());
        }
        if let Ok(net) = BooleanNetwork::read(&file) {
            nodes.extend(net.nodes().iter().map(|n| n.to_lowercase()));
        }
    }
    Some((models, nodes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use cellwright_core::{CancelToken, NoProgress};

    #[test]
    fn data_not_cached_yet_are_looked_for_again_and_then_kept() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static LOOKS: AtomicUsize = AtomicUsize::new(0);
        fn there_from_the_second_look() -> Option<u32> {
            (LOOKS.fetch_add(1, Ordering::SeqCst) >= 1).then_some(7)
        }
        let loaded = Loaded(OnceLock::new(), there_from_the_second_look);
        assert_eq!(loaded.get(), None);
        assert_eq!(loaded.get(), Some(&7));
        assert_eq!(loaded.get(), Some(&7));
        assert_eq!(LOOKS.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn the_catalogue_knows_genes_models_nodes_and_data_sets() {
        for name in ["org.Hs.eg.db", "GO.db", "pyboolnet-models"] {
            catalogue::find(name)
                .unwrap()
                .fetch(&NoProgress, &CancelToken::new())
                .unwrap();
        }
        let v = CatalogueVocabulary::default();
        let admits = |domain, value| v.admits(domain, value);
        // Symbols and aliases in any case, Entrez ids; not words that only match
        // case-insensitively, nor one- and two-letter aliases.
        for gene in ["TP53", "gata1", "PU.1", "LFS1", "7157"] {
            assert_eq!(admits(domains::GENE, gene), Some(true), "{gene}");
        }
        for word in ["CORUM", "set", "GO", "T", "knocked"] {
            assert_eq!(admits(domains::GENE, word), Some(false), "{word}");
        }
        assert_eq!(
            admits(domains::BOOLEAN_MODEL, "krumsiek_myeloid"),
            Some(true)
        );
        assert_eq!(admits(domains::BOOLEAN_MODEL, "PU1"), Some(false));
        assert_eq!(admits(domains::MODEL_NODE, "PU1"), Some(true));
        assert_eq!(admits(domains::MODEL_NODE, "knocked"), Some(false));
        assert_eq!(admits(domains::DATASET, "pbmc68k_reduced"), Some(true));
        assert_eq!(
            admits(domains::DATASET, "simulated:krumsiek_myeloid:seed1"),
            Some(true)
        );
        assert_eq!(admits(domains::DATASET, "marker genes"), Some(false));
        assert_eq!(admits("colour", "red"), None);
    }
}
