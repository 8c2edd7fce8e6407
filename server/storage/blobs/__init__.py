"""The content-addressed blob store: blobs as files, small ones appended to pack files
(where each packed blob is, the database keeps: db/packs_repo.py)."""
