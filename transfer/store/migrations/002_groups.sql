-- Groups carry per-group permissions; users.groups (001) names them.
-- Zero / empty means "the system policy applies" for that rule.
CREATE TABLE groups (
    name               text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_.-]{0,62}$'),
    recipient_domains  text[] NOT NULL DEFAULT '{}',
    max_upload_mib     bigint NOT NULL DEFAULT 0 CHECK (max_upload_mib >= 0),
    max_expiry_seconds bigint NOT NULL DEFAULT 0 CHECK (max_expiry_seconds >= 0),
    retention_days     integer NOT NULL DEFAULT 0 CHECK (retention_days >= 0),
    require_totp       boolean NOT NULL DEFAULT false
);

-- A message's retention is fixed when it is created, from its sender's
-- groups; NULL means the system-wide retention.days.
ALTER TABLE messages ADD COLUMN retain_until timestamptz;
