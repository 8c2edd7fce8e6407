"""GraphQL over HTTP's two response types, chosen from the request's Accept header.

`application/json` is what every existing client gets (no Accept, `*/*`, or naming it): a
200 whatever the errors, with a `data` entry, exactly as before. A client that asks for
`application/graphql-response+json`, the spec's current type, gets the spec's status codes:
400 on a request error (a document that does not parse or validate, variables that do not
coerce), whose body then has no `data` entry, since nothing was executed.
"""

from __future__ import annotations

from collections.abc import Sequence

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
SUPPORTED = (JSON, GRAPHQL_RESPONSE)  # JSON first: it wins a tie (`*/*`)


def response_type(accept: str | None) -> str:
    """The supported type the Accept header prefers; `application/json` when it names none.

    Highest quality first; on a tie a type named outright beats one a wildcard covers, then
    the one listed first. A client that accepts neither still gets JSON (the spec allows it)."""
    ranges = _parse(accept or "")
    best: tuple[float, int, int] | None = None
    chosen = JSON
    for media_type in SUPPORTED:
        rank = _rank(media_type, ranges)
        if rank is not None and rank[0] > 0 and (best is None or rank > best):
            best, chosen = rank, media_type
    return chosen


def _parse(accept: str) -> list[tuple[str, float]]:
    ranges = []
    for part in accept.split(","):
        media_range, *params = (piece.strip() for piece in part.split(";"))
        if not media_range:
            continue
        quality = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    quality = float(value.strip())
                except ValueError:
                    quality = 0.0
        ranges.append((media_range.lower(), quality))
    return ranges


def _rank(media_type: str, ranges: Sequence[tuple[str, float]]) -> tuple[float, int, int] | None:
    """(quality, specificity, -position) of the most specific range that covers `media_type`."""
    main = media_type.split("/")[0]
    found: tuple[float, int, int] | None = None
    for position, (media_range, quality) in enumerate(ranges):
        specificity = {media_type: 2, f"{main}/*": 1, "*/*": 0}.get(media_range)
        if specificity is not None and (found is None or specificity > found[1]):
            found = (quality, specificity, -position)
    return found
