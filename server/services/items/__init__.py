"""One item back: browsing a restore point (or a local copy) one folder at a time, downloading
one item, and choosing the items an apply puts back."""
