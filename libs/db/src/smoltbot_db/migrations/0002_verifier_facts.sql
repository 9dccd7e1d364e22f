-- Facts the verifier decides beside a checkpoint (verdict.v1 `facts`, architecture §3.1):
-- drift alerts (AAP and AIP, one per streak) and the containment log. Each id is derived from
-- the agent and the streak's first checkpoint (or trace), so a redelivered or replayed verdict
-- writes nothing new (ON CONFLICT DO NOTHING on the primary key).

CREATE TABLE drift_alerts (
    id             text PRIMARY KEY,
    source         text NOT NULL CHECK (source IN ('aap', 'aip')),
    agent_id       text NOT NULL,
    card_id        text NOT NULL,
    session_id     text,
    alert_type     text NOT NULL,
    severity       text NOT NULL CHECK (severity IN ('low', 'medium', 'high')),
    description    text NOT NULL,
    streak_start   text NOT NULL,
    streak_ids     jsonb NOT NULL,
    exchange_id    uuid NOT NULL,
    detected_at    timestamptz NOT NULL,
    drift_data     jsonb NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX drift_alerts_agent_time ON drift_alerts (agent_id, detected_at DESC);

-- Containment changes of an agent. Today only the verifier's auto-containment writes here
-- (action auto_pause, actor system); operator actions through the api will share the table.
CREATE TABLE agent_containment_log (
    id                      text PRIMARY KEY,
    agent_id                text NOT NULL,
    action                  text NOT NULL,
    actor                   text NOT NULL,
    reason                  text NOT NULL,
    new_status              text NOT NULL CHECK (new_status IN ('active', 'paused', 'killed')),
    checkpoint_id           text,
    exchange_id             uuid,
    streak_start            text,
    consecutive_violations  integer,
    threshold               integer,
    decided_at              timestamptz NOT NULL,
    created_at              timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_containment_log_agent_time ON agent_containment_log (agent_id, decided_at DESC);
