#!/usr/bin/env python3
"""LangGraph baseline: per-step overhead of a ReAct-style loop with a SQLite checkpointer.

What it measures
----------------
A two-node LangGraph graph shaped exactly like a ReAct agent loop:

    START -> model -> (last message has tool calls ? tools : END)
    tools -> model

* "model" is a fake chat model with zero latency. For the first N calls it
  appends an AIMessage carrying one tool call (tool "noop", args {"i": k},
  unique id); on call N+1 it appends a final AIMessage("done") with no calls.
* "tools" is a no-op tool node: it answers the pending tool call with a
  ToolMessage whose content is '{"ok":true}'.
* State is MessagesState (growing history, add_messages reducer). Its
  channel stores the FULL message list in every checkpoint, so storage and
  per-step time grow with history length. --state delta instead declares
  `messages` as LangGraph's (beta) DeltaChannel, which checkpoints only the
  new writes plus a periodic snapshot -- LangGraph's best case.
* The graph is compiled with langgraph-checkpoint-sqlite's SqliteSaver on a
  sqlite3 connection to --db (a fresh file per run) with
  PRAGMA journal_mode=WAL and PRAGMA synchronous=NORMAL, i.e. the same
  durability settings as the Rust runtime it is compared against.
* By default the graph runs with durability="sync": every superstep's
  checkpoint is committed before the next superstep starts (the Rust side
  commits every event). --durability async gives LangGraph's default mode.

One "step" = one model call + one tool call. The timed region is a single
graph.invoke() of N steps (table setup is done before the clock starts).

Usage
-----
    python bench/langgraph_runtime.py --steps N --db PATH [--repeats R]
    python bench/langgraph_runtime.py --growth 100,500,1500 --db PATH
    (optional: --durability sync|async, --state messages|delta)

Output: exactly one JSON object on stdout (its last and only line); all
diagnostics go to stderr.

Default mode keys: steps, repeats, durability, state, seconds_median, seconds_all,
per_step_ms_median, per_step_ms_all, db_bytes (db + -wal + -shm after the
last repeat, connection closed), db_bytes_after_checkpoint (same after
PRAGMA wal_checkpoint(TRUNCATE) on a new connection), bytes_per_step
(db_bytes_after_checkpoint / N), messages, versions.

--growth mode: {"growth": [{"steps": n, "db_bytes": b,
"db_bytes_after_checkpoint": c, "seconds": s}, ...], "durability": ...,
"state": ..., "versions": {...}}; one fresh run per step count.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import sys
import time
from importlib.metadata import version
from typing import Annotated

from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.graph.message import _messages_delta_reducer
from typing_extensions import TypedDict

TOOL_NAME = "noop"
TOOL_RESULT = '{"ok":true}'


class DeltaMessagesState(TypedDict):
    """MessagesState equivalent whose `messages` channel is a (beta) DeltaChannel:
    checkpoints hold only new writes plus a snapshot every 100 updates."""

    messages: Annotated[list, DeltaChannel(_messages_delta_reducer)]


def build_graph(n_steps: int, state_kind: str = "messages") -> StateGraph:
    """Build (uncompiled) the ReAct-shaped graph for an N-step run."""

    def model(state: dict) -> dict:
        # Zero-latency fake model, a pure function of state (no hidden
        # counters). History is [human, (ai_call, tool_result) * k], so the
        # number of tool calls made so far is len // 2 -- O(1), so the fake
        # model adds no history-dependent cost of its own.
        done = len(state["messages"]) // 2
        if done < n_steps:
            return {
                "messages": [
                    AIMessage(
                        content="",
                        tool_calls=[
                            {
                                "name": TOOL_NAME,
                                "args": {"i": done},
                                "id": f"call_{done:08d}",
                                "type": "tool_call",
                            }
                        ],
                    )
                ]
            }
        return {"messages": [AIMessage(content="done")]}

    def tools(state: dict) -> dict:
        # No-op tool: answer every tool call of the last AIMessage.
        last = state["messages"][-1]
        return {
            "messages": [
                ToolMessage(content=TOOL_RESULT, tool_call_id=tc["id"], name=tc["name"])
                for tc in last.tool_calls
            ]
        }

    def route(state: dict) -> str:
        last = state["messages"][-1]
        return "tools" if getattr(last, "tool_calls", None) else END

    schema = MessagesState if state_kind == "messages" else DeltaMessagesState
    g = StateGraph(schema)
    g.add_node("model", model)
    g.add_node("tools", tools)
    g.add_edge(START, "model")
    g.add_conditional_edges("model", route, {"tools": "tools", END: END})
    g.add_edge("tools", "model")
    return g


def db_files(path: str) -> list[str]:
    return [path, path + "-wal", path + "-shm"]


def remove_db(path: str) -> None:
    for p in db_files(path):
        if os.path.exists(p):
            os.remove(p)


def db_size(path: str) -> int:
    return sum(os.path.getsize(p) for p in db_files(path) if os.path.exists(p))


def checkpointed_size(path: str) -> int:
    """Size of db+wal+shm after a TRUNCATE checkpoint on a fresh connection."""
    conn = sqlite3.connect(path)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    finally:
        conn.close()
    return db_size(path)


def run_once(n_steps: int, db_path: str, durability: str, state_kind: str) -> dict:
    """One fresh-db invoke of N steps. Returns timing and sizes."""
    remove_db(db_path)
    conn = sqlite3.connect(db_path, check_same_thread=False)
    try:
        conn.execute("PRAGMA journal_mode=WAL").fetchall()
        conn.execute("PRAGMA synchronous=NORMAL")
        saver = SqliteSaver(conn)
        saver.setup()  # create tables outside the timed region
        graph = build_graph(n_steps, state_kind).compile(checkpointer=saver)
        config = {
            "configurable": {"thread_id": "bench-thread"},
            "recursion_limit": 2 * n_steps + 10,
        }
        inputs = {"messages": [HumanMessage(content="go")]}

        t0 = time.perf_counter()
        result = graph.invoke(inputs, config, durability=durability)
        elapsed = time.perf_counter() - t0
    finally:
        conn.close()

    # Sanity: human + N x (AI tool call + tool result) + final AI.
    msgs = result["messages"]
    expected = 2 * n_steps + 2
    if len(msgs) != expected or msgs[-1].content != "done":
        print(
            f"unexpected result: {len(msgs)} messages (expected {expected}), "
            f"last={msgs[-1]!r}",
            file=sys.stderr,
        )
        sys.exit(2)

    size = db_size(db_path)
    return {
        "seconds": elapsed,
        "db_bytes": size,
        "db_bytes_after_checkpoint": checkpointed_size(db_path),
        "messages": len(msgs),
    }


def versions() -> dict:
    return {
        "langgraph": version("langgraph"),
        "langgraph-checkpoint": version("langgraph-checkpoint"),
        "langgraph-checkpoint-sqlite": version("langgraph-checkpoint-sqlite"),
        "langchain-core": version("langchain-core"),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--steps", type=int, default=200, help="model+tool steps per run")
    ap.add_argument("--repeats", type=int, default=3, help="runs (fresh db each)")
    ap.add_argument("--db", required=True, help="SQLite file (deleted before each run)")
    ap.add_argument(
        "--growth",
        type=str,
        default=None,
        help="comma list of step counts; report db size per count instead of timings",
    )
    ap.add_argument(
        "--durability",
        choices=["sync", "async"],
        default="sync",
        help="LangGraph durability mode (default sync: commit before each next step)",
    )
    ap.add_argument(
        "--state",
        choices=["messages", "delta"],
        default="messages",
        help="messages: stock MessagesState (default); delta: messages as a DeltaChannel",
    )
    args = ap.parse_args()

    if args.growth:
        counts = [int(x) for x in args.growth.split(",") if x.strip()]
        rows = []
        for n in counts:
            r = run_once(n, args.db, args.durability, args.state)
            print(
                f"growth n={n}: {r['seconds']:.3f}s db={r['db_bytes']} "
                f"ckpt={r['db_bytes_after_checkpoint']}",
                file=sys.stderr,
            )
            rows.append(
                {
                    "steps": n,
                    "db_bytes": r["db_bytes"],
                    "db_bytes_after_checkpoint": r["db_bytes_after_checkpoint"],
                    "seconds": r["seconds"],
                }
            )
        out = {
            "growth": rows,
            "durability": args.durability,
            "state": args.state,
            "versions": versions(),
        }
        print(json.dumps(out), flush=True)
        return

    if args.steps <= 0 or args.repeats <= 0:
        ap.error("--steps and --repeats must be positive")

    runs = []
    for i in range(args.repeats):
        r = run_once(args.steps, args.db, args.durability, args.state)
        print(
            f"repeat {i + 1}/{args.repeats}: {r['seconds']:.4f}s "
            f"({r['seconds'] * 1000 / args.steps:.3f} ms/step)",
            file=sys.stderr,
        )
        runs.append(r)

    secs = [r["seconds"] for r in runs]
    med = statistics.median(secs)
    last = runs[-1]
    out = {
        "steps": args.steps,
        "repeats": args.repeats,
        "durability": args.durability,
        "state": args.state,
        "seconds_median": med,
        "seconds_all": secs,
        "per_step_ms_median": med * 1000 / args.steps,
        "per_step_ms_all": [s * 1000 / args.steps for s in secs],
        "db_bytes": last["db_bytes"],
        "db_bytes_after_checkpoint": last["db_bytes_after_checkpoint"],
        "bytes_per_step": last["db_bytes_after_checkpoint"] / args.steps,
        "messages": last["messages"],
        "versions": versions(),
    }
    print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
