"""The authors' CIFAR-10 AutoAugment policy: their table, and each operation against numpy.

The table below is written from the policy the ISDA authors publish (autoaugment.py of
blackfeather-wang/ISDA-for-Deep-Networks, class CIFAR10Policy): sub-policy by sub-policy,
(operation, probability, magnitude index). Each operation is then recomputed here from its
definition (pixel loops and lookup tables in numpy), not through PIL.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from PIL import Image

from bench.data import autoaugment as aa

THEIRS = [
    ("invert", 0.1, 7, "contrast", 0.2, 6), ("rotate", 0.7, 2, "translateX", 0.3, 9),
    ("sharpness", 0.8, 1, "sharpness", 0.9, 3), ("shearY", 0.5, 8, "translateY", 0.7, 9),
    ("autocontrast", 0.5, 8, "equalize", 0.9, 2), ("shearY", 0.2, 7, "posterize", 0.3, 7),
    ("color", 0.4, 3, "brightness", 0.6, 7), ("sharpness", 0.3, 9, "brightness", 0.7, 9),
    ("equalize", 0.6, 5, "equalize", 0.5, 1), ("contrast", 0.6, 7, "sharpness", 0.6, 5),
    ("color", 0.7, 7, "translateX", 0.5, 8), ("equalize", 0.3, 7, "autocontrast", 0.4, 8),
    ("translateY", 0.4, 3, "sharpness", 0.2, 6), ("brightness", 0.9, 6, "color", 0.2, 8),
    ("solarize", 0.5, 2, "invert", 0.0, 3), ("equalize", 0.2, 0, "autocontrast", 0.6, 0),
    ("equalize", 0.2, 8, "equalize", 0.8, 4), ("color", 0.9, 9, "equalize", 0.6, 6),
    ("autocontrast", 0.8, 4, "solarize", 0.2, 8), ("brightness", 0.1, 3, "color", 0.7, 0),
    ("solarize", 0.4, 5, "autocontrast", 0.9, 3), ("translateY", 0.9, 9, "translateY", 0.7, 9),
    ("autocontrast", 0.9, 2, "solarize", 0.8, 3), ("equalize", 0.8, 8, "invert", 0.1, 3),
    ("translateY", 0.7, 9, "autocontrast", 0.9, 1),
]
# Their value at magnitude index i of 0..9, as formulas.
VALUE = {
    "shearX": lambda i: 0.3 * i / 9, "shearY": lambda i: 0.3 * i / 9,
    "translateX": lambda i: 150 / 331 * i / 9, "translateY": lambda i: 150 / 331 * i / 9,
    "rotate": lambda i: 30 * i / 9,
    "color": lambda i: 0.9 * i / 9, "contrast": lambda i: 0.9 * i / 9, "sharpness": lambda i: 0.9 * i / 9,
    "brightness": lambda i: 0.9 * i / 9,
    "posterize": lambda i: [8, 8, 7, 7, 6, 6, 5, 5, 4, 4][i],  # 8 - 4i/9, rounded
    "solarize": lambda i: 256 - 256 * i / 9,
    "autocontrast": lambda i: 0, "equalize": lambda i: 0, "invert": lambda i: 0,
}


@pytest.mark.parametrize("k", range(25))
def test_sub_policy_k_is_the_authors(k):
    (op1, p1, m1), (op2, p2, m2) = aa.CIFAR10_POLICY[k]
    assert (op1, p1, m1, op2, p2, m2) == THEIRS[k]
    for op, m in ((op1, m1), (op2, m2)):
        assert aa.magnitude(op, m) == pytest.approx(VALUE[op](m), abs=1e-12)
    assert len(aa.CIFAR10_POLICY) == len(THEIRS) == 25


def test_their_equalize_sub_policy_differs_from_the_searched_one():
    # (Equalize 0.2 @ 8, Equalize 0.6 @ 4) in Cubuk et al. and in torchvision; 0.8 in theirs.
    assert aa.CIFAR10_POLICY[16] == (("equalize", 0.2, 8), ("equalize", 0.8, 4))


def test_draws_pick_sub_policies_uniformly_and_apply_each_step_with_its_probability():
    policy, g, n = aa.AuthorsCIFAR10Policy(), torch.Generator().manual_seed(0), 50_000
    picked, fired = np.zeros(25), np.zeros((25, 2))
    for _ in range(n):
        k, fires, signs = policy.draw(g)
        picked[k] += 1
        fired[k] += fires
        assert set(signs) <= {-1, 1}
    expected = n / 25
    assert np.all(np.abs(picked - expected) < 5 * math.sqrt(expected))
    p = np.array([[p1, p2] for (_, p1, _), (_, p2, _) in aa.CIFAR10_POLICY])
    sd = np.sqrt(picked[:, None] * p * (1 - p))
    assert np.all(np.abs(fired - picked[:, None] * p) <= 5 * sd)
    assert fired[14, 1] == 0 and p[14, 1] == 0.0  # (solarize 0.5, invert 0.0): the invert never applies


@pytest.mark.parametrize("op", sorted(aa.RANGES))
def test_only_directed_operations_take_the_drawn_sign_and_rotation_is_never_reversed(op):
    a = _image()
    plus, minus = _apply(a, op, 6, 1), _apply(a, op, 6, -1)
    if op in ("shearX", "shearY", "translateX", "translateY", "color", "contrast", "sharpness", "brightness"):
        assert (plus != minus).any()
    else:
        np.testing.assert_array_equal(plus, minus)


# ---- each operation against a computation from its definition -------------------------------

def _image(channels: int = 3, seed: int = 0, size: int = 32) -> np.ndarray:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (size, size, channels), dtype=np.uint8)
    a[:4, :4] = 0  # a dark and a bright corner, so that autocontrast has work only on some images
    return a


def _apply(a: np.ndarray, op: str, level: int, sign: int = 1) -> np.ndarray:
    x = torch.from_numpy(a.transpose(2, 0, 1).copy())
    img = aa._to_pil(x)
    return aa._from_pil(aa.apply_op(img, op, level, sign)).numpy().transpose(1, 2, 0).astype(int)


def _grey(a: np.ndarray) -> np.ndarray:
    """ITU-R 601-2 luma, as PIL converts RGB to L."""
    a = a.astype(float)
    return (a[..., 0] * 299 + a[..., 1] * 587 + a[..., 2] * 114) / 1000


def _blend(base: np.ndarray, a: np.ndarray, factor: float) -> np.ndarray:
    return np.clip(np.round(base + factor * (a.astype(float) - base)), 0, 255)


def _sample_nearest(a: np.ndarray, source) -> np.ndarray:
    """Output pixel (x, y) takes the input pixel holding point source(x + ½, y + ½); grey outside."""
    h, w = a.shape[:2]
    out = np.full(a.shape, aa.FILL, dtype=int)
    for y in range(h):
        for x in range(w):
            xs, ys = source(x + 0.5, y + 0.5)
            xi, yi = math.floor(xs), math.floor(ys)
            if 0 <= xi < w and 0 <= yi < h:
                out[y, x] = a[yi, xi]
    return out


@pytest.mark.parametrize("level", [0, 3, 9])
@pytest.mark.parametrize("sign", [1, -1])
@pytest.mark.parametrize("axis", ["X", "Y"])
def test_translate_is_a_nearest_shift_by_a_fraction_of_the_side_with_grey_fill(level, sign, axis):
    a = _image()
    d = sign * VALUE["translateX"](level) * 32
    want = _sample_nearest(a, (lambda x, y: (x + d, y)) if axis == "X" else (lambda x, y: (x, y + d)))
    np.testing.assert_array_equal(_apply(a, "translate" + axis, level, sign), want)


@pytest.mark.parametrize("level", range(10))
def test_rotate_turns_counter_clockwise_about_the_centre_with_grey_fill(level):
    a = _image()
    t = math.radians(VALUE["rotate"](level))

    def source(x: float, y: float) -> tuple[float, float]:  # rows grow downwards
        px, py = x - 16, y - 16
        return math.cos(t) * px - math.sin(t) * py + 16, math.sin(t) * px + math.cos(t) * py + 16

    got, want = _apply(a, "rotate", level), _sample_nearest(a, source)
    # A sample point exactly on a pixel edge may round either way: at most two such pixels.
    assert (got != want).any(axis=2).sum() <= 2
    # Their way of filling: rotate an RGBA copy, then paste it over grey where it is opaque.
    img = Image.fromarray(a, "RGB")
    rgba = img.convert("RGBA").rotate(VALUE["rotate"](level))
    theirs = Image.composite(rgba, Image.new("RGBA", rgba.size, (128,) * 4), rgba).convert("RGB")
    np.testing.assert_array_equal(got, np.asarray(theirs))


def _cubic(d: float) -> float:
    # The cubic convolution kernel with a = -1, the one PIL's affine transforms resample with.
    d, A = abs(d), -1.0
    if d < 1:
        return (A + 2) * d**3 - (A + 3) * d**2 + 1
    return A * d**3 - 5 * A * d**2 + 8 * A * d - 4 * A if d < 2 else 0.0


@pytest.mark.parametrize("level, sign", [(3, 1), (8, -1), (9, 1)])
@pytest.mark.parametrize("axis", ["X", "Y"])
def test_shear_resamples_bicubically_with_grey_outside(level, sign, axis):
    a = _image()
    got = _apply(a, "shear" + axis, level, sign)
    if axis == "Y":  # the same operation with rows and columns exchanged
        a, got = a.transpose(1, 0, 2), got.transpose(1, 0, 2)
    m, checked = sign * VALUE["shearX"](level), 0
    for y in range(32):
        for x in range(32):
            xs = x + 0.5 + m * (y + 0.5)  # the input point this output pixel samples
            if not 0 <= xs < 32:
                assert (got[y, x] == aa.FILL).all()
                continue
            k0 = math.floor(xs - 0.5)
            if k0 - 1 >= 0 and k0 + 2 < 32:  # all four taps inside the image
                want = sum(_cubic(xs - 0.5 - k) * a[y, k].astype(float) for k in range(k0 - 1, k0 + 3))
                assert np.abs(got[y, x] - np.clip(np.round(want), 0, 255)).max() <= 1
                checked += 1
    assert checked > 500


@pytest.mark.parametrize("channels", [3, 1])
def test_pointwise_operations_against_their_lookup_tables(channels):
    a = _image(channels)
    x = a.astype(int)
    np.testing.assert_array_equal(_apply(a, "invert", 0), 255 - x)
    for level in range(10):
        bits = VALUE["posterize"](level)
        np.testing.assert_array_equal(_apply(a, "posterize", level), x & (0xFF << (8 - bits) & 0xFF))
        t = VALUE["solarize"](level)
        np.testing.assert_array_equal(_apply(a, "solarize", level), np.where(x < t, x, 255 - x))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_autocontrast_stretches_each_channel_to_the_full_range(seed):
    a = _image(seed=seed)
    a[..., 1] = np.clip(a[..., 1], 40, 200)  # a channel that does not span 0..255
    want = np.empty(a.shape, dtype=int)
    for c in range(3):
        lo, hi = int(a[..., c].min()), int(a[..., c].max())
        scale = 255.0 / (hi - lo)
        want[..., c] = np.clip(np.floor(a[..., c] * scale - lo * scale), 0, 255)
    np.testing.assert_array_equal(_apply(a, "autocontrast", 0), want)


@pytest.mark.parametrize("seed", [0, 1])
def test_equalize_maps_each_channel_through_its_cumulative_histogram(seed):
    a = _image(seed=seed)
    a[..., 2] //= 3  # an uneven histogram
    want = np.empty(a.shape, dtype=int)
    for c in range(3):
        hist = np.bincount(a[..., c].ravel(), minlength=256)
        step = (hist.sum() - hist[np.nonzero(hist)[0][-1]]) // 255
        before = np.concatenate([[0], np.cumsum(hist)[:-1]])  # pixels darker than each level
        want[..., c] = np.minimum((step // 2 + before) // step, 255)[a[..., c]]  # a table of 8-bit levels
    np.testing.assert_array_equal(_apply(a, "equalize", 0), want)


@pytest.mark.parametrize("level, sign", [(0, 1), (3, -1), (7, 1), (9, -1), (9, 1)])
def test_enhancements_blend_with_their_degenerate_image(level, sign):
    a = _image()
    f = 1 + sign * VALUE["color"](level)
    grey = _grey(a)
    # Rounding of PIL's 8-bit blend differs from round-half-even by at most one level.
    assert np.abs(_apply(a, "brightness", level, sign) - _blend(np.zeros(a.shape), a, f)).max() <= 1
    assert np.abs(_apply(a, "color", level, sign) - _blend(grey[..., None], a, f)).max() <= 1
    mean = math.floor(grey.mean() + 0.5)
    assert np.abs(_apply(a, "contrast", level, sign) - _blend(np.full(a.shape, mean), a, f)).max() <= 1
    smooth = a.astype(float)  # the 3×3 smoothing kernel (1 1 1 / 1 5 1 / 1 1 1) / 13; edges kept
    kernel = np.array([[1, 1, 1], [1, 5, 1], [1, 1, 1]]) / 13
    for y in range(1, 31):
        for x in range(1, 31):
            smooth[y, x] = (a[y - 1:y + 2, x - 1:x + 2] * kernel[..., None]).sum((0, 1))
    assert np.abs(_apply(a, "sharpness", level, sign) - _blend(np.round(smooth), a, f)).max() <= 1


def test_the_policy_transforms_uint8_tensors_of_one_or_three_channels_and_repeats_with_the_seed():
    policy = aa.AuthorsCIFAR10Policy()
    for channels in (1, 3):
        x = torch.from_numpy(_image(channels, size=8).transpose(2, 0, 1).copy())
        torch.manual_seed(5)
        first = [policy(x) for _ in range(200)]
        torch.manual_seed(5)
        again = [policy(x) for _ in range(200)]
        assert all(torch.equal(u, v) for u, v in zip(first, again))
        assert all(u.dtype == torch.uint8 and u.shape == x.shape for u in first)
        assert sum(not torch.equal(u, x) for u in first) > 100


@pytest.mark.parametrize("dataset", ["digits", "synthetic"])
def test_autoaugment_runs_the_authors_policy_per_image_and_tv_autoaugment_torchvisions(dataset):
    from torchvision import transforms as T

    from bench.data.batches import WorkerBatches, make_batches
    from bench.data.sources import load_dataset
    from bench.methods import parse_method

    train, _, info = load_dataset(dataset)
    ours = make_batches(train, info, 32, torch.device("cpu"), parse_method("isda+autoaugment"))
    theirs = make_batches(train, info, 32, torch.device("cpu"), parse_method("tv_autoaugment"))
    assert isinstance(ours, WorkerBatches) and isinstance(theirs, WorkerBatches)
    assert isinstance(ours.dataset.transform.transforms[-1], aa.AuthorsCIFAR10Policy)
    tv = theirs.dataset.transform.transforms[-1]
    assert isinstance(tv, T.AutoAugment) and tv.policy == T.AutoAugmentPolicy.CIFAR10
    assert parse_method("autoaugment").cutout and parse_method("tv_autoaugment").cutout
    # The image the loader yields is crop/flip, then the policy drawn from torch's generator.
    ours.dataset.transform.transforms[:-1] = []  # the policy alone, to compare with a direct call
    torch.manual_seed(7)
    got = ours.dataset[3][0]
    torch.manual_seed(7)
    assert torch.equal(got, aa.AuthorsCIFAR10Policy()(train.x[3]))
