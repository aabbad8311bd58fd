-- A per-cycle scratch set, like correlator_touched: the message ids of the window's producer and consumer spans,
-- read once a cycle (correlator/stitch.py). The statement that pairs producers with consumers read the window for
-- them four times (a CTE is inlined at each use), and a window without any now skips it after one read.
CREATE TABLE IF NOT EXISTS correlator_ids ${ON_CLUSTER} (MessageId String) ENGINE = Memory;
