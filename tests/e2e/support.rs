//! Running the binary in a scratch folder.

use std::path::{Path, PathBuf};
use std::process::Output;

use cellwright_core::{RunId, StoredEvent, TraceStore};
use cellwright_store::SqliteStore;

pub const BIN: &str = env!("CARGO_BIN_EXE_cellwright");

/// A scratch folder with its own database and notebook.
pub struct Sandbox {
    pub dir: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn db(&self) -> PathBuf {
        self.dir.path().join("runs.db")
    }

    pub fn notebook(&self) -> PathBuf {
        self.dir.path().join("notebook.md")
    }

    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// A command with this sandbox's database and notebook, and no model configured.
    pub fn command(&self) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(BIN);
        cmd.env("CELLWRIGHT_DB", self.db())
            .env("CELLWRIGHT_NOTEBOOK", self.notebook())
            .env("CELLWRIGHT_CACHE", self.dir.path().join("cache"))
            .env_remove("CELLWRIGHT_MODEL")
            .env_remove("OPENAI_BASE_URL")
            .env_remove("OPENAI_API_KEY")
            .env_remove("OPENAI_MODEL")
            .env("NO_COLOR", "1")
            .kill_on_drop(true);
        cmd
    }

    pub async fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().await.unwrap()
    }

    pub async fn store(&self) -> SqliteStore {
        SqliteStore::open(self.db()).await.unwrap()
    }

    pub async fn only_run_id(&self) -> String {
        let out = self.run(&["trace", "list", "--json"]).await;
        let runs: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
        runs[0]["run_id"].as_str().unwrap().to_owned()
    }

    pub async fn events(&self, run: &str) -> Vec<StoredEvent> {
        let store = self.store().await;
        let events = store.events(&RunId::new(run)).await.unwrap();
        store.close().await;
        events
    }
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .parent()
        .unwrap()
}

/// The Python of a virtualenv under the cache with `requirements` installed (made on first
/// use with `python3 -m venv` and `pip install`, remade when the requirements change).
pub fn python_venv(name: &str, requirements: &str) -> PathBuf {
    let venv = cellwright_fetch::cache_dir()
        .join("test")
        .join(format!("venv-{name}"));
    let python = venv.join("bin").join("python");
    let stamp = venv.join("requirements.txt");
    if std::fs::read_to_string(&stamp).is_ok_and(|s| s == requirements) {
        return python;
    }
    let run = |cmd: &mut std::process::Command| {
        let out = cmd.output().expect("start python3");
        assert!(
            out.status.success(),
            "{cmd:?}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    run(std::process::Command::new("python3")
        .args(["-m", "venv", "--clear"])
        .arg(&venv));
    let wanted = venv.join("requirements.in");
    std::fs::write(&wanted, requirements).unwrap();
    run(std::process::Command::new(venv.join("bin").join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check", "-r"])
        .arg(&wanted));
    std::fs::write(&stamp, requirements).unwrap();
    python
}
