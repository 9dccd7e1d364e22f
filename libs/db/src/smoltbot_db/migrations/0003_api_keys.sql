-- API keys of the api (self-hosting.md §2.3 "API keys"; docs/api.md, "Authentication"). Only
-- the SHA-256 of a key is stored, never the key: the key is shown once, when it is created. The
-- prefix (the key's first characters) is kept so an operator can tell keys apart in a list.
-- Revocation sets revoked_at; rows are never deleted, so a key id is never reused.

CREATE TABLE api_keys (
    id            text PRIMARY KEY,
    name          text NOT NULL CHECK (char_length(name) BETWEEN 1 AND 100),
    scope         text NOT NULL CHECK (scope IN ('read', 'write', 'admin')),
    key_hash      text NOT NULL UNIQUE CHECK (key_hash ~ '^[0-9a-f]{64}$'),
    key_prefix    text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    last_used_at  timestamptz,
    revoked_at    timestamptz
);
CREATE INDEX api_keys_created ON api_keys (created_at DESC, id DESC);
