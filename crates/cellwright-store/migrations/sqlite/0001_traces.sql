-- The trace log is the source of truth: one row per event, appended, never updated.
-- Everything else is either a small index (`runs`), a blob store (`artifacts`) or a view
-- over the log, so a step costs one insert and storage grows linearly with events.

CREATE TABLE runs (
    run_id      TEXT PRIMARY KEY,
    question    TEXT NOT NULL,
    model       TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_ms  INTEGER NOT NULL,
    finished_ms INTEGER
) STRICT;

CREATE TABLE events (
    run_id  TEXT NOT NULL REFERENCES runs(run_id),
    seq     INTEGER NOT NULL,
    at_ms   INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    step    INTEGER,
    call    INTEGER,
    payload TEXT NOT NULL, -- the TraceEvent as JSON
    PRIMARY KEY (run_id, seq)
) STRICT, WITHOUT ROWID;

CREATE INDEX events_by_call ON events(run_id, call) WHERE call IS NOT NULL;

CREATE TABLE artifacts (
    artifact_id TEXT PRIMARY KEY,
    run_id      TEXT NOT NULL,
    call        INTEGER,
    media_type  TEXT NOT NULL,
    bytes       INTEGER NOT NULL,
    summary     TEXT NOT NULL,
    created_ms  INTEGER NOT NULL,
    data        BLOB NOT NULL
) STRICT;

CREATE INDEX artifacts_by_run ON artifacts(run_id);

-- Views for people and SQL tools; the runtime reads `events` only.

CREATE VIEW steps AS
SELECT run_id, step, MIN(at_ms) AS started_ms, MAX(at_ms) AS last_ms, COUNT(*) AS events
FROM events WHERE step IS NOT NULL GROUP BY run_id, step;

CREATE VIEW model_calls AS
SELECT run_id, step, at_ms,
       json_extract(payload, '$.model')               AS model,
       json_extract(payload, '$.latency_ms')          AS latency_ms,
       json_extract(payload, '$.usage.input_tokens')  AS input_tokens,
       json_extract(payload, '$.usage.output_tokens') AS output_tokens,
       json_extract(payload, '$.finish_reason')       AS finish_reason,
       json_extract(payload, '$.message')             AS message
FROM events WHERE kind = 'model_response';

CREATE VIEW tool_calls AS
SELECT s.run_id, s.call, s.step,
       json_extract(s.payload, '$.attempt')   AS attempt,
       json_extract(s.payload, '$.tool')      AS tool,
       json_extract(s.payload, '$.effects')   AS effects,
       json_extract(s.payload, '$.arguments') AS arguments,
       s.at_ms AS started_ms,
       f.at_ms AS finished_ms,
       json_extract(f.payload, '$.duration_ms') AS duration_ms,
       json_extract(f.payload, '$.outcome.ok')  AS output,
       json_extract(f.payload, '$.outcome.err') AS error
FROM events s
LEFT JOIN events f
       ON f.run_id = s.run_id AND f.call = s.call AND f.kind = 'tool_call_finished'
      AND json_extract(f.payload, '$.attempt') = json_extract(s.payload, '$.attempt')
WHERE s.kind = 'tool_call_started';

CREATE VIEW messages AS
SELECT run_id, seq, 'system' AS role, json_extract(payload, '$.system_prompt') AS content
FROM events WHERE kind = 'run_started'
UNION ALL
SELECT run_id, seq, 'user', json_extract(payload, '$.question')
FROM events WHERE kind = 'run_started'
UNION ALL
SELECT run_id, seq, 'assistant', json_extract(payload, '$.message')
FROM events WHERE kind = 'model_response'
UNION ALL
SELECT run_id, seq, 'tool', json_extract(payload, '$.outcome')
FROM events WHERE kind = 'tool_call_finished';

CREATE VIEW claims AS
SELECT e.run_id, c.key AS idx,
       json_extract(c.value, '$.text')      AS text,
       json_extract(c.value, '$.supported') AS supported,
       json_extract(c.value, '$.evidence')  AS evidence,
       json_extract(c.value, '$.note')      AS note
FROM events e, json_each(e.payload, '$.answer.claims') c
WHERE e.kind = 'run_finished';
