-- The audit trail stays append-only, with one way out for rows past
-- retention: audit_prune(cutoff), which retention.Sweeper calls with
-- retention.audit_days. The trigger lets a DELETE through only while that
-- function runs (a transaction-local setting it sets) and only for rows
-- older than 90 days, whoever asks: no role short of a superuser disabling
-- triggers can remove a younger row. Each prune writes its own audit row.
CREATE OR REPLACE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' AND current_setting('bulwark.audit_prune', true) = 'on'
       AND OLD.at < now() - interval '90 days' THEN
        RETURN OLD;
    END IF;
    RAISE EXCEPTION 'audit is append-only: % refused', TG_OP;
END $$;

CREATE FUNCTION audit_prune(cutoff timestamptz) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    n bigint;
BEGIN
    IF cutoff > now() - interval '90 days' THEN
        RAISE EXCEPTION 'audit_prune: cutoff % would remove rows younger than 90 days', cutoff;
    END IF;
    PERFORM set_config('bulwark.audit_prune', 'on', true);
    DELETE FROM audit WHERE at < cutoff;
    GET DIAGNOSTICS n = ROW_COUNT;
    PERFORM set_config('bulwark.audit_prune', 'off', true);
    INSERT INTO audit(event, actor, remote, ok, fields)
        VALUES ('audit.prune', 'retention', '-', true, jsonb_build_object('cutoff', cutoff, 'deleted', n));
    RETURN n;
END $$;
