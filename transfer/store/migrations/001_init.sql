-- Users and their roles. role is one of sysadmin, admin, user.
CREATE TABLE users (
    id                  bigserial PRIMARY KEY,
    username            text NOT NULL UNIQUE,
    password_hash       text NOT NULL,
    role                text NOT NULL CHECK (role IN ('sysadmin', 'admin', 'user')),
    totp_secret         text NOT NULL DEFAULT '',
    groups              text[] NOT NULL DEFAULT '{}',
    created_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    last_login          timestamptz,
    disabled            boolean NOT NULL DEFAULT false
);

CREATE TABLE sessions (
    id_hash    bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf       text NOT NULL,
    expires_at timestamptz NOT NULL
);

CREATE TABLE messages (
    id         bigserial PRIMARY KEY,
    sender_id  bigint NOT NULL REFERENCES users(id),
    subject    text NOT NULL,
    body       text NOT NULL,
    recipients text[] NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    sent_at    timestamptz
);

-- A file row exists only once its blob is complete, scanned and renamed
-- into place: the row is committed after the rename.
CREATE TABLE files (
    id         bigserial PRIMARY KEY,
    message_id bigint NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    name       text NOT NULL,
    size       bigint NOT NULL,
    sha256     bytea NOT NULL,
    blob       text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE links (
    token_hash bytea PRIMARY KEY,
    message_id bigint NOT NULL REFERENCES messages(id) ON DELETE CASCADE,
    recipient  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- The audit trail is append-only: the trigger refuses UPDATE, DELETE and
-- TRUNCATE for every role, the table owner included.
CREATE TABLE audit (
    id     bigserial PRIMARY KEY,
    at     timestamptz NOT NULL DEFAULT now(),
    event  text NOT NULL,
    actor  text NOT NULL,
    remote text NOT NULL,
    ok     boolean NOT NULL,
    fields jsonb NOT NULL DEFAULT '{}'
);

CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit is append-only: % refused', TG_OP;
END $$;

CREATE TRIGGER audit_no_update BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
