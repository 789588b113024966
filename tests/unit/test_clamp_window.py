"""Cutting a requested window to a sector's frames (`tpf.clamp_window`)."""

import pytest

from service.tpf import WindowOutsideSector, clamp_window

FIRST, LAST = 1325.33, 1353.16


@pytest.mark.parametrize(
    ("start", "end", "slack", "cut", "clamped"),
    [
        (1334.0, 1335.0, 0.0, (1334.0, 1335.0), None),
        (1325.3, 1326.0, 0.0, (FIRST, 1326.0), "start"),
        (1352.0, 1353.2, 0.0, (1352.0, LAST), "end"),
        (1300.0, 1400.0, 0.0, (FIRST, LAST), "both"),
        (FIRST, LAST, 0.0, (FIRST, LAST), None),
        # Within the slack of an edge but holding no frame time: that edge's instant (the nearest frame).
        (1353.17, 1353.175, 0.02, (LAST, LAST), "both"),
        (1325.315, 1325.32, 0.02, (FIRST, FIRST), "both"),
    ],
)
def test_a_window_overlapping_the_sector_is_cut_to_it(start, end, slack, cut, clamped):
    window = clamp_window(start, end, FIRST, LAST, slack)
    assert (window.start_btjd, window.end_btjd) == cut
    assert (window.requested_start_btjd, window.requested_end_btjd) == (start, end)
    assert window.clamped == clamped
    assert window.sector_range_btjd == (FIRST, LAST)


@pytest.mark.parametrize(
    ("start", "end", "slack"), [(1300.0, 1325.0, 0.0), (1353.2, 1360.0, 0.0), (1353.2, 1354.0, 0.02)]
)
def test_a_window_with_no_frame_is_refused_with_the_sectors_span(start, end, slack):
    with pytest.raises(WindowOutsideSector, match="whose frames span BTJD 1325.3300–1353.1600") as refused:
        clamp_window(start, end, FIRST, LAST, slack)
    assert (refused.value.first_btjd, refused.value.last_btjd) == (FIRST, LAST)
