"""Errors that name the file, row and field of bad input."""

from __future__ import annotations


class BadInput(Exception):
    """Input that cannot be used: names the file, the row or cell, what was found and what was expected.

    Raised by parsers and sources for bad data (never retried); the flow quarantines the batch
    with ``reason()`` as its reason file.
    """

    def __init__(
        self,
        file: str,
        message: str,
        *,
        row: int | None = None,
        field: str | None = None,
        found: object = None,
        expected: str | None = None,
    ) -> None:
        self.file = file
        self.message = message
        self.row = row
        self.field = field
        self.found = found
        self.expected = expected
        super().__init__(self.reason())

    def reason(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row}"
        if self.field is not None:
            where += f", field {self.field!r}"
        text = f"{where}: {self.message}"
        if self.found is not None:
            text += f"; found {self.found!r}"
        if self.expected is not None:
            text += f"; expected {self.expected}"
        return text


class SourceUnavailable(Exception):
    """A transient fault reaching a source (network, 5xx, rate limit): the only thing retried."""
