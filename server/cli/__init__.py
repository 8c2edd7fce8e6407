"""The `backups` command: main.py (serve, export-schema), tokens.py (`backups token`), keys.py (`backups key`)."""
