"""Refuse an API write whose body is not JSON (415), before anything reads it."""

from starlette.types import ASGIApp, Receive, Scope, Send

from app.core.errors import problem


def is_json(content_type: str) -> bool:
    """`application/json` or `application/<anything>+json`, with any parameters."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


class JsonBodyMiddleware:
    """415 `unsupported_media_type` for a POST under `prefix` that carries a body (or names a
    media type) other than JSON. A POST with neither, such as a key's revocation, passes."""

    def __init__(self, app: ASGIApp, prefix: str = "/v1/") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].startswith(self.prefix)
        ):
            await self.app(scope, receive, send)
            return
        content_type = None
        has_body = False
        for key, value in scope.get("headers", ()):
            if key == b"content-type":
                content_type = value.decode("latin-1")
            elif key == b"transfer-encoding" or (key == b"content-length" and value != b"0"):
                has_body = True
        if content_type is None and not has_body or content_type and is_json(content_type):
            await self.app(scope, receive, send)
            return
        response = problem(
            415,
            "unsupported_media_type",
            "Unsupported media type",
            "Send the body as JSON, with the header Content-Type: application/json.",
        )
        await response(scope, receive, send)
