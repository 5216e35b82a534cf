"""Small builders shared by the tests."""

from __future__ import annotations

import csv
import json
import pickle
from pathlib import Path

import numpy as np

# Run fields added after the first run ids were handed out. At the value every earlier run had, each is
# left out of the id, so a run's id is its experiment hashed without them (the rule the tests check).
LATER_FIELDS = ("isda_sync", "world_size", "lambda_schedule", "randaugment_n", "randaugment_m", "recipe",
                "train_size")

# The columns of metrics.csv and result.json that two runs of one seeded experiment cannot share.
TIMING = frozenset({"epoch_time_s", "wall_time_s", "images_per_s"})


def metric_rows(run_dir: Path) -> list[dict[str, str]]:
    """metrics.csv of a run, every column but the timing ones."""
    with open(run_dir / "metrics.csv") as fh:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(fh)]


def result_json(run_dir: Path) -> dict:
    """result.json of a run, every key but the timing ones."""
    return {k: v for k, v in json.loads((run_dir / "result.json").read_text()).items() if k not in TIMING}


def write_cifar(root: Path, classes: int = 10, per_batch: int = 20, seed: int = 0) -> Path:
    """CIFAR in its real on-disk python format (pickled dicts of uint8 rows), with few images."""
    rng = np.random.default_rng(seed)
    folder, label_key, meta_name, meta_key, train_files = (
        ("cifar-10-batches-py", "labels", "batches.meta", "label_names",
         [f"data_batch_{i}" for i in range(1, 6)]) if classes == 10 else
        ("cifar-100-python", "fine_labels", "meta", "fine_label_names", ["train"]))
    d = root / folder
    d.mkdir(parents=True, exist_ok=True)
    images = {}
    for name in train_files + ["test_batch" if classes == 10 else "test"]:
        data = rng.integers(0, 256, size=(per_batch, 3 * 32 * 32), dtype=np.uint8)
        labels = [int(i % classes) for i in range(per_batch)]
        with open(d / name, "wb") as fh:
            pickle.dump({"data": data, label_key: labels, "batch_label": name}, fh)
        images[name] = (data, labels)
    with open(d / meta_name, "wb") as fh:
        pickle.dump({meta_key: [f"class{i}" for i in range(classes)]}, fh)
    return d
