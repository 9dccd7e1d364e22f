-- Alignment cards, the org card template and conscience values, written by the api (D1).
-- The api commits here first, then writes card:{agent} (architecture §4); every version below
-- only moves forward, and card:{agent}'s version is their sum, so a rewrite never goes back.

-- Card versions per agent: the persister's default card is 0, each publish takes max + 1 under
-- the agent's row lock (the history endpoint reads them newest first).
ALTER TABLE alignment_cards ADD COLUMN version bigint NOT NULL DEFAULT 0 CHECK (version >= 0);
CREATE INDEX alignment_cards_agent_version ON alignment_cards (agent_id, version DESC);

-- Per-agent layers beside the card: its own conscience values (NULL = none of its own) and
-- whether the org card template skips it. version + 1 on every change.
CREATE TABLE agent_card_settings (
    agent_id           text PRIMARY KEY REFERENCES agents (id),
    conscience_values  jsonb,
    org_card_exempt    boolean NOT NULL DEFAULT false,
    version            bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- The org (single tenant: one implicit org, so one row, keyed by a constant) card template.
CREATE TABLE org_card_template (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    enabled     boolean NOT NULL DEFAULT false,
    template    jsonb,
    version     bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The org's custom conscience values and how they combine with the AIP defaults.
CREATE TABLE org_conscience_values (
    id          boolean PRIMARY KEY DEFAULT true CHECK (id),
    enabled     boolean NOT NULL DEFAULT false,
    mode        text NOT NULL DEFAULT 'augment' CHECK (mode IN ('augment', 'replace')),
    "values"    jsonb NOT NULL DEFAULT '[]',
    version     bigint NOT NULL DEFAULT 0 CHECK (version >= 0),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
