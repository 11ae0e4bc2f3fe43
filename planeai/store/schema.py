"""Schema versions. Each migration moves the database from version N-1 to N.

Migrations run on open inside one ``BEGIN IMMEDIATE`` transaction, so concurrent first opens
cannot apply one twice. Never edit a migration that has shipped; add a new one.
"""

from __future__ import annotations

STATUSES = "('todo','in_progress','in_review','done')"

MIGRATIONS: list[str] = [
    # 1: projects, tasks, blockers, the event log
    f"""
    CREATE TABLE projects (
        id             INTEGER PRIMARY KEY,
        name           TEXT NOT NULL UNIQUE,
        key_prefix     TEXT NOT NULL UNIQUE,
        path           TEXT NOT NULL UNIQUE,
        default_branch TEXT,
        archived       INTEGER NOT NULL DEFAULT 0,
        created_at     TEXT NOT NULL
    );
    -- Task numbers per key prefix; kept even when a project is purged so keys are never reused.
    CREATE TABLE key_counters (
        prefix      TEXT PRIMARY KEY,
        last_number INTEGER NOT NULL
    );
    CREATE TABLE tasks (
        id          INTEGER PRIMARY KEY,
        project_id  INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        key         TEXT NOT NULL UNIQUE,
        number      INTEGER NOT NULL,
        title       TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        status      TEXT NOT NULL DEFAULT 'todo' CHECK (status IN {STATUSES}),
        priority    INTEGER NOT NULL DEFAULT 0,
        parent_id   INTEGER REFERENCES tasks(id) ON DELETE SET NULL,
        base_branch TEXT,
        provider    TEXT,
        created_at  TEXT NOT NULL,
        updated_at  TEXT NOT NULL
    );
    CREATE INDEX tasks_project_status ON tasks(project_id, status);
    CREATE INDEX tasks_parent ON tasks(parent_id);
    CREATE TABLE task_blockers (
        task_id    INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        blocker_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        PRIMARY KEY (task_id, blocker_id),
        CHECK (task_id <> blocker_id)
    );
    CREATE INDEX task_blockers_blocker ON task_blockers(blocker_id);
    CREATE TABLE events (
        id         INTEGER PRIMARY KEY AUTOINCREMENT,
        ts         TEXT NOT NULL,
        kind       TEXT NOT NULL,
        project_id INTEGER,
        task_key   TEXT,
        session_id TEXT,
        data       TEXT NOT NULL DEFAULT '{{}}'
    );
    CREATE INDEX events_task ON events(task_key);
    """,
    # 2: sessions (one terminal running an agent, usually for one task)
    """
    CREATE TABLE sessions (
        id           TEXT PRIMARY KEY,
        name         TEXT NOT NULL UNIQUE,
        project_id   INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        task_id      INTEGER REFERENCES tasks(id) ON DELETE SET NULL,
        provider     TEXT NOT NULL,
        variant      TEXT,
        backend      TEXT NOT NULL,
        worktree     TEXT,
        branch       TEXT,
        state        TEXT NOT NULL DEFAULT 'created'
                     CHECK (state IN ('created','running','exited','archived')),
        agent_status TEXT,
        exit_code    INTEGER,
        pid          INTEGER,
        autonomous   INTEGER NOT NULL DEFAULT 0,
        argv         TEXT NOT NULL DEFAULT '[]',
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL,
        exited_at    TEXT
    );
    CREATE INDEX sessions_task ON sessions(task_id);
    CREATE INDEX sessions_state ON sessions(state);
    """,
    # 3: auto-dispatch: failure accounting, one dispatcher at a time, small persistent state
    """
    ALTER TABLE tasks ADD COLUMN failures INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE tasks ADD COLUMN last_failure TEXT;
    -- held = failed too often: not ready until a person moves it back to todo
    ALTER TABLE tasks ADD COLUMN held INTEGER NOT NULL DEFAULT 0;
    ALTER TABLE sessions ADD COLUMN outcome TEXT;
    CREATE TABLE leases (
        name       TEXT PRIMARY KEY,
        holder     TEXT NOT NULL,
        expires_at REAL NOT NULL
    );
    CREATE TABLE kv (
        key   TEXT PRIMARY KEY,
        value TEXT NOT NULL
    );
    """,
    # 4: the skill a session was started with (its timeout bounds a dispatched run)
    """
    ALTER TABLE sessions ADD COLUMN skill TEXT;
    CREATE INDEX events_kind ON events(kind);
    """,
    # 5: fencing: a lease's generation grows on every takeover, so a holder that lost it (and
    # does not know yet) is refused when it writes with its old generation
    """
    ALTER TABLE leases ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;
    """,
    # 6: the agent of a session said done while subtasks were open (task.done_requested):
    # state the dispatcher reads with the session instead of searching the event log
    """
    ALTER TABLE sessions ADD COLUMN done_requested INTEGER NOT NULL DEFAULT 0;
    """,
    # 7: hooks run for events after a cursor that every writer advances (claims) in one
    # transaction: it exists from the start, so no runner has to guess where history ends
    """
    INSERT OR IGNORE INTO kv (key, value)
        SELECT 'hooks.cursor', CAST(COALESCE(MAX(id), 0) AS TEXT) FROM events;
    """,
    # 8: the process that runs an in-process (local) session, as pid:starttime: only it
    # may judge the session while it lives; another process must not call it lost
    """
    ALTER TABLE sessions ADD COLUMN owner TEXT;
    """,
    # 9: the pull request a task's branch was delivered by (`planeai pr`)
    """
    ALTER TABLE tasks ADD COLUMN pr_url TEXT;
    """,
    # 10: what each session did and cost (planeai.services.metrics). No foreign keys: the
    # figures outlive the session, its task and its project (delete, archive, purge). Token
    # columns are NULL while the agent CLI recorded nothing ("tokens unknown", never 0);
    # `models` holds tokens per model, `sources` the readers' byte offsets per file.
    """
    CREATE TABLE session_metrics (
        session_id     TEXT PRIMARY KEY,
        name           TEXT NOT NULL,
        project_id     INTEGER NOT NULL,
        project        TEXT NOT NULL,
        task_key       TEXT,
        provider       TEXT NOT NULL,
        agent          TEXT NOT NULL,
        started_at     TEXT NOT NULL,
        ended_at       TEXT,
        exit_code      INTEGER,
        wall_s         REAL NOT NULL DEFAULT 0,
        busy_s         REAL NOT NULL DEFAULT 0,
        idle_s         REAL NOT NULL DEFAULT 0,
        needs_input_s  REAL NOT NULL DEFAULT 0,
        input_tokens   INTEGER,
        output_tokens  INTEGER,
        cache_write_tokens INTEGER,
        cache_read_tokens  INTEGER,
        model          TEXT,
        cost_usd       REAL,
        cost_unpriced  TEXT,
        models         TEXT NOT NULL DEFAULT '{}',
        home           TEXT,
        sources        TEXT NOT NULL DEFAULT '{}',
        final          INTEGER NOT NULL DEFAULT 0,
        updated_at     TEXT NOT NULL
    );
    CREATE INDEX session_metrics_project ON session_metrics(project_id, started_at);
    CREATE INDEX session_metrics_task ON session_metrics(task_key);
    CREATE INDEX events_session ON events(session_id);
    """,
    # 11: issues synced from trackers (Jira, Plane), shared by both integrations. An item that
    # left its filter is marked `gone`, never deleted; `task_key` is the local task it was taken
    # into; `tracker_sync` is the per-scope state that survives restarts; `tracker_writebacks`
    # makes each write-back (comment, transition) happen once.
    """
    CREATE TABLE tracker_items (
        id             INTEGER PRIMARY KEY,
        source         TEXT NOT NULL,
        scope          TEXT NOT NULL,
        external_id    TEXT NOT NULL,
        external_key   TEXT NOT NULL,
        title          TEXT,
        description    TEXT,
        status         TEXT,
        priority       TEXT,
        assignee       TEXT,
        url            TEXT,
        remote_updated TEXT,
        task_key       TEXT,
        gone           INTEGER NOT NULL DEFAULT 0,
        first_seen     TEXT,
        last_seen      TEXT,
        UNIQUE (source, external_id)
    );
    CREATE INDEX tracker_items_scope ON tracker_items(source, scope);
    CREATE INDEX tracker_items_key ON tracker_items(source, external_key);
    CREATE INDEX tracker_items_task ON tracker_items(task_key);
    CREATE TABLE tracker_sync (
        source     TEXT NOT NULL,
        scope      TEXT NOT NULL,
        cursor     TEXT,
        last_sync  TEXT,
        last_error TEXT,
        items      INTEGER,
        PRIMARY KEY (source, scope)
    );
    CREATE TABLE tracker_writebacks (
        source      TEXT NOT NULL,
        external_id TEXT NOT NULL,
        task_key    TEXT,
        kind        TEXT NOT NULL,
        done_at     TEXT,
        PRIMARY KEY (source, external_id, kind)
    );
    """,
    # 12: Plane agent runs planeai works on (planeai.services.plane_agent): the task and
    # session each run got and where its activities stand, so `plane serve` picks up after a
    # restart; `plane_seen` remembers webhook delivery ids and feed activity ids (replays are
    # refused, a prompt is never handled twice)
    """
    CREATE TABLE plane_runs (
        run_id       TEXT PRIMARY KEY,
        workspace    TEXT NOT NULL,
        issue_id     TEXT,
        project_id   TEXT,
        task_key     TEXT,
        session_id   TEXT,
        state        TEXT NOT NULL,
        agent_status TEXT,
        last_post    REAL NOT NULL DEFAULT 0,
        last_excerpt TEXT,
        error        TEXT,
        created_at   TEXT NOT NULL,
        updated_at   TEXT NOT NULL
    );
    CREATE INDEX plane_runs_state ON plane_runs(state);
    CREATE TABLE plane_seen (
        kind    TEXT NOT NULL,
        id      TEXT NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (kind, id)
    );
    """,
    # 13: whether a task's agents run in the Docker sandbox (planeai.services.sandbox): NULL =
    # as configured; 1 / 0 = always / never (a task made from inside a sandbox is always 1)
    """
    ALTER TABLE tasks ADD COLUMN sandbox INTEGER;
    """,
    # 14: the machine a task's agents run on ([hosts.NAME], planeai.backends.remote): NULL =
    # wherever the dispatcher finds a free slot; "local" = this machine; else a host's name
    """
    ALTER TABLE tasks ADD COLUMN host TEXT;
    """,
]

SCHEMA_VERSION = len(MIGRATIONS)
