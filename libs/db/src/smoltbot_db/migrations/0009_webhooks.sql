-- Org webhook endpoints and their delivery log (self-hosting.md §2.3 "Webhooks", §3 A;
-- docs/api.md "Webhooks"). The api manages endpoints and enqueues deliveries (test events and
-- manual redeliveries); the notifier reads pending rows, signs and sends them, and records the
-- outcome in the same row.
--
-- signing_secret is stored as-is (64 hex characters, 32 random bytes): the notifier must compute
-- HMAC-SHA256 with it, so a hash would not do, and this database already holds everything the
-- webhooks carry. It leaves the database only once, in the answer that created or rotated it.

CREATE TABLE webhook_endpoints (
    id                    text PRIMARY KEY CHECK (id ~ '^whe-[0-9a-f]{32}$'),
    url                   text NOT NULL CHECK (char_length(url) BETWEEN 1 AND 2048),
    description           text NOT NULL DEFAULT '' CHECK (char_length(description) <= 500),
    signing_secret        text NOT NULL CHECK (signing_secret ~ '^[0-9a-f]{64}$'),
    -- Empty = every event type; otherwise exact names, 'trace.*' or '*'.
    event_types           text[] NOT NULL DEFAULT '{}',
    is_active             boolean NOT NULL DEFAULT true,
    consecutive_failures  integer NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    disabled_at           timestamptz,
    disabled_reason       text,
    secret_rotated_at     timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_created ON webhook_endpoints (created_at DESC, id DESC);

-- One row per attempt series: a redelivery is a new row with the same event_id and payload
-- (redelivery_of names the row it copied). Deleting an endpoint deletes its history.
CREATE TABLE webhook_deliveries (
    id                    text PRIMARY KEY CHECK (id ~ '^whd-[0-9a-f]{32}$'),
    endpoint_id           text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
    event_id              text NOT NULL,
    event_type            text NOT NULL,
    -- The envelope {id, type, created_at, data} the notifier sends, byte-for-byte as stored.
    payload               jsonb NOT NULL,
    status                text NOT NULL DEFAULT 'pending'
                          CHECK (status IN ('pending', 'delivering', 'delivered', 'failed',
                                            'retrying')),
    attempt_count         integer NOT NULL DEFAULT 0 CHECK (attempt_count >= 0),
    max_attempts          integer NOT NULL DEFAULT 6 CHECK (max_attempts >= 1),
    next_attempt_at       timestamptz NOT NULL DEFAULT now(),
    last_response_status  integer,
    last_error            text,
    latency_ms            double precision,
    redelivery_of         text,
    delivered_at          timestamptz,
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, created_at DESC, id DESC);
-- What the notifier polls: due rows still to send.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE status IN ('pending', 'retrying');

-- Re-verification runs of the api (docs/api.md "Re-verify"): POST /v1/agents/{id}/reverify
-- (AAP, traces against the current card) and .../reverify/aip (stored checkpoint concerns
-- through the current deterministic gate) run synchronously over a bounded batch; the whole
-- answer is kept here so GET /v1/agents/{id}/reverify/{run_id} can show it again. Stored
-- verifications and checkpoints are not changed (the persister owns those rows).
CREATE TABLE reverify_runs (
    id          text PRIMARY KEY CHECK (id ~ '^rv-[0-9a-f]{32}$'),
    agent_id    text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('aap', 'aip')),
    card_id     text NOT NULL,
    result      jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX reverify_runs_agent ON reverify_runs (agent_id, created_at DESC);
