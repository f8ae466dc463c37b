//! One entry point for expression data on disk, whatever its format.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

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

    /// The names kept, in no particular order.
    pub fn names(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<ExpressionMatrix>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}
