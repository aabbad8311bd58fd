-- The attributes a workflow's conditional steps (`when: {attributes: ...}`) test, kept on each business
-- event as its span or log record held them: the state machine decides whether a step applies to a
-- transaction from every event it has (correlator/machine.py). Rows from before carry none.
ALTER TABLE business_events ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS Attributes Map(String, String) DEFAULT map();
-- When the store first got the span or log record behind the event (its TriageIngestedAt): how late
-- telemetry arrived, which the correlator weighs before calling a transaction stuck
-- (correlator/engine.py, _hold_while_catching_up). Rows from before read their own IngestedAt.
ALTER TABLE business_events ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS Received DateTime64(3) DEFAULT IngestedAt;
