"""llama.cpp on a GGUF file: prompt and generation tokens/s, peak RSS (cellwright bench llm).

Prints one JSON object on its last line.
"""

import argparse
import json
import statistics
import time

from llama_cpp import Llama


def peak_rss_bytes():
    # VmHWM, not getrusage: ru_maxrss survives exec, so it would report the parent's peak.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return None


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--model", required=True)
    p.add_argument("--prompt-file", required=True)
    p.add_argument("--max-tokens", type=int, required=True)
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--repeats", type=int, required=True)
    a = p.parse_args()
    llm = Llama(model_path=a.model, n_ctx=4096, n_threads=a.threads,
                n_threads_batch=a.threads, n_batch=512, verbose=False, seed=0)
    prompt = open(a.prompt_file, encoding="utf-8").read()
    tokens = llm.tokenize(prompt.encode("utf-8"), add_bos=False, special=True)
    stops = {llm.token_eos(), 0, 2}
    # Warm-up, as ours does at load.
    llm.reset()
    llm.eval(tokens[:8])
    prefill, decode, produced = [], [], []
    for _ in range(a.repeats):
        llm.reset()
        t0 = time.perf_counter()
        llm.eval(tokens)
        prefill.append(len(tokens) / (time.perf_counter() - t0))
        n = 0
        tok = llm.sample(temp=0.0)
        t0 = time.perf_counter()
        while n < a.max_tokens and tok not in stops:
            llm.eval([tok])
            n += 1
            tok = llm.sample(temp=0.0)
        elapsed = time.perf_counter() - t0
        decode.append(n / elapsed if elapsed > 0 else 0.0)
        produced.append(n)
    print(json.dumps({
        "prompt_tokens": len(tokens),
        "output_tokens": produced,
        "prefill_tokens_per_s": statistics.median(prefill),
        "decode_tokens_per_s": statistics.median(decode),
        "peak_rss_bytes": peak_rss_bytes(),
    }))


if __name__ == "__main__":
    main()
