//! Text and JSON renderings of runs: the answer report of `ask`, the transcript of
//! `trace show`.

use std::collections::BTreeMap;
use std::fmt::Write;

use cellwright_core::{Answer, StoredEvent, ToolOutcome, TraceEvent};
use cellwright_runtime::RunOutcome;
use serde_json::{Value, json};

/// `ask --json`: the outcome with its answer.
pub fn outcome_json(outcome: &RunOutcome) -> Value {
    json!({
        "run_id": outcome.run_id,
        "status": outcome.status,
        "answer": outcome.answer,
        "usage": outcome.usage,
        "steps": outcome.steps,
        "tool_calls": outcome.tool_calls,
        "reason": outcome.reason,
        "budget": outcome.budget,
    })
}

/// One tool call as shown to people.
struct CallView {
    step: u32,
    tool: String,
    arguments: Value,
    attempts: u32,
    outcome: Option<ToolOutcome>,
    duration_ms: Option<u64>,
}

fn calls(events: &[StoredEvent]) -> BTreeMap<u32, CallView> {
    let mut calls = BTreeMap::new();
    for e in events {
        match &e.event {
            TraceEvent::ToolCallStarted {
                step,
                call,
                tool,
                arguments,
                attempt,
                ..
            } => {
                let view = calls.entry(call.0).or_insert_with(|| CallView {
                    step: *step,
                    tool: tool.clone(),
                    arguments: arguments.clone(),
                    attempts: 0,
                    outcome: None,
                    duration_ms: None,
                });
                view.attempts = view.attempts.max(*attempt);
            }
            TraceEvent::ToolCallFinished {
                call,
                outcome,
                duration_ms,
                ..
            } => {
                if let Some(view) = calls.get_mut(&call.0) {
                    view.outcome = Some(outcome.clone());
                    view.duration_ms = Some(*duration_ms);
                }
            }
            _ => {}
        }
    }
    calls
}

fn short(text: &str, max: usize) -> String {
    let one_line = text.replace('\n', " ");
    if one_line.chars().count() <= max {
        one_line
    } else {
        format!("{}…", one_line.chars().take(max).collect::<String>())
    }
}

fn outcome_line(view: &CallView) -> String {
    let took = view
        .duration_ms
        .map_or_else(String::new, |ms| format!(" in {ms} ms"));
    let repeated = if view.attempts > 1 {
        format!(" (executed {} times: resumed after a crash)", view.attempts)
    } else {
        String::new()
    };
    match &view.outcome {
        Some(ToolOutcome::Ok(v)) => format!("ok{took}{repeated}: {}", short(&v.to_string(), 160)),
        Some(ToolOutcome::Err(e)) => format!("error ({}){took}{repeated}: {e}", e.kind()),
        None => "no result recorded (interrupted)".to_owned(),
    }
}

fn write_claims(out: &mut String, answer: &Answer) {
    if answer.claims.is_empty() {
        return;
    }
    let _ = writeln!(out, "\nClaims");
    for (i, claim) in answer.claims.iter().enumerate() {
        let support = if claim.supported {
            let cited: Vec<String> = claim
                .evidence
                .iter()
                .map(|e| format!("[{}] {}", e.call, e.tool))
                .collect();
            format!("evidence: {}", cited.join(", "))
        } else {
            format!(
                "UNSUPPORTED: {}",
                claim.note.as_deref().unwrap_or("no tool call cited")
            )
        };
        let _ = writeln!(out, "  {}. {} ({support})", i + 1, claim.text);
    }
}

/// What `ask` prints: the answer, its claims, the sources and a one-line summary.
pub fn answer_report(outcome: &RunOutcome, events: &[StoredEvent]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{}", outcome.answer.text.trim());
    write_claims(&mut out, &outcome.answer);
    let calls = calls(events);
    let cited: Vec<u32> = {
        let mut c: Vec<u32> = outcome
            .answer
            .claims
            .iter()
            .flat_map(|c| c.evidence.iter().map(|e| e.call.0))
            .collect();
        c.sort_unstable();
        c.dedup();
        c
    };
    if !cited.is_empty() {
        let _ = writeln!(out, "\nSources");
        for n in cited {
            if let Some(view) = calls.get(&n) {
                let _ = writeln!(
                    out,
                    "  [{n}] {} {} → {}",
                    view.tool,
                    short(&view.arguments.to_string(), 120),
                    outcome_line(view)
                );
            }
        }
    }
    let wall = match (events.first(), events.last()) {
        (Some(a), Some(b)) => format!("{:.1} s", (b.at_ms - a.at_ms) as f64 / 1000.0),
        _ => "?".into(),
    };
    let mut tools: Vec<&str> = calls.values().map(|v| v.tool.as_str()).collect();
    tools.sort_unstable();
    tools.dedup();
    let _ = writeln!(
        out,
        "\nrun {} · {} · {} steps · {} tool calls ({}) · {} tokens · {wall}{}",
        outcome.run_id,
        outcome.status.as_str(),
        outcome.steps,
        outcome.tool_calls,
        if tools.is_empty() {
            "none".to_owned()
        } else {
            tools.join(", ")
        },
        outcome.usage.total(),
        outcome
            .reason
            .as_ref()
            .map_or_else(String::new, |r| format!(" · {r}")),
    );
    let _ = writeln!(out, "full trace: cellwright trace show {}", outcome.run_id);
    out
}

/// The readable transcript of `trace show`.
pub fn transcript(run_id: &str, events: &[StoredEvent]) -> String {
    let mut out = String::new();
    let calls = calls(events);
    let t0 = events.first().map_or(0, |e| e.at_ms);
    let mut shown_calls = std::collections::BTreeSet::new();
    for stored in events {
        let at = format!("{:>7.3}s", (stored.at_ms - t0) as f64 / 1000.0);
        match &stored.event {
            TraceEvent::RunStarted {
                question,
                model,
                budgets,
                seed,
                tools,
                ..
            } => {
                let started = std::time::UNIX_EPOCH
                    + std::time::Duration::from_millis(stored.at_ms.max(0) as u64);
                let _ = writeln!(out, "run {run_id}");
                let _ = writeln!(
                    out,
                    "  started  {}",
                    humantime::format_rfc3339_seconds(started)
                );
                let _ = writeln!(out, "  model    {model} (seed {seed})");
                let _ = writeln!(out, "  tools    {}", tools.join(", "));
                let _ = writeln!(
                    out,
                    "  budgets  {} steps, {} tool calls, {} tokens, {} s",
                    budgets.max_steps,
                    budgets.max_tool_calls,
                    budgets.max_tokens,
                    budgets.max_wall_ms / 1000
                );
                let _ = writeln!(out, "  question {question}");
            }
            TraceEvent::RunResumed { attempt } => {
                let _ = writeln!(out, "{at} resumed (resume #{attempt})");
            }
            TraceEvent::ModelRequest { .. } => {}
            TraceEvent::ModelResponse {
                step,
                message,
                usage,
                latency_ms,
                model,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "{at} step {step} · {model} · {latency_ms} ms · {} in / {} out tokens",
                    usage.input_tokens, usage.output_tokens
                );
                if !message.content.trim().is_empty() {
                    let _ = writeln!(
                        out,
                        "           says: {}",
                        short(message.content.trim(), 300)
                    );
                }
                for (i, call) in message.tool_calls.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "           asks: {} {}",
                        call.name,
                        short(&call.arguments, 160)
                    );
                    let _ = i;
                }
            }
            TraceEvent::ModelFailed {
                step,
                error,
                will_retry,
            } => {
                let _ = writeln!(
                    out,
                    "{at} step {step} · model error: {error}{}",
                    if *will_retry { " (retrying)" } else { "" }
                );
            }
            TraceEvent::ToolCallStarted { .. } => {}
            TraceEvent::ToolCallFinished { call, .. } => {
                if shown_calls.insert(call.0)
                    && let Some(view) = calls.get(&call.0)
                {
                    let _ = writeln!(
                        out,
                        "{at}   [{}] {} (step {}) → {}",
                        call,
                        view.tool,
                        view.step,
                        outcome_line(view)
                    );
                }
            }
            TraceEvent::Artifact { call, artifact } => {
                let _ = writeln!(
                    out,
                    "{at}   artifact {} ({}, {} bytes){}",
                    artifact.id,
                    artifact.media_type,
                    artifact.bytes,
                    call.map_or_else(String::new, |c| format!(" from call {c}"))
                );
            }
            TraceEvent::RunFinished {
                status,
                answer,
                usage,
                steps,
                tool_calls,
                reason,
                ..
            } => {
                let _ = writeln!(
                    out,
                    "{at} finished · {} · {steps} steps · {tool_calls} tool calls · {} in / {} out tokens{}",
                    status.as_str(),
                    usage.input_tokens,
                    usage.output_tokens,
                    reason
                        .as_ref()
                        .map_or_else(String::new, |r| format!(" · {r}"))
                );
                if let Some(answer) = answer {
                    let _ = writeln!(
                        out,
                        "\nAnswer\n  {}",
                        answer.text.trim().replace('\n', "\n  ")
                    );
                    write_claims(&mut out, answer);
                }
            }
        }
    }
    // Calls that started but never finished (the process died in between).
    for (n, view) in &calls {
        if view.outcome.is_none() {
            let _ = writeln!(
                out,
                "           [{n}] {} (step {}) → {}",
                view.tool,
                view.step,
                outcome_line(view)
            );
        }
    }
    if !events
        .iter()
        .any(|e| matches!(e.event, TraceEvent::RunFinished { .. }))
    {
        let _ = writeln!(
            out,
            "\n(unfinished: `cellwright resume {run_id}` continues it)"
        );
    }
    out
}
