"""JSON responses rendered with orjson (FastAPI's ORJSONResponse is deprecated upstream)."""

from typing import Any

import orjson
from starlette.responses import JSONResponse


class Json(JSONResponse):
    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
