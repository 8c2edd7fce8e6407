"""docs/reference/error-codes.md, made from the code: every error code a client can meet, what it
means and where it appears.

The codes and their meanings are the model's three enums (server/model/errors.py), each member
with the string under it; a code a domain error carries can also reach a top-level error's
`extensions.code` (a query or subscription refusing). `make error-codes` writes the file
(`python -m server.api.error_table`); tests/test_error_table.py fails when it is out of date.
"""

from __future__ import annotations

import ast
import enum
import inspect
import textwrap
from pathlib import Path

from server.api import schema as _schema  # noqa: F401  (imports every feature: every domain error is known)
from server.model.errors import DomainError, OperationErrorCode, RequestErrorCode, UserErrorCode

TABLE_FILE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "error-codes.md"

USER_ERRORS = "`userErrors[].code`"
OPERATION_ERRORS = "`Operation.error.code`"
TOP_LEVEL = "`extensions.code`"

# Each enum: the place its codes appear, and a heading.
SECTIONS: tuple[tuple[type[enum.StrEnum], str, str], ...] = (
    (UserErrorCode, USER_ERRORS, "A mutation's expected failures: `userErrors`"),
    (OperationErrorCode, OPERATION_ERRORS, "A failed or interrupted operation: `Operation.error`"),
    (RequestErrorCode, TOP_LEVEL, "Top-level errors: `errors[].extensions.code`"),
)


def meanings(codes: type[enum.StrEnum]) -> dict[str, str]:
    """Each member's meaning: the string literal under it in the class body (an attribute
    docstring, as Sphinx and mkdocstrings read them), on one line."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(codes)))
    body = tree.body[0].body  # type: ignore[attr-defined]
    found: dict[str, str] = {}
    for statement, following in zip(body, body[1:], strict=False):
        if (
            isinstance(statement, ast.Assign)
            and isinstance(statement.targets[0], ast.Name)
            and isinstance(following, ast.Expr)
            and isinstance(following.value, ast.Constant)
            and isinstance(following.value.value, str)
        ):
            found[statement.targets[0].id] = " ".join(inspect.cleandoc(following.value.value).split())
    return found


def domain_error_codes() -> set[str]:
    """The codes the server's domain errors carry: each can be a top-level error's code."""
    codes: set[str] = set()
    pending: list[type[DomainError]] = [DomainError]
    while pending:
        cls = pending.pop()
        pending.extend(cls.__subclasses__())
        if cls.__module__.startswith("server."):
            codes.add(str(cls.code))
    return codes


def places(code: str) -> list[str]:
    """Every place a code of this name can appear."""
    found = []
    if code in UserErrorCode.__members__:
        found.append(USER_ERRORS)
    if code in OperationErrorCode.__members__:
        found.append(OPERATION_ERRORS)
    if code in RequestErrorCode.__members__ or code in domain_error_codes():
        found.append(TOP_LEVEL)
    return found


def error_table() -> str:
    """The text of docs/reference/error-codes.md."""
    lines = [
        "# Error codes",
        "",
        "<!-- Generated from server/model/errors.py by `make error-codes`; do not edit by hand. -->",
        "",
        "A client meets a code in three places: a mutation's `userErrors[].code` (the GraphQL enum",
        "`UserErrorCode`), a failed operation's `error.code` (a String, and `errorCode` as the enum",
        "`OperationErrorCode`, which adds `OTHER` for a code a newer server wrote) and a top-level",
        "error's `extensions.code` (also the body of an HTTP refusal). A query or subscription that",
        "refuses its arguments gives the code of the same failure in a mutation or an operation.",
    ]
    for codes, place, heading in SECTIONS:
        described = meanings(codes)
        intro = inspect.cleandoc(codes.__doc__ or "").split("\n\n")[0]  # its first paragraph
        lines += ["", f"## {heading}", "", " ".join(intro.split()), ""]
        lines += ["| code | meaning | also in |", "|---|---|---|"]
        for code in codes:
            also = ", ".join(other for other in places(code.value) if other != place) or "-"
            lines.append(f"| `{code.value}` | {described.get(code.name, '')} | {also} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    TABLE_FILE.parent.mkdir(parents=True, exist_ok=True)
    TABLE_FILE.write_text(error_table())
    print(f"wrote {TABLE_FILE}")


if __name__ == "__main__":
    main()
