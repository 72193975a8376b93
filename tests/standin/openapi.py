"""OpenAPI documents (placeholder until the schema module lands)."""

from kutil import ApiError


def serve(ctx, parts):
    raise ApiError(404, "NotFound", "the server could not find the requested resource", {})
