"""sentence-transformers on the MiniLM weights: sentences/s at a batch size, and the vectors
(cellwright bench embedder). Prints one JSON object on its last line.
"""

import argparse
import json
import statistics
import time

import torch
from sentence_transformers import SentenceTransformer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--texts", required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--repeats", type=int, required=True)
    p.add_argument("--vectors-out", required=True)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    texts = json.load(open(a.texts, encoding="utf-8"))
    # The package's folder has no sentence-transformers modules: mean pooling is the default,
    # normalisation is asked for, and the maximum length is the model card's.
    model = SentenceTransformer(a.model, device="cpu")
    model.max_seq_length = 256
    out = {}
    for batch in (1, 32):
        model.encode(texts[:batch], batch_size=batch, normalize_embeddings=True)
        rates = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            vectors = model.encode(texts, batch_size=batch, normalize_embeddings=True)
            rates.append(len(texts) / (time.perf_counter() - t0))
        out[f"sentences_per_s_batch_{batch}"] = statistics.median(rates)
    json.dump(vectors.tolist(), open(a.vectors_out, "w"))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
