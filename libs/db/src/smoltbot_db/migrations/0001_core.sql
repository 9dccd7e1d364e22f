-- Core tables written from the bus. Every table has a natural unique key derived from the
-- exchange event id, so a redelivered or replayed event upserts the same row.

CREATE TABLE agents (
    id                          text PRIMARY KEY,
    agent_hash                  text NOT NULL UNIQUE,
    name                        text,
    first_seen_at               timestamptz NOT NULL,
    last_seen_at                timestamptz NOT NULL,
    enforcement_mode            text NOT NULL DEFAULT 'observe'
        CHECK (enforcement_mode IN ('off', 'observe', 'nudge', 'enforce')),
    containment_status          text NOT NULL DEFAULT 'active'
        CHECK (containment_status IN ('active', 'paused', 'killed')),
    nudge_strategy              text NOT NULL DEFAULT 'always'
        CHECK (nudge_strategy IN ('always', 'sampling', 'threshold', 'off')),
    auto_containment_threshold  integer CHECK (auto_containment_threshold IS NULL
                                               OR auto_containment_threshold >= 2),
    cfg_version                 bigint NOT NULL DEFAULT 0,
    created_at                  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE alignment_cards (
    id                 text PRIMARY KEY,
    agent_id           text NOT NULL REFERENCES agents (id),
    card_json          jsonb NOT NULL,
    conscience_values  jsonb,
    is_active          boolean NOT NULL DEFAULT true,
    issued_at          timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX alignment_cards_one_active ON alignment_cards (agent_id) WHERE is_active;

-- One row per proxied call (usage metadata only: no prompt, response or key).
CREATE TABLE exchanges (
    exchange_id       uuid PRIMARY KEY,
    agent_id          text NOT NULL,
    session_id        text NOT NULL,
    provider          text NOT NULL,
    model             text,
    method            text NOT NULL,
    path              text NOT NULL,
    status            integer NOT NULL,
    streamed          boolean NOT NULL,
    started_at        timestamptz NOT NULL,
    completed_at      timestamptz NOT NULL,
    upstream_ms       double precision NOT NULL,
    total_ms          double precision NOT NULL,
    ttfb_ms           double precision,
    input_tokens      integer,
    output_tokens     integer,
    gateway_instance  text NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX exchanges_agent_time ON exchanges (agent_id, completed_at DESC);

CREATE TABLE traces (
    trace_id      text PRIMARY KEY,
    exchange_id   uuid NOT NULL UNIQUE,
    agent_id      text NOT NULL,
    card_id       text NOT NULL,
    session_id    text NOT NULL,
    "timestamp"   timestamptz NOT NULL,
    action        jsonb NOT NULL,
    decision      jsonb NOT NULL,
    escalation    jsonb,
    context       jsonb,
    verified      boolean,
    trace_json    jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX traces_agent_time ON traces (agent_id, "timestamp" DESC);

CREATE TABLE verifications (
    trace_id            text PRIMARY KEY REFERENCES traces (trace_id),
    agent_id            text NOT NULL,
    card_id             text NOT NULL,
    verified            boolean NOT NULL,
    similarity_score    double precision NOT NULL,
    violations          jsonb NOT NULL,
    warnings            jsonb NOT NULL,
    checks_performed    jsonb NOT NULL,
    algorithm_version   text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE integrity_checkpoints (
    checkpoint_id         text PRIMARY KEY,
    exchange_id           uuid NOT NULL UNIQUE,
    agent_id              text NOT NULL,
    card_id               text NOT NULL,
    session_id            text NOT NULL,
    "timestamp"           timestamptz NOT NULL,
    thinking_block_hash   text NOT NULL,
    provider              text NOT NULL,
    model                 text NOT NULL,
    verdict               text NOT NULL
        CHECK (verdict IN ('clear', 'review_needed', 'boundary_violation')),
    concerns              jsonb NOT NULL,
    reasoning_summary     text NOT NULL,
    conscience_context    jsonb NOT NULL,
    window_position       jsonb NOT NULL,
    analysis_metadata     jsonb NOT NULL,
    linked_trace_id       text,
    synthetic             boolean NOT NULL DEFAULT false,
    synthetic_reason      text,
    recommended_action    text NOT NULL,
    proceed               boolean NOT NULL,
    analyzer_verdict      text,
    -- attestation (filled once signing lands; nullable until then)
    input_commitment      text,
    chain_hash            text,
    prev_chain_hash       text,
    merkle_leaf_index     bigint,
    issuer_signature      text,
    signing_key_id        text,
    certificate_id        text,
    created_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX integrity_checkpoints_agent_time ON integrity_checkpoints (agent_id, "timestamp" DESC);
CREATE INDEX integrity_checkpoints_session ON integrity_checkpoints (agent_id, session_id, "timestamp");
