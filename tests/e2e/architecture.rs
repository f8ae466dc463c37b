//! The dependency direction of docs/architecture.md, checked on `cargo metadata`.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::support::workspace_root;

/// Crates that must not link an async runtime, HTTP, a database or a numeric backend.
const CORE_FORBIDDEN: &[&str] = &[
    "tokio",
    "reqwest",
    "sqlx",
    "candle-core",
    "candle-nn",
    "async-openai",
    "axum",
    "hyper",
];
/// Oracle crates: usable as plain libraries, so never wired to agents, models or stores.
const ORACLES: &[&str] = &[
    "cellwright-grn",
    "cellwright-embed",
    "cellwright-perturb",
    "cellwright-sim",
];

/// Which of our crates each crate may depend on (normal dependencies).
fn allowed(name: &str) -> Option<&'static [&'static str]> {
    Some(match name {
        "cellwright-core" => &[],
        "cellwright-runtime" | "cellwright-store" | "cellwright-fetch" => &["cellwright-core"],
        "cellwright-llm" => &["cellwright-core", "cellwright-fetch"],
        "cellwright-data" | "cellwright-eval" => {
            &["cellwright-core", "cellwright-data", "cellwright-fetch"]
        }
        // The mechanistic perturbation model infers its network with cellwright-grn; the
        // neural one may read gene embeddings from cellwright-embed.
        "cellwright-perturb" => &[
            "cellwright-core",
            "cellwright-data",
            "cellwright-eval",
            "cellwright-sim",
            "cellwright-grn",
            "cellwright-embed",
        ],
        n if ORACLES.contains(&n) => &[
            "cellwright-core",
            "cellwright-data",
            "cellwright-eval",
            "cellwright-sim",
        ],
        // The representation tools wrap the embedded sentence model (MiniLM, in
        // cellwright-llm) and keep the gene table in the model cache.
        "cellwright-tools-embed" => &[
            "cellwright-core",
            "cellwright-data",
            "cellwright-eval",
            "cellwright-sim",
            "cellwright-embed",
            "cellwright-llm",
            "cellwright-fetch",
        ],
        n if n.starts_with("cellwright-tools-") => &[
            "cellwright-core",
            "cellwright-data",
            "cellwright-eval",
            "cellwright-sim",
            "cellwright-grn",
            "cellwright-embed",
            "cellwright-perturb",
        ],
        // Hypothesis loops run experiments in the simulator or on screen tables and keep
        // their ledger in the store; the agent's model comes in as a core ChatModel.
        "cellwright-loop" => &[
            "cellwright-core",
            "cellwright-data",
            "cellwright-eval",
            "cellwright-sim",
            "cellwright-store",
        ],
        "cellwright-cli" | "cellwright-examples" => return None,
        _ => &["cellwright-core"],
    })
}

/// Every arrow that points the wrong way, as "from → to".
pub fn violations(metadata: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let mut deps: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for package in metadata["packages"].as_array().into_iter().flatten() {
        let name = package["name"].as_str().unwrap_or_default().to_owned();
        let normal = package["dependencies"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| d["kind"].is_null())
            .filter_map(|d| d["name"].as_str().map(str::to_owned))
            .collect();
        deps.insert(name, normal);
    }
    for (name, normal) in &deps {
        if !name.starts_with("cellwright") {
            continue;
        }
        if normal.iter().any(|d| d == "cellwright-cli") {
            out.push(format!(
                "{name} → cellwright-cli (nothing depends on the binary)"
            ));
        }
        if name == "cellwright-core" {
            for d in normal
                .iter()
                .filter(|d| CORE_FORBIDDEN.contains(&d.as_str()) || d.starts_with("candle"))
            {
                out.push(format!("{name} → {d} (core holds contracts only)"));
            }
        }
        if ORACLES.contains(&name.as_str()) {
            for d in normal
                .iter()
                .filter(|d| ["tokio", "sqlx", "reqwest", "async-openai"].contains(&d.as_str()))
            {
                out.push(format!("{name} → {d} (oracles are plain libraries)"));
            }
        }
        let Some(allowed) = allowed(name) else {
            continue;
        };
        for d in normal.iter().filter(|d| d.starts_with("cellwright")) {
            if !allowed.contains(&d.as_str()) {
                out.push(format!("{name} → {d}"));
            }
        }
    }
    out
}

#[test]
fn dependency_arrows_point_the_right_way() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args([
            "metadata",
            "--format-version",
            "1",
            "--no-deps",
            "--offline",
            "--manifest-path",
        ])
        .arg(workspace_root().join("Cargo.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let members = metadata["packages"].as_array().unwrap().len();
    assert!(members >= 6, "only {members} packages found");
    assert_eq!(violations(&metadata), Vec::<String>::new());
}

#[test]
fn the_check_catches_wrong_arrows() {
    let dep = |name: &str| serde_json::json!({"name": name, "kind": null});
    let dev = |name: &str| serde_json::json!({"name": name, "kind": "dev"});
    let metadata = serde_json::json!({"packages": [
        {"name": "cellwright-core", "dependencies": [dep("serde"), dep("tokio")]},
        {"name": "cellwright-runtime", "dependencies": [dep("cellwright-core"), dep("cellwright-store"), dev("cellwright-llm")]},
        {"name": "cellwright-grn", "dependencies": [dep("cellwright-runtime"), dep("sqlx")]},
        {"name": "cellwright-tools-grn", "dependencies": [dep("cellwright-grn"), dep("cellwright-llm")]},
        {"name": "cellwright-store", "dependencies": [dep("cellwright-cli")]},
    ]});
    assert_eq!(
        violations(&metadata),
        [
            "cellwright-core → tokio (core holds contracts only)",
            "cellwright-grn → sqlx (oracles are plain libraries)",
            "cellwright-grn → cellwright-runtime",
            "cellwright-runtime → cellwright-store",
            "cellwright-store → cellwright-cli (nothing depends on the binary)",
            "cellwright-store → cellwright-cli",
            "cellwright-tools-grn → cellwright-llm",
        ]
    );
}
