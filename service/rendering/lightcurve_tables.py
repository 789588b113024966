"""Serialise light-curve tables as JSON, CSV or FITS: pure functions, table in, (bytes, media type) out.

Typed on their own inputs (`LightCurveTable`, plain header dicts): the caller converts whatever its source gave it,
and maps `MissingTimeColumn` to an error that names that source.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
from astropy.io import fits

JSON_MEDIA_TYPE = "application/json"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
FITS_MEDIA_TYPE = "application/fits"

# Keywords that describe a FITS file's own structure: astropy writes its own, copying them would lie.
_STRUCTURAL_KEYWORDS = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|NEXTEND|XTENSION|PCOUNT|GCOUNT|TFIELDS|EXTNAME|EXTVER|CHECKSUM|DATASUM"
    r"|T(TYPE|FORM|UNIT|DISP|DIM|NULL|SCAL|ZERO)\d+|END|COMMENT|HISTORY)$"
)
_FITS_KEYWORD = re.compile(r"^[A-Z0-9_-]{1,8}$")


@dataclass(frozen=True)
class ColumnInfo:
    """What describes one column: its name, unit (None when it has none), description and datatype."""

    name: str
    unit: str | None = None
    description: str = ""
    datatype: str = ""


@dataclass(frozen=True)
class LightCurveTable:
    """A light curve, column-oriented: floats are float64 with NaN for missing, ints int64, text str.

    ``fields`` lists the columns in output order; ``columns`` maps each field's name to its values.
    """

    fields: tuple[ColumnInfo, ...]
    columns: Mapping[str, np.ndarray]

    @property
    def n_rows(self) -> int:
        """Return the number of rows."""
        return len(next(iter(self.columns.values()))) if self.columns else 0


class MissingTimeColumn(ValueError):
    """A time window was asked of a table without a numeric TIME column."""


def select_rows_and_columns(
    table: LightCurveTable, columns: list[str] | None, start_btjd: float | None, end_btjd: float | None
) -> LightCurveTable:
    """Return the rows with ``start <= TIME <= end`` and only ``columns`` (all when None), in that order.

    Raises `MissingTimeColumn` when a window is asked and the table has no numeric TIME column.
    """
    keep = np.ones(table.n_rows, dtype=bool)
    if start_btjd is not None or end_btjd is not None:
        time = table.columns.get("TIME")
        if time is None or time.dtype.kind not in "fiu":
            raise MissingTimeColumn("The table has no numeric TIME column, so it cannot be cut to start/end.")
        with np.errstate(invalid="ignore"):
            if start_btjd is not None:
                keep &= time >= start_btjd
            if end_btjd is not None:
                keep &= time <= end_btjd
    names = columns if columns is not None else [f.name for f in table.fields]
    by_name = {f.name: f for f in table.fields}
    return LightCurveTable(
        tuple(by_name[name] for name in names),
        {name: table.columns[name] if keep.all() else table.columns[name][keep] for name in names},
    )


def _json_column(values: np.ndarray) -> Any:
    if values.dtype.kind in "fiub":
        return values  # orjson writes numpy arrays natively, NaN as null
    return values.tolist()


def to_json(table: LightCurveTable, meta: dict[str, Any]) -> tuple[bytes, str]:
    """Column-oriented JSON: ``meta`` plus columns, units, descriptions and datatypes; NaN becomes null."""
    document = {
        **meta,
        "n_rows": table.n_rows,
        "columns": {f.name: _json_column(table.columns[f.name]) for f in table.fields},
        "units": {f.name: f.unit for f in table.fields},
        "descriptions": {f.name: f.description for f in table.fields},
        "datatypes": {f.name: f.datatype for f in table.fields},
    }
    return orjson.dumps(document, option=orjson.OPT_SERIALIZE_NUMPY), JSON_MEDIA_TYPE


def _csv_text(value: str) -> str:
    """Quote a text cell as RFC 4180 asks: when it holds a comma, a quote or a line break."""
    if any(ch in value for ch in ',"\r\n') or value != value.strip():
        return '"' + value.replace('"', '""') + '"'
    return value


def _csv_cells(values: np.ndarray) -> list[str]:
    if values.dtype.kind in "fiu":
        # orjson writes the shortest round-tripping repr of each number, and null for NaN.
        text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY).decode()[1:-1]
        return [] if not text else ["" if cell == "null" else cell for cell in text.split(",")]
    return [_csv_text(str(v)) for v in values.tolist()]


def to_csv(table: LightCurveTable) -> tuple[bytes, str]:
    """CSV with a header row of column names; missing values are empty cells."""
    columns = [_csv_cells(table.columns[f.name]) for f in table.fields]
    lines = [",".join(f.name for f in table.fields)]
    lines.extend(",".join(row) for row in zip(*columns, strict=True))
    return ("\n".join(lines) + "\n").encode(), CSV_MEDIA_TYPE


def _header_cards(keywords: Mapping[str, Any]) -> list[fits.Card]:
    """Turn a header dict into FITS cards, skipping what FITS cannot hold as given."""
    cards = []
    for key, value in keywords.items():
        if _STRUCTURAL_KEYWORDS.match(key) or not _FITS_KEYWORD.match(key):
            continue
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue  # FITS has no null or NaN header value
        if isinstance(value, int) and not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            continue
        if isinstance(value, bool | int | float | str):
            try:
                card = fits.Card(key, value)
                card.verify("exception")
            except (ValueError, fits.VerifyError):
                continue  # e.g. non-ASCII text, which a FITS header cannot carry
            cards.append(card)
    return cards


def _fits_column(name: str, unit: str | None, values: np.ndarray) -> fits.Column:
    if values.dtype.kind == "f":
        return fits.Column(name=name, format="D", unit=unit, array=values)
    if values.dtype.kind in "iu":
        return fits.Column(name=name, format="K", unit=unit, array=values)
    # FITS text is ASCII: anything else is replaced rather than failing the whole file.
    ascii_values = np.array([v.encode("ascii", "replace") for v in values.tolist()], dtype=bytes)
    width = max(1, ascii_values.dtype.itemsize)
    return fits.Column(name=name, format=f"{width}A", unit=unit, array=ascii_values)


def to_fits(
    table: LightCurveTable,
    primary_header: Mapping[str, Any],
    data_header: Mapping[str, Any],
    extname: str,
    *,
    images: Sequence[tuple[str, np.ndarray, Mapping[str, Any]]] = (),
    note: str = "DV time series",
) -> tuple[bytes, str]:
    """Write a FITS file like a DVT: the primary header, then table ``extname`` with units and the data header.

    ``images`` follow as image extensions, each (name, data, header). ``note`` is the checksum cards' comment.
    Header keywords FITS cannot hold as given (structural ones, null, NaN, non-ASCII text) are left out.
    """
    primary = fits.PrimaryHDU(header=fits.Header(_header_cards(primary_header)))
    columns = [_fits_column(f.name, f.unit, table.columns[f.name]) for f in table.fields]
    extension = fits.BinTableHDU.from_columns(columns, header=fits.Header(_header_cards(data_header)), name=extname)
    extra = [fits.ImageHDU(data, header=fits.Header(_header_cards(header)), name=name) for name, data, header in images]
    hdus = fits.HDUList([primary, extension, *extra])
    hdus.update_extend()  # writing would add EXTEND to the primary header after its checksum otherwise
    for hdu in hdus:
        # A fixed comment instead of astropy's timestamp: the same table always gives the same bytes (and ETag).
        hdu.add_checksum(when=note)
    buffer = io.BytesIO()
    hdus.writeto(buffer, checksum=False)
    return buffer.getvalue(), FITS_MEDIA_TYPE
