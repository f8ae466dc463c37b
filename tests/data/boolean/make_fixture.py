"""Reference dynamics of the small catalogue Boolean models, computed independently of
cellwright by brute force in plain Python, for crates/cellwright-data/tests/models.rs.

Usage: python make_fixture.py PYBOOLNET_REPOSITORY_DIR CELL_COLLECTIVE_DIR > models.json

A state is an integer whose bit i is the i-th node in file order. For every model of at most
MAX_NODES nodes: the fixed points, the synchronous attractors (cycles as sorted state lists)
and, up to MAX_ASYNC_NODES nodes, the asynchronous attractors (terminal strongly connected
sets); for every model, its nodes and its signed edges.
"""

import itertools
import json
import os
import re
import sys

MAX_NODES = 16
MAX_ASYNC_NODES = 12


def read_bnet(path):
    names, rules = [], []
    for line in open(path):
        line = line.split("#")[0].strip()
        if not line:
            continue
        target, rule = (part.strip() for part in line.split(",", 1))
        if target.lower() == "targets" and rule.lower() == "factors":
            continue
        names.append(target)
        rules.append(rule)
    index = {n: i for i, n in enumerate(names)}

    def compile_rule(rule):
        def name(m):
            word = m.group(0)
            if word in ("0", "1"):
                return "True" if word == "1" else "False"
            return f"s[{index[word]}]"

        py = re.sub(r"[A-Za-z0-9_]+", name, rule)
        py = py.replace("!", " not ").replace("&", " and ").replace("|", " or ")
        inputs = sorted({index[w] for w in re.findall(r"[A-Za-z0-9_]+", rule) if w not in ("0", "1")})
        return eval("lambda s: bool(" + py + ")"), inputs

    return names, [compile_rule(r) for r in rules]


def read_cell_collective(path):
    labels, tables, count = {}, [], 0
    for line in open(path):
        line = line.split("#")[0].strip()
        if not line:
            continue
        words = line.split()
        if words[0] == ".v":
            count = int(words[1])
        elif words[0] == ".l":
            labels[int(words[1])] = "_".join(words[2:])
        elif words[0] == ".n":
            node, k = int(words[1]), int(words[2])
            tables.append((node, [int(w) - 1 for w in words[3 : 3 + k]], {}))
        elif words[0] == ".e":
            break
        else:
            tables[-1][2][words[0]] = words[1] == "1"
    names = []
    for i in range(1, count + 1):
        name = re.sub(r"[^A-Za-z0-9]", "_", labels[i])
        names.append(f"{name}_{i}" if name in names else name)
    rules = [None] * count
    for node, inputs, rows in tables:
        if not inputs:
            rules[node - 1] = ((lambda i: lambda s: s[i])(node - 1), [node - 1])
        else:
            table = dict(rows)
            rules[node - 1] = (
                (lambda ins, t: lambda s: t["".join("1" if s[i] else "0" for i in ins)])(inputs, table),
                list(inputs),
            )
    return names, rules


def bits(state, n):
    return [bool(state >> i & 1) for i in range(n)]


def step(rules, state, n):
    s = bits(state, n)
    return sum(1 << i for i, (f, _) in enumerate(rules) if f(s))


def signed_edges(names, rules):
    n = len(names)
    edges = []
    for target, (f, inputs) in enumerate(rules):
        for position, regulator in enumerate(inputs):
            up = down = False
            for values in itertools.product([False, True], repeat=len(inputs)):
                if values[position]:
                    continue
                s = [False] * n
                for i, v in zip(inputs, values):
                    s[i] = v
                off = f(s)
                s[regulator] = True
                on = f(s)
                up |= on and not off
                down |= off and not on
            sign = {(True, False): "activation", (False, True): "inhibition", (True, True): "dual"}.get((up, down))
            if sign:
                edges.append([names[regulator], names[target], sign])
    # cellwright lists edges by target, then regulator, in node order.
    order = {name: i for i, name in enumerate(names)}
    return sorted(edges, key=lambda e: (order[e[1]], order[e[0]]))


def dynamics(names, rules):
    n = len(names)
    nxt = [step(rules, s, n) for s in range(1 << n)]
    fixed = [s for s in range(1 << n) if nxt[s] == s]
    cycles = set()
    for start in range(1 << n):
        seen, s = set(), start
        while s not in seen:
            seen.add(s)
            s = nxt[s]
        cycle, t = [s], nxt[s]
        while t != s:
            cycle.append(t)
            t = nxt[t]
        cycles.add(tuple(sorted(cycle)))
    out = {"fixed_points": fixed, "sync_attractors": sorted(list(c) for c in cycles)}
    if n <= MAX_ASYNC_NODES:
        succ = [[s ^ (1 << i) for i in range(n) if (s ^ nxt[s]) >> i & 1] for s in range(1 << n)]
        reach = []
        for s in range(1 << n):
            seen, todo = {s}, [s]
            while todo:
                for w in succ[todo.pop()]:
                    if w not in seen:
                        seen.add(w)
                        todo.append(w)
            reach.append(seen)
        attractors = set()
        for s in range(1 << n):
            if all(s in reach[w] for w in reach[s]):
                attractors.add(tuple(sorted(reach[s])))
        out["async_attractors"] = sorted(list(a) for a in attractors)
    return out


def main(pyboolnet_dir, cell_collective_dir):
    models = {}
    for folder in sorted(os.listdir(pyboolnet_dir)):
        if not os.path.isdir(os.path.join(pyboolnet_dir, folder)) or folder == "multivalued":
            continue
        for file in sorted(os.listdir(os.path.join(pyboolnet_dir, folder))):
            if file.endswith(".bnet"):
                models["pyboolnet/" + file[: -len(".bnet")]] = read_bnet(os.path.join(pyboolnet_dir, folder, file))
    for file in sorted(os.listdir(cell_collective_dir)):
        if file.endswith(".txt"):
            models["cell_collective/" + file] = read_cell_collective(os.path.join(cell_collective_dir, file))
    fixture = {}
    for key, (names, rules) in models.items():
        entry = {"nodes": names, "edges": signed_edges(names, rules) if max((len(r[1]) for r in rules), default=0) <= 16 else None}
        if len(names) <= MAX_NODES:
            entry.update(dynamics(names, rules))
        fixture[key] = entry
    json.dump({"max_nodes": MAX_NODES, "max_async_nodes": MAX_ASYNC_NODES, "models": fixture}, sys.stdout, indent=0)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
