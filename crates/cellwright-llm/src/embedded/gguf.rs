//! A llama-family GGUF file: weights, the tokenizer and chat template from its metadata.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::quantized::gguf_file::{Content, Value};
use candle_core::quantized::tokenizer::TokenizerFromGguf;
use candle_core::{Device, Tensor};
use candle_transformers::models::quantized_llama::{MAX_SEQ_LEN, ModelWeights};
use tokenizers::Tokenizer;
use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;

use super::LoadError;

/// Token ids that matter to generation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Specials {
    pub bos: Option<u32>,
    pub eos: u32,
    /// Tokens that end a turn: eos, `<|im_end|>`, `<|endoftext|>` where the vocabulary has them.
    pub stop: Vec<u32>,
}

/// Everything read from a GGUF file.
pub struct GgufModel {
    pub path: PathBuf,
    pub name: String,
    pub weights: ModelWeights,
    pub tokenizer: Tokenizer,
    /// The vocabulary as the model's output rows see it (one entry per logit).
    pub tokens: Vec<String>,
    pub token_types: Vec<u32>,
    pub chat_template: String,
    pub specials: Specials,
    /// The most tokens (prompt and output) one sequence may hold.
    pub context_length: usize,
}

impl std::fmt::Debug for GgufModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GgufModel")
            .field("path", &self.path)
            .field("name", &self.name)
            .field("vocabulary", &self.tokens.len())
            .field("context_length", &self.context_length)
            .finish_non_exhaustive()
    }
}

/// How a file's matrices are taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Weights {
    /// Formats candle has no fast CPU kernel for are read through a Q8_0 copy (see
    /// [`fast_copy`]).
    #[default]
    Fast,
    /// As the file stores them.
    AsStored,
}

impl GgufModel {
    /// Loads a GGUF file of the llama architecture (Llama, SmolLM, and friends), through a
    /// Q8_0 copy where that is faster.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        Self::load_with(path, Weights::Fast)
    }

    /// Loads a GGUF file of the llama architecture, its matrices taken as `weights` says.
    pub fn load_with(path: &Path, weights: Weights) -> Result<Self, LoadError> {
        let shown = path.display().to_string();
        let bad = |message: String| LoadError::Model {
            path: shown.clone(),
            message,
        };
        let mut file = std::fs::File::open(path).map_err(|e| bad(e.to_string()))?;
        let content =
            Content::read(&mut file).map_err(|e| bad(format!("not a readable GGUF file: {e}")))?;
        let meta = &content.metadata;
        let arch = string(meta, "general.architecture").unwrap_or_default();
        if arch != "llama" {
            return Err(bad(format!(
                "architecture `{arch}` is not supported (llama-family GGUF files are)"
            )));
        }
        let tokenizer = tokenizer(&content).map_err(|e| LoadError::Tokenizer {
            path: shown.clone(),
            message: e,
        })?;
        let tokens = strings(meta, "tokenizer.ggml.tokens")
            .ok_or_else(|| bad("metadata has no tokenizer.ggml.tokens".into()))?;
        let token_types = match meta.get("tokenizer.ggml.token_type") {
            Some(Value::Array(values)) => values.iter().map(|v| int(v).unwrap_or(1)).collect(),
            _ => vec![1; tokens.len()],
        };
        let chat_template = string(meta, "tokenizer.chat_template")
            .ok_or_else(|| bad("metadata has no tokenizer.chat_template".into()))?;
        let eos = meta
            .get("tokenizer.ggml.eos_token_id")
            .and_then(int)
            .ok_or_else(|| bad("metadata has no tokenizer.ggml.eos_token_id".into()))?;
        let bos = meta.get("tokenizer.ggml.bos_token_id").and_then(int);
        let mut stop = vec![eos];
        for name in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>"] {
            if let Some(id) = tokens.iter().position(|t| t == name) {
                let id = id as u32;
                if !stop.contains(&id) {
                    stop.push(id);
                }
            }
        }
        let trained = meta
            .get("llama.context_length")
            .and_then(int)
            .map_or(MAX_SEQ_LEN, |n| n as usize);
        let copy = match weights {
            Weights::Fast => fast_copy(path, &content, &mut file)
                .map_err(|e| bad(format!("cannot read the weights: {e}")))?,
            Weights::AsStored => None,
        };
        let weights = match copy {
            Some(copy) => {
                let mut copy = std::fs::File::open(&copy).map_err(|e| bad(e.to_string()))?;
                let content = Content::read(&mut copy)
                    .map_err(|e| bad(format!("the Q8_0 copy is unreadable: {e}")))?;
                ModelWeights::from_gguf(content, &mut copy, &Device::Cpu)
            }
            None => ModelWeights::from_gguf(content, &mut file, &Device::Cpu),
        }
        .map_err(|e| bad(format!("cannot load the weights: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            name: path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default(),
            weights,
            tokenizer,
            tokens,
            token_types,
            chat_template,
            specials: Specials { bos, eos, stop },
            // candle's rotary tables stop at MAX_SEQ_LEN.
            context_length: trained.min(MAX_SEQ_LEN),
        })
    }

    /// Logits for the next token after `tokens`, which start at position `pos` of the sequence.
    /// `pos == 0` starts a new sequence (the KV cache is replaced).
    pub fn forward(&mut self, tokens: &[u32], pos: usize) -> candle_core::Result<Vec<f32>> {
        let input = Tensor::new(tokens, &Device::Cpu)?.unsqueeze(0)?;
        let logits = self.weights.forward(&input, pos)?;
        logits
            .squeeze(0)?
            .to_dtype(candle_core::DType::F32)?
            .to_vec1()
    }
}

/// A copy of the file with matrices in a format candle has no fast CPU kernel for converted
/// to Q8_0 (which it has), made once beside the original (or in the temporary folder when
/// that is read-only) and reused; `None` when nothing needs converting.
///
/// Q4_1 (the default model's format) runs through candle's generic dot products; the same
/// weights in Q8_0 use its repacked AVX kernels and read prompts ~5× faster
/// (`cellwright bench llm`). 8-bit blocks hold every 4-bit value exactly up to the per-block
/// scale, so little is lost. Loading from a file, not memory, keeps peak memory at one copy.
fn fast_copy<R: std::io::Read + std::io::Seek>(
    path: &Path,
    content: &Content,
    reader: &mut R,
) -> candle_core::Result<Option<PathBuf>> {
    use candle_core::quantized::{GgmlDType, QTensor, gguf_file};
    let slow = |info: &gguf_file::TensorInfo| {
        matches!(
            info.ggml_dtype,
            GgmlDType::Q4_1 | GgmlDType::Q5_0 | GgmlDType::Q5_1
        ) && info.shape.dims().last().is_some_and(|d| d % 32 == 0)
    };
    if !content.tensor_infos.values().any(slow) {
        return Ok(None);
    }
    let name = format!(
        "{}.q8_0.gguf",
        path.file_stem()
            .map(|s| s.to_string_lossy())
            .unwrap_or_default()
    );
    let beside = path.with_file_name(&name);
    let newer = |copy: &Path| {
        let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        matches!((modified(copy), modified(path)), (Some(c), Some(o)) if c >= o)
    };
    let elsewhere = std::env::temp_dir().join(&name);
    for copy in [&beside, &elsewhere] {
        if newer(copy) {
            return Ok(Some(copy.clone()));
        }
    }
    let mut names: Vec<&String> = content.tensor_infos.keys().collect();
    names.sort();
    let mut tensors = Vec::with_capacity(names.len());
    for name in names {
        let tensor = content.tensor(reader, name, &Device::Cpu)?;
        let tensor = if slow(&content.tensor_infos[name]) {
            QTensor::quantize(&tensor.dequantize(&Device::Cpu)?, GgmlDType::Q8_0)?
        } else {
            tensor
        };
        tensors.push((name.as_str(), tensor));
    }
    let metadata: Vec<(&str, &Value)> = content
        .metadata
        .iter()
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (*n, t)).collect();
    for copy in [&beside, &elsewhere] {
        // Written under a temporary name and renamed, so a reader never sees half a file.
        let Some(dir) = copy.parent() else { continue };
        let Ok(mut staged) = tempfile::NamedTempFile::new_in(dir) else {
            continue;
        };
        gguf_file::write(staged.as_file_mut(), &metadata, &tensor_refs)?;
        if staged.persist(copy).is_ok() {
            return Ok(Some(copy.clone()));
        }
    }
    Err(candle_core::Error::Msg(format!(
        "cannot write the Q8_0 copy beside {} or in {}",
        path.display(),
        std::env::temp_dir().display()
    )))
}

/// The GGUF tokenizer, built so its ids equal llama.cpp's for the same file.
///
/// candle's builder covers the vocabulary, merges and special tokens; for pre-tokenizers it
/// does not know (SmolLM's `smollm`, StarCoder's, …) it falls back to GPT-2's byte-level
/// splitting *with* a prefix space, which llama.cpp never adds for BPE models, and without
/// the digit splitting these models use. Both are set right here.
pub fn tokenizer(content: &Content) -> Result<Tokenizer, String> {
    let mut tokenizer = Tokenizer::from_gguf(content).map_err(|e| e.to_string())?;
    let pre = string(&content.metadata, "tokenizer.ggml.pre").unwrap_or_default();
    match pre.as_str() {
        // llama.cpp: "\p{N}" isolated, then the GPT-2 pattern, for these pre-tokenizer names.
        "smollm" | "starcoder" | "refact" | "command-r" | "codeshell" | "exaone" | "minerva" => {
            tokenizer.with_pre_tokenizer(Some(Sequence::new(vec![
                Digits::new(true).into(),
                ByteLevel::new(false, true, true).into(),
            ])));
        }
        // GPT-2 itself: the same pattern, digits grouped.
        "gpt2" | "default" | "" => {
            tokenizer.with_pre_tokenizer(Some(ByteLevel::new(false, true, true)));
        }
        // Names candle builds correctly itself (llama3, qwen2, …) or that we have not checked.
        _ => {}
    }
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));
    Ok(tokenizer)
}

fn string(meta: &HashMap<String, Value>, key: &str) -> Option<String> {
    meta.get(key)?.to_string().ok().cloned()
}

fn strings(meta: &HashMap<String, Value>, key: &str) -> Option<Vec<String>> {
    meta.get(key)?
        .to_vec()
        .ok()?
        .iter()
        .map(|v| v.to_string().ok().cloned())
        .collect()
}

/// An integer of any width GGUF writers use.
fn int(value: &Value) -> Option<u32> {
    match value {
        Value::U8(v) => Some(u32::from(*v)),
        Value::U16(v) => Some(u32::from(*v)),
        Value::U32(v) => Some(*v),
        Value::U64(v) => u32::try_from(*v).ok(),
        Value::I8(v) => u32::try_from(*v).ok(),
        Value::I16(v) => u32::try_from(*v).ok(),
        Value::I32(v) => u32::try_from(*v).ok(),
        Value::I64(v) => u32::try_from(*v).ok(),
        _ => None,
    }
}

/// The bytes each token stands for, for the grammar engine's token trie: GPT-2's byte-level
/// alphabet mapped back to raw bytes; control and user-defined tokens marked as special.
pub fn token_bytes(tokens: &[String], token_types: &[u32]) -> Vec<Vec<u8>> {
    let unicode_to_byte = byte_alphabet();
    tokens
        .iter()
        .enumerate()
        .map(|(i, token)| {
            if matches!(token_types.get(i), Some(3 | 4)) {
                let mut bytes = vec![llguidance::toktrie::TokTrie::SPECIAL_TOKEN_MARKER];
                bytes.extend_from_slice(token.as_bytes());
                return bytes;
            }
            token
                .chars()
                .map(|c| unicode_to_byte.get(&c).copied())
                .collect::<Option<Vec<u8>>>()
                // Not byte-level text (should not happen in a gpt2 vocabulary): take it as is.
                .unwrap_or_else(|| token.as_bytes().to_vec())
        })
        .collect()
}

/// GPT-2's map from the printable characters it uses back to bytes.
pub(crate) fn byte_alphabet() -> HashMap<char, u8> {
    let printable = |b: u8| matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
    let mut map = HashMap::with_capacity(256);
    let mut shifted = 0u32;
    for b in 0..=255u8 {
        let c = if printable(b) {
            char::from(b)
        } else {
            shifted += 1;
            char::from_u32(255 + shifted).unwrap_or('\u{FFFD}')
        };
        map.insert(c, b);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_byte_alphabet_round_trips_gpt2_tokens() {
        let tokens = ["Ġthe".to_owned(), "Ċ".to_owned(), "<|im_end|>".to_owned()];
        let bytes = token_bytes(&tokens, &[1, 1, 3]);
        assert_eq!(bytes[0], b" the");
        assert_eq!(bytes[1], b"\n");
        assert_eq!(bytes[2][0], 0xFF);
        assert_eq!(&bytes[2][1..], b"<|im_end|>");
        assert_eq!(byte_alphabet().len(), 256);
    }
}
