//! The analytics schema, versioned in `PRAGMA user_version`; each start applies the
//! migrations after the stored version, in order. Never edit a released migration: append.

/// Migrations, oldest first.
pub(super) const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE consumer_state (id INTEGER PRIMARY KEY CHECK (id = 1), cursor INTEGER NOT NULL);
    INSERT INTO consumer_state (id, cursor) VALUES (1, 0);
    CREATE TABLE events (
        seq INTEGER PRIMARY KEY,
        project TEXT NOT NULL,
        event_id TEXT NOT NULL,
        name TEXT NOT NULL,
        distinct_id TEXT,
        anonymous_id TEXT,
        session_id TEXT,
        server_ts INTEGER NOT NULL,
        received_at INTEGER NOT NULL,
        client_ts INTEGER,
        conference_id TEXT,
        attribution TEXT,
        properties TEXT NOT NULL,
        context TEXT NOT NULL,
        UNIQUE (project, event_id)
    );
    CREATE TABLE identity_links (
        project TEXT NOT NULL, id TEXT NOT NULL, root TEXT NOT NULL,
        PRIMARY KEY (project, id)
    ) WITHOUT ROWID;
    CREATE INDEX identity_links_root ON identity_links (project, root);
    CREATE TABLE sessions (
        project TEXT NOT NULL, session_id TEXT NOT NULL, distinct_id TEXT NOT NULL,
        started_at INTEGER NOT NULL, last_at INTEGER NOT NULL, event_count INTEGER NOT NULL,
        PRIMARY KEY (project, session_id)
    ) WITHOUT ROWID;
    CREATE INDEX sessions_person ON sessions (project, distinct_id);
    CREATE TABLE daily (
        project TEXT NOT NULL, conference_id TEXT NOT NULL, day TEXT NOT NULL,
        pv INTEGER NOT NULL DEFAULT 0, uv INTEGER NOT NULL DEFAULT 0,
        registrations INTEGER NOT NULL DEFAULT 0, checkins INTEGER NOT NULL DEFAULT 0,
        shares INTEGER NOT NULL DEFAULT 0, share_conversions INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (project, conference_id, day)
    ) WITHOUT ROWID;
    CREATE TABLE daily_visitors (
        project TEXT NOT NULL, conference_id TEXT NOT NULL, day TEXT NOT NULL, visitor TEXT NOT NULL,
        PRIMARY KEY (project, conference_id, day, visitor)
    ) WITHOUT ROWID;
    CREATE INDEX daily_visitors_visitor ON daily_visitors (project, visitor);
    CREATE TABLE shares (
        project TEXT NOT NULL, code TEXT NOT NULL, sharer TEXT NOT NULL, channel TEXT,
        target_url TEXT, parent_code TEXT, conference_id TEXT, created_at INTEGER NOT NULL,
        PRIMARY KEY (project, code)
    ) WITHOUT ROWID;
    CREATE INDEX shares_parent ON shares (project, parent_code);
    CREATE INDEX shares_sharer ON shares (project, sharer);
    CREATE TABLE share_opens (
        project TEXT NOT NULL, event_id TEXT NOT NULL, code TEXT NOT NULL, opener TEXT NOT NULL,
        at INTEGER NOT NULL,
        PRIMARY KEY (project, event_id)
    ) WITHOUT ROWID;
    CREATE INDEX share_opens_code ON share_opens (project, code);
    CREATE TABLE registrations (
        project TEXT NOT NULL, event_id TEXT NOT NULL, registrant TEXT NOT NULL,
        conference_id TEXT NOT NULL, day TEXT NOT NULL, code TEXT, credited INTEGER NOT NULL,
        PRIMARY KEY (project, event_id)
    ) WITHOUT ROWID;
    CREATE INDEX registrations_code ON registrations (project, code);
    CREATE INDEX registrations_registrant ON registrations (project, registrant);
",
    "
    -- The query engine scans events by time, and by type and time.
    CREATE INDEX events_time ON events (project, server_ts);
    CREATE INDEX events_type_time ON events (project, name, server_ts);
",
    "
    -- Read-only dashboard links, one conference each; only a hash of the token is kept.
    CREATE TABLE share_links (
        id TEXT PRIMARY KEY, project TEXT NOT NULL, conference_id TEXT NOT NULL, label TEXT,
        token_hash TEXT NOT NULL UNIQUE, created_at INTEGER NOT NULL, expires_at INTEGER,
        revoked_at INTEGER
    );
    CREATE INDEX share_links_project ON share_links (project, created_at);
",
    "
    -- The newest events of a project (the live view, the events list) without sorting them
    -- all: the index is ordered by (project, seq).
    CREATE INDEX events_project ON events (project);
",
    "
    -- Funnels read the type and ids of every event in a time range, in (time, seq) order: this
    -- index holds them, so they are answered without reading the rows (twice as fast over a
    -- million events). It replaces events_time, its prefix.
    CREATE INDEX events_time_ids ON events (project, server_ts, seq, name, distinct_id, anonymous_id);
    DROP INDEX events_time;
",
];
