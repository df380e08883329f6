"""A handwritten digit drawn as a PNG: the first image of each digit in sklearn's 8x8
digits (digits.json beside this file, pixel counts 0-16 row by row; written by
scripts/build_examples.py), light ink on dark, scaled up without smoothing. The model returns
the file's Path; the server stores it and the caller gets its URL."""

import json
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from foretell.sdk import Input, Predictor


class DrawDigit(Predictor):
    def setup(self) -> None:
        self.images = json.loads(Path(__file__).with_name("digits.json").read_text())
        # One file per digit and size, drawn again each time: the folder stays small.
        self.folder = Path(tempfile.mkdtemp(prefix="draw-digit-"))

    def predict(
        self,
        digit: int = Input(ge=0, le=9, description="which digit to draw"),
        size: int = Input(default=64, ge=8, le=512, description="width and height in pixels"),
    ) -> Path:
        pixels = np.array(self.images[digit], dtype=np.float32).reshape(8, 8) / 16 * 255
        small = Image.fromarray(pixels.round().astype(np.uint8), "L")
        path = self.folder / f"digit-{digit}-{size}.png"
        small.resize((size, size), Image.Resampling.NEAREST).save(path, format="PNG")
        return path
