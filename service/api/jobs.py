"""Background jobs (cutouts that take longer than a request waits)."""

from typing import Annotated

import orjson
from fastapi import APIRouter, Path
from starlette.responses import Response

from service.api.problems import problem_responses
from service.deps import ServicesDep
from service.errors import NotFound
from service.schemas import JobView

router = APIRouter(tags=["FFI cutouts"])


@router.get(
    "/jobs/{job_id}",
    response_model=JobView,
    summary="Poll a job",
    description="Status (`queued`, `running`, `done`, `failed`), bytes received from MAST so far, and when done the "
    "URL that now answers from the cache; when failed, the problem document. Jobs are kept for an hour after "
    "they end. With replicas sharing a Redis (`TESS_SERVICE_STATE_REDIS_URL` or `TESS_SERVICE_CACHE_REDIS_URL`), "
    "any replica answers for a job another started (its view, published every second); 503 when this replica "
    "does not hold the job and that Redis cannot be reached.",
    responses={200: {"description": "The job."}, **problem_responses(404, 422, 503)},
)
async def get_job(
    job_id: Annotated[
        str,
        Path(
            pattern=r"^[0-9a-f]{32}$",
            description="Job id from a 202 answer's `Location`.",
            openapi_examples={"job": {"summary": "A job id", "value": "3f2b8c1d9e7a4b6c8d0e1f2a3b4c5d6e"}},
        ),
    ],
    services: ServicesDep,
) -> Response:
    """Return a job's state."""
    view = await services.jobs.find_view(job_id)
    if view is None:
        raise NotFound(f"There is no job {job_id}; jobs are forgotten an hour after they end.")
    return Response(orjson.dumps(view), media_type="application/json", headers={"Cache-Control": "no-store"})
