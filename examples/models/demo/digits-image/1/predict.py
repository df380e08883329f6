"""Seed 003's image example: which digit 0-9 an 8x8 image shows, by the small multilayer
perceptron in model.onnx (scripts/build_examples.py writes both, from sklearn's digits).

`image` is either the seed's nested array, one image as [1, 1, 8, 8] pixel values from 0
(dark) to 1 (light), light ink on dark as in sklearn's digits dataset (its 0-16 counts
divided by 16); or an image file (PNG, JPEG, …), read as grayscale, resized to 8x8 by
averaging and scaled to 0-1. A picture brighter than mid-grey on average is taken for dark
ink on white paper and inverted first: no digit of the dataset averages above 0.43."""

from pathlib import Path
from typing import Annotated, Any

import numpy as np
import onnxruntime
from PIL import Image, ImageOps, UnidentifiedImageError
from pydantic import AfterValidator, BaseModel

from foretell.sdk import Input, Predictor

SIDE = 8
SHAPE = [1, 1, SIDE, SIDE]  # one image, one channel, 8x8 pixels
MAX_PIXELS = 4096 * 4096  # a larger picture is refused before it is decoded


class Probabilities(BaseModel):
    probabilities: list[float]  # of the digits 0, 1, …, 9


def one_image(value: Any) -> np.ndarray:
    """The float32 pixels of one image, from the array or the file sent, or why it is not
    one (a validator's ValueError: the caller's error, not the model's)."""
    if isinstance(value, Path):
        return read(value)
    try:
        pixels = np.asarray(value, dtype=np.float32)
    except ValueError:
        raise ValueError(f"an image array has shape {SHAPE}; its rows differ in size") from None
    if list(pixels.shape) != SHAPE:
        raise ValueError(
            f"an image array has shape {SHAPE} (one image, one channel, 8x8 pixels); "
            f"this one has {list(pixels.shape)}"
        )
    if pixels.min() < 0 or pixels.max() > 1:
        raise ValueError(
            f"pixel values are 0 (dark) to 1 (light), as sklearn's digits divided by 16; "
            f"these go from {pixels.min():g} to {pixels.max():g}"
        )
    return pixels


def read(path: Path) -> np.ndarray:
    """An image file as one image's pixels, light ink on dark."""
    try:
        with Image.open(path) as picture:
            if picture.width * picture.height > MAX_PIXELS:
                raise ValueError(
                    f"the image is {picture.width}x{picture.height} pixels; at most "
                    f"{MAX_PIXELS:,} are read"
                )
            gray = ImageOps.exif_transpose(picture).convert("L")
    except UnidentifiedImageError:
        raise ValueError("the file is not an image Pillow can read (PNG, JPEG, …)") from None
    small = gray.resize((SIDE, SIDE), Image.Resampling.BOX)
    pixels = np.asarray(small, dtype=np.float32) / 255
    if pixels.mean() > 0.5:  # dark ink on light paper
        pixels = 1 - pixels
    return pixels.reshape(SHAPE)


# The seed's nested array or a file; `one_image` makes either one image's pixels.
ImageInput = Annotated[list[list[list[list[float]]]] | Path, AfterValidator(one_image)]


class DigitsImage(Predictor):
    def setup(self) -> None:
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1  # one 8x8 image: threads would only wait
        self.session = onnxruntime.InferenceSession(
            str(Path(__file__).with_name("model.onnx")),
            options,
            providers=["CPUExecutionProvider"],
        )

    def predict(
        self,
        image: ImageInput = Input(
            description="one 8x8 image as [1, 1, 8, 8] pixels 0-1, light ink on dark; or an "
            "image file (URL, data URI or upload)",
        ),
    ) -> Probabilities:
        (probabilities,) = self.session.run(["probabilities"], {"image": image})
        return Probabilities(probabilities=probabilities[0].tolist())
