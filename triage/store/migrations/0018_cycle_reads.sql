-- A per-cycle scratch set, like correlator_touched: the keys of the traces a cycle touched, read once from
-- trace_keys and joined by both event statements (correlator/stitch.py). Reading trace_keys by a set of
-- random trace ids reaches most of its granules, so one read a cycle instead of two.
CREATE TABLE IF NOT EXISTS correlator_keyed ${ON_CLUSTER} (TraceId String, Workflow String, Key String) ENGINE = Memory;
