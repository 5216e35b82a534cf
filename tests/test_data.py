import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from bench.common.errors import ConfigError
from bench.data.batches import Batches, WorkerBatches, crop_flip, cutout, make_batches
from bench.data.sources import Split, load_dataset
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


@pytest.mark.parametrize("loader", ["device-batched", "per-image workers"])
def test_cutout_holes_are_black_as_in_the_authors_order_totensor_cutout_normalize(loader):
    """The hole is cut from the pixels, then the batch is normalised: black, (0 - mean) / std,
    not the mean colour that zeroing after Normalize would leave. A white image stays white
    through crops and flips, so only the hole differs."""
    from torchvision.transforms import functional as TF

    from bench.data.batches import _PerImage

    _, _, info = load_dataset("synthetic")
    white = Split(torch.full((40, 3, 32, 32), 255, dtype=torch.uint8), torch.arange(40) % 10)
    if loader == "device-batched":
        batches = make_batches(white, info, 40, torch.device("cpu"), parse_method("cutout"))
    else:  # the path of AutoAugment(+Cutout), here with no policy so that the image stays white
        batches = WorkerBatches(_PerImage(white, lambda img: img), info, 40, torch.device("cpu"),
                                parse_method("cutout"))
    x, _ = next(iter(batches.epoch(torch.Generator().manual_seed(0))))
    black = TF.normalize(torch.zeros(3, 1, 1), info.mean, info.std)
    for img in x:
        hole = (img == black).all(0)
        rows, cols = hole.any(1).nonzero().flatten(), hole.any(0).nonzero().flatten()
        assert 0 < hole.sum() <= 16 * 16 and hole.sum() == len(rows) * len(cols)  # one clipped square
        want = torch.ones(3, 32, 32)
        want[:, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = 0
        assert torch.allclose(img, TF.normalize(want, info.mean, info.std), atol=1e-6)


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


def test_autoaugment_runs_per_image_in_a_loader_and_repeats_with_the_seed():
    train, _, info = load_dataset("digits")
    batches = make_batches(train, info, 64, torch.device("cpu"), parse_method("autoaugment"))
    assert isinstance(batches, WorkerBatches)

    def first_batch(seed):
        torch.manual_seed(seed)  # the per-image policy draws from torch's global generator
        return next(iter(batches.epoch(torch.Generator().manual_seed(seed))))

    (x1, y1), (x2, y2) = first_batch(0), first_batch(0)
    assert x1.shape == (64, 1, 8, 8) and x1.dtype == torch.float32 and torch.isfinite(x1).all()
    assert torch.equal(x1, x2) and torch.equal(y1, y2)
    assert not torch.equal(x1, first_batch(1)[0])
    plain = make_batches(train, info, 64, torch.device("cpu"), parse_method("cutout"))
    assert isinstance(plain, Batches)


def write_image_folder(root, classes=2, per_class=3, seed=0):
    from PIL import Image

    rng = np.random.default_rng(seed)
    for split, n in (("train", per_class), ("val", 2)):
        for c in range(classes):
            d = root / split / f"n{c:08d}"
            d.mkdir(parents=True)
            for i in range(n):
                h, w = rng.integers(40, 90, size=2)
                Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(d / f"{i}.JPEG")


def test_imagenet_folder_crops_to_224_and_evaluates_at_center_224(tmp_path):
    write_image_folder(tmp_path)
    train, val, info = load_dataset("imagenet", str(tmp_path))
    assert info.num_classes == 2 and len(train) == 6 and len(val) == 4
    torch.manual_seed(0)
    tb = make_batches(train, info, 4, torch.device("cpu"), parse_method("ce"))
    x, y = next(iter(tb.epoch(torch.Generator().manual_seed(0))))
    assert x.shape == (4, 3, 224, 224) and y.dtype == torch.int64
    vb = make_batches(val, info, 4, torch.device("cpu"), None)
    xs = torch.cat([x for x, _ in vb.epoch()])
    assert xs.shape == (4, 3, 224, 224)
    # Evaluation is resize-256 + center-224 of the JPEG, normalised with ImageNet's statistics.
    from PIL import Image
    from torchvision.transforms import functional as TF

    img = Image.open(val.samples[0][0]).convert("RGB")
    ref = TF.pil_to_tensor(TF.center_crop(TF.resize(img, 256), 224)).float() / 255
    mean = torch.tensor(info.mean).view(3, 1, 1)
    std = torch.tensor(info.std).view(3, 1, 1)
    assert torch.allclose(xs[0], (ref - mean) / std, atol=1e-6)


@pytest.mark.parametrize("method", ["randaugment", "isda+autoaugment"])
def test_imagenet_folder_applies_the_augmentation_policy(tmp_path, method):
    from torchvision import transforms as T

    write_image_folder(tmp_path)
    train, _, info = load_dataset("imagenet", str(tmp_path))

    def first_batch(name):
        batches = make_batches(train, info, 6, torch.device("cpu"), parse_method(name))
        torch.manual_seed(0)  # the per-image transforms draw from torch's global generator
        return batches, next(iter(batches.epoch(torch.Generator().manual_seed(0))))[0]

    batches, x = first_batch(method)
    steps = [type(t) for t in batches.dataset.transform.transforms]
    policy = T.RandAugment if method == "randaugment" else T.AutoAugment
    assert steps == [T.RandomResizedCrop, T.RandomHorizontalFlip, policy, T.PILToTensor]
    if policy is T.AutoAugment:
        assert batches.dataset.transform.transforms[2].policy == T.AutoAugmentPolicy.IMAGENET
    assert not torch.equal(x, first_batch("isda")[1])
    assert [type(t) for t in train.transform.transforms] == [T.RandomResizedCrop, T.RandomHorizontalFlip,
                                                             T.PILToTensor]  # the dataset itself unchanged


def test_autoaugment_adds_cutout_as_the_authors_cifar_code_does_but_not_on_imagenet(tmp_path, monkeypatch):
    import bench.data.batches as batches_module

    write_image_folder(tmp_path)
    imagenet, _, imagenet_info = load_dataset("imagenet", str(tmp_path))
    digits, _, digits_info = load_dataset("digits")
    holes: list[int] = []
    real = batches_module.cutout
    monkeypatch.setattr(batches_module, "cutout",
                        lambda x, cy, cx, size: (holes.append(size), real(x, cy, cx, size))[1])

    def sizes(data, info, name):
        holes.clear()
        torch.manual_seed(0)
        batches = make_batches(data, info, 6, torch.device("cpu"), parse_method(name))
        next(iter(batches.epoch(torch.Generator().manual_seed(0))))
        return sorted(set(holes))

    # ImageNet: the ImageNet policy alone (no ISDA paper cuts ImageNet); the method cutout still cuts.
    for name in ("autoaugment", "isda+autoaugment", "tv_autoaugment"):
        assert sizes(imagenet, imagenet_info, name) == [], name
    assert sizes(imagenet, imagenet_info, "cutout") == [112]
    # Elsewhere AutoAugment is followed by Cutout, as in the authors' CIFAR train.py.
    assert sizes(digits, digits_info, "autoaugment") == [digits_info.cutout]


def test_imagenet_folder_missing_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="train/ and val/"):
        load_dataset("imagenet", str(tmp_path))


def test_the_datasets_that_need_no_files_load_as_the_table_of_datasets_says():
    from bench.experiment.datasets import DATASETS

    for name in ("digits", "synthetic"):
        facts = DATASETS[name]
        train, test, info = load_dataset(name)
        side = facts.image_size
        assert train.x.shape == (facts.train_images, facts.channels, side, side)
        assert test.x.shape == (facts.test_images, facts.channels, side, side)
        assert sorted(set(train.y.tolist())) == sorted(set(test.y.tolist())) == list(range(facts.classes))
        assert (info.num_classes, info.channels, info.size) == (facts.classes, facts.channels, side)
    # The published sets, whose files are not here.
    cifar = [(d.image_size, d.channels, d.train_images, d.test_images) for d in (DATASETS["cifar10"],
                                                                                 DATASETS["cifar100"])]
    assert cifar == [(32, 3, 50_000, 10_000)] * 2
    assert (DATASETS["cifar10"].classes, DATASETS["cifar100"].classes) == (10, 100)
    assert (DATASETS["imagenet"].image_size, DATASETS["imagenet"].train_images) == (224, 1_281_167)
