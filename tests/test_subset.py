"""train_size: stratified subsets of a training set, the same for every run, checked against brute force."""

import itertools

import pytest
import torch

from bench.common.errors import ConfigError
from bench.data.sources import Split, load_dataset
from bench.data.subset import class_quotas, stratified_indices, take
from bench.experiment.resolve import resolve
from tests.helpers import LATER_FIELDS


def _brute_best(counts: list[int], size: int) -> float:
    """The least sum of squared gaps to the exact shares over every vector with 1 <= q_i <= count_i
    summing to ``size``: what largest-remainder rounding attains."""
    total = sum(counts)
    best = float("inf")
    for q in itertools.product(*(range(1, c + 1) for c in counts)):
        if sum(q) == size:
            best = min(best, sum((qi - size * c / total) ** 2 for qi, c in zip(q, counts)))
    return best


@pytest.mark.parametrize("counts", [[5, 5, 5], [9, 3, 1], [7, 1, 1, 4], [2, 6, 3, 3], [1, 1, 8]])
def test_quotas_are_the_closest_integer_shares_with_one_image_per_class(counts):
    for size in range(len(counts), sum(counts) + 1):
        q = class_quotas(counts, size)
        assert sum(q) == size and all(1 <= qi <= c for qi, c in zip(q, counts)), (size, q)
        gap = sum((qi - size * c / sum(counts)) ** 2 for qi, c in zip(q, counts))
        assert gap == pytest.approx(_brute_best(counts, size), abs=1e-12), (size, q)


def test_indices_are_stratified_fixed_and_independent_of_the_runs_seed():
    shuffle = torch.randperm(100, generator=torch.Generator().manual_seed(3))
    labels = torch.tensor([0] * 50 + [1] * 30 + [2] * 20)[shuffle]
    torch.manual_seed(0)
    a = stratified_indices(labels, 10)
    torch.manual_seed(99)  # a run's seed sets torch's global generator: the subset must not follow it
    b = stratified_indices(labels, 10)
    assert torch.equal(a, b)
    assert torch.equal(a, a.sort().values) and len(a.unique()) == 10
    assert torch.bincount(labels[a], minlength=3).tolist() == [5, 3, 2]
    assert torch.equal(stratified_indices(labels, 100), torch.arange(100))


def test_with_balanced_classes_a_smaller_subset_lies_inside_a_larger_one():
    labels = torch.arange(1000) % 10
    small, large = stratified_indices(labels, 100), stratified_indices(labels, 500)
    assert set(small.tolist()) < set(large.tolist())


@pytest.mark.parametrize("size, needle", [(101, "at most 100"), (2, "at least 3")])
def test_impossible_sizes_are_refused(size, needle):
    labels = torch.tensor([0, 1, 2] * 33 + [0])
    with pytest.raises(ConfigError, match=needle) as info:
        stratified_indices(labels, size)
    assert info.value.key == "train_size"


def test_take_keeps_images_and_labels_together():
    x = torch.arange(30, dtype=torch.uint8).view(30, 1, 1, 1)
    split = Split(x, torch.arange(30) % 3)
    sub = take(split, 9)
    assert len(sub.y) == 9 and torch.equal(sub.y, sub.x.flatten().long() % 3)
    assert take(split, None) is split


def test_digits_subset_through_load_dataset_keeps_the_test_set_whole():
    train, test, _ = load_dataset("digits", train_size=100)
    full, full_test, _ = load_dataset("digits")
    assert len(train.y) == 100 and torch.equal(test.x, full_test.x)
    assert torch.bincount(train.y).tolist() == [10] * 10
    idx = stratified_indices(full.y, 100)
    assert torch.equal(train.x, full.x[idx])


def test_an_image_folder_stays_an_image_folder_with_fewer_samples(tmp_path):
    from tests.test_data import write_image_folder

    write_image_folder(tmp_path, classes=3, per_class=4)
    train, val, info = load_dataset("imagenet", str(tmp_path), train_size=6)
    assert type(train).__name__ == "ImageFolder" and len(train) == 6 and len(val) == 6
    assert sorted(train.targets) == [0, 0, 1, 1, 2, 2]
    assert [t for _, t in train.samples] == train.targets
    with pytest.raises(ConfigError, match="train_size: 13.*at most 12"):
        load_dataset("imagenet", str(tmp_path), train_size=13)


def test_train_size_is_in_the_run_id_only_when_set():
    import hashlib
    import json

    base = resolve({"dataset": "digits", "method": "isda", "seed": 1})
    assert base.train_size is None
    # The id every run had before train_size existed: its experiment hashed without the field.
    before = {k: v for k, v in base.experiment.items() if k not in LATER_FIELDS}
    blob = json.dumps(before, sort_keys=True, separators=(",", ":"))
    assert base.run_id == hashlib.sha256(blob.encode()).hexdigest()[:12]
    assert resolve({**base.to_dict(), "train_size": None}).run_id == base.run_id
    sub = resolve({"dataset": "digits", "method": "isda", "seed": 1, "train_size": 500})
    assert sub.run_id != base.run_id and sub.run_id == resolve(sub.to_dict()).run_id
    assert sub.slug == "digits-resnet32-isda-l0.5-n500-s1"
    assert resolve({**sub.to_dict(), "train_size": 600}).run_id != sub.run_id


@pytest.mark.parametrize("spec, needle", [
    ({"dataset": "fashion_mnist", "train_size": 60_001}, "at most 60000"),
    ({"dataset": "cifar100", "train_size": 99}, "at least 100"),
    ({"dataset": "digits", "train_size": 0}, ">= 1"),
    ({"dataset": "digits", "train_size": 10.5}, "an integer"),
])
def test_resolve_refuses_a_subset_the_dataset_cannot_give(spec, needle):
    with pytest.raises(ConfigError, match=needle) as info:
        resolve(spec)
    assert info.value.key == "train_size"
