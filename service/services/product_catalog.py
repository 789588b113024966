"""Every cutout-backed product by name: how a worker finds the product a queued render names."""

from __future__ import annotations

from typing import Any

from service.services.cutout_products import CutoutProduct
from service.services.diagnoses import DIAGNOSIS, DIAGNOSIS_PICTURE, PIXELS_PICTURE
from service.services.ffi_lightcurves import FFI_EVENTS, FFI_LIGHTCURVE, FFI_LIGHTCURVE_PLOT
from service.services.movies import FRAME, MOVIE

_ALL: tuple[CutoutProduct[Any], ...] = (
    MOVIE,
    FRAME,
    DIAGNOSIS,
    DIAGNOSIS_PICTURE,
    PIXELS_PICTURE,
    FFI_LIGHTCURVE,
    FFI_LIGHTCURVE_PLOT,
    FFI_EVENTS,
)
CUTOUT_PRODUCTS: dict[str, CutoutProduct[Any]] = {product.product.name: product for product in _ALL}
assert len(CUTOUT_PRODUCTS) == len(_ALL), "two cutout products share a name"
