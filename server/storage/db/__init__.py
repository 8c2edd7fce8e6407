"""The database: engine and migrations, tables, the repositories that turn rows into model
records, keyset cursors, the one-server-per-database lock."""
