"""The CIFAR-10 AutoAugment policy exactly as the ISDA authors train with it.

Their repository applies the policy searched on CIFAR-10 (Cubuk et al. 2019) through PIL, with
choices of its own that torchvision's ``AutoAugment`` does not share:

- pixels a geometric operation uncovers are grey (128 in every channel), not black;
- shears are resampled bicubically, translations with nearest neighbours;
- rotations turn counter-clockwise only (their sign is never drawn);
- one sub-policy is (Equalize 0.2 @ 8, Equalize 0.8 @ 4), where the searched policy has 0.6.

A sub-policy is two (operation, probability, magnitude index) steps; one of the 25 is drawn per
image, and each step then applies with its probability. Magnitude index i of 0..9 stands for the
i-th of 10 evenly spaced values over the operation's range (``magnitude``). Operations that have a
direction (shear, translate, and the enhancements, which move a factor away from 1) draw a sign.

All draws come from torch's generator, so that a seeded run repeats, in the main process and in
DataLoader workers (which seed torch per worker) alike.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from PIL import Image, ImageEnhance, ImageOps

Step = tuple[str, float, int]  # operation, probability, magnitude index

# The 25 sub-policies, in the authors' order.
CIFAR10_POLICY: tuple[tuple[Step, Step], ...] = (
    (("invert", 0.1, 7), ("contrast", 0.2, 6)),
    (("rotate", 0.7, 2), ("translateX", 0.3, 9)),
    (("sharpness", 0.8, 1), ("sharpness", 0.9, 3)),
    (("shearY", 0.5, 8), ("translateY", 0.7, 9)),
    (("autocontrast", 0.5, 8), ("equalize", 0.9, 2)),
    (("shearY", 0.2, 7), ("posterize", 0.3, 7)),
    (("color", 0.4, 3), ("brightness", 0.6, 7)),
    (("sharpness", 0.3, 9), ("brightness", 0.7, 9)),
    (("equalize", 0.6, 5), ("equalize", 0.5, 1)),
    (("contrast", 0.6, 7), ("sharpness", 0.6, 5)),
    (("color", 0.7, 7), ("translateX", 0.5, 8)),
    (("equalize", 0.3, 7), ("autocontrast", 0.4, 8)),
    (("translateY", 0.4, 3), ("sharpness", 0.2, 6)),
    (("brightness", 0.9, 6), ("color", 0.2, 8)),
    (("solarize", 0.5, 2), ("invert", 0.0, 3)),
    (("equalize", 0.2, 0), ("autocontrast", 0.6, 0)),
    (("equalize", 0.2, 8), ("equalize", 0.8, 4)),
    (("color", 0.9, 9), ("equalize", 0.6, 6)),
    (("autocontrast", 0.8, 4), ("solarize", 0.2, 8)),
    (("brightness", 0.1, 3), ("color", 0.7, 0)),
    (("solarize", 0.4, 5), ("autocontrast", 0.9, 3)),
    (("translateY", 0.9, 9), ("translateY", 0.7, 9)),
    (("autocontrast", 0.9, 2), ("solarize", 0.8, 3)),
    (("equalize", 0.8, 8), ("invert", 0.1, 3)),
    (("translateY", 0.7, 9), ("autocontrast", 0.9, 1)),
)

LEVELS = 10
FILL = 128
# The value range each magnitude index spans: (value at index 0, value at index 9).
RANGES: dict[str, tuple[float, float]] = {
    "shearX": (0.0, 0.3), "shearY": (0.0, 0.3),
    "translateX": (0.0, 150 / 331), "translateY": (0.0, 150 / 331),  # fractions of the image side
    "rotate": (0.0, 30.0),  # degrees
    "color": (0.0, 0.9), "contrast": (0.0, 0.9), "sharpness": (0.0, 0.9), "brightness": (0.0, 0.9),
    "posterize": (8.0, 4.0),  # bits kept, rounded to an integer
    "solarize": (256.0, 0.0),  # threshold
    "autocontrast": (0.0, 0.0), "equalize": (0.0, 0.0), "invert": (0.0, 0.0),
}
SIGNED = frozenset({"shearX", "shearY", "translateX", "translateY", "color", "contrast", "sharpness",
                    "brightness"})


def magnitude(op: str, index: int) -> float:
    """The operation's value at magnitude index 0..9."""
    value = float(np.linspace(*RANGES[op], LEVELS)[index])
    return float(np.round(value)) if op == "posterize" else value


def _fill(img: Image.Image) -> int | tuple[int, ...]:
    return FILL if len(img.getbands()) == 1 else (FILL,) * len(img.getbands())


def _affine(img: Image.Image, coeffs: tuple[float, ...], resample: Image.Resampling) -> Image.Image:
    # PIL's affine data maps each output pixel to the input point it samples.
    return img.transform(img.size, Image.Transform.AFFINE, coeffs, resample, fillcolor=_fill(img))


def _enhance(kind: Callable[[Image.Image], ImageEnhance._Enhance]) -> Callable[[Image.Image, float], Image.Image]:
    return lambda img, v: kind(img).enhance(1.0 + v)


OPS: dict[str, Callable[[Image.Image, float], Image.Image]] = {
    "shearX": lambda img, v: _affine(img, (1, v, 0, 0, 1, 0), Image.Resampling.BICUBIC),
    "shearY": lambda img, v: _affine(img, (1, 0, 0, v, 1, 0), Image.Resampling.BICUBIC),
    "translateX": lambda img, v: _affine(img, (1, 0, v * img.size[0], 0, 1, 0), Image.Resampling.NEAREST),
    "translateY": lambda img, v: _affine(img, (1, 0, 0, 0, 1, v * img.size[1]), Image.Resampling.NEAREST),
    "rotate": lambda img, v: img.rotate(v, Image.Resampling.NEAREST, fillcolor=_fill(img)),
    "color": _enhance(ImageEnhance.Color),
    "contrast": _enhance(ImageEnhance.Contrast),
    "sharpness": _enhance(ImageEnhance.Sharpness),
    "brightness": _enhance(ImageEnhance.Brightness),
    "posterize": lambda img, v: ImageOps.posterize(img, int(v)),
    # A fractional threshold is the authors' (i < 227.6 keeps 227); PIL compares with it as given.
    "solarize": lambda img, v: ImageOps.solarize(img, v),  # type: ignore[arg-type]
    "autocontrast": lambda img, v: ImageOps.autocontrast(img),
    "equalize": lambda img, v: ImageOps.equalize(img),
    "invert": lambda img, v: ImageOps.invert(img),
}


def apply_op(img: Image.Image, op: str, index: int, sign: int = 1) -> Image.Image:
    """One operation at magnitude index ``index``; ``sign`` (±1) is used by the signed ones only."""
    value = magnitude(op, index)
    return OPS[op](img, value * sign if op in SIGNED else value)


def _to_pil(x: torch.Tensor) -> Image.Image:
    array = x.numpy()
    return Image.fromarray(array[0], "L") if array.shape[0] == 1 else Image.fromarray(array.transpose(1, 2, 0), "RGB")


def _from_pil(img: Image.Image) -> torch.Tensor:
    array = np.asarray(img)
    return torch.from_numpy(array.copy()[None] if array.ndim == 2 else array.transpose(2, 0, 1).copy())


class AuthorsCIFAR10Policy:
    """A per-image transform of uint8 tensors [C, H, W] (C = 1 or 3): one random sub-policy."""

    def draw(self, generator: torch.Generator | None = None) -> tuple[int, list[bool], list[int]]:
        """(sub-policy index, whether each of its two steps applies, each step's sign ±1)."""
        index = int(torch.randint(len(CIFAR10_POLICY), (1,), generator=generator))
        u = torch.rand(2, generator=generator).tolist()
        signs = (torch.randint(0, 2, (2,), generator=generator) * 2 - 1).tolist()
        return index, [draw < p for draw, (_, p, _) in zip(u, CIFAR10_POLICY[index])], signs

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        index, fires, signs = self.draw()
        if not any(fires):
            return x
        img = _to_pil(x)
        for (op, _, level), fire, sign in zip(CIFAR10_POLICY[index], fires, signs):
            if fire:
                img = apply_op(img, op, level, sign)
        return _from_pil(img)

    def __repr__(self) -> str:
        return "AuthorsCIFAR10Policy()"
