-- The experiment ledger of hypothesis loops. A loop's task is stored once; each experiment
-- is planned (with the hypothesis behind it) before it is run, marked started when it is
-- run, and gets its result after. The key (loop, strategy, gene) makes running a gene twice
-- in one strategy's loop impossible; `attempts` counts runs that started, so a run that was
-- killed mid-experiment and repeated is recorded as repeated.

CREATE TABLE loops (
    loop_id    TEXT PRIMARY KEY,
    task       TEXT NOT NULL, -- the task as JSON
    created_ms INTEGER NOT NULL
) STRICT;

CREATE TABLE experiments (
    loop_id    TEXT NOT NULL REFERENCES loops(loop_id),
    strategy   TEXT NOT NULL,
    round      INTEGER NOT NULL,
    pick       INTEGER NOT NULL, -- order within the round
    gene       TEXT NOT NULL,
    hypothesis TEXT NOT NULL,
    design     TEXT NOT NULL, -- what is run, as JSON
    planned_ms INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    started_ms INTEGER,
    result     REAL,
    result_ms  INTEGER,
    PRIMARY KEY (loop_id, strategy, gene)
) STRICT;

CREATE INDEX experiments_by_round ON experiments(loop_id, strategy, round, pick);
