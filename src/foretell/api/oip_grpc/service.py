"""The GRPCInferenceService: OIP v2's gRPC methods, each a translation over the same operations
as its HTTP route (oip_v2.dataplane), answering exactly what that route answers.

Health (ServerLive, ServerReady) is open, as every probe is; metadata and model readiness need a
key with the read scope; ModelInfer one with the predict scope, or none for a public model when
anonymous access is on; the repository's index the read scope, its load and unload the deploy
scope (see oip_v2.repository). The key comes in the call's metadata, as HTTP sends it in a header:
`authorization: Bearer <key>` (or Token, Api-Key; or `x-api-key: <key>`).

Inferences are recorded, as over HTTP: the response's `parameters["prediction_id"]` names the
record under /v1/predictions, and its `id` echoes the request's (or is that record id)."""

from __future__ import annotations

import math
from collections.abc import Container, Mapping
from typing import Any

from foretell.api.auth import authorize
from foretell.api.dialects.oip_v2 import dataplane, repository, specs
from foretell.api.dialects.oip_v2.schemas import RequestInput
from foretell.api.oip_grpc import contents
from foretell.api.oip_grpc.proto import grpc_predict_v2_pb2 as pb
from foretell.auth import Authenticator
from foretell.config import Settings
from foretell.domain.access import Principal, Scope
from foretell.errors import InvalidRequest, NotFound, echo
from foretell.service import PredictionService, VersionView

Metadata = Mapping[str, str]  # the call's metadata: lowercase keys, as HTTP/2 headers


class InferenceService:
    """The RPCs, each a coroutine on the app's loop taking the request and the call's metadata
    and answering the response message or raising a domain error (`calls` runs them)."""

    def __init__(
        self,
        service: PredictionService,
        settings: Settings,
        authenticator: Authenticator | None,
        anonymous: Principal | None,
        version: str,
    ) -> None:
        self._service = service
        self._settings = settings
        self._authenticator = authenticator
        self._anonymous = anonymous
        self._version = version

    async def _caller(
        self, metadata: Metadata, scope: Scope, rpc: str, anonymous: bool
    ) -> Principal:
        return await authorize(
            self._authenticator,
            metadata,
            scope,
            f"gRPC {rpc}",
            self._anonymous if anonymous else None,
        )

    def _model(self, name: str, version: str, caller: Principal) -> VersionView:
        owner, model = _owner_name(name)
        return dataplane.version(self._service, owner, model, version or None, caller)

    async def ServerLive(self, request: pb.ServerLiveRequest, metadata: Metadata) -> Any:
        return pb.ServerLiveResponse(live=True)

    async def ServerReady(self, request: pb.ServerReadyRequest, metadata: Metadata) -> Any:
        return pb.ServerReadyResponse(ready=self._service.catalog.readiness().models_ready)

    async def ServerMetadata(self, request: pb.ServerMetadataRequest, metadata: Metadata) -> Any:
        await self._caller(metadata, Scope.READ, "ServerMetadata", anonymous=False)
        return pb.ServerMetadataResponse(
            name="foretell", version=self._version, extensions=repository.REPOSITORY_EXTENSIONS
        )

    async def ModelReady(self, request: pb.ModelReadyRequest, metadata: Metadata) -> Any:
        caller = await self._caller(metadata, Scope.READ, "ModelReady", anonymous=False)
        return pb.ModelReadyResponse(ready=self._model(request.name, request.version, caller).ready)

    async def ModelMetadata(self, request: pb.ModelMetadataRequest, metadata: Metadata) -> Any:
        caller = await self._caller(metadata, Scope.READ, "ModelMetadata", anonymous=False)
        found = self._model(request.name, request.version, caller)
        described = dataplane.metadata(self._service, found, caller)
        tensor = pb.ModelMetadataResponse.TensorMetadata
        return pb.ModelMetadataResponse(
            name=described["name"],
            versions=described["versions"],
            platform=described["platform"],
            inputs=[tensor(**t) for t in described["inputs"]],
            outputs=[tensor(**t) for t in described["outputs"]],
        )

    async def ModelInfer(self, request: pb.ModelInferRequest, metadata: Metadata) -> Any:
        caller = await self._caller(metadata, Scope.PREDICT, "ModelInfer", anonymous=True)
        found = self._model(request.model_name, request.model_version, caller)
        files = _file_inputs(request, found)
        inputs, decoded = _inputs(request, self._settings.max_json_depth, files)
        wanted = [o.name for o in request.outputs] or None  # none named: every output
        prediction, outputs = await dataplane.infer(
            self._service, self._settings, caller, found, inputs, decoded, wanted
        )
        response = pb.ModelInferResponse(
            model_name=found.slug,
            model_version=str(found.number),
            id=request.id or prediction.id,
        )
        response.parameters["prediction_id"].string_param = prediction.id
        for tensor in outputs:
            response.outputs.add(name=tensor["name"], datatype=tensor["datatype"]).shape.extend(
                tensor["shape"]
            )
            response.raw_output_contents.append(contents.raw(tensor["datatype"], tensor["data"]))
        return response

    async def RepositoryIndex(self, request: pb.RepositoryIndexRequest, metadata: Metadata) -> Any:
        caller = await self._caller(metadata, Scope.READ, "RepositoryIndex", anonymous=False)
        entries = repository.index(self._service, caller, request.ready)
        model = pb.RepositoryIndexResponse.ModelIndex
        return pb.RepositoryIndexResponse(models=[model(**e) for e in entries])

    async def RepositoryModelLoad(
        self, request: pb.RepositoryModelLoadRequest, metadata: Metadata
    ) -> Any:
        caller = await self._caller(metadata, Scope.DEPLOY, "RepositoryModelLoad", anonymous=False)
        repository.check_load_parameters(_parameters(request.parameters))
        await repository.load(self._service, *_owner_name(request.model_name), caller)
        return pb.RepositoryModelLoadResponse()

    async def RepositoryModelUnload(
        self, request: pb.RepositoryModelUnloadRequest, metadata: Metadata
    ) -> Any:
        caller = await self._caller(
            metadata, Scope.DEPLOY, "RepositoryModelUnload", anonymous=False
        )
        repository.check_unload_parameters(_parameters(request.parameters))
        await repository.unload(self._service, *_owner_name(request.model_name), caller)
        return pb.RepositoryModelUnloadResponse()


def _owner_name(name: str) -> tuple[str, str]:
    owner, slash, model = name.partition("/")
    if not slash or not owner or not model:
        raise NotFound(
            f"model '{echo(name)}' not found: foretell's models are named owner/name, as "
            "in demo/iris"
        )
    return owner, model


def _parameters(given: Mapping[str, Any]) -> dict[str, Any]:
    """Repository parameters as the HTTP route reads them from JSON: each one's set value."""
    return {
        key: getattr(p, p.WhichOneof("parameter_choice") or "bool_param")
        for key, p in given.items()
    }


def _file_inputs(request: pb.ModelInferRequest, version: VersionView) -> Container[str]:
    """The inputs whose BYTES elements are files' bytes, kept as such (looked up only when a
    BYTES tensor is sent to a model that can answer)."""
    if version.signature is None or all(t.datatype != "BYTES" for t in request.inputs):
        return ()
    return specs.file_inputs(version.signature.input_schema)


def _inputs(
    request: pb.ModelInferRequest, max_dims: int, files: Container[str] = ()
) -> tuple[list[RequestInput], dict[str, list[Any]]]:
    """The request's tensors as OIP's translation takes them, and each one's flat elements
    (BYTES of the inputs named in `files` as bytes)."""
    raw = request.raw_input_contents
    if raw and len(raw) != len(request.inputs):
        raise InvalidRequest(
            f"raw_input_contents has {len(raw)} entries but the request has "
            f"{len(request.inputs)} inputs; send one entry per input, in the order of inputs"
        )
    tensors: list[RequestInput] = []
    decoded: dict[str, list[Any]] = {}
    for index, tensor in enumerate(request.inputs):
        shape = contents.check_shape(tensor.name, tensor.shape, max_dims)
        fields = {f.name: v for f, v in tensor.contents.ListFields()}
        if raw:
            if fields:
                raise InvalidRequest(
                    f"input '{tensor.name}' has contents, but the request sends "
                    "raw_input_contents: send every input one way or the other"
                )
            chunk, takes_files = raw[index], tensor.name in files
            flat = contents.from_raw(tensor.name, tensor.datatype, shape, chunk, takes_files)
        elif fields or not math.prod(shape):
            flat = contents.from_contents(
                tensor.name, tensor.datatype, fields, tensor.name in files
            )
        else:
            field = contents.FIELDS.get(tensor.datatype, "raw_input_contents")
            raise InvalidRequest(
                f"input '{tensor.name}' has no data: send its elements in raw_input_contents or "
                f"contents.{field}"
            )
        tensors.append(
            RequestInput.model_construct(name=tensor.name, shape=shape, datatype=tensor.datatype)
        )
        decoded.setdefault(tensor.name, flat)  # a name given twice is refused by the translation
    return tensors, decoded
