"""The equations of cellwright-sim in vectorised NumPy, for `cellwright bench sim`: the same
models (truth tables and per-node rates exported by cellwright), dt, steps and cell counts,
vectorised over cells as a careful Python implementation of BoolODE would be, in single
precision as cellwright integrates (and in double, as BoolODE does). Prints one JSON object on
its last line: per model and precision, the seconds taken and, for the noise-free check, the
final mRNA levels.
"""

import argparse
import json
import time

import numpy as np


def simulate(model, cells, steps, dt, sigma, seed, dtype):
    n = len(model["names"])
    m = np.array(model["transcription"], dtype)
    lx = np.array(model["mrna_degradation"], dtype)
    r = np.array(model["translation"], dtype)
    lp = np.array(model["protein_degradation"], dtype)
    hill = np.array(model["hill"], dtype)
    k = np.array(model["threshold"], dtype)
    regs = model["regulators"]
    tables = [np.array(t, dtype) for t in model["tables"]]
    x = np.tile(m / lx / dtype(2.0), (cells, 1))  # half of the maximum, as cellwright starts
    p = x * r / lp
    rng = np.random.default_rng(seed)
    dt, sigma = dtype(dt), dtype(sigma)
    sqrt_dt = np.sqrt(dt)
    one = dtype(1.0)
    f = np.empty((cells, n), dtype)
    for _ in range(steps):
        with np.errstate(divide="ignore", over="ignore"):
            q = np.where(p > 0, one / (one + (k / np.where(p > 0, p, one)) ** hill), dtype(0))
        for i in range(n):
            t = np.broadcast_to(tables[i], (cells, tables[i].size))
            for b in range(len(regs[i]) - 1, -1, -1):
                half = 1 << b
                qj = q[:, regs[i][b]][:, None]
                t = t[:, :half] * (one - qj) + t[:, half : 2 * half] * qj
            f[:, i] = t[:, 0]
        dx = m * f - lx * x
        dp = r * x - lp * p
        if sigma > 0:
            z = rng.standard_normal((cells, 2 * n), dtype)
            nx = x + dx * dt + sigma * np.sqrt(np.abs(x)) * sqrt_dt * z[:, :n]
            np_ = p + dp * dt + sigma * np.sqrt(np.abs(p)) * sqrt_dt * z[:, n:]
            x = np.where(nx >= 0, nx, x)
            p = np.where(np_ >= 0, np_, p)
        else:
            x = x + dx * dt
            p = p + dp * dt
    return x


def main():
    a = argparse.ArgumentParser()
    a.add_argument("--spec", required=True, help="JSON written by cellwright bench sim")
    args = a.parse_args()
    with open(args.spec) as fh:
        spec = json.load(fh)
    out = {"numpy": np.__version__, "models": {}}
    for model in spec["models"]:
        name = model["name"]
        out["models"][name] = {}
        for dtype in (np.float32, np.float64):
            check = simulate(model, 3, spec["check_steps"], spec["dt"], 0.0, 0, dtype)
            start = time.perf_counter()
            simulate(
                model, spec["cells"], spec["steps"], spec["dt"], spec["sigma"], spec["seed"], dtype
            )
            seconds = time.perf_counter() - start
            out["models"][name][np.dtype(dtype).name] = {
                "seconds": seconds,
                "check_final_mrna": check[0].astype(float).tolist(),
            }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
