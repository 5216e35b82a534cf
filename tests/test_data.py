import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.data import Batches, crop_flip, cutout, load_dataset
from bench.errors import ConfigError
from bench.methods import parse_method
from tests.helpers import write_cifar


def test_crop_flip_equals_pad_crop_flip_per_image():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (16, 3, 9, 7), generator=g).to(torch.uint8)
    pad = 3
    oy, ox = torch.randint(0, 2 * pad + 1, (2, 16), generator=g)
    flip = torch.rand(16, generator=g) < 0.5
    out = crop_flip(x, oy, ox, flip, pad)
    padded = F.pad(x.double(), (pad,) * 4, mode="reflect")
    for i in range(16):
        ref = padded[i, :, oy[i]:oy[i] + 9, ox[i]:ox[i] + 7]
        if flip[i]:
            ref = ref.flip(-1)
        assert torch.equal(out[i].double(), ref), i
    assert out.dtype == torch.uint8


def test_cutout_zeroes_the_clipped_square_only():
    x = torch.ones(5, 2, 10, 10)
    cy = torch.tensor([0, 9, 5, 2, 7])
    cx = torch.tensor([0, 9, 5, 8, 1])
    out = cutout(x, cy, cx, 4)
    for i in range(5):
        ref = np.ones((10, 10))
        ref[max(0, cy[i] - 2):max(0, cy[i] + 2), max(0, cx[i] - 2):max(0, cx[i] + 2)] = 0
        assert np.array_equal(out[i, 0].numpy(), ref) and np.array_equal(out[i, 1].numpy(), ref)


def test_digits_split_is_fixed_and_stratified():
    train, test, info = load_dataset("digits")
    assert (len(train.y), len(test.y)) == (1437, 360)
    assert train.x.dtype == torch.uint8 and train.x.shape[1:] == (1, 8, 8)
    counts = torch.bincount(test.y, minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 360 / 10, stratified
    again, _, _ = load_dataset("digits")
    assert torch.equal(train.x, again.x) and info.num_classes == 10


@pytest.mark.parametrize("classes", [10, 100])
def test_cifar_reads_the_real_pickle_format(tmp_path, classes):
    folder = write_cifar(tmp_path, classes=classes, per_batch=12)
    train, test, info = load_dataset(f"cifar{classes}", str(tmp_path))
    n_files = 5 if classes == 10 else 1
    assert len(train.y) == 12 * n_files and len(test.y) == 12
    assert info.num_classes == classes and train.x.shape[1:] == (3, 32, 32)
    # Image k of the test file: row-major CHW bytes, exactly as CIFAR stores them.
    with open(folder / ("test_batch" if classes == 10 else "test"), "rb") as fh:
        raw = pickle.load(fh)["data"]
    assert np.array_equal(test.x[5].numpy().reshape(-1), raw[5])


def test_cifar_missing_files_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="data_root.*cifar-10-batches-py.*--download"):
        load_dataset("cifar10", str(tmp_path / "nowhere"))


def test_epoch_is_a_permutation_and_repeats_with_the_seed():
    train, _, info = load_dataset("digits")
    batches = Batches(train, info, 100, torch.device("cpu"), parse_method("cutout"))
    ys1 = torch.cat([y for _, y in batches.epoch(torch.Generator().manual_seed(3))])
    xs1 = torch.cat([x for x, _ in batches.epoch(torch.Generator().manual_seed(3))])
    xs2 = torch.cat([x for x, _ in batches.epoch(torch.Generator().manual_seed(3))])
    assert torch.equal(torch.bincount(ys1), torch.bincount(train.y))
    assert torch.equal(xs1, xs2)
    xs3 = torch.cat([x for x, _ in batches.epoch(torch.Generator().manual_seed(4))])
    assert not torch.equal(xs1, xs3)


def test_autoaugment_runs_per_image_and_keeps_shapes():
    train, _, info = load_dataset("digits")
    batches = Batches(train, info, 64, torch.device("cpu"), parse_method("autoaugment"))
    torch.manual_seed(0)
    x, y = next(iter(batches.epoch(torch.Generator().manual_seed(0))))
    assert x.shape == (64, 1, 8, 8) and x.dtype == torch.float32 and torch.isfinite(x).all()
