"""Single events and per-transit checks: inject known signals into seeded noise and find them again."""

import math

import numpy as np
import pytest

from service.science.events import find_events
from service.science.transits import Ephemeris, check_transits

CADENCE_DAYS = 2.0 / 1440.0
START_BTJD = 1325.0
N_POINTS = 20_000
NOISE = 1e-3  # white noise per cadence, relative flux


def light_curve(seed=0, n=N_POINTS):
    """White noise at 2-min cadence: (time_btjd, flux)."""
    rng = np.random.default_rng(seed)
    return START_BTJD + np.arange(n) * CADENCE_DAYS, rng.normal(0.0, NOISE, n)


def box(time, t0, duration_hours):
    """1 inside the window [t0 - D/2, t0 + D/2], 0 outside."""
    return (np.abs(time - t0) <= duration_hours / 48.0).astype(float)


def depth_for(snr, duration_hours):
    """The depth that a box of this duration sees at ``snr`` in the white noise above."""
    return snr * NOISE / math.sqrt(duration_hours / 24.0 / CADENCE_DAYS)


def found_at(events, t0, duration_hours):
    return [e for e in events if abs(e.t0_btjd - t0) <= duration_hours / 48.0]


def test_an_injected_dip_is_found_at_its_time():
    time, flux = light_curve()
    t0, hours = START_BTJD + 11.3, 3.0
    depth = depth_for(15, hours)
    events = find_events(time, flux - depth * box(time, t0, hours))
    assert events, "the dip was not found"
    strongest = events[0]
    assert strongest.kind == "dip"
    assert abs(strongest.t0_btjd - t0) <= hours / 48.0
    assert hours / 2 <= strongest.duration_hours <= hours * 2
    assert strongest.depth_ppm == pytest.approx(depth * 1e6, rel=0.35)
    assert strongest.snr >= 7.1
    assert strongest.start_btjd < t0 < strongest.end_btjd


def test_a_bump_is_found_as_a_bump():
    time, flux = light_curve(seed=1)
    t0, hours = START_BTJD + 20.0, 8.0
    events = find_events(time, flux + depth_for(20, hours) * box(time, t0, hours))
    assert [e.kind for e in found_at(events, t0, hours)] == ["bump"]


def test_noise_alone_gives_no_events():
    time, flux = light_curve(seed=2)
    assert find_events(time, flux) == []


@pytest.mark.parametrize(
    ("time", "flux"),
    [
        ([], []),
        ([1325.0, 1325.1], [0.0, -0.5]),
        (np.linspace(1325.0, 1330.0, 500), np.full(500, np.nan)),
        (np.full(500, np.nan), np.zeros(500)),
    ],
    ids=["empty", "two points", "all-NaN flux", "all-NaN time"],
)
def test_too_little_data_gives_no_events(time, flux):
    assert find_events(time, flux) == []


def test_a_flat_series_gives_no_events():
    time, _ = light_curve()
    assert find_events(time, np.full(time.size, 1.0)) == []
    assert find_events(time, np.zeros(time.size)) == []


def three_dips():
    """Three well separated dips of increasing strength: (time, flux, [(t0, hours, snr)])."""
    time, flux = light_curve(seed=3)
    dips = [(START_BTJD + 5.0, 2.0, 12.0), (START_BTJD + 12.0, 4.0, 18.0), (START_BTJD + 20.0, 1.0, 25.0)]
    for t0, hours, snr in dips:
        flux = flux - depth_for(snr, hours) * box(time, t0, hours)
    return time, flux, dips


def test_max_events_keeps_the_strongest():
    time, flux, dips = three_dips()
    everything = find_events(time, flux)
    assert all(found_at(everything, t0, hours) for t0, hours, _ in dips)
    two = find_events(time, flux, max_events=2)
    assert len(two) == 2
    assert two == everything[:2]
    assert [e.snr for e in everything] == sorted((e.snr for e in everything), reverse=True)
    assert find_events(time, flux, max_events=0) == []


def test_kinds_are_honoured():
    time, flux = light_curve(seed=4)
    dip_t0, bump_t0, hours = START_BTJD + 6.0, START_BTJD + 18.0, 3.0
    flux = flux + depth_for(20, hours) * (box(time, bump_t0, hours) - box(time, dip_t0, hours))
    both = find_events(time, flux)
    assert found_at(both, dip_t0, hours) and found_at(both, bump_t0, hours)
    dips = find_events(time, flux, kinds=("dip",))
    assert dips and {e.kind for e in dips} == {"dip"}
    assert found_at(dips, dip_t0, hours) and not found_at(dips, bump_t0, hours)
    bumps = find_events(time, flux, kinds=("bump",))
    assert bumps and {e.kind for e in bumps} == {"bump"}
    assert found_at(bumps, bump_t0, hours) and not found_at(bumps, dip_t0, hours)
    assert find_events(time, flux, kinds=()) == []


def test_nan_tokens_and_unsorted_input_give_the_same_events():
    time, flux, _ = three_dips()
    clean = find_events(time, flux)
    rng = np.random.default_rng(5)
    order = rng.permutation(time.size)
    shuffled_time, shuffled_flux = time[order].tolist(), flux[order].tolist()
    # Missing values as they come out of a parsed table: NaN flux, NaN time, None; all of them must be dropped.
    shuffled_time += [float("nan"), 1330.0, None]
    shuffled_flux += [0.5, float("nan"), 0.5]
    assert find_events(shuffled_time, shuffled_flux) == clean


def test_time_and_flux_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        find_events([1.0, 2.0, 3.0], [0.0, 0.0])


def test_near_gap_is_set_next_to_a_long_gap_only():
    time, flux = light_curve(seed=6)
    gap_start = START_BTJD + 13.0
    keep = (time < gap_start) | (time >= gap_start + 1.0)  # a one-day gap, as between two orbits
    hours = 2.0
    by_gap, far = gap_start - hours / 48.0 - CADENCE_DAYS, START_BTJD + 7.0
    flux = flux - depth_for(20, hours) * (box(time, by_gap, hours) + box(time, far, hours))
    events = find_events(time[keep], flux[keep])
    [next_to_gap], [in_the_clear] = found_at(events, by_gap, hours), found_at(events, far, hours)
    assert next_to_gap.near_gap
    assert not in_the_clear.near_gap


def test_an_event_by_a_gap_is_found_where_its_data_are():
    """A long box half in the gap holds little data: it must not outscore the box that sits on the event."""
    time, flux = light_curve(seed=7)
    gap_end = START_BTJD + 14.0
    keep = (time < gap_end - 1.0) | (time >= gap_end)
    hours = 9.0
    t0 = gap_end + hours / 48.0 + CADENCE_DAYS
    events = find_events(time[keep], flux[keep] - depth_for(25, hours) * box(time[keep], t0, hours))
    assert [e.kind for e in found_at(events, t0, hours)] == ["dip"]


@pytest.mark.parametrize(
    ("hours", "ingress_hours", "snr"),
    [(6.0, 1.5, 60.0), (1.6, 0.0, 100.0)],
    ids=["trapezoid, 6 h", "box, 1.6 h"],
)
def test_a_strong_event_is_found_once(hours, ingress_hours, snr):
    """The best box is often shorter than the event: the rest of the event must not come back as more events."""
    time, flux = light_curve(seed=8)
    t0 = START_BTJD + 9.0
    inside_hours = hours / 2 - np.abs(time - t0) * 24
    shape = np.clip(inside_hours / ingress_hours, 0, 1) if ingress_hours else box(time, t0, hours)
    events = find_events(time, flux - depth_for(snr, hours) * shape)
    assert len(events) == 1
    assert found_at(events, t0, hours)


def transit_light_curve(times, hours=3.0, snr_each=10.0, seed=9):
    time, flux = light_curve(seed=seed)
    depth = depth_for(snr_each, hours)
    for t in times:
        flux = flux - depth * box(time, t, hours)
    return time, flux


def test_check_transits_finds_the_signal_in_every_transit():
    ephemeris = Ephemeris(period_days=3.1, epoch_btjd=START_BTJD + 1.0, duration_hours=3.0)
    times = [START_BTJD + 1.0 + 3.1 * n for n in range(9)]
    time, flux = transit_light_curve(times)
    check = check_transits(time, flux, ephemeris)
    assert [t.t_btjd for t in check.transits] == pytest.approx(times)
    assert check.n_predicted == check.n_observed == check.n_with_signal == len(times)
    assert not check.single_event
    assert all(t.snr is not None and t.snr >= 3.0 for t in check.transits)


def test_check_transits_calls_a_lone_transit_a_single_event():
    ephemeris = Ephemeris(period_days=3.1, epoch_btjd=START_BTJD + 1.0, duration_hours=3.0)
    lone = START_BTJD + 1.0 + 3.1 * 4
    time, flux = transit_light_curve([lone])
    check = check_transits(time, flux, ephemeris)
    assert check.n_predicted == check.n_observed == 9
    assert check.n_with_signal == 1
    assert check.single_event
    [with_signal] = [t for t in check.transits if t.has_signal]
    assert with_signal.t_btjd == pytest.approx(lone)
