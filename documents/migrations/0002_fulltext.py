"""Full-text search on chunk text: an FTS5 index on SQLite, a stored tsvector with a GIN index on PostgreSQL.

Neither is visible to the ORM. On SQLite, any later migration that makes Django rebuild
documents_chunk (most AlterField/RemoveField operations do) drops the sync triggers with the
old table: such a migration must run SQLITE_TRIGGERS again (and `INSERT INTO
documents_chunk_fts(documents_chunk_fts) VALUES ('rebuild')`).
"""

from django.db import migrations

SQLITE_TABLE = """
CREATE VIRTUAL TABLE documents_chunk_fts USING fts5(
    text,
    content='documents_chunk',
    content_rowid='id',
    tokenize='unicode61 remove_diacritics 2'
)
"""

# The external-content pattern from the FTS5 documentation: the index is told the old text
# with the 'delete' command before a row goes away or changes.
SQLITE_TRIGGERS = [
    """
    CREATE TRIGGER documents_chunk_fts_insert AFTER INSERT ON documents_chunk BEGIN
        INSERT INTO documents_chunk_fts(rowid, text) VALUES (new.id, new.text);
    END
    """,
    """
    CREATE TRIGGER documents_chunk_fts_delete AFTER DELETE ON documents_chunk BEGIN
        INSERT INTO documents_chunk_fts(documents_chunk_fts, rowid, text) VALUES ('delete', old.id, old.text);
    END
    """,
    """
    CREATE TRIGGER documents_chunk_fts_update AFTER UPDATE OF id, text ON documents_chunk BEGIN
        INSERT INTO documents_chunk_fts(documents_chunk_fts, rowid, text) VALUES ('delete', old.id, old.text);
        INSERT INTO documents_chunk_fts(rowid, text) VALUES (new.id, new.text);
    END
    """,
]

POSTGRES_FORWARD = [
    """
    ALTER TABLE documents_chunk
        ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (to_tsvector('english', text)) STORED
    """,
    "CREATE INDEX documents_chunk_search_vector ON documents_chunk USING gin (search_vector)",
]

POSTGRES_REVERSE = [
    "DROP INDEX IF EXISTS documents_chunk_search_vector",
    "ALTER TABLE documents_chunk DROP COLUMN IF EXISTS search_vector",
]


def _execute(schema_editor, statements) -> None:
    for statement in statements:
        schema_editor.execute(statement)


def forward(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        _execute(schema_editor, [SQLITE_TABLE, *SQLITE_TRIGGERS])
        # Index chunks that existed before this migration.
        _execute(schema_editor, ["INSERT INTO documents_chunk_fts(documents_chunk_fts) VALUES ('rebuild')"])
    elif vendor == "postgresql":
        _execute(schema_editor, POSTGRES_FORWARD)
    else:
        raise RuntimeError(f"ragsecure has no full-text retrieval for the {vendor} database engine")


def reverse(apps, schema_editor) -> None:
    vendor = schema_editor.connection.vendor
    if vendor == "sqlite":
        _execute(
            schema_editor,
            [
                "DROP TRIGGER IF EXISTS documents_chunk_fts_insert",
                "DROP TRIGGER IF EXISTS documents_chunk_fts_delete",
                "DROP TRIGGER IF EXISTS documents_chunk_fts_update",
                "DROP TABLE IF EXISTS documents_chunk_fts",
            ],
        )
    elif vendor == "postgresql":
        _execute(schema_editor, POSTGRES_REVERSE)


class Migration(migrations.Migration):

    dependencies = [
        ("documents", "0001_initial"),
    ]

    operations = [
        migrations.RunPython(forward, reverse),
    ]
