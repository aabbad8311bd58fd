-- Breach forecasts of in-flight transactions (correlator/forecast.py), written with each verdict from the
-- history of how long the step's wait took before: when the next step is expected (NextStepEta), from when
-- the transaction is at risk of missing its SLA (RiskAt; it is at risk while in progress between RiskAt and
-- DueAt, so readers need no re-evaluation), and what history that rests on (ForecastBasis). Null and empty
-- when there is no forecast: the transaction is not in flight, or its step has too little history.
ALTER TABLE business_transactions ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS NextStepEta Nullable(DateTime64(9));
ALTER TABLE business_transactions ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS RiskAt Nullable(DateTime64(9));
ALTER TABLE business_transactions ${ON_CLUSTER} ADD COLUMN IF NOT EXISTS ForecastBasis String DEFAULT '';
