"""Values a connector received but could not type, kept so the model can report them.

A rejected value is stored NULL in its typed column, with the vendor's text in a
`rejected_*` column of the same raw row; `model.rejected_values` lists them (vendor, object,
record id, field, value). Being on the record's own row, a rejection lasts exactly as long as
the record holds the value: the next read of a corrected record clears it.
"""

from __future__ import annotations

REJECTED_TEXT_LIMIT = 200


def rejected_text(value: str) -> str:
    """The rejected value as reported: its first 200 characters (a 1 MB value stays in the vendor)."""
    return value if len(value) <= REJECTED_TEXT_LIMIT else value[:REJECTED_TEXT_LIMIT] + "…"
