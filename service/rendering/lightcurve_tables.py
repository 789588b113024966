"""Serialise DV time series as JSON, CSV or FITS: pure functions, table in, (bytes, media type) out."""

from __future__ import annotations

import csv
import io
import math
import re
from typing import Any

import numpy as np
import orjson
from astropy.io import fits

from service.upstream.exomast import DvHeaders, DvTable

JSON_MEDIA_TYPE = "application/json"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
FITS_MEDIA_TYPE = "application/fits"

# Keywords that describe a FITS file's own structure: astropy writes its own, copying them would lie.
_STRUCTURAL_KEYWORDS = re.compile(
    r"^(SIMPLE|BITPIX|NAXIS\d*|EXTEND|NEXTEND|XTENSION|PCOUNT|GCOUNT|TFIELDS|EXTNAME|EXTVER|CHECKSUM|DATASUM"
    r"|T(TYPE|FORM|UNIT|DISP|DIM|NULL|SCAL|ZERO)\d+|END|COMMENT|HISTORY)$"
)
_FITS_KEYWORD = re.compile(r"^[A-Z0-9_-]{1,8}$")


def select_rows_and_columns(
    table: DvTable, columns: list[str] | None, start_btjd: float | None, end_btjd: float | None
) -> DvTable:
    """Return the rows with ``start <= TIME <= end`` and only ``columns`` (all when None), in that order."""
    keep = np.ones(table.n_rows, dtype=bool)
    if start_btjd is not None or end_btjd is not None:
        time = table.columns["TIME"]
        with np.errstate(invalid="ignore"):
            if start_btjd is not None:
                keep &= time >= start_btjd
            if end_btjd is not None:
                keep &= time <= end_btjd
    names = columns if columns is not None else [f.name for f in table.fields]
    by_name = {f.name: f for f in table.fields}
    return DvTable(
        tuple(by_name[name] for name in names),
        {name: table.columns[name] if keep.all() else table.columns[name][keep] for name in names},
    )


def _json_column(values: np.ndarray) -> Any:
    if values.dtype.kind in "fiub":
        return values  # orjson writes numpy arrays natively, NaN as null
    return values.tolist()


def to_json(table: DvTable, meta: dict[str, Any]) -> tuple[bytes, str]:
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


def _csv_cells(values: np.ndarray) -> list[str]:
    if values.dtype.kind in "fiu":
        # orjson writes the shortest round-tripping repr of each number, and null for NaN.
        text = orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY).decode()[1:-1]
        return [] if not text else ["" if cell == "null" else cell for cell in text.split(",")]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerows([v] for v in values.tolist())
    return out.getvalue().splitlines()


def to_csv(table: DvTable) -> tuple[bytes, str]:
    """CSV with a header row of column names; missing values are empty cells."""
    columns = [_csv_cells(table.columns[f.name]) for f in table.fields]
    lines = [",".join(f.name for f in table.fields)]
    lines.extend(",".join(row) for row in zip(*columns, strict=True))
    return ("\n".join(lines) + "\n").encode(), CSV_MEDIA_TYPE


def _header_cards(keywords: dict[str, Any]) -> list[fits.Card]:
    """Turn an ExoMAST header dict into FITS cards, skipping what FITS cannot hold as given."""
    cards = []
    for key, value in keywords.items():
        if _STRUCTURAL_KEYWORDS.match(key) or not _FITS_KEYWORD.match(key):
            continue
        if value is None or (isinstance(value, float) and not math.isfinite(value)):
            continue  # FITS has no null or NaN header value
        if isinstance(value, bool | int | float | str):
            cards.append(fits.Card(key, value))
    return cards


def _fits_format(values: np.ndarray) -> str:
    if values.dtype.kind == "f":
        return "D"
    if values.dtype.kind in "iu":
        return "K"
    width = max(1, int(values.dtype.itemsize // 4))
    return f"{width}A"


def to_fits(table: DvTable, headers: DvHeaders, extname: str) -> tuple[bytes, str]:
    """Write a FITS file like a DVT: the DV primary header, then one binary table with units and the DV data header."""
    primary = fits.PrimaryHDU(header=fits.Header(_header_cards(headers.primary)))
    columns = [
        fits.Column(name=f.name, format=_fits_format(table.columns[f.name]), unit=f.unit, array=table.columns[f.name])
        for f in table.fields
    ]
    extension = fits.BinTableHDU.from_columns(columns, header=fits.Header(_header_cards(headers.data)), name=extname)
    buffer = io.BytesIO()
    fits.HDUList([primary, extension]).writeto(buffer, checksum=True)
    return buffer.getvalue(), FITS_MEDIA_TYPE
