//! One entry point for expression data on disk, whatever its format.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use cellwright_core::{CancelToken, Progress, ToolError, closest_matches};

use crate::catalogue::{CATALOGUE, CatalogueError, Kind};
use crate::h5ad::{self, H5adError};
use crate::matrix::ExpressionMatrix;
use crate::text::{self, Orientation, TextError};

/// Why expression data could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    H5ad(#[from] H5adError),
    #[error(transparent)]
    Text(#[from] TextError),
    #[error(
        "{path}: not a format we read (an .h5ad file, a 10x directory or matrix.mtx, or a .tsv/.txt/.csv table, gzipped or not)"
    )]
    UnknownFormat { path: PathBuf },
    #[error(
        "no expression data set or file named {name}{}",
        cellwright_core::did_you_mean(suggestions)
    )]
    Unknown {
        name: String,
        suggestions: Vec<String>,
    },
    #[error(transparent)]
    Catalogue(#[from] CatalogueError),
}

/// For tools: an unknown name is not found (with close names); a catalogue data set that
/// cannot be had is the catalogue's failure; a file that cannot be read is a failed call.
impl From<LoadError> for ToolError {
    fn from(e: LoadError) -> Self {
        match e {
            LoadError::Unknown { name, suggestions } => ToolError::NotFound {
                what: "expression data set or file".into(),
                name,
                suggestions,
            },
            LoadError::Catalogue(e) => e.into(),
            e => ToolError::Failed {
                message: e.to_string(),
                retryable: false,
            },
        }
    }
}

/// Reads an `.h5ad` file, a Cell Ranger directory (or its `matrix.mtx[.gz]`), or a dense
/// `.tsv`/`.txt`/`.csv` table (gzip allowed) laid out as `orientation` says.
pub fn read_expression(
    path: &Path,
    orientation: Orientation,
) -> Result<ExpressionMatrix, LoadError> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    if path.is_dir() {
        return Ok(text::read_10x(path)?);
    }
    if name.ends_with(".h5ad") {
        return Ok(h5ad::read(path)?);
    }
    if name.ends_with(".mtx") {
        let dir = path.parent().unwrap_or(Path::new("."));
        return Ok(text::read_10x(dir)?);
    }
    if [".tsv", ".txt", ".csv", ".tab"]
        .iter()
        .any(|e| name.ends_with(e))
    {
        return Ok(text::read_table(path, orientation)?);
    }
    Err(LoadError::UnknownFormat {
        path: path.to_path_buf(),
    })
}

/// Expression data sets loaded (or made) so far in a session, by name, shared by the tools
/// that load, simulate and describe them.
#[derive(Debug, Clone, Default)]
pub struct LoadedDatasets(Arc<Mutex<HashMap<String, Arc<ExpressionMatrix>>>>);

impl LoadedDatasets {
    /// Keeps `m` under `name`, replacing what was there.
    pub fn insert(&self, name: &str, m: Arc<ExpressionMatrix>) {
        self.lock().insert(name.to_owned(), m);
    }

    pub fn get(&self, name: &str) -> Option<Arc<ExpressionMatrix>> {
        self.lock().get(name).cloned()
    }

    /// The data set `source` names, loaded on first use and kept under that name: a name kept
    /// earlier, a catalogue expression data set (fetched on first use), or a path to an .h5ad
    /// file, a 10x directory or a table laid out as `orientation` says.
    pub fn get_or_load(
        &self,
        source: &str,
        orientation: Orientation,
        progress: &dyn Progress,
        cancel: &CancelToken,
    ) -> Result<Arc<ExpressionMatrix>, LoadError> {
        if let Some(m) = self.get(source) {
            return Ok(m);
        }
        let expression = || CATALOGUE.iter().filter(|d| d.kind == Kind::Expression);
        let path = match expression().find(|d| d.name == source) {
            Some(d) => d.fetch(progress, cancel)?.remove(0),
            None if Path::new(source).exists() => PathBuf::from(source),
            None => {
                let mut names = self.names();
                names.extend(expression().map(|d| d.name.to_owned()));
                return Err(LoadError::Unknown {
                    name: source.to_owned(),
                    suggestions: closest_matches(source, names.iter().map(String::as_str), 0.7, 3),
                });
            }
        };
        let m = Arc::new(read_expression(&path, orientation)?);
        self.insert(source, m.clone());
        Ok(m)
    }

    /// The names kept, in no particular order.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ExpressionMatrix>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
