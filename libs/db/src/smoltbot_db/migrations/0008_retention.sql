-- Indexes for the retention job's delete predicate (docs/operations.md, "Retention"): rows are
-- expired by event time across every agent, which the agent-leading indexes of 0001/0002 do not
-- serve. traces is covered by 0004's traces_time; verifications expire with their trace.
-- Plain CREATE INDEX: `smoltbot migrate` applies each file in one transaction.

CREATE INDEX exchanges_completed ON exchanges (completed_at);
CREATE INDEX integrity_checkpoints_time ON integrity_checkpoints ("timestamp");
CREATE INDEX drift_alerts_detected ON drift_alerts (detected_at);
