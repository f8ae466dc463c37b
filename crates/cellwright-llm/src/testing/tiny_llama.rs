//! A tiny llama with seeded random weights, written as a GGUF file that the embedded engine
//! loads like any other: a byte-level BPE vocabulary with a few merges, the ChatML template,
//! quantised matrices. Tests of sampling, the KV cache and constrained decoding run on it in
//! milliseconds; what it says is noise, so every structure in its output comes from the code
//! under test.

use std::path::Path;

use candle_core::quantized::gguf_file::{self, Value};
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::{Device, Tensor};

/// ChatML, as SmolLM2 and Qwen write it.
pub const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}";

/// The merges beyond single bytes (GPT-2's alphabet writes a space as `Ġ`).
const MERGES: [(&str, &str); 4] = [("Ġ", "t"), ("h", "e"), ("Ġt", "he"), ("\"", ":")];
const SPECIALS: [&str; 3] = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"];

/// The model's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub embedding: usize,
    pub heads: usize,
    pub kv_heads: usize,
    pub blocks: usize,
    pub feed_forward: usize,
    pub context: usize,
}

impl Default for Shape {
    fn default() -> Self {
        Self {
            embedding: 64,
            heads: 4,
            kv_heads: 2,
            blocks: 2,
            feed_forward: 128,
            context: 4096,
        }
    }
}

/// xorshift64*: the same numbers on every machine, with no dependency.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        // Uniform on [-1, 1).
        (bits as f32 / (1u64 << 23) as f32) - 1.0
    }

    fn matrix(&mut self, rows: usize, cols: usize, scale: f32) -> Vec<f32> {
        (0..rows * cols).map(|_| self.next() * scale).collect()
    }
}

/// The vocabulary: every byte (in GPT-2's printable alphabet), the merged tokens, the
/// specials; and each token's type (1 normal, 3 control).
pub fn vocabulary() -> (Vec<String>, Vec<u32>) {
    let mut by_byte: Vec<(u8, char)> = crate::embedded::byte_alphabet()
        .into_iter()
        .map(|(c, b)| (b, c))
        .collect();
    by_byte.sort_unstable();
    let mut tokens: Vec<String> = by_byte.into_iter().map(|(_, c)| c.to_string()).collect();
    tokens.extend(MERGES.iter().map(|(a, b)| format!("{a}{b}")));
    let normal = tokens.len();
    tokens.extend(SPECIALS.iter().map(|s| (*s).to_owned()));
    let types = (0..tokens.len())
        .map(|i| if i < normal { 1 } else { 3 })
        .collect();
    (tokens, types)
}

/// Writes the model to `path`, its matrices as `dtype` (`Q8_0`, `Q4_1`, `F32`, …: row
/// lengths are multiples of 32, so any block format fits).
pub fn write(path: &Path, seed: u64, shape: Shape, dtype: GgmlDType) -> candle_core::Result<()> {
    let (tokens, types) = vocabulary();
    let id = |name: &str| tokens.iter().position(|t| t == name).unwrap_or(0) as u32;
    let strings = |items: Vec<String>| Value::Array(items.into_iter().map(Value::String).collect());
    let head_dim = shape.embedding / shape.heads;
    let metadata: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("llama".into())),
        ("general.name", Value::String("tiny-llama".into())),
        ("llama.context_length", Value::U32(shape.context as u32)),
        ("llama.embedding_length", Value::U32(shape.embedding as u32)),
        ("llama.block_count", Value::U32(shape.blocks as u32)),
        (
            "llama.feed_forward_length",
            Value::U32(shape.feed_forward as u32),
        ),
        ("llama.attention.head_count", Value::U32(shape.heads as u32)),
        (
            "llama.attention.head_count_kv",
            Value::U32(shape.kv_heads as u32),
        ),
        ("llama.rope.dimension_count", Value::U32(head_dim as u32)),
        ("llama.rope.freq_base", Value::F32(10_000.0)),
        ("llama.attention.layer_norm_rms_epsilon", Value::F32(1e-5)),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String("smollm".into())),
        ("tokenizer.ggml.tokens", strings(tokens.clone())),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.into_iter().map(Value::U32).collect()),
        ),
        (
            "tokenizer.ggml.merges",
            strings(MERGES.iter().map(|(a, b)| format!("{a} {b}")).collect()),
        ),
        (
            "tokenizer.ggml.bos_token_id",
            Value::U32(id("<|im_start|>")),
        ),
        ("tokenizer.ggml.eos_token_id", Value::U32(id("<|im_end|>"))),
        ("tokenizer.chat_template", Value::String(CHATML.into())),
    ];

    let mut noise = Noise(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let (vocab, dim, ff) = (tokens.len(), shape.embedding, shape.feed_forward);
    let kv = shape.kv_heads * head_dim;
    let matrix = |noise: &mut Noise, rows: usize, cols: usize, scale: f32| {
        let values = Tensor::from_vec(noise.matrix(rows, cols, scale), (rows, cols), &Device::Cpu)?;
        QTensor::quantize(&values, dtype)
    };
    let norm = |len: usize| {
        QTensor::quantize(
            &Tensor::ones(len, candle_core::DType::F32, &Device::Cpu)?,
            GgmlDType::F32,
        )
    };
    let mut tensors: Vec<(String, QTensor)> = vec![
        (
            "token_embd.weight".into(),
            matrix(&mut noise, vocab, dim, 1.0)?,
        ),
        ("output_norm.weight".into(), norm(dim)?),
        ("output.weight".into(), matrix(&mut noise, vocab, dim, 0.5)?),
    ];
    for block in 0..shape.blocks {
        let name = |part: &str| format!("blk.{block}.{part}.weight");
        let scale = 1.0 / (dim as f32).sqrt();
        tensors.push((name("attn_norm"), norm(dim)?));
        tensors.push((name("ffn_norm"), norm(dim)?));
        tensors.push((name("attn_q"), matrix(&mut noise, dim, dim, scale)?));
        tensors.push((name("attn_k"), matrix(&mut noise, kv, dim, scale)?));
        tensors.push((name("attn_v"), matrix(&mut noise, kv, dim, scale)?));
        tensors.push((name("attn_output"), matrix(&mut noise, dim, dim, scale)?));
        tensors.push((name("ffn_gate"), matrix(&mut noise, ff, dim, scale)?));
        tensors.push((name("ffn_up"), matrix(&mut noise, ff, dim, scale)?));
        tensors.push((
            name("ffn_down"),
            matrix(&mut noise, dim, ff, 1.0 / (ff as f32).sqrt())?,
        ));
    }

    let metadata: Vec<(&str, &Value)> = metadata.iter().map(|(k, v)| (*k, v)).collect();
    let tensors: Vec<(&str, &QTensor)> = tensors.iter().map(|(n, t)| (n.as_str(), t)).collect();
    let mut file = std::fs::File::create(path)?;
    gguf_file::write(&mut file, &metadata, &tensors)
}
