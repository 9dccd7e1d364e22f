-- Conscience nudges (architecture §4, §7): what the verifier made (verdict.v1 NudgeCreated) and
-- what the gateway delivered (verdict.v1 NudgesDelivered), written by the persister. Redis
-- (nudges:{a}) stays the working copy the gateway claims from; this is the record.
--
-- Status only moves forward: pending -> delivered, pending -> expired. A delivery may reach the
-- persister before the creation (two exchanges, two verdicts): it inserts the row with what it
-- knows (status delivered, no checkpoint or text yet) and the creation later fills in the
-- columns it owns without touching the status.

CREATE TABLE nudges (
    id                  text PRIMARY KEY,
    agent_id            text NOT NULL,
    checkpoint_id       text,
    created_at          timestamptz,
    text                text,
    status              text NOT NULL DEFAULT 'pending'
                        CHECK (status IN ('pending', 'delivered', 'expired')),
    delivered_at        timestamptz,
    delivered_event_id  text,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    CHECK ((status = 'delivered') = (delivered_at IS NOT NULL))
);
CREATE INDEX nudges_agent_time ON nudges (agent_id, created_at DESC NULLS LAST, id DESC);
CREATE INDEX nudges_agent_status_time ON nudges (agent_id, status, created_at DESC NULLS LAST);
