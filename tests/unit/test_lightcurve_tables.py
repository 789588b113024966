import io

import numpy as np
import pytest
from astropy.io import fits
from astropy.table import Table

from service.errors import BadUpstreamResponse
from service.rendering.lightcurve_tables import MissingTimeColumn, select_rows_and_columns, to_csv, to_fits, to_json
from service.services.dv import lightcurve_table, select_lightcurve
from service.upstream.exomast import DvHeaders, parse_dv_table


def table_with(text_values, times=(1.0, 2.0)):
    return lightcurve_table(dv_table_with(text_values, times))


def dv_table_with(text_values, times=(1.0, 2.0)):
    return parse_dv_table(
        {
            "fields": [
                {"colname": "TIME", "datatype": "real", "description": "t"},
                {"colname": "NOTE", "datatype": "varchar(20)", "description": "n"},
                {"colname": "N", "datatype": "int", "description": "n"},
            ],
            "data": [{"TIME": t, "NOTE": v, "N": i} for i, (t, v) in enumerate(zip(times, text_values, strict=True))],
        }
    )


def test_csv_quotes_text_with_commas_quotes_and_line_breaks():
    table = table_with(['a\nb, "c"', "plain"])
    payload, _ = to_csv(table)
    parsed = Table.read(payload.decode(), format="ascii.csv")
    assert list(parsed["NOTE"]) == ['a\nb, "c"', "plain"]
    assert list(parsed["N"]) == [0, 1]


def test_fits_survives_non_ascii_text_and_skips_unwritable_header_values():
    table = table_with(["é", "ok"])
    headers = DvHeaders({"OBJECT": "TIC é", "TICID": 5, "HUGE": 10**30, "BAD KEY": 1}, {"TPERIOD": 1.5, "X": None})
    payload, media_type = to_fits(table, headers.primary, headers.data, "TCE_1")
    assert media_type == "application/fits"
    with fits.open(io.BytesIO(payload), checksum=True) as hdus:
        assert hdus[0].header["TICID"] == 5
        assert "OBJECT" not in hdus[0].header and "HUGE" not in hdus[0].header
        assert hdus[1].header["TPERIOD"] == 1.5
        assert list(hdus[1].data["NOTE"]) == ["?", "ok"]


def test_fits_bytes_are_deterministic():
    table = table_with(["x", "y"])
    headers = DvHeaders({"TICID": 5}, {"TPERIOD": 1.5})
    assert (
        to_fits(table, headers.primary, headers.data, "TCE_1")[0]
        == to_fits(table, headers.primary, headers.data, "TCE_1")[0]
    )


def test_json_writes_nan_as_null_and_keeps_integer_types():
    table = table_with(["x", "y"], times=(1.0, None))
    document = to_json(table, {})[0]
    assert b'"TIME":[1.0,null]' in document and b'"N":[0,1]' in document


@pytest.mark.parametrize(
    "payload",
    [
        {"fields": [{"colname": "A", "datatype": "real"}, {"colname": "A ", "datatype": "real"}], "data": []},
        {"fields": [{"colname": "A", "datatype": "real"}], "data": [{"A": [1.0, 2.0]}]},
        {"fields": [{"colname": "A", "datatype": "int"}], "data": [{"A": 10**30}]},
        {"fields": [{"colname": "A", "datatype": "real"}], "data": [{"A": "abc"}]},
        {"fields": "nope", "data": []},
        {"fields": [], "data": [1, 2]},
    ],
)
def test_tables_we_cannot_trust_are_bad_upstream_responses(payload):
    with pytest.raises(BadUpstreamResponse):
        parse_dv_table(payload)


def test_a_window_needs_a_numeric_time_column():
    table = parse_dv_table({"fields": [{"colname": "TIME", "datatype": "varchar(5)"}], "data": [{"TIME": "x"}]})
    with pytest.raises(BadUpstreamResponse):
        select_lightcurve(table, None, 1.0, None)
    assert select_lightcurve(table, None, None, None).n_rows == 1


def test_the_renderer_says_what_is_missing_and_the_service_says_who():
    table = parse_dv_table({"fields": [{"colname": "TIME", "datatype": "varchar(5)"}], "data": [{"TIME": "x"}]})
    with pytest.raises(MissingTimeColumn, match="no numeric TIME column"):
        select_rows_and_columns(lightcurve_table(table), None, None, 2.0)
    with pytest.raises(BadUpstreamResponse, match="^ExoMAST's DV table has no numeric TIME column"):
        select_lightcurve(table, None, None, 2.0)


def test_window_and_columns():
    table = table_with(["a", "b"], times=(1.0, 2.0))
    selected = select_rows_and_columns(table, ["N", "TIME"], 1.5, None)
    assert [f.name for f in selected.fields] == ["N", "TIME"]
    assert selected.columns["TIME"].tolist() == [2.0] and selected.columns["N"].tolist() == [1]
    assert np.isnan(table_with(["a", "b"], times=(1.0, None)).columns["TIME"][1])
