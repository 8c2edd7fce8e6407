"""The GraphQL fast path: everything that relies on private Strawberry and graphql-core internals.

- fast_execution: an execution context that resolves plain leaf fields without graphql-core's
  per-field machinery, and shares one subscription event's result among its subscribers;
- event_hooks: an extensions runner that skips per-event hooks that would do nothing;
- shared_frames: a shared event's websocket frame encoded once.

Off with BACKUPS_FAST_EXECUTION=0: stock Strawberry execution and subscription handling, with the
same results (CI runs the API tests both ways). strawberry-graphql and graphql-core are pinned to
exact versions in pyproject.toml because of these modules: check them when raising either pin.
"""
