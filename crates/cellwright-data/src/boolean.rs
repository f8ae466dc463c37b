//! Boolean network models: `.bnet` files (pyboolnet's format) and Cell Collective truth
//! tables (as shipped by `cana`), rules as expression trees, signed regulator edges, and
//! fixed points and attractors of small models under synchronous and asynchronous updates.
//!
//! ```
//! use cellwright_data::boolean::{BooleanNetwork, Sign};
//!
//! let net = BooleanNetwork::parse_bnet("A, A\nB, A & !C\nC, B\n", "toy.bnet")?;
//! assert_eq!(net.sign("A", "B"), Some(Sign::Activation));
//! assert_eq!(net.sign("C", "B"), Some(Sign::Inhibition));
//! let knocked = net.with_override("A", false)?;
//! assert_eq!(knocked.fixed_points()?.len(), 1);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::path::Path;

/// The most nodes whose whole state space ([`BooleanNetwork::fixed_points`], attractors) we
/// enumerate: 2^20 states.
pub const MAX_EXHAUSTIVE_NODES: usize = 20;

/// Regulators beyond which an edge's sign is read from the rule's literals rather than from
/// its truth table.
const MAX_TABLE_INPUTS: usize = 16;

/// A node's update rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expr {
    Const(bool),
    /// The current value of the node with this index.
    Var(usize),
    Not(Box<Expr>),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    /// A truth table: `outputs[i]` for the inputs' values read as the bits of `i`, the first
    /// input the most significant.
    Table {
        inputs: Vec<usize>,
        outputs: Vec<bool>,
    },
}

impl Expr {
    /// The rule's value in `state` (bit `i` is node `i`).
    pub fn eval(&self, state: u64) -> bool {
        self.eval_with(&|v| state >> v & 1 == 1)
    }

    /// The rule's value when node `v` has the value `value(v)`: for states of any size.
    pub fn eval_with(&self, value: &dyn Fn(usize) -> bool) -> bool {
        match self {
            Expr::Const(b) => *b,
            Expr::Var(v) => value(*v),
            Expr::Not(e) => !e.eval_with(value),
            Expr::And(es) => es.iter().all(|e| e.eval_with(value)),
            Expr::Or(es) => es.iter().any(|e| e.eval_with(value)),
            Expr::Table { inputs, outputs } => {
                let index = inputs
                    .iter()
                    .fold(0usize, |acc, v| acc << 1 | usize::from(value(*v)));
                outputs.get(index).copied().unwrap_or(false)
            }
        }
    }

    /// The nodes the rule reads.
    pub fn variables(&self) -> BTreeSet<usize> {
        let mut out = BTreeSet::new();
        self.collect(&mut out);
        out
    }

    /// The first truth table whose row count is not 2^inputs: (inputs, rows).
    fn bad_table(&self) -> Option<(usize, usize)> {
        match self {
            Expr::Const(_) | Expr::Var(_) => None,
            Expr::Not(e) => e.bad_table(),
            Expr::And(es) | Expr::Or(es) => es.iter().find_map(Expr::bad_table),
            Expr::Table { inputs, outputs } => (inputs.len() >= usize::BITS as usize
                || outputs.len() != 1 << inputs.len())
            .then_some((inputs.len(), outputs.len())),
        }
    }

    fn collect(&self, out: &mut BTreeSet<usize>) {
        match self {
            Expr::Const(_) => {}
            Expr::Var(v) => {
                out.insert(*v);
            }
            Expr::Not(e) => e.collect(out),
            Expr::And(es) | Expr::Or(es) => es.iter().for_each(|e| e.collect(out)),
            Expr::Table { inputs, .. } => out.extend(inputs),
        }
    }

    /// Polarities with which `var` occurs as a literal: (positive, negative).
    fn polarity(&self, var: usize, negated: bool) -> (bool, bool) {
        match self {
            Expr::Const(_) => (false, false),
            Expr::Var(v) if *v == var => (!negated, negated),
            Expr::Var(_) => (false, false),
            Expr::Not(e) => e.polarity(var, !negated),
            Expr::And(es) | Expr::Or(es) => es.iter().fold((false, false), |(p, n), e| {
                let (ep, en) = e.polarity(var, negated);
                (p || ep, n || en)
            }),
            Expr::Table { inputs, .. } => {
                if inputs.contains(&var) {
                    (true, true)
                } else {
                    (false, false)
                }
            }
        }
    }

    /// The rule in `.bnet` syntax (tables as a disjunction of their true rows).
    fn write(&self, names: &[String], out: &mut String, parent_and: bool) {
        match self {
            Expr::Const(b) => out.push(if *b { '1' } else { '0' }),
            Expr::Var(v) => out.push_str(&names[*v]),
            Expr::Not(e) => {
                out.push('!');
                let atomic = matches!(**e, Expr::Var(_) | Expr::Const(_) | Expr::Not(_));
                if !atomic {
                    out.push('(');
                }
                e.write(names, out, false);
                if !atomic {
                    out.push(')');
                }
            }
            Expr::And(es) => {
                for (i, e) in es.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" & ");
                    }
                    let wrap = matches!(e, Expr::Or(_) | Expr::Table { .. });
                    if wrap {
                        out.push('(');
                    }
                    e.write(names, out, true);
                    if wrap {
                        out.push(')');
                    }
                }
            }
            Expr::Or(es) => {
                if parent_and {
                    out.push('(');
                }
                for (i, e) in es.iter().enumerate() {
                    if i > 0 {
                        out.push_str(" | ");
                    }
                    e.write(names, out, false);
                }
                if parent_and {
                    out.push(')');
                }
            }
            Expr::Table { inputs, outputs } => {
                let terms: Vec<Expr> = outputs
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| **o)
                    .map(|(row, _)| {
                        Expr::And(
                            inputs
                                .iter()
                                .enumerate()
                                .map(|(j, v)| {
                                    let bit = row >> (inputs.len() - 1 - j) & 1 == 1;
                                    if bit {
                                        Expr::Var(*v)
                                    } else {
                                        Expr::Not(Box::new(Expr::Var(*v)))
                                    }
                                })
                                .collect(),
                        )
                    })
                    .collect();
                match terms.len() {
                    0 => out.push('0'),
                    _ if inputs.is_empty() => out.push('1'),
                    _ => Expr::Or(terms).write(names, out, parent_and),
                }
            }
        }
    }
}

/// How a regulator acts on its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sign {
    /// Turning the regulator on never turns the target off.
    Activation,
    /// Turning the regulator on never turns the target on.
    Inhibition,
    /// Either, depending on the other inputs.
    Dual,
}

/// A regulator → target edge.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Edge {
    pub from: String,
    pub to: String,
    pub sign: Sign,
}

/// A set of states the dynamics never leaves: one state (a fixed point) or a cycle
/// (synchronous), or a terminal strongly connected set (asynchronous).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attractor {
    /// The states, bit `i` of each being node `i`; sorted, except that a synchronous cycle
    /// is in the order it is traversed, starting from its smallest state.
    pub states: Vec<u64>,
}

impl Attractor {
    pub fn is_fixed_point(&self) -> bool {
        self.states.len() == 1
    }
}

/// Why a model file could not be read; lines and columns count from 1.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{source_name}:{line}:{column}: {message}")]
pub struct ParseError {
    pub source_name: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Why a question about a network could not be answered.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error(transparent)]
    Parse(#[from] ParseError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: unknown model format (expected .bnet, or a Cell Collective .txt truth table)")]
    Format { path: String },
    #[error("no node named {name}{hint}")]
    UnknownNode { name: String, hint: String },
    #[error(
        "the model has {nodes} nodes; its {what} are found by enumerating all 2^n states, which stops at {limit} nodes"
    )]
    TooLarge {
        nodes: usize,
        limit: usize,
        what: &'static str,
    },
}

/// A Boolean network: named nodes, each with an update rule over the nodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BooleanNetwork {
    names: Vec<String>,
    rules: Vec<Expr>,
    index: HashMap<String, usize>,
}

impl BooleanNetwork {
    /// Reads a `.bnet` file or a Cell Collective truth table (`.txt`).
    pub fn read(path: &Path) -> Result<Self, NetworkError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| NetworkError::Io {
            path: shown.clone(),
            source,
        })?;
        match path.extension().and_then(|e| e.to_str()) {
            Some("bnet") => Ok(Self::parse_bnet(&text, &shown)?),
            Some("txt") => Ok(Self::parse_cell_collective(&text, &shown)?),
            _ => Err(NetworkError::Format { path: shown }),
        }
    }

    fn build(names: Vec<String>, rules: Vec<Expr>) -> Self {
        let index = names
            .iter()
            .enumerate()
            .map(|(i, n)| (n.clone(), i))
            .collect();
        Self {
            names,
            rules,
            index,
        }
    }

    /// Parses pyboolnet's `.bnet`: `#` comments, an optional `targets, factors` header, then
    /// one `NODE, rule` line per node; rules use `&`, `|`, `!`, parentheses, `0` and `1`.
    /// `source_name` names the text in errors.
    pub fn parse_bnet(text: &str, source_name: &str) -> Result<Self, ParseError> {
        let error = |line: usize, column: usize, message: String| ParseError {
            source_name: source_name.to_owned(),
            line,
            column,
            message,
        };
        // First the targets, so rules may name nodes defined further down.
        let mut lines = Vec::new();
        let mut names: Vec<String> = Vec::new();
        let mut index = HashMap::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let content = raw.split('#').next().unwrap_or_default();
            if content.trim().is_empty() {
                continue;
            }
            let Some((target, rule)) = content.split_once(',') else {
                let column = raw.len() - raw.trim_start().len() + 1;
                return Err(error(
                    line,
                    column,
                    "expected `NODE, rule` (a comma after the node's name)".into(),
                ));
            };
            let target_column = content.len() - content.trim_start().len() + 1;
            let target = target.trim();
            if target.eq_ignore_ascii_case("targets") && rule.trim().eq_ignore_ascii_case("factors")
            {
                continue;
            }
            if !is_name(target) {
                return Err(error(
                    line,
                    target_column,
                    format!("`{target}` is not a node name (letters, digits, `_`)"),
                ));
            }
            if index.insert(target.to_owned(), names.len()).is_some() {
                return Err(error(
                    line,
                    target_column,
                    format!("node {target} has a second rule"),
                ));
            }
            names.push(target.to_owned());
            lines.push((line, content.len() - rule.len() + 1, rule));
        }
        if names.is_empty() {
            return Err(error(1, 1, "no `NODE, rule` lines".into()));
        }
        let mut rules = Vec::with_capacity(names.len());
        for (line, column, rule) in lines {
            let mut parser = RuleParser {
                text: rule,
                pos: 0,
                index: &index,
            };
            let expr = parser
                .parse()
                .map_err(|(offset, message)| error(line, column + offset, message))?;
            rules.push(expr);
        }
        Ok(Self::build(names, rules))
    }

    /// Parses the Cell Collective truth-table format: `.v N` nodes, `.l i NAME` labels (any
    /// character but ASCII letters and digits becomes `_`, and a name taken already gets
    /// `_i`),
    /// `.n i k inputs…` followed by `2^k` rows `bits output`, `.e` at the end. A node with
    /// no inputs is an input of the model and keeps its value.
    pub fn parse_cell_collective(text: &str, source_name: &str) -> Result<Self, ParseError> {
        let error = |line: usize, message: String| ParseError {
            source_name: source_name.to_owned(),
            line,
            column: 1,
            message,
        };
        let number = |s: Option<&str>, line: usize, what: &str| -> Result<usize, ParseError> {
            s.and_then(|s| s.parse().ok())
                .ok_or_else(|| error(line, format!("expected {what}")))
        };
        let mut count = None;
        let mut labels: HashMap<usize, String> = HashMap::new();
        let mut tables: Vec<TableLines> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let line = n + 1;
            let content = raw.split('#').next().unwrap_or_default().trim();
            if content.is_empty() {
                continue;
            }
            let mut words = content.split_whitespace();
            match words.next() {
                Some(".v") => count = Some(number(words.next(), line, "a node count")?),
                Some(".l") => {
                    let i = number(words.next(), line, "a node number")?;
                    let name: Vec<&str> = words.collect();
                    if name.is_empty() {
                        return Err(error(line, format!("node {i} has no label")));
                    }
                    labels.insert(i, name.join("_"));
                }
                Some(".n") => {
                    let node = number(words.next(), line, "a node number")?;
                    let k = number(words.next(), line, "an input count")?;
                    let inputs = words
                        .map(|w| number(Some(w), line, "input node numbers"))
                        .collect::<Result<Vec<_>, _>>()?;
                    if inputs.len() != k {
                        return Err(error(
                            line,
                            format!("node {node} declares {k} inputs but lists {}", inputs.len()),
                        ));
                    }
                    if k > MAX_TABLE_INPUTS + 8 {
                        return Err(error(line, format!("node {node} has {k} inputs; too many")));
                    }
                    tables.push((line, node, inputs, vec![None; 1 << k]));
                }
                Some(".e") => break,
                Some(bits) if bits.bytes().all(|b| b == b'0' || b == b'1') => {
                    let Some((_, node, inputs, rows)) = tables.last_mut() else {
                        return Err(error(line, "a truth-table row before any `.n` line".into()));
                    };
                    if bits.len() != inputs.len() {
                        return Err(error(
                            line,
                            format!(
                                "row `{bits}` has {} bits; node {node} has {} inputs",
                                bits.len(),
                                inputs.len()
                            ),
                        ));
                    }
                    let output = match words.next() {
                        Some("1") => true,
                        Some("0") => false,
                        _ => return Err(error(line, format!("row `{bits}` has no 0/1 output"))),
                    };
                    let row = bits
                        .bytes()
                        .fold(0usize, |acc, b| acc << 1 | usize::from(b == b'1'));
                    rows[row] = Some(output);
                }
                Some(other) => {
                    return Err(error(line, format!("unexpected `{other}`")));
                }
                None => {}
            }
        }
        let count = count.ok_or_else(|| error(1, "no `.v` line giving the node count".into()))?;
        // Every node needs a label line, so a larger count cannot be right (and must not be
        // allocated for).
        if count > labels.len() {
            return Err(error(
                1,
                format!(
                    "`.v` declares {count} nodes but {} have `.l` labels",
                    labels.len()
                ),
            ));
        }
        let mut names: Vec<String> = Vec::with_capacity(count);
        let mut seen = HashMap::new();
        for i in 1..=count {
            let label = labels
                .get(&i)
                .ok_or_else(|| error(1, format!("node {i} has no `.l` label")))?;
            if let Some(first) = seen.insert(label.clone(), i) {
                return Err(error(
                    1,
                    format!("nodes {first} and {i} are both labelled {label}"),
                ));
            }
            // Labels become `.bnet`-safe names: `CYCB1;1` is `CYCB1_1`; a name taken
            // already (`Ara+`, `Ara-`) gets the node's number (`Ara__12`).
            let mut name: String = label
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            if names.contains(&name) {
                name = format!("{name}_{i}");
            }
            names.push(name);
        }
        let mut rules: Vec<Option<Expr>> = vec![None; count];
        for (line, node, inputs, rows) in tables {
            if node == 0 || node > count {
                return Err(error(line, format!("node {node} is not among 1..={count}")));
            }
            if let Some(bad) = inputs.iter().find(|i| **i == 0 || **i > count) {
                return Err(error(line, format!("input {bad} is not among 1..={count}")));
            }
            let rule = if inputs.is_empty() && rows.iter().all(Option::is_none) {
                Expr::Var(node - 1)
            } else {
                let outputs = rows
                    .iter()
                    .enumerate()
                    .map(|(row, o)| {
                        o.ok_or_else(|| {
                            error(
                                line,
                                format!(
                                    "node {node}'s table has no row {:0width$b}",
                                    row,
                                    width = inputs.len()
                                ),
                            )
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Expr::Table {
                    inputs: inputs.iter().map(|i| i - 1).collect(),
                    outputs,
                }
            };
            if rules[node - 1].replace(rule).is_some() {
                return Err(error(line, format!("node {node} has a second table")));
            }
        }
        let rules = rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| r.ok_or_else(|| error(1, format!("node {} has no `.n` table", i + 1))))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::build(names, rules))
    }

    /// A network from its nodes' names and rules (e.g. rules learned from data). Refused,
    /// named, when the counts differ, a name repeats or is not a node name, or a rule reads
    /// a node that does not exist or has a truth table of the wrong length.
    pub fn from_rules(names: Vec<String>, rules: Vec<Expr>) -> Result<Self, NetworkError> {
        let invalid = |message: String| {
            NetworkError::Parse(ParseError {
                source_name: "rules".into(),
                line: 0,
                column: 0,
                message,
            })
        };
        if names.len() != rules.len() {
            return Err(invalid(format!(
                "{} names for {} rules",
                names.len(),
                rules.len()
            )));
        }
        let mut seen = HashSet::new();
        for name in &names {
            if !is_name(name) || !seen.insert(name.as_str()) {
                return Err(invalid(format!(
                    "`{name}` is repeated or not a node name (letters, digits, `_`)"
                )));
            }
        }
        for (name, rule) in names.iter().zip(&rules) {
            if let Some(v) = rule.variables().into_iter().find(|&v| v >= names.len()) {
                return Err(invalid(format!(
                    "the rule of {name} reads node {v}, which does not exist"
                )));
            }
            if let Some((inputs, rows)) = rule.bad_table() {
                return Err(invalid(format!(
                    "the rule of {name} has a table of {rows} rows for {inputs} inputs"
                )));
            }
        }
        Ok(Self::build(names, rules))
    }

    /// The network in `.bnet` syntax.
    pub fn to_bnet(&self) -> String {
        let mut out = String::from("targets, factors\n");
        for (name, rule) in self.names.iter().zip(&self.rules) {
            out.push_str(name);
            out.push_str(", ");
            rule.write(&self.names, &mut out, false);
            out.push('\n');
        }
        out
    }

    pub fn nodes(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The index of the node called `name`; the error suggests close names.
    pub fn node(&self, name: &str) -> Result<usize, NetworkError> {
        self.index.get(name).copied().ok_or_else(|| {
            let lower = name.to_lowercase();
            let mut close: Vec<&str> = self
                .names
                .iter()
                .filter(|n| {
                    let n = n.to_lowercase();
                    n.contains(&lower) || lower.contains(&n)
                })
                .map(String::as_str)
                .take(5)
                .collect();
            close.sort_unstable();
            NetworkError::UnknownNode {
                name: name.to_owned(),
                hint: cellwright_core::did_you_mean(&close),
            }
        })
    }

    pub fn rule(&self, node: usize) -> &Expr {
        &self.rules[node]
    }

    /// Whether a node's rule is itself (an input that keeps its value).
    pub fn is_input(&self, node: usize) -> bool {
        self.rules[node] == Expr::Var(node)
    }

    /// The sign of `from`'s effect on `to`, or `None` if `to`'s rule does not depend on it.
    pub fn sign(&self, from: &str, to: &str) -> Option<Sign> {
        let (from, to) = (self.index.get(from)?, self.index.get(to)?);
        edge_sign(&self.rules[*to], *from)
    }

    /// Every regulator → target edge, in node order of the target, then of the regulator.
    pub fn edges(&self) -> Vec<Edge> {
        let mut out = Vec::new();
        for (to, rule) in self.rules.iter().enumerate() {
            for from in rule.variables() {
                if let Some(sign) = edge_sign(rule, from) {
                    out.push(Edge {
                        from: self.names[from].clone(),
                        to: self.names[to].clone(),
                        sign,
                    });
                }
            }
        }
        out
    }

    /// The regulators of `node`, with their signs.
    pub fn regulators(&self, node: &str) -> Result<Vec<Edge>, NetworkError> {
        let node = self.node(node)?;
        Ok(self
            .edges()
            .into_iter()
            .filter(|e| e.to == self.names[node])
            .collect())
    }

    /// This network with `node` fixed at `value`: a knockout (`false`) or overexpression
    /// (`true`).
    pub fn with_override(&self, node: &str, value: bool) -> Result<Self, NetworkError> {
        let i = self.node(node)?;
        let mut out = self.clone();
        out.rules[i] = Expr::Const(value);
        Ok(out)
    }

    /// The next state when every node updates at once.
    pub fn step(&self, state: u64) -> u64 {
        self.rules
            .iter()
            .enumerate()
            .fold(0, |next, (i, r)| next | u64::from(r.eval(state)) << i)
    }

    fn states(&self, what: &'static str) -> Result<u64, NetworkError> {
        if self.len() > MAX_EXHAUSTIVE_NODES {
            return Err(NetworkError::TooLarge {
                nodes: self.len(),
                limit: MAX_EXHAUSTIVE_NODES,
                what,
            });
        }
        Ok(1u64 << self.len())
    }

    /// States that no update changes (the same under both update schemes), ascending.
    pub fn fixed_points(&self) -> Result<Vec<u64>, NetworkError> {
        let n = self.states("fixed points")?;
        Ok((0..n).filter(|s| self.step(*s) == *s).collect())
    }

    /// Attractors when every node updates at once: fixed points and cycles, ordered by their
    /// smallest state.
    pub fn attractors_sync(&self) -> Result<Vec<Attractor>, NetworkError> {
        let n = self.states("synchronous attractors")?;
        // 0: unvisited; otherwise the walk (1-based) that first reached the state.
        let mut walk_of = vec![0u32; n as usize];
        let mut out = Vec::new();
        for start in 0..n {
            if walk_of[start as usize] != 0 {
                continue;
            }
            let walk = start as u32 + 1;
            let mut state = start;
            while walk_of[state as usize] == 0 {
                walk_of[state as usize] = walk;
                state = self.step(state);
            }
            if walk_of[state as usize] == walk {
                // This walk closed a new cycle: it contains `state`.
                let mut cycle = vec![state];
                let mut next = self.step(state);
                while next != state {
                    cycle.push(next);
                    next = self.step(next);
                }
                let smallest = cycle
                    .iter()
                    .enumerate()
                    .min_by_key(|(_, s)| **s)
                    .map_or(0, |(i, _)| i);
                cycle.rotate_left(smallest);
                out.push(Attractor { states: cycle });
            }
        }
        out.sort_by_key(|a| a.states[0]);
        Ok(out)
    }

    /// Attractors when one node updates at a time (any of them, whenever its rule disagrees
    /// with its value): the terminal strongly connected sets of the state graph, ordered by
    /// their smallest state.
    pub fn attractors_async(&self) -> Result<Vec<Attractor>, NetworkError> {
        let n = self.states("asynchronous attractors")? as usize;
        let nodes = self.len();
        let successors = |s: u64| {
            let next = self.step(s);
            (0..nodes)
                .filter(move |i| (s ^ next) >> i & 1 == 1)
                .map(move |i| s ^ 1 << i)
        };
        // Tarjan's algorithm, iterative.
        const NONE: u32 = u32::MAX;
        let mut index = vec![NONE; n];
        let mut low = vec![0u32; n];
        let mut on_stack = vec![false; n];
        let mut stack: Vec<u64> = Vec::new();
        let mut components: Vec<Vec<u64>> = Vec::new();
        let mut component_of = vec![NONE; n];
        let mut counter = 0u32;
        for root in 0..n as u64 {
            if index[root as usize] != NONE {
                continue;
            }
            let mut frames: Vec<(u64, Vec<u64>)> = vec![(root, successors(root).collect())];
            index[root as usize] = counter;
            low[root as usize] = counter;
            counter += 1;
            stack.push(root);
            on_stack[root as usize] = true;
            while let Some((v, pending)) = frames.last_mut() {
                let v = *v;
                if let Some(w) = pending.pop() {
                    if index[w as usize] == NONE {
                        index[w as usize] = counter;
                        low[w as usize] = counter;
                        counter += 1;
                        stack.push(w);
                        on_stack[w as usize] = true;
                        frames.push((w, successors(w).collect()));
                    } else if on_stack[w as usize] {
                        low[v as usize] = low[v as usize].min(index[w as usize]);
                    }
                    continue;
                }
                frames.pop();
                if let Some((parent, _)) = frames.last() {
                    low[*parent as usize] = low[*parent as usize].min(low[v as usize]);
                }
                if low[v as usize] == index[v as usize] {
                    let id = components.len() as u32;
                    let mut component = Vec::new();
                    while let Some(w) = stack.pop() {
                        on_stack[w as usize] = false;
                        component_of[w as usize] = id;
                        component.push(w);
                        if w == v {
                            break;
                        }
                    }
                    components.push(component);
                }
            }
        }
        let mut out: Vec<Attractor> = components
            .into_iter()
            .enumerate()
            .filter(|(id, states)| {
                states
                    .iter()
                    .all(|s| successors(*s).all(|w| component_of[w as usize] == *id as u32))
            })
            .map(|(_, mut states)| {
                states.sort_unstable();
                Attractor { states }
            })
            .collect();
        out.sort_by_key(|a| a.states[0]);
        Ok(out)
    }

    /// `state` as `NAME=0/1` pairs, for people.
    pub fn describe(&self, state: u64) -> String {
        self.names
            .iter()
            .enumerate()
            .map(|(i, n)| format!("{n}={}", state >> i & 1))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl fmt::Display for BooleanNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_bnet())
    }
}

fn is_name(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The sign of `var` in `rule`: from its truth table over the rule's variables when they
/// are few, else from the polarity of its literals.
fn edge_sign(rule: &Expr, var: usize) -> Option<Sign> {
    let vars: Vec<usize> = rule.variables().into_iter().collect();
    let vars = vars.as_slice();
    let position = vars.iter().position(|v| *v == var)?;
    if vars.len() > MAX_TABLE_INPUTS {
        return match rule.polarity(var, false) {
            (true, false) => Some(Sign::Activation),
            (false, true) => Some(Sign::Inhibition),
            (true, true) => Some(Sign::Dual),
            (false, false) => None,
        };
    }
    let (mut up, mut down) = (false, false);
    for assignment in 0..1u64 << vars.len() {
        if assignment >> position & 1 == 1 {
            continue;
        }
        let value_in = |a: u64| {
            move |v: usize| {
                vars.iter()
                    .position(|x| *x == v)
                    .is_some_and(|p| a >> p & 1 == 1)
            }
        };
        let off = rule.eval_with(&value_in(assignment));
        let on = rule.eval_with(&value_in(assignment | 1 << position));
        up |= on && !off;
        down |= off && !on;
    }
    match (up, down) {
        (true, false) => Some(Sign::Activation),
        (false, true) => Some(Sign::Inhibition),
        (true, true) => Some(Sign::Dual),
        (false, false) => None,
    }
}

/// A `.n` line's table as read: its line, node, inputs, and each row's output if seen.
type TableLines = (usize, usize, Vec<usize>, Vec<Option<bool>>);

/// Recursive descent over one rule; errors carry the byte offset within the rule.
struct RuleParser<'a> {
    text: &'a str,
    pos: usize,
    index: &'a HashMap<String, usize>,
}

type RuleError = (usize, String);

impl RuleParser<'_> {
    fn parse(&mut self) -> Result<Expr, RuleError> {
        let expr = self.or()?;
        self.skip_space();
        match self.peek() {
            None => Ok(expr),
            Some(c) => Err((self.pos, format!("unexpected `{c}`"))),
        }
    }

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn skip_space(&mut self) {
        // Unicode whitespace (U+0085, U+00A0, …) is more than one byte.
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_space();
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn or(&mut self) -> Result<Expr, RuleError> {
        let mut terms = vec![self.and()?];
        while self.eat('|') {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.swap_remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Expr, RuleError> {
        let mut terms = vec![self.unary()?];
        while self.eat('&') {
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.swap_remove(0)
        } else {
            Expr::And(terms)
        })
    }

    fn unary(&mut self) -> Result<Expr, RuleError> {
        if self.eat('!') {
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.eat('(') {
            let inner = self.or()?;
            if !self.eat(')') {
                return Err((self.pos, "expected `)`".into()));
            }
            return Ok(inner);
        }
        self.skip_space();
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.pos += 1;
        }
        let word = &self.text[start..self.pos];
        match word {
            "" => Err((
                start,
                match self.peek() {
                    Some(c) => format!("expected a node, `0`, `1`, `!` or `(`, found `{c}`"),
                    None => "the rule ends where a node, `0` or `1` was expected".into(),
                },
            )),
            "0" => Ok(Expr::Const(false)),
            "1" => Ok(Expr::Const(true)),
            name => self
                .index
                .get(name)
                .map(|i| Expr::Var(*i))
                .ok_or_else(|| (start, format!("node {name} has no rule of its own"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by `cargo fuzz`: whitespace of two bytes inside a rule.
    #[test]
    fn multibyte_whitespace_in_a_rule_is_read_not_a_panic() {
        let net = BooleanNetwork::parse_bnet("targets, factors\nA, !\u{85}A\u{a0}& A\n", "w.bnet");
        assert!(net.is_ok(), "{net:?}");
    }

    /// Found by `cargo fuzz`: a node count far beyond the labels given.
    #[test]
    fn a_node_count_beyond_the_labels_is_an_error() {
        let text = ".v 536666666666666666\n.l 1 A\n";
        let err = BooleanNetwork::parse_cell_collective(text, "c.txt").unwrap_err();
        assert!(err.to_string().contains("declares"), "{err}");
    }

    const TOY: &str = "# a toy\ntargets, factors\nA, A\nB, A & !C\nC, B | (A & C)\n";

    #[test]
    fn bnet_rules_become_expression_trees_with_signed_edges() {
        let net = BooleanNetwork::parse_bnet(TOY, "toy.bnet").unwrap();
        assert_eq!(net.nodes(), ["A", "B", "C"]);
        assert!(net.is_input(0));
        assert_eq!(net.sign("A", "B"), Some(Sign::Activation));
        assert_eq!(net.sign("C", "B"), Some(Sign::Inhibition));
        assert_eq!(net.sign("B", "A"), None);
        let edges = net.regulators("C").unwrap();
        let signs: Vec<(&str, Sign)> = edges.iter().map(|e| (e.from.as_str(), e.sign)).collect();
        assert_eq!(
            signs,
            [
                ("A", Sign::Activation),
                ("B", Sign::Activation),
                ("C", Sign::Activation)
            ]
        );
        let xor = BooleanNetwork::parse_bnet("A, A\nB, A & !B | !A & B", "x").unwrap();
        assert_eq!(xor.sign("A", "B"), Some(Sign::Dual));
        // Written out and read back, the rules are the same.
        let again = BooleanNetwork::parse_bnet(&net.to_bnet(), "again").unwrap();
        assert_eq!(again, net);
    }

    #[test]
    fn errors_name_the_file_line_and_column() {
        let cases = [
            ("A, A & \n", "m.bnet:1:8: the rule ends"),
            (
                "A, A\nB, A & Z\n",
                "m.bnet:2:8: node Z has no rule of its own",
            ),
            ("A, A\nA, !A\n", "m.bnet:2:1: node A has a second rule"),
            ("A, (A | A\n", "m.bnet:1:10: expected `)`"),
            ("A A\n", "m.bnet:1:1: expected `NODE, rule`"),
            ("A-1, A\n", "m.bnet:1:1: `A-1` is not a node name"),
            ("A, A ) \n", "m.bnet:1:6: unexpected `)`"),
            ("# nothing\n", "m.bnet:1:1: no `NODE, rule` lines"),
        ];
        for (text, expected) in cases {
            let err = BooleanNetwork::parse_bnet(text, "m.bnet").unwrap_err();
            assert!(err.to_string().starts_with(expected), "{text:?}: {err}");
        }
    }

    #[test]
    fn truth_tables_read_like_rules() {
        let text = ".v 3\n.l 1 A\n.l 2 B\n.l 3 C\n\n.n 1 0\n\n.n 2 2 1 3\n11 0\n10 1\n01 0\n00 0\n\n.n 3 1 2\n1 1\n0 0\n.e\n";
        let table = BooleanNetwork::parse_cell_collective(text, "toy.txt").unwrap();
        let bnet = BooleanNetwork::parse_bnet("A, A\nB, A & !C\nC, B\n", "toy.bnet").unwrap();
        assert_eq!(table.nodes(), bnet.nodes());
        for state in 0..8 {
            assert_eq!(table.step(state), bnet.step(state), "state {state}");
        }
        assert_eq!(table.edges(), bnet.edges());
        let err = BooleanNetwork::parse_cell_collective(
            ".v 2\n.l 1 A\n.l 2 B\n.n 1 1 2\n1 1\n.n 2 0\n",
            "t.txt",
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "t.txt:4:1: node 1's table has no row 0");
        let err = BooleanNetwork::parse_cell_collective(".v 1\n.l 1 A\n.n 1 1 1\n10 1\n", "t.txt")
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("t.txt:4:1: row `10` has 2 bits"),
            "{err}"
        );
    }

    #[test]
    fn attractors_of_small_networks() {
        // A toggle switch: two fixed points; synchronously also a 2-cycle.
        let toggle = BooleanNetwork::parse_bnet("A, !B\nB, !A\n", "toggle").unwrap();
        assert_eq!(toggle.fixed_points().unwrap(), [0b01, 0b10]);
        let sync = toggle.attractors_sync().unwrap();
        assert_eq!(
            sync.iter().map(|a| a.states.clone()).collect::<Vec<_>>(),
            [vec![0b00, 0b11], vec![0b01], vec![0b10]]
        );
        let asynchronous = toggle.attractors_async().unwrap();
        assert!(asynchronous.iter().all(Attractor::is_fixed_point));
        assert_eq!(asynchronous.len(), 2);
        // A negative loop: no fixed point, one cyclic attractor either way.
        let oscillator = BooleanNetwork::parse_bnet("A, !B\nB, A\n", "osc").unwrap();
        assert!(oscillator.fixed_points().unwrap().is_empty());
        assert_eq!(oscillator.attractors_sync().unwrap()[0].states.len(), 4);
        assert_eq!(
            oscillator.attractors_async().unwrap()[0].states,
            [0, 1, 2, 3]
        );
        // Knocking B out leaves one fixed point: A on.
        let knocked = toggle.with_override("B", false).unwrap();
        assert_eq!(knocked.fixed_points().unwrap(), [0b01]);
        let err = toggle.with_override("b", true).unwrap_err();
        assert_eq!(err.to_string(), "no node named b (did you mean B?)");
    }

    #[test]
    fn large_networks_are_refused_not_enumerated() {
        let text: String = (0..MAX_EXHAUSTIVE_NODES + 1)
            .map(|i| format!("N{i}, N{i}\n"))
            .collect();
        let net = BooleanNetwork::parse_bnet(&text, "big").unwrap();
        let err = net.fixed_points().unwrap_err();
        assert!(
            matches!(err, NetworkError::TooLarge { nodes: 21, .. }),
            "{err}"
        );
    }
}
