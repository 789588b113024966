"""A TESScut v0.1 mirror under ``/tesscut/api/v0.1/``: unmodified astroquery ``Tesscut`` works against the service.

Point astroquery at the service with ``[mast] server = http://host:port`` in ``astroquery.cfg``. The wire format is
TESScut's (upstream-apis.md sections 3 and 5), followed the way the MAST emulator follows it:

- ``sector`` and ``astrocut`` answer GET query strings and POST form bodies alike (astroquery POSTs ``get_sectors``
  and ``get_cutouts`` with ``Accept: application/json`` and GETs ``download_cutouts``): ``Accept`` is never looked
  at, form values win over query values, the first of repeated values counts, unknown parameters are ignored.
- ``astrocut`` answers a zip of every file TESScut returned, one per sector/camera/CCD; "no data" is a 200 with
  ``{"msg": ...}``, which astroquery turns into a ``NoResultsWarning``.
- Bad input is a 400 whose problem document also carries TESScut's ``msg``; MAST's overload stays a 503/504, which
  astroquery raises as ``HTTPError``.

Answers come from the cache `/sectors` and `/cutout` fill, and fill it for them. The package holds the
parameters (`params`), their OpenAPI (`openapi`) and the routes (`routes`).
"""

from service.api.tesscut_mirror.routes import router

__all__ = ["router"]
