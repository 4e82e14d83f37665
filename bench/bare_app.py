"""Bench-only app: the production app plus ``POST /bench/constant`` answering a constant.

The registration benchmark compares ``POST /v1/jobs`` with this route in the very same app
(same middleware, same exception handlers, same uvicorn settings), so the ratio shows what the
registration itself costs: authentication, body validation, the database and the response.
The route never touches the body, the identity or the database. It is not part of the service.

    uvicorn --app-dir bench --factory bare_app:create_bench_app
"""

from __future__ import annotations

from fastapi import FastAPI, Response, status

from jp_primary.app import create_app

BARE_PATH = "/bench/constant"
# About the size of a registration's JSON answer, so both routes send similar bytes.
CONSTANT_BODY = (
    b'{"jobid":"https://lb.example.org:9000/AAAAAAAAAAAAAAAAAAAAAA",'
    b'"key":"AAAAAAAAAAAAAAAAAAAAAA","owner":"/C=XX/O=Bench/CN=bench",'
    b'"registered_at":"2026-01-01T00:00:00.000000Z",'
    b'"registered_by":"/C=XX/O=Bench/CN=bench","files":[]}'
)


async def constant() -> Response:
    return Response(CONSTANT_BODY, status.HTTP_201_CREATED, media_type="application/json")


def create_bench_app() -> FastAPI:
    app = create_app()
    app.add_api_route(BARE_PATH, constant, methods=["POST"], include_in_schema=False)
    return app
