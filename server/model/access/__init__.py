"""Who may read what: API tokens and roles, signed download links."""
