//! # cellwright-tools-sequence
//!
//! Small, exact sequence tools: [`ReverseComplement`] and [`TranslateDna`] (standard
//! genetic code, NCBI table 1). Pure functions behind the [`Tool`] contract.
//!
//! ```
//! use cellwright_tools_sequence::translate;
//! assert_eq!(translate(b"ATGGCCTAA", false), "MA*");
//! ```

use cellwright_core::{ArgIssue, Tool, ToolCtx, ToolError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Codons in TCAG order: index = 16·b1 + 4·b2 + b3 with T=0, C=1, A=2, G=3.
const STANDARD_CODE: &[u8; 64] =
    b"FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG";

fn base_index(b: u8) -> Option<usize> {
    match b {
        b'T' => Some(0),
        b'C' => Some(1),
        b'A' => Some(2),
        b'G' => Some(3),
        _ => None,
    }
}

/// Translates upper-case DNA; codons with `N` become `X`. Stops are `*`; with `to_stop`
/// translation ends before the first stop.
pub fn translate(dna: &[u8], to_stop: bool) -> String {
    let mut protein = String::with_capacity(dna.len() / 3);
    for codon in dna.chunks_exact(3) {
        let aa = match (
            base_index(codon[0]),
            base_index(codon[1]),
            base_index(codon[2]),
        ) {
            (Some(a), Some(b), Some(c)) => STANDARD_CODE[16 * a + 4 * b + c] as char,
            _ => 'X',
        };
        if to_stop && aa == '*' {
            break;
        }
        protein.push(aa);
    }
    protein
}

/// Reverse complement of upper-case DNA.
pub fn reverse_complement(dna: &[u8]) -> Vec<u8> {
    dna.iter()
        .rev()
        .map(|b| match b {
            b'A' => b'T',
            b'T' => b'A',
            b'C' => b'G',
            b'G' => b'C',
            other => *other,
        })
        .collect()
}

/// Upper-cases and strips whitespace; rejects anything but A, C, G, T, N, naming the position.
fn clean(tool: &str, sequence: &str) -> Result<Vec<u8>, ToolError> {
    let mut out = Vec::with_capacity(sequence.len());
    for (i, c) in sequence.chars().enumerate() {
        if c.is_whitespace() {
            continue;
        }
        match c.to_ascii_uppercase() {
            u @ ('A' | 'C' | 'G' | 'T' | 'N') => out.push(u as u8),
            other => {
                return Err(ToolError::InvalidArgs {
                    tool: tool.to_owned(),
                    issues: vec![ArgIssue {
                        path: "/sequence".into(),
                        message: format!(
                            "character {} is `{other}`; only A, C, G, T and N are allowed",
                            i + 1
                        ),
                    }],
                });
            }
        }
    }
    if out.is_empty() {
        return Err(ToolError::InvalidArgs {
            tool: tool.to_owned(),
            issues: vec![ArgIssue {
                path: "/sequence".into(),
                message: "the sequence is empty".into(),
            }],
        });
    }
    Ok(out)
}

fn gc_fraction(dna: &[u8]) -> f64 {
    let gc = dna.iter().filter(|b| matches!(b, b'G' | b'C')).count();
    gc as f64 / dna.len() as f64
}

/// The `reverse_complement` tool.
#[derive(Debug, Default, Clone, Copy)]
pub struct ReverseComplement;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReverseComplementArgs {
    /// DNA sequence: A, C, G, T or N; case and whitespace are ignored.
    pub sequence: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReverseComplementOutput {
    pub reverse_complement: String,
    pub length: usize,
    /// Fraction of G and C among all bases.
    pub gc_fraction: f64,
}

impl Tool for ReverseComplement {
    const NAME: &'static str = "reverse_complement";
    type Args = ReverseComplementArgs;
    type Output = ReverseComplementOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/reverse_complement.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, _ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        let dna = clean(Self::NAME, &args.sequence)?;
        let rc = reverse_complement(&dna);
        Ok(ReverseComplementOutput {
            length: dna.len(),
            gc_fraction: gc_fraction(&dna),
            reverse_complement: String::from_utf8_lossy(&rc).into_owned(),
        })
    }
}

/// The `translate_dna` tool.
#[derive(Debug, Default, Clone, Copy)]
pub struct TranslateDna;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strand {
    #[default]
    Forward,
    Reverse,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TranslateDnaArgs {
    /// DNA sequence: A, C, G, T or N; case and whitespace are ignored.
    pub sequence: String,
    /// Reading frame: translation starts at base 1, 2 or 3 of the strand.
    #[serde(default = "first_frame")]
    #[schemars(range(min = 1, max = 3))]
    pub frame: u8,
    #[serde(default)]
    pub strand: Strand,
    /// Stop before the first stop codon instead of writing `*` and going on.
    #[serde(default)]
    pub to_stop: bool,
}

fn first_frame() -> u8 {
    1
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TranslateDnaOutput {
    /// One letter per amino acid; `*` is a stop, `X` a codon with an unknown base.
    pub protein: String,
    pub codons: usize,
    pub stop_codons: usize,
    /// Bases at the end that do not fill a codon.
    pub trailing_bases: usize,
    pub frame: u8,
    pub strand: Strand,
}

impl Tool for TranslateDna {
    const NAME: &'static str = "translate_dna";
    type Args = TranslateDnaArgs;
    type Output = TranslateDnaOutput;

    fn description(&self) -> String {
        include_str!("../../../prompts/tools/translate_dna.md")
            .trim()
            .to_owned()
    }

    async fn call(&self, _ctx: &ToolCtx, args: Self::Args) -> Result<Self::Output, ToolError> {
        if !(1..=3).contains(&args.frame) {
            return Err(ToolError::InvalidArgs {
                tool: Self::NAME.into(),
                issues: vec![ArgIssue {
                    path: "/frame".into(),
                    message: format!("frame {} is not 1, 2 or 3", args.frame),
                }],
            });
        }
        let mut dna = clean(Self::NAME, &args.sequence)?;
        if args.strand == Strand::Reverse {
            dna = reverse_complement(&dna);
        }
        let start = usize::from(args.frame - 1).min(dna.len());
        let body = &dna[start..];
        let protein = translate(body, args.to_stop);
        Ok(TranslateDnaOutput {
            codons: body.len() / 3,
            stop_codons: translate(body, false).matches('*').count(),
            trailing_bases: body.len() % 3,
            protein,
            frame: args.frame,
            strand: args.strand,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_code_table() {
        for (codon, aa) in [
            ("ATG", "M"),
            ("TGG", "W"),
            ("TAA", "*"),
            ("TAG", "*"),
            ("TGA", "*"),
            ("TTT", "F"),
            ("GGG", "G"),
            ("CAT", "H"),
            ("AGA", "R"),
            ("ATA", "I"),
            ("NNN", "X"),
            ("ANG", "X"),
        ] {
            assert_eq!(translate(codon.as_bytes(), false), aa, "{codon}");
        }
    }

    #[test]
    fn frames_strands_and_stops() {
        let ctx = ToolCtx::detached(0);
        let run = |json: serde_json::Value| {
            let args: TranslateDnaArgs = serde_json::from_value(json).unwrap();
            futures::executor::block_on(TranslateDna.call(&ctx, args))
        };
        let out = run(serde_json::json!({"sequence": "atg gcc taa ggg"})).unwrap();
        assert_eq!(out.protein, "MA*G");
        assert_eq!(out.stop_codons, 1);
        let out = run(serde_json::json!({"sequence": "ATGGCCTAAGGG", "to_stop": true})).unwrap();
        assert_eq!(out.protein, "MA");
        let out = run(serde_json::json!({"sequence": "CATGGCC", "frame": 2})).unwrap();
        assert_eq!((out.protein.as_str(), out.trailing_bases), ("MA", 0));
        // Reverse strand of TTAGGCCAT is ATGGCCTAA.
        let out = run(serde_json::json!({"sequence": "TTAGGCCAT", "strand": "reverse"})).unwrap();
        assert_eq!(out.protein, "MA*");
        let err = run(serde_json::json!({"sequence": "ATGU"})).unwrap_err();
        assert!(err.to_string().contains("character 4 is `U`"), "{err}");
    }

    #[test]
    fn reverse_complement_round_trips() {
        let dna = b"ACGTTGCAN";
        assert_eq!(reverse_complement(&reverse_complement(dna)), dna);
        assert_eq!(reverse_complement(b"ATGC"), b"GCAT");
    }
}
