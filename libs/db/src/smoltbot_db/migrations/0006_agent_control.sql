-- Agent settings and containment managed through the api (self-hosting.md §2.3, D1). The agents
-- row is the system of record for everything cfg:{a} holds (AgentConfig); the api writes it
-- first, then cfg:{a} through smoltbot_agentstate with the row's cfg_version.

ALTER TABLE agents
    ADD COLUMN aip_enabled         boolean NOT NULL DEFAULT true,
    ADD COLUMN aap_enabled         boolean NOT NULL DEFAULT true,
    ADD COLUMN failure_policy      text CHECK (failure_policy IN ('fail_open', 'fail_closed')),
    ADD COLUMN nudge_rate          integer NOT NULL DEFAULT 100
        CHECK (nudge_rate BETWEEN 0 AND 100),
    ADD COLUMN nudge_threshold     integer NOT NULL DEFAULT 3 CHECK (nudge_threshold >= 1),
    ADD COLUMN contained_at        timestamptz,
    ADD COLUMN contained_by        text,
    ADD COLUMN containment_reason  text;

-- 0 turns auto-containment off (AgentConfig); NULL keeps meaning "the default" (5).
ALTER TABLE agents DROP CONSTRAINT agents_auto_containment_threshold_check;
ALTER TABLE agents ADD CONSTRAINT agents_auto_containment_threshold_check
    CHECK (auto_containment_threshold IS NULL OR auto_containment_threshold = 0
           OR auto_containment_threshold >= 2);

-- Operator actions (pause, resume, kill, reactivate) share the log with the verifier's
-- auto_pause; they know the status they left.
ALTER TABLE agent_containment_log
    ADD COLUMN previous_status text CHECK (previous_status IN ('active', 'paused', 'killed'));
