//! # cellwright-tools-notebook
//!
//! The user's lab notebook as a Markdown file: [`RecordNote`] appends an entry (an
//! [`Effects::External`] action: repeating it writes the entry twice, so resume never
//! repeats it silently), [`ReadNotes`] reads the latest entries back.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use cellwright_core::{Effects, Tool, ToolCtx, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const ENTRY_MARK: &str = "<!-- cellwright-note ";

/// Appends entries to the notebook at `path`.
#[derive(Debug, Clone)]
pub struct RecordNote {
    path: PathBuf,
}

impl RecordNote {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordNoteArgs {
    /// A short heading.
    #[schemars(length(min = 1, max = 200))]
    pub title: String,
    /// The note itself, Markdown allowed.
    #[schemars(length(min = 1))]
    pub text: String,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema, PartialEq)]
pub struct NoteEntry {
    pub title: String,
    pub text: String,
    /// RFC 3339 time of writing.
    pub recorded_at: String,
    pub run: String,
    pub call: u32,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RecordNoteOutput {
    /// The entry's number in the notebook (1 = first ever).
    pub entry: usize,
    pub notebook: String,
}

impl Tool for RecordNote {
    const NAME: &'static str = "record_note";
    type Args = RecordNoteArgs;
    type Output = RecordNoteOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/record_note.md")
            .trim()
            .to_owned()
    }

    fn effects(&self) -> Effects {
        Effects::External
    }

    async fn call(&self, ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        if args.title.contains('\n') {
            return Err(ToolError::InvalidArgs {
                tool: Self::NAME.into(),
                issues: vec![cellwright_core::ArgIssue {
                    path: "/title".into(),
                    message: "a title is one line".into(),
                }],
            });
        }
        let previous = read_entries(&self.path)?.len();
        let at = UNIX_EPOCH + Duration::from_millis(ctx.clock.now_ms().max(0) as u64);
        let entry = NoteEntry {
            title: args.title,
            text: args.text.trim().to_owned(),
            recorded_at: humantime::format_rfc3339_seconds(at).to_string(),
            run: ctx.run_id.to_string(),
            call: ctx.call_id.0,
        };
        let meta = serde_json_line(&entry);
        let block = format!(
            "## {}\n{ENTRY_MARK}{meta} -->\n\n{}\n\n",
            entry.title, entry.text
        );
        if let Some(parent) = self.path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| io_failed(&self.path, &e))?;
        }
        // One write of the whole block in append mode: entries never interleave.
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| io_failed(&self.path, &e))?;
        file.write_all(block.as_bytes())
            .and_then(|()| file.sync_data())
            .map_err(|e| io_failed(&self.path, &e))?;
        Ok(RecordNoteOutput {
            entry: previous + 1,
            notebook: self.path.display().to_string(),
        })
    }
}

/// Reads the latest entries of the notebook at `path`.
#[derive(Debug, Clone)]
pub struct ReadNotes {
    path: PathBuf,
}

impl ReadNotes {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadNotesArgs {
    /// How many of the newest entries to return.
    #[serde(default = "default_last")]
    #[schemars(range(min = 1, max = 100))]
    pub last: u32,
}

fn default_last() -> u32 {
    10
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReadNotesOutput {
    pub total: usize,
    pub entries: Vec<NoteEntry>,
}

impl Tool for ReadNotes {
    const NAME: &'static str = "read_notes";
    type Args = ReadNotesArgs;
    type Output = ReadNotesOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/read_notes.md")
            .trim()
            .to_owned()
    }

    fn effects(&self) -> Effects {
        Effects::Idempotent
    }

    async fn call(&self, _ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let mut entries = read_entries(&self.path)?;
        let total = entries.len();
        let keep = (args.last as usize).min(total);
        entries.drain(..total - keep);
        Ok(ReadNotesOutput { total, entries })
    }
}

fn serde_json_line(entry: &NoteEntry) -> String {
    // Title and text live in the Markdown; the marker keeps what is needed to parse it back.
    format!(
        "{{\"recorded_at\":\"{}\",\"run\":{:?},\"call\":{}}}",
        entry.recorded_at, entry.run, entry.call
    )
}

/// Parses the notebook: entries are `## title`, a marker line, then the text.
pub fn read_entries(path: &Path) -> Result<Vec<NoteEntry>, ToolError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_failed(path, &e)),
    };
    let mut entries: Vec<NoteEntry> = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(title) = line.strip_prefix("## ") else {
            if let Some(last) = entries.last_mut()
                && (!last.text.is_empty() || !line.is_empty())
            {
                last.text.push_str(line);
                last.text.push('\n');
            }
            continue;
        };
        let meta = lines
            .next_if(|l| l.starts_with(ENTRY_MARK))
            .and_then(|l| l.strip_prefix(ENTRY_MARK)?.strip_suffix(" -->"));
        let (recorded_at, run, call) = meta.map_or_else(
            || (String::new(), String::new(), 0),
            |m| {
                (
                    field(m, "recorded_at"),
                    field(m, "run"),
                    field(m, "call").parse().unwrap_or(0),
                )
            },
        );
        entries.push(NoteEntry {
            title: title.to_owned(),
            text: String::new(),
            recorded_at,
            run,
            call,
        });
    }
    for e in &mut entries {
        e.text = e.text.trim().to_owned();
    }
    Ok(entries)
}

/// Reads `"key":value` or `"key":"value"` from the one-line marker.
fn field(meta: &str, key: &str) -> String {
    let pat = format!("\"{key}\":");
    let Some(start) = meta.find(&pat).map(|i| i + pat.len()) else {
        return String::new();
    };
    let rest = &meta[start..];
    if let Some(quoted) = rest.strip_prefix('"') {
        quoted.split('"').next().unwrap_or("").to_owned()
    } else {
        rest.split([',', '}'])
            .next()
            .unwrap_or("")
            .trim()
            .to_owned()
    }
}

fn io_failed(path: &Path, e: &std::io::Error) -> ToolError {
    ToolError::failed(format!("notebook {}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notes.md");
        let ctx = ToolCtx::detached(0);
        for (title, text) in [("First", "one\n\nwith a blank line"), ("Second", "two")] {
            let args = RecordNoteArgs {
                title: title.into(),
                text: text.into(),
            };
            futures::executor::block_on(RecordNote::new(&path).call(&ctx, args)).unwrap();
        }
        let out = futures::executor::block_on(
            ReadNotes::new(&path).call(&ctx, ReadNotesArgs { last: 1 }),
        )
        .unwrap();
        assert_eq!(out.total, 2);
        assert_eq!(out.entries[0].title, "Second");
        let all = read_entries(&path).unwrap();
        assert_eq!(all[0].text, "one\n\nwith a blank line");
        assert_eq!(all[0].run, "detached");
        assert_eq!(all[0].call, 1);
    }
}
