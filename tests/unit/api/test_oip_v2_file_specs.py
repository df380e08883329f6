"""OIP v2's tensor specs of file inputs and unions (api.dialects.oip_v2.specs)."""

from __future__ import annotations

from typing import Any

from foretell.api.dialects.oip_v2 import specs

FILE = {"type": "string", "format": "uri"}
PIXELS = {"type": "array", "items": {"type": "array", "items": {"type": "number"}}}


def schema(**properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties}


def test_a_file_is_one_bytes_element_taking_only_bytes() -> None:
    (image,) = specs.inputs(schema(image=FILE)).values()

    assert image.metadata() == {"name": "image", "datatype": "BYTES", "shape": [1]}
    assert (image.file, image.scalar, image.accepts) == (True, True, frozenset({"BYTES"}))


def test_a_union_advertises_its_first_choice_and_takes_the_others_datatypes() -> None:
    (image,) = specs.inputs(schema(image={"anyOf": [PIXELS, FILE]})).values()

    assert image.metadata() == {"name": "image", "datatype": "FP64", "shape": [-1, -1]}
    assert image.taking("FP32") is image
    assert image.taking("BYTES").file
    assert image.taking("BOOL") is image, "no choice takes it: the first one's error names it"
    assert image.takes_files


def test_file_inputs_names_only_inputs_that_take_files() -> None:
    found = schema(
        image={"anyOf": [PIXELS, FILE]},
        files={"type": "array", "items": FILE},
        text={"type": "string"},
        maybe={"anyOf": [{"type": "string"}, {"type": "null"}]},
    )

    assert specs.file_inputs(found) == {"image", "files"}
    assert specs.inputs(found)["maybe"].others == (), "an optional value is no union"
