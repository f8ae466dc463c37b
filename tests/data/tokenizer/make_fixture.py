"""Token ids that llama.cpp gives for the embedded chat model's GGUF file.

The Rust tokenizer built from the same file's metadata must give exactly these ids
(crates/cellwright-llm/tests/it/tokenizer.rs). Regenerate after changing the strings:

    python3 -m venv /tmp/llamacpp && /tmp/llamacpp/bin/pip install llama-cpp-python==0.3.36
    /tmp/llamacpp/bin/python tests/data/tokenizer/make_fixture.py PATH/TO/SmolLM2-135M-Instruct.Q4_1.gguf

llama-cpp-python has no wheels on the registry: pip builds llama.cpp from source (cmake).
"""

import json
import sys
from pathlib import Path

from llama_cpp import Llama

STRINGS = [
    "",
    " ",
    "  ",
    "\n",
    "\n\n\n",
    "\t",
    " \t \n ",
    "Hello",
    " Hello",
    "Hello, world!",
    "Hello world! 123",
    "The capital of France is",
    "  multiple   spaces   between   words  ",
    "trailing space ",
    "line one\nline two\r\nline three",
    "1234567890",
    "3.14159 and -42 and 1e-10",
    "2026-11-27T13:45:00Z",
    "CamelCaseIdentifier snake_case_identifier kebab-case-identifier",
    "I'm you're he's they've we'll she'd it's",
    "I'M YOU'RE HE'S",
    "don't won't can't",
    "Café déjà vu.",
    "naïve façade coöperate",
    "Straße Größe",
    "Привет, мир!",
    "Γειά σου Κόσμε",
    "你好，世界",
    "日本語のテキスト",
    "안녕하세요",
    "مرحبا بالعالم",
    "שלום עולם",
    "हिन्दी",
    "emoji: 🧬🔬🧫 and 👩‍🔬",
    "flags 🇫🇷🇩🇪",
    "math: ∑ ∫ √ ∞ ≤ ≥ ≠ ± × ÷",
    "arrows → ← ↑ ↓ ⇒",
    "quotes “double” ‘single’ «guillemets»",
    "dashes – — and ellipsis …",
    "zero\u200bwidth",
    "def f(x):\n    return x * 2\n",
    "fn main() {\n    println!(\"{}\", 1 + 2);\n}",
    "for (int i = 0; i < n; ++i) { a[i] += b[i]; }",
    "<div class=\"x\">text</div>",
    "SELECT gene, AVG(expr) FROM cells GROUP BY gene;",
    "{\"name\": \"translate_dna\", \"arguments\": {\"sequence\": \"ATGGCC\"}}",
    "[1, 2, 3] (a, b) {c: d}",
    "https://example.invalid/path?query=1&b=2#frag",
    "user@example.invalid",
    "C:\\Users\\name\\file.txt",
    "ATGGCCAAATAA",
    "TP53 BRCA1 MYC GAPDH CD8A",
    "IL-6 TNF-α IFN-γ",
    "p < 0.05, log2FC > 1",
    "<|im_start|>user\nWhat is TP53?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n",
    "<|endoftext|>",
    "text<|im_end|>more",
    "<|im_start|",
    "!!! ??? ... ,,, ;;; :::",
    "____ ==== ---- ****",
    "a" * 40,
    "ab " * 20,
    "   leading spaces",
    "\n\nleading newlines",
    "tab\tseparated\tvalues",
]


def main():
    gguf = sys.argv[1]
    llm = Llama(model_path=gguf, vocab_only=True, verbose=False)
    cases = [
        {"text": s, "ids": llm.tokenize(s.encode("utf-8"), add_bos=False, special=True)}
        for s in STRINGS
    ]
    out = Path(__file__).with_name("smollm2_llamacpp.json")
    head = {"gguf": Path(gguf).name, "tokenizer": "llama.cpp (llama-cpp-python 0.3.36)"}
    lines = [json.dumps(c, ensure_ascii=False) for c in cases]
    body = json.dumps(head, ensure_ascii=False)[:-1]
    out.write_text(body + ', "cases": [\n' + ",\n".join(lines) + "\n]}\n")
    print(f"wrote {len(cases)} cases to {out}")


if __name__ == "__main__":
    main()
