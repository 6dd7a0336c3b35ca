//! The PostgreSQL analytics schema: the same tables as the embedded store, versioned in
//! `empmix_schema_migrations` (one row per applied migration). Each start applies the missing
//! migrations in order, under an advisory lock so that several processes starting at once
//! migrate once. Never edit a released migration: append.

/// Migrations, oldest first (version = index + 1).
pub(super) const MIGRATIONS: &[&str] = &[
    // 1: the analytics tables and the indexes the consumer and the query endpoints use.
    "
    CREATE TABLE consumer_state (id INTEGER PRIMARY KEY CHECK (id = 1), cursor BIGINT NOT NULL);
    INSERT INTO consumer_state (id, cursor) VALUES (1, 0);
    CREATE TABLE events (
        seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        project TEXT NOT NULL,
        event_id TEXT NOT NULL,
        name TEXT NOT NULL,
        distinct_id TEXT,
        anonymous_id TEXT,
        session_id TEXT,
        server_ts BIGINT NOT NULL,
        received_at BIGINT NOT NULL,
        client_ts BIGINT,
        conference_id TEXT,
        attribution TEXT,
        properties JSONB NOT NULL,
        context JSONB NOT NULL,
        UNIQUE (project, event_id)
    );
    CREATE INDEX events_person ON events (project, distinct_id, seq);
    CREATE INDEX events_type ON events (project, name, seq);
    CREATE INDEX events_conference ON events (project, conference_id, seq);
    CREATE TABLE identity_links (
        project TEXT NOT NULL, id TEXT NOT NULL, root TEXT NOT NULL,
        PRIMARY KEY (project, id)
    );
    CREATE INDEX identity_links_root ON identity_links (project, root);
    CREATE TABLE sessions (
        project TEXT NOT NULL, session_id TEXT NOT NULL, distinct_id TEXT NOT NULL,
        started_at BIGINT NOT NULL, last_at BIGINT NOT NULL, event_count BIGINT NOT NULL,
        PRIMARY KEY (project, session_id)
    );
    CREATE INDEX sessions_person ON sessions (project, distinct_id);
    CREATE TABLE daily (
        project TEXT NOT NULL, conference_id TEXT NOT NULL, day TEXT NOT NULL,
        pv BIGINT NOT NULL DEFAULT 0, uv BIGINT NOT NULL DEFAULT 0,
        registrations BIGINT NOT NULL DEFAULT 0, checkins BIGINT NOT NULL DEFAULT 0,
        shares BIGINT NOT NULL DEFAULT 0, share_conversions BIGINT NOT NULL DEFAULT 0,
        PRIMARY KEY (project, conference_id, day)
    );
    CREATE TABLE daily_visitors (
        project TEXT NOT NULL, conference_id TEXT NOT NULL, day TEXT NOT NULL, visitor TEXT NOT NULL,
        PRIMARY KEY (project, conference_id, day, visitor)
    );
    CREATE INDEX daily_visitors_visitor ON daily_visitors (project, visitor);
    CREATE TABLE shares (
        project TEXT NOT NULL, code TEXT NOT NULL, sharer TEXT NOT NULL, channel TEXT,
        target_url TEXT, parent_code TEXT, conference_id TEXT, created_at BIGINT NOT NULL,
        PRIMARY KEY (project, code)
    );
    CREATE INDEX shares_parent ON shares (project, parent_code);
    CREATE INDEX shares_sharer ON shares (project, sharer);
    CREATE TABLE share_opens (
        project TEXT NOT NULL, event_id TEXT NOT NULL, code TEXT NOT NULL, opener TEXT NOT NULL,
        at BIGINT NOT NULL,
        PRIMARY KEY (project, event_id)
    );
    CREATE INDEX share_opens_code ON share_opens (project, code);
    CREATE TABLE registrations (
        project TEXT NOT NULL, event_id TEXT NOT NULL, registrant TEXT NOT NULL,
        conference_id TEXT NOT NULL, day TEXT NOT NULL, code TEXT, credited BOOLEAN NOT NULL,
        PRIMARY KEY (project, event_id)
    );
    CREATE INDEX registrations_code ON registrations (project, code);
    CREATE INDEX registrations_registrant ON registrations (project, registrant);
    ",
    // 2: the query engine scans events by time, and by type and time.
    "
    CREATE INDEX events_time ON events (project, server_ts);
    CREATE INDEX events_type_time ON events (project, name, server_ts);
    ",
    // 3: read-only dashboard links, one conference each; only a hash of the token is kept.
    "
    CREATE TABLE share_links (
        id TEXT PRIMARY KEY, project TEXT NOT NULL, conference_id TEXT NOT NULL, label TEXT,
        token_hash TEXT NOT NULL UNIQUE, created_at BIGINT NOT NULL, expires_at BIGINT,
        revoked_at BIGINT
    );
    CREATE INDEX share_links_project ON share_links (project, created_at);
    ",
    // 4: funnels read the type and ids of every event in a time range: with this index (and
    // the visibility map autovacuum keeps) PostgreSQL answers them with an index-only scan,
    // in (time, seq) order, without reading the rows. It replaces events_time, its prefix.
    "
    CREATE INDEX IF NOT EXISTS events_time_ids ON events (project, server_ts, seq)
        INCLUDE (name, distinct_id, anonymous_id);
    DROP INDEX IF EXISTS events_time;
    ",
];
