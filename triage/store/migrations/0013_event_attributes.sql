-- The attributes a workflow's conditional steps (`when: {attributes: ...}`) test, kept on each business
-- event as its span or log record held them: the state machine decides whether a step applies to a
-- transaction from every event it has (correlator/machine.py). Rows from before carry none.
ALTER TABLE business_events ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS Attributes Map(String, String) DEFAULT map();
