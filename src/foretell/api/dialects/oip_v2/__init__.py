"""The Open Inference Protocol v2 (KServe, Triton, MLServer) under /v2."""

from foretell.api.dialects.oip_v2.routes import router

__all__ = ["router"]
