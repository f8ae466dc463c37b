//! Where cellwright keeps things: the run database, the notebook, the cache.

use std::path::PathBuf;

fn data_dir() -> PathBuf {
    dirs::data_dir()
        .unwrap_or_else(|| PathBuf::from("."))
        .join("cellwright")
}

/// `--db` / `CELLWRIGHT_DB`, else `$XDG_DATA_HOME/cellwright/cellwright.db`.
pub fn default_db() -> PathBuf {
    data_dir().join("cellwright.db")
}

/// `--notebook` / `CELLWRIGHT_NOTEBOOK`, else `$XDG_DATA_HOME/cellwright/notebook.md`.
pub fn default_notebook() -> PathBuf {
    data_dir().join("notebook.md")
}

/// `CELLWRIGHT_CACHE`, else `$XDG_CACHE_HOME/cellwright`.
pub use cellwright_fetch::cache_dir;
