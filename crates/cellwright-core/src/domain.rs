//! Argument domains: what a string argument must name.
//!
//! A tool marks a string argument (or a list of them) with the schema keyword
//! [`DOMAIN_KEYWORD`] and one or more domain names:
//!
//! ```ignore
//! /// The regulated gene.
//! #[schemars(extend("x-domain" = "gene"))]
//! pub gene: String,
//! ```
//!
//! Validation ignores the keyword. A model that copies arguments from the question (the
//! embedded one) asks a [`Vocabulary`] which copied spans are in the domain, and drops the
//! rest: "CORUM" is not a gene, "knocked" is not a Boolean model. An optional argument may
//! also name its cues ([`CUES_KEYWORD`]): without them in the request, it keeps its default.

/// The schema keyword: a domain name, or a list of them (a value may be in any).
pub const DOMAIN_KEYWORD: &str = "x-domain";

/// The schema keyword of an optional argument's cues: the starts of words a request uses when
/// it means the argument (`["knock", "ko"]` for knockouts). A model that copies arguments
/// leaves the argument at its default when the request uses none of them, and otherwise
/// fills it (a flag: turns it on).
pub const CUES_KEYWORD: &str = "x-cues";

/// The domains the project's tools use.
pub mod domains {
    /// A human gene: an official symbol, an alias or a full name (org.Hs.eg.db).
    pub const GENE: &str = "gene";
    /// A catalogue Boolean model's name.
    pub const BOOLEAN_MODEL: &str = "boolean_model";
    /// A node of a catalogue Boolean model.
    pub const MODEL_NODE: &str = "model_node";
    /// An expression data set: a catalogue name, a simulated data set's name or a file path.
    pub const DATASET: &str = "dataset";
}

/// The cues the project's tools use.
pub mod cues {
    /// Genes knocked out.
    pub const KNOCKOUT: &[&str] = &["knock", "ko", "loss", "delet", "without", "silenc"];
    /// Genes overexpressed.
    pub const OVEREXPRESSION: &[&str] = &["overexpress", "forced"];
    /// Transcription factors (as candidate regulators).
    pub const TRANSCRIPTION_FACTORS: &[&str] = &["transcription", "tf"];
    /// A group's marker genes.
    pub const MARKERS: &[&str] = &["marker", "mark"];
    /// A node's regulators.
    pub const REGULATION: &[&str] = &["regulat", "input", "edge", "wir", "control"];
    /// A background (universe) the genes were drawn from.
    pub const BACKGROUND: &[&str] = &["background", "universe", "drawn"];
}

/// Which values belong to which domains.
pub trait Vocabulary: Send + Sync + std::fmt::Debug {
    /// Whether `value` is in `domain`; `None` when this vocabulary cannot tell (a domain it
    /// does not know, or one whose data are not at hand).
    fn admits(&self, domain: &str, value: &str) -> Option<bool>;
}

/// The domains a schema object names with [`DOMAIN_KEYWORD`] (none when it names none).
pub fn domains_of(schema: &serde_json::Map<String, serde_json::Value>) -> Vec<&str> {
    match schema.get(DOMAIN_KEYWORD) {
        Some(serde_json::Value::String(d)) => vec![d.as_str()],
        Some(serde_json::Value::Array(ds)) => ds.iter().filter_map(|d| d.as_str()).collect(),
        _ => Vec::new(),
    }
}
