-- Every correlation cycle reads the rows ingested in its window (TriageIngestedAt, correlator/stitch.py,
-- correlator/windows.py), but the raw tables are ordered by service, name and event time: without an index
-- each cycle's statements read the ingest-time column of every stored span and log record, a cost that
-- grows with the store rather than with the window. Parts are written in ingest order and merged parts keep
-- it close (ingest time follows event time), so a minmax index skips all but the granules of the window.
-- Parts written before this migration carry no index and are read as before until merged away.
ALTER TABLE otel_traces ${ON_CLUSTER} ADD INDEX IF NOT EXISTS idx_triage_ingested TriageIngestedAt TYPE minmax GRANULARITY 1;
ALTER TABLE otel_logs ${ON_CLUSTER} ADD INDEX IF NOT EXISTS idx_triage_ingested TriageIngestedAt TYPE minmax GRANULARITY 1;

-- A per-cycle scratch set, like correlator_touched: the keys of the traces a cycle touched, read once and
-- joined by both event statements (correlator/stitch.py).
CREATE TABLE IF NOT EXISTS correlator_keyed ${ON_CLUSTER} (TraceId String, Workflow String, Key String) ENGINE = Memory;
