-- TOTP codes are single-use (RFC 6238 §5.2): a successful login or
-- enrolment records the 30-second time step its code came from, and the
-- same step is refused for that user afterwards, across restarts and every
-- node sharing this database. Rows older than the accepted skew are pruned
-- on the next use (store.UseTOTPStep).
CREATE TABLE totp_used (
    user_id bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    step    bigint NOT NULL,
    PRIMARY KEY (user_id, step)
);
