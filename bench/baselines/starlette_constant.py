"""HTTP ceiling: bare Starlette answering every POST with the same pre-encoded JSON.

No validation, no model, no JSON encoding: it reads the request body (so the payload still
crosses the wire and is parsed as HTTP) and returns constant bytes shaped like a digits answer.
One uvicorn worker, httptools + uvloop, access log off: the most any Python ASGI server on this
core can do, which is what foretell's per-request overhead is compared against.

Run: python bench/baselines/starlette_constant.py --port 8000
"""

from __future__ import annotations

import argparse
import json

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

CONSTANT = json.dumps(
    {
        "label": [0],
        "probabilities": [[0.9999969, 2e-10, 1e-8, 7e-9, 4e-7, 1e-7, 3e-8, 6e-7, 2e-7, 1e-6]],
    }
).encode()


async def predict(request: Request) -> Response:
    """Drain the body, answer the constant."""
    await request.body()
    return Response(CONSTANT, media_type="application/json")


app = Starlette(routes=[Route("/predict", predict, methods=["POST"])])


def main() -> None:
    """Parse the command line and serve with one uvicorn worker."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        http="httptools",
        loop="uvloop",
        workers=1,
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
