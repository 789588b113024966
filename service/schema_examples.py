"""The longer response examples Swagger UI shows: real output on the emulator's targets.

Kept apart from the models in `schemas`, which they would drown.
"""

from typing import Any

EXAMPLE_FFI_LIGHTCURVE: dict[str, Any] = {
    "tic_id": 206462606,
    "ra_deg": 330.9041,
    "dec_deg": -19.971,
    "sector": 1,
    "camera": 1,
    "ccd": 3,
    "size_px": 50,
    "target_pixel": {"x": 25.28, "y": 25.247},
    "aperture_pixels": [[25, 24], [24, 25], [25, 25], [26, 25], [25, 26]],
    "aperture": {
        "method": "threshold",
        "n_pixels": 5,
        "threshold_e_per_s": 146.5,
        "description": "Pixels of the median image above its median + 3 sigma, around the target.",
    },
    "background": {"n_pixels": 400, "description": "Per-frame median of faint pixels."},
    "quality_bits": {"32": "momentum dump", "2048": "stray light"},
    "n_rows": 2,
    "columns": {
        "TIME": [1325.3285, 1325.3494],
        "FLUX": [18712.4, 18719.9],
        "FLUX_ERR": [4.4, 4.4],
        "BACKGROUND": [7425.1, 7411.8],
        "CENTROID_COL": [25.28, 25.279],
        "CENTROID_ROW": [25.248, 25.247],
        "QUALITY": [2048, 2048],
    },
    "units": {"TIME": "BJD - 2457000, days", "FLUX": "e-/s", "QUALITY": None},
    "descriptions": {"TIME": "Mid-exposure time of the FFI", "FLUX": "Net flux in the aperture"},
    "datatypes": {"TIME": "real", "FLUX": "real", "QUALITY": "int"},
}

EXAMPLE_EVENT_LIST: dict[str, Any] = {
    "tic_id": 214568914,
    "tce_id": "s0001-s0001:TCE_1",
    "sector": None,
    "source": "dv",
    "min_snr": 7.1,
    "max_events": 10,
    "kind": None,
    "n_points": 18103,
    "events": [
        {
            "t0_btjd": 1334.45506,
            "start_btjd": 1334.21964,
            "end_btjd": 1334.69048,
            "duration_hours": 11.3,
            "kind": "dip",
            "depth_ppm": 22993.7,
            "snr": 68.69,
            "n_points": 333,
            "near_gap": False,
            "in_model_transit": True,
            "links": {
                "movie": "/tic/214568914/movie?start=1333.74881&end=1335.16131",
                "plot": "/tic/214568914/tces/s0001-s0001:TCE_1/lightcurve.png?x=time&start=1333.74881"
                "&end=1335.16131&highlight=1334.21964,1334.69048",
                "diagnosis": "/tic/214568914/diagnosis?start=1334.21964&end=1334.69048",
            },
        }
    ],
    "predicted_transits": {
        "n_predicted": 2,
        "n_observed": 2,
        "n_with_signal": 1,
        "single_event": True,
        "transits": [
            {
                "t_btjd": 1334.45,
                "depth_ppm": 21075.0,
                "depth_err_ppm": 297.0,
                "snr": 70.95,
                "model_depth_ppm": 21198.3,
                "coverage": 0.984,
                "n_points": 372,
                "observed": True,
                "has_signal": True,
            },
            {
                "t_btjd": 1346.0686,
                "depth_ppm": -569.4,
                "depth_err_ppm": 297.0,
                "snr": -1.92,
                "model_depth_ppm": 21198.3,
                "coverage": 1.0,
                "n_points": 378,
                "observed": True,
                "has_signal": False,
            },
        ],
    },
}
# TIC 214568914's dip, 1334-1335 (the track's points cut to three).
EXAMPLE_DIAGNOSIS: dict[str, Any] = {
    "tic_id": 214568914,
    "ra_deg": 340.8004,
    "dec_deg": -36.3439,
    "sector": 1,
    "size_px": 50,
    "start_btjd": 1334.0,
    "end_btjd": 1335.0,
    "requested_start_btjd": 1334.0,
    "requested_end_btjd": 1335.0,
    "clamped": None,
    "verdict": "moving_object",
    "confidence": 0.983,
    "explanation": "A source moving 35 arcsec/h crosses the aperture pixels, 2.5 px from the target at BTJD "
    "1334.450: the known solar-system body (90917) 2002 TV318 (MB>Middle); the dip is not on the "
    "star.",
    "target_px": {"column": 24.866, "row": 24.902},
    "event": {
        "in_event": {"n_frames": 48, "first_btjd": 1334.01621, "last_btjd": 1334.99537},
        "reference_before": {"n_frames": 47, "first_btjd": 1332.26616, "last_btjd": 1333.24538},
        "reference_after": {"n_frames": 48, "first_btjd": 1335.76626, "last_btjd": 1336.74541},
        "flagged_excluded": 0,
        "aperture_pixels": 20,
        "depth_ppm": -63249.9,
        "depth_err_ppm": 2764.9,
        "depth_snr": -22.88,
    },
    "difference_image": {
        "centroid_px": {"column": 23.123, "row": 26.951},
        "offset_px": {"column": -1.744, "row": 2.05},
        "offset_arcsec": 56.51,
        "offset_sigma": 116.65,
        "snr": -61.06,
        "nearest_star": {"tic_id": 214568914, "separation_arcsec": 54.9, "tmag": 15.34},
    },
    "moving_source": {
        "points": [
            {"btjd": 1333.91208, "column": 3.754, "row": 19.877},
            {"btjd": 1333.9329, "column": 4.608, "row": 20.25},
            {"btjd": 1333.95371, "column": 5.327, "row": 20.478},
        ],
        "speed_px_per_hour": 1.666,
        "speed_arcsec_per_hour": 34.99,
        "position_angle_deg": 221.6,
        "closest_approach_px": 2.496,
        "closest_approach_btjd": 1334.44994,
        "crosses": "aperture",
    },
    "background": {
        "level_e_per_s": 132.725,
        "reference_level_e_per_s": 133.842,
        "departure_sigma": 0.75,
        "departs": False,
        "ramp": False,
    },
    "quality": {"flags": 0, "names": [], "flagged_frames": 0},
    "known_objects": {
        "status": "ok",
        "epoch_btjd": 1334.5,
        "objects": [
            {
                "name": "2002 TV318",
                "number": 90917,
                "class": "MB>Middle",
                "v_mag": 15.3,
                "ra_deg": 340.816585,
                "dec_deg": -36.356001,
                "predicted_px": {"column": 24.009, "row": 27.25},
                "rate_px_per_hour": {"column": 1.566, "row": 0.57},
                "rate_arcsec_per_hour": 33.12,
                "matches_track": True,
            }
        ],
        "detail": None,
    },
    "links": {
        "picture": "/tic/214568914/diagnosis.png?sector=1&start=1334.00000&end=1335.00000",
        "pixels": "/tic/214568914/pixels.png?sector=1&start=1334.00000&end=1335.00000",
        "movie": "/tic/214568914/movie?sector=1&start=1334.00000&end=1335.00000",
    },
}
