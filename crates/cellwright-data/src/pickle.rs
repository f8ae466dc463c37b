//! A Python pickle reader that never runs anything: some data sets ship only as pickled pandas
//! objects inside registry packages (the Pathway Commons regulons of `priori_regulon-enrichment`),
//! and cellwright reads them without Python at run time.
//!
//! Protocols 2–5 are read into an arena of [`Value`]s addressed by [`NodeId`]. Classes and
//! functions stay symbolic ([`Value::Global`]); what REDUCE, NEWOBJ and BUILD would have
//! done is recorded as a [`Value::Call`] with its arguments and state. The memo holds node
//! ids, so a list fetched from the memo shows every item appended to it later, as in Python.
//! Every malformed input is a [`PickleError`] at a byte offset; lengths are checked against
//! the input before anything is allocated, so memory stays proportional to the input.
//!
//! ```
//! use cellwright_data::pickle::{Pickle, Value};
//!
//! // pickle.dumps({"a": [1, 2]}, protocol=2)
//! let p = Pickle::parse(b"\x80\x02}q\x00X\x01\x00\x00\x00aq\x01]q\x02(K\x01K\x02es.")?;
//! let list = p.dict_get(p.root(), "a").unwrap();
//! let items: Vec<_> = p.items(list).unwrap().iter().map(|&i| p.get(i).clone()).collect();
//! assert_eq!(items, [Value::Int(1), Value::Int(2)]);
//! # Ok::<(), cellwright_data::pickle::PickleError>(())
//! ```

use std::collections::HashMap;

/// The most MARKs open at once; real pickles nest a few dozen deep.
pub const MAX_MARKS: usize = 1_000;

/// A value's place in its [`Pickle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodeId(usize);

/// One unpickled value. Containers hold ids, so a value reached twice is one node.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    None,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Bytes(Vec<u8>),
    List(Vec<NodeId>),
    Tuple(Vec<NodeId>),
    /// Entries in insertion order; a repeated key is kept, and lookups take the last.
    Dict(Vec<(NodeId, NodeId)>),
    Set(Vec<NodeId>),
    FrozenSet(Vec<NodeId>),
    /// A class or function the pickle names (GLOBAL, STACK_GLOBAL); never imported.
    Global {
        module: String,
        name: String,
    },
    /// `callable(*args, **kwargs)` as REDUCE, NEWOBJ or NEWOBJ_EX would have called it, never
    /// called; `state` is what BUILD would have passed to `__setstate__`.
    Call {
        callable: NodeId,
        args: NodeId,
        kwargs: Option<NodeId>,
        state: Option<NodeId>,
    },
}

/// Why bytes are not a pickle this reader takes; `offset` is the failing opcode's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PickleError {
    #[error("byte {offset}: the input ends inside {what}")]
    Truncated { offset: usize, what: &'static str },
    #[error("byte {offset}: unknown or unsupported opcode 0x{opcode:02x}")]
    UnknownOpcode { offset: usize, opcode: u8 },
    #[error("byte {offset}: {op} finds too few values on the stack")]
    StackUnderflow { offset: usize, op: &'static str },
    #[error("byte {offset}: no memo entry {index}")]
    BadMemo { offset: usize, index: u64 },
    #[error("byte {offset}: more than {MAX_MARKS} marks open at once")]
    TooDeep { offset: usize },
    #[error("byte {offset}: {message}")]
    Malformed { offset: usize, message: String },
}

/// A whole unpickled object: its nodes and the one STOP returned.
#[derive(Debug, Clone, PartialEq)]
pub struct Pickle {
    nodes: Vec<Value>,
    root: NodeId,
}

static NONE: Value = Value::None;

impl Pickle {
    /// Reads one pickle from the start of `input` (anything after its STOP is ignored).
    pub fn parse(input: &[u8]) -> Result<Self, PickleError> {
        let mut m = Machine {
            input,
            pos: 0,
            at: 0,
            nodes: Vec::new(),
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        };
        loop {
            if let Some(root) = m.step()? {
                return Ok(Self {
                    nodes: m.nodes,
                    root,
                });
            }
        }
    }

    /// The object the pickle holds.
    pub fn root(&self) -> NodeId {
        self.root
    }

    /// The value at `id` (`None` for an id from another pickle).
    pub fn get(&self, id: NodeId) -> &Value {
        self.nodes.get(id.0).unwrap_or(&NONE)
    }

    pub fn as_str(&self, id: NodeId) -> Option<&str> {
        match self.get(id) {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_int(&self, id: NodeId) -> Option<i64> {
        match self.get(id) {
            Value::Int(i) => Some(*i),
            Value::Bool(b) => Some(i64::from(*b)),
            _ => None,
        }
    }

    /// The items of a list, tuple, set or frozenset.
    pub fn items(&self, id: NodeId) -> Option<&[NodeId]> {
        match self.get(id) {
            Value::List(v) | Value::Tuple(v) | Value::Set(v) | Value::FrozenSet(v) => Some(v),
            _ => None,
        }
    }

    /// The value of a dict's string key (the last one set, as in Python).
    pub fn dict_get(&self, id: NodeId, key: &str) -> Option<NodeId> {
        match self.get(id) {
            Value::Dict(entries) => entries
                .iter()
                .rev()
                .find(|(k, _)| self.as_str(*k) == Some(key))
                .map(|&(_, v)| v),
            _ => None,
        }
    }

    /// `(module, name)` of a global.
    pub fn global(&self, id: NodeId) -> Option<(&str, &str)> {
        match self.get(id) {
            Value::Global { module, name } => Some((module, name)),
            _ => None,
        }
    }
}

struct Machine<'a> {
    input: &'a [u8],
    pos: usize,
    /// Where the current opcode starts.
    at: usize,
    nodes: Vec<Value>,
    stack: Vec<NodeId>,
    /// Stack heights at each open MARK.
    marks: Vec<usize>,
    memo: HashMap<u64, NodeId>,
}

impl<'a> Machine<'a> {
    fn malformed(&self, message: String) -> PickleError {
        PickleError::Malformed {
            offset: self.at,
            message,
        }
    }

    fn truncated(&self, what: &'static str) -> PickleError {
        PickleError::Truncated {
            offset: self.at,
            what,
        }
    }

    fn underflow(&self, op: &'static str) -> PickleError {
        PickleError::StackUnderflow {
            offset: self.at,
            op,
        }
    }

    /// The next `n` bytes; a length past the input fails here, before any allocation.
    fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], PickleError> {
        let input: &'a [u8] = self.input;
        let rest = &input[self.pos..];
        let n = usize::try_from(n).ok().filter(|&n| n <= rest.len());
        let n = n.ok_or_else(|| self.truncated(what))?;
        self.pos += n;
        Ok(&rest[..n])
    }

    fn fixed<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], PickleError> {
        let mut out = [0; N];
        out.copy_from_slice(self.take(N as u64, what)?);
        Ok(out)
    }

    /// An unsigned little-endian number of `N` (at most 8) bytes.
    fn uint<const N: usize>(&mut self, what: &'static str) -> Result<u64, PickleError> {
        let mut le = [0; 8];
        le[..N].copy_from_slice(&self.fixed::<N>(what)?);
        Ok(u64::from_le_bytes(le))
    }

    fn line(&mut self, what: &'static str) -> Result<String, PickleError> {
        let rest = &self.input[self.pos..];
        let end = rest.iter().position(|&b| b == b'\n');
        let end = end.ok_or_else(|| self.truncated(what))?;
        self.pos += end + 1;
        String::from_utf8(rest[..end].to_vec())
            .map_err(|_| self.malformed(format!("{what} is not UTF-8")))
    }

    fn text(&mut self, n: u64) -> Result<Value, PickleError> {
        let bytes = self.take(n, "a string")?.to_vec();
        String::from_utf8(bytes)
            .map(Value::Str)
            .map_err(|_| self.malformed("a string is not UTF-8".into()))
    }

    /// A two's-complement little-endian integer of `n` bytes.
    fn int(&mut self, n: u64) -> Result<Value, PickleError> {
        let bytes = self.take(n, "an integer")?;
        if bytes.len() > 8 {
            return Err(self.malformed(format!("a {}-byte integer", bytes.len())));
        }
        let negative = bytes.last().is_some_and(|b| b & 0x80 != 0);
        let mut le = [if negative { 0xff } else { 0 }; 8];
        le[..bytes.len()].copy_from_slice(bytes);
        Ok(Value::Int(i64::from_le_bytes(le)))
    }

    fn memo_index(&mut self, op: &'static str) -> Result<u64, PickleError> {
        let line = self.line(op)?;
        line.trim()
            .parse()
            .map_err(|_| self.malformed(format!("memo index `{line}` is not a number")))
    }

    fn memo_get(&mut self, index: u64) -> Result<(), PickleError> {
        let id = self.memo.get(&index).copied();
        let id = id.ok_or(PickleError::BadMemo {
            offset: self.at,
            index,
        })?;
        self.stack.push(id);
        Ok(())
    }

    fn memo_put(&mut self, index: u64, op: &'static str) -> Result<(), PickleError> {
        let id = self.top(op)?;
        self.memo.insert(index, id);
        Ok(())
    }

    fn push(&mut self, value: Value) {
        self.stack.push(NodeId(self.nodes.len()));
        self.nodes.push(value);
    }

    /// The top of the stack, above the open MARK.
    fn top(&self, op: &'static str) -> Result<NodeId, PickleError> {
        let floor = self.marks.last().copied().unwrap_or(0);
        match self.stack.last() {
            Some(&id) if self.stack.len() > floor => Ok(id),
            _ => Err(self.underflow(op)),
        }
    }

    fn pop(&mut self, op: &'static str) -> Result<NodeId, PickleError> {
        let id = self.top(op)?;
        self.stack.pop();
        Ok(id)
    }

    fn pop_mark(&mut self, op: &'static str) -> Result<Vec<NodeId>, PickleError> {
        let mark = self.marks.pop().ok_or_else(|| self.underflow(op))?;
        Ok(self.stack.split_off(mark.min(self.stack.len())))
    }

    /// Adds to the list or set on top of the stack, or to the dict (`items` then alternate
    /// keys and values).
    fn add(&mut self, op: &'static str, items: Vec<NodeId>, dict: bool) -> Result<(), PickleError> {
        let id = self.top(op)?;
        // Ids on the stack always index `nodes`: only `push` makes them.
        let problem = match &mut self.nodes[id.0] {
            Value::List(v) | Value::Set(v) if !dict => {
                v.extend(items);
                return Ok(());
            }
            Value::Dict(entries) if dict => {
                if items.len().is_multiple_of(2) {
                    entries.extend(items.chunks_exact(2).map(|kv| (kv[0], kv[1])));
                    return Ok(());
                }
                "an odd number of keys and values".to_owned()
            }
            other => kind(other).to_owned(),
        };
        Err(self.malformed(format!("{op} on {problem}")))
    }

    /// Runs one opcode; the root once STOP is reached.
    fn step(&mut self) -> Result<Option<NodeId>, PickleError> {
        self.at = self.pos;
        let [op] = self.fixed("an opcode (no STOP)")?;
        let value = match op {
            0x80 => match self.fixed("PROTO")? {
                [v] if v > 5 => {
                    return Err(self.malformed(format!("protocol {v} is newer than 5")));
                }
                _ => None,
            },
            0x95 => {
                let n = self.uint::<8>("FRAME")?;
                if n > (self.input.len() - self.pos) as u64 {
                    return Err(self.truncated("a frame"));
                }
                None
            }
            b'(' if self.marks.len() >= MAX_MARKS => {
                return Err(PickleError::TooDeep { offset: self.at });
            }
            b'(' => {
                self.marks.push(self.stack.len());
                None
            }
            b'.' => return self.pop("STOP").map(Some),
            b'0' => {
                // Python's POP drops the open mark when nothing is above it.
                if self.top("POP").is_err() && self.marks.pop().is_some() {
                    return Ok(None);
                }
                self.pop("POP")?;
                None
            }
            b'1' => {
                self.pop_mark("POP_MARK")?;
                None
            }
            b'2' => {
                let id = self.top("DUP")?;
                self.stack.push(id);
                None
            }
            b'N' => Some(Value::None),
            0x88 | 0x89 => Some(Value::Bool(op == 0x88)),
            b'I' => Some(match self.line("INT")?.as_str() {
                "00" => Value::Bool(false),
                "01" => Value::Bool(true),
                text => Value::Int(
                    text.parse()
                        .map_err(|_| self.malformed(format!("INT `{text}`")))?,
                ),
            }),
            b'J' => Some(Value::Int(i32::from_le_bytes(self.fixed("BININT")?).into())),
            b'K' => Some(Value::Int(self.uint::<1>("BININT1")? as i64)),
            b'M' => Some(Value::Int(self.uint::<2>("BININT2")? as i64)),
            0x8a => {
                let n = self.uint::<1>("LONG1")?;
                Some(self.int(n)?)
            }
            0x8b => {
                let n = i32::from_le_bytes(self.fixed("LONG4")?);
                let n =
                    u64::try_from(n).map_err(|_| self.malformed("LONG4 of length < 0".into()))?;
                Some(self.int(n)?)
            }
            b'G' => Some(Value::Float(f64::from_be_bytes(self.fixed("BINFLOAT")?))),
            0x8c => {
                let n = self.uint::<1>("SHORT_BINUNICODE")?;
                Some(self.text(n)?)
            }
            b'X' => {
                let n = self.uint::<4>("BINUNICODE")?;
                Some(self.text(n)?)
            }
            0x8d => {
                let n = self.uint::<8>("BINUNICODE8")?;
                Some(self.text(n)?)
            }
            b'C' | b'B' | 0x8e => {
                let n = match op {
                    b'C' => self.uint::<1>("SHORT_BINBYTES")?,
                    b'B' => self.uint::<4>("BINBYTES")?,
                    _ => self.uint::<8>("BINBYTES8")?,
                };
                Some(Value::Bytes(self.take(n, "bytes")?.to_vec()))
            }
            b']' => Some(Value::List(Vec::new())),
            b'l' => Some(Value::List(self.pop_mark("LIST")?)),
            b')' => Some(Value::Tuple(Vec::new())),
            b't' => Some(Value::Tuple(self.pop_mark("TUPLE")?)),
            0x85..=0x87 => {
                let mut items = (0x84..op)
                    .map(|_| self.pop("TUPLE1/2/3"))
                    .collect::<Result<Vec<_>, _>>()?;
                items.reverse();
                Some(Value::Tuple(items))
            }
            b'}' => Some(Value::Dict(Vec::new())),
            0x8f => Some(Value::Set(Vec::new())),
            0x91 => Some(Value::FrozenSet(self.pop_mark("FROZENSET")?)),
            b'd' => {
                let items = self.pop_mark("DICT")?;
                self.push(Value::Dict(Vec::new()));
                self.add("DICT", items, true)?;
                None
            }
            b'a' | b's' => {
                let (op, n) = if op == b'a' {
                    ("APPEND", 1)
                } else {
                    ("SETITEM", 2)
                };
                let mut items = (0..n)
                    .map(|_| self.pop(op))
                    .collect::<Result<Vec<_>, _>>()?;
                items.reverse();
                self.add(op, items, op == "SETITEM")?;
                None
            }
            b'e' | b'u' | 0x90 => {
                let op = match op {
                    b'e' => "APPENDS",
                    b'u' => "SETITEMS",
                    _ => "ADDITEMS",
                };
                let items = self.pop_mark(op)?;
                self.add(op, items, op == "SETITEMS")?;
                None
            }
            b'c' => Some(Value::Global {
                module: self.line("GLOBAL")?,
                name: self.line("GLOBAL")?,
            }),
            0x93 => {
                let name = self.pop("STACK_GLOBAL")?;
                let module = self.pop("STACK_GLOBAL")?;
                match (&self.nodes[module.0], &self.nodes[name.0]) {
                    (Value::Str(module), Value::Str(name)) => Some(Value::Global {
                        module: module.clone(),
                        name: name.clone(),
                    }),
                    _ => return Err(self.malformed("STACK_GLOBAL of a non-string".into())),
                }
            }
            b'R' | 0x81 | 0x92 => {
                let kwargs = if op == 0x92 {
                    Some(self.pop("NEWOBJ_EX")?)
                } else {
                    None
                };
                let args = self.pop("REDUCE/NEWOBJ")?;
                let callable = self.pop("REDUCE/NEWOBJ")?;
                Some(Value::Call {
                    callable,
                    args,
                    kwargs,
                    state: None,
                })
            }
            b'b' => {
                let new = self.pop("BUILD")?;
                let id = self.top("BUILD")?;
                match &mut self.nodes[id.0] {
                    Value::Call { state, .. } => *state = Some(new),
                    other => {
                        let kind = kind(other);
                        return Err(self.malformed(format!("BUILD on {kind}")));
                    }
                }
                None
            }
            b'p' | b'q' | b'r' | 0x94 => {
                let index = match op {
                    b'p' => self.memo_index("PUT")?,
                    b'q' => self.uint::<1>("BINPUT")?,
                    b'r' => self.uint::<4>("LONG_BINPUT")?,
                    _ => self.memo.len() as u64,
                };
                self.memo_put(index, "PUT/MEMOIZE")?;
                None
            }
            b'g' | b'h' | b'j' => {
                let index = match op {
                    b'g' => self.memo_index("GET")?,
                    b'h' => self.uint::<1>("BINGET")?,
                    _ => self.uint::<4>("LONG_BINGET")?,
                };
                self.memo_get(index)?;
                None
            }
            opcode => {
                return Err(PickleError::UnknownOpcode {
                    offset: self.at,
                    opcode,
                });
            }
        };
        if let Some(value) = value {
            self.push(value);
        }
        Ok(None)
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::None => "None",
        Value::Bool(_) => "a bool",
        Value::Int(_) => "an int",
        Value::Float(_) => "a float",
        Value::Str(_) => "a str",
        Value::Bytes(_) => "bytes",
        Value::List(_) => "a list",
        Value::Tuple(_) => "a tuple",
        Value::Dict(_) => "a dict",
        Value::Set(_) => "a set",
        Value::FrozenSet(_) => "a frozenset",
        Value::Global { .. } => "a global",
        Value::Call { .. } => "an object",
    }
}
