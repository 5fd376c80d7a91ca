"""Versioned schema of the deploy audit log, per backend: migration N brings a database from
version N-1 to N. A database already at the newest version is left alone; one from a newer
exporter is refused (an older binary must not write rows it does not understand).

SQLite keeps the version in ``PRAGMA user_version`` (version 1 is the schema every earlier
release created, so existing ``deploys.sqlite`` files upgrade in place); PostgreSQL in a
``schema_migrations`` table, one row per applied version, migrated under an advisory lock so two
replicas starting at once do not race.

Append-only, enforced by the database for any client:

- UPDATE and DELETE are refused by triggers (PostgreSQL: TRUNCATE too);
- an INSERT that names an existing id is refused by a BEFORE INSERT trigger: in SQLite
  ``INSERT OR REPLACE`` / ``REPLACE`` would otherwise delete and rewrite the row without firing the
  DELETE trigger, and an upsert (``ON CONFLICT DO UPDATE``) is refused before it gets that far.
"""

from __future__ import annotations

_SQLITE_V1 = """
CREATE TABLE IF NOT EXISTS deploys (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    received_at   REAL    NOT NULL,
    deployed_at   REAL    NOT NULL,
    service       TEXT    NOT NULL,
    environment   TEXT    NOT NULL,
    version       TEXT    NOT NULL,
    commit_id     TEXT    NOT NULL,
    sites         TEXT    NOT NULL,   -- JSON array of site codes
    status        TEXT    NOT NULL,
    pipeline_url  TEXT    NOT NULL,
    actor         TEXT    NOT NULL,
    notes         TEXT    NOT NULL,
    "freeze"      TEXT,  -- quoted: FREEZE is a keyword in PostgreSQL
    freeze_policy TEXT,
    remote_addr   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS deploys_by_target ON deploys (service, environment, id);
CREATE INDEX IF NOT EXISTS deploys_by_time ON deploys (received_at);
CREATE TRIGGER IF NOT EXISTS deploys_no_update BEFORE UPDATE ON deploys
BEGIN SELECT RAISE(ABORT, 'deploys is an append-only audit log: rows cannot be updated'); END;
CREATE TRIGGER IF NOT EXISTS deploys_no_delete BEFORE DELETE ON deploys
BEGIN SELECT RAISE(ABORT, 'deploys is an append-only audit log: rows cannot be deleted'); END;
"""

_SQLITE_V2 = """
CREATE TRIGGER deploys_no_replace BEFORE INSERT ON deploys
WHEN EXISTS (SELECT 1 FROM deploys WHERE id = NEW.id)
BEGIN SELECT RAISE(ABORT, 'deploys is an append-only audit log: an existing row cannot be replaced'); END;
CREATE TABLE verify_baselines (
    deploy_id INTEGER PRIMARY KEY REFERENCES deploys (id),
    taken_at  REAL    NOT NULL,
    data      TEXT    NOT NULL    -- JSON: {"checks": {id: stats}, "production": {marketplace: counts}}
);
CREATE TRIGGER verify_baselines_no_update BEFORE UPDATE ON verify_baselines
BEGIN SELECT RAISE(ABORT, 'verify_baselines is append-only: rows cannot be updated'); END;
CREATE TRIGGER verify_baselines_no_delete BEFORE DELETE ON verify_baselines
BEGIN SELECT RAISE(ABORT, 'verify_baselines is append-only: rows cannot be deleted'); END;
CREATE TRIGGER verify_baselines_no_replace BEFORE INSERT ON verify_baselines
WHEN EXISTS (SELECT 1 FROM verify_baselines WHERE deploy_id = NEW.deploy_id)
BEGIN SELECT RAISE(ABORT, 'verify_baselines is append-only: an existing row cannot be replaced'); END;
"""

#: index i holds the SQL of version i + 1
SQLITE: tuple[str, ...] = (_SQLITE_V1, _SQLITE_V2)

_PG_V1 = """
CREATE TABLE deploys (
    id            BIGSERIAL PRIMARY KEY,
    received_at   DOUBLE PRECISION NOT NULL,
    deployed_at   DOUBLE PRECISION NOT NULL,
    service       TEXT NOT NULL,
    environment   TEXT NOT NULL,
    version       TEXT NOT NULL,
    commit_id     TEXT NOT NULL,
    sites         TEXT NOT NULL,
    status        TEXT NOT NULL,
    pipeline_url  TEXT NOT NULL,
    actor         TEXT NOT NULL,
    notes         TEXT NOT NULL,
    "freeze"      TEXT,  -- quoted: FREEZE is a keyword in PostgreSQL
    freeze_policy TEXT,
    remote_addr   TEXT NOT NULL
);
CREATE INDEX deploys_by_target ON deploys (service, environment, id);
CREATE INDEX deploys_by_time ON deploys (received_at);
CREATE TABLE verify_baselines (
    deploy_id BIGINT PRIMARY KEY REFERENCES deploys (id),
    taken_at  DOUBLE PRECISION NOT NULL,
    data      TEXT NOT NULL
);
CREATE FUNCTION mpx_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is an append-only audit log: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE FUNCTION mpx_deploys_no_replace() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM deploys WHERE id = NEW.id) THEN
        RAISE EXCEPTION 'deploys is an append-only audit log: an existing row cannot be replaced'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE FUNCTION mpx_baselines_no_replace() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM verify_baselines WHERE deploy_id = NEW.deploy_id) THEN
        RAISE EXCEPTION 'verify_baselines is append-only: an existing row cannot be replaced'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER deploys_no_update_delete BEFORE UPDATE OR DELETE ON deploys
    FOR EACH ROW EXECUTE FUNCTION mpx_append_only();
CREATE TRIGGER deploys_no_truncate BEFORE TRUNCATE ON deploys
    FOR EACH STATEMENT EXECUTE FUNCTION mpx_append_only();
CREATE TRIGGER deploys_no_replace BEFORE INSERT ON deploys
    FOR EACH ROW EXECUTE FUNCTION mpx_deploys_no_replace();
CREATE TRIGGER verify_baselines_no_update_delete BEFORE UPDATE OR DELETE ON verify_baselines
    FOR EACH ROW EXECUTE FUNCTION mpx_append_only();
CREATE TRIGGER verify_baselines_no_truncate BEFORE TRUNCATE ON verify_baselines
    FOR EACH STATEMENT EXECUTE FUNCTION mpx_append_only();
CREATE TRIGGER verify_baselines_no_replace BEFORE INSERT ON verify_baselines
    FOR EACH ROW EXECUTE FUNCTION mpx_baselines_no_replace();
"""

POSTGRES: tuple[str, ...] = (_PG_V1,)

__all__ = ["POSTGRES", "SQLITE"]
