"""CSV meant for spreadsheets: a cell that a spreadsheet would run as a formula is written as
text instead (OWASP's CSV injection advice: a leading apostrophe)."""

import csv
from collections.abc import Iterable, Iterator
from typing import Any

# A cell starting with one of these is a formula (or becomes one) in Excel, LibreOffice, Sheets.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """Text a spreadsheet would evaluate, prefixed with `'`; numbers and the rest unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return f"'{value}"
    return value


class _Line:
    """csv.writer writes into this and hands each line back, so rows can be streamed."""

    def write(self, line: str) -> str:
        return line


def csv_lines(header: list[str], rows: Iterable[Iterable[Any]]) -> Iterator[str]:
    """The header and each row as one CSV line, every cell made spreadsheet-safe."""
    writer = csv.writer(_Line())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([spreadsheet_safe(cell) for cell in row])
