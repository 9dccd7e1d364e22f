-- Indexes for the api's read endpoints (docs/api.md, "Reading data"): one per list filter and
-- order that 0001/0002 do not already cover. Plain CREATE INDEX: the tables are small when this
-- runs on an upgrade, and `smoltbot migrate` applies each file in one transaction.

-- GET /v1/traces (every agent, newest first; id tie-breaker) and its session filter.
CREATE INDEX traces_time ON traces ("timestamp" DESC, trace_id DESC);
CREATE INDEX traces_session_time ON traces (session_id, "timestamp" DESC);
-- GET /v1/agents/{id}/traces?session_id=...
CREATE INDEX traces_agent_session_time ON traces (agent_id, session_id, "timestamp" DESC);

-- GET /v1/agents/{id}/checkpoints?verdict=... (newest first within the verdict).
CREATE INDEX integrity_checkpoints_agent_verdict_time
    ON integrity_checkpoints (agent_id, verdict, "timestamp" DESC);

-- GET /v1/agents/{id}/integrity: the AAP counts read an agent's verification results.
CREATE INDEX verifications_agent ON verifications (agent_id, verified);

-- GET /v1/agents/{id}/drift-alerts?source=...
CREATE INDEX drift_alerts_agent_source_time ON drift_alerts (agent_id, source, detected_at DESC);

-- GET /v1/agents/{id}/usage: exchanges grouped per provider and model.
CREATE INDEX exchanges_agent_model ON exchanges (agent_id, provider, model);
