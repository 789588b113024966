"""Answer ``HEAD`` like ``GET`` without the body (``curl -I`` works on every route)."""

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_HEAD_MARK = "tess_service.head"


def is_head_request(scope: Scope) -> bool:
    """Return whether this (now GET) request arrived as HEAD, so a handler may skip producing a body."""
    return bool(scope.get(_HEAD_MARK))


class HeadAsGetMiddleware:
    """Route HEAD requests as GET and drop the body, keeping every header (Content-Length included).

    FastAPI routes are GET-only, and adding HEAD to each route would double the OpenAPI operations.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Handle one ASGI call."""
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return

        async def send_without_body(message: Message) -> None:
            if message["type"] == "http.response.body":
                if message.get("more_body", False):
                    return
                message = {"type": "http.response.body", "body": b"", "more_body": False}
            await send(message)

        await self.app({**scope, "method": "GET", _HEAD_MARK: True}, receive, send_without_body)
