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
EXAMPLE_DIAGNOSIS: dict[str, Any] = {}
