"""Fashion-MNIST: finding and reading the IDX files, and the real files of the Debian package.

The tests on the real data need ``apt-get install dataset-fashion-mnist``. Without it they are
skipped locally and fail in CI (CI=true), where .ci/run installs the package.
"""

import gzip
import hashlib
import os
import struct

import numpy as np
import pytest
import torch

from bench.common.errors import ConfigError
from bench.data import fashion_mnist
from bench.data.sources import load_dataset

# SHA-256 of the pixel bytes (the IDX payload after its 16-byte header) of the published files.
TRAIN_PIXELS_SHA256 = "2e487a6c89124f78f2d7521542223cafe96f7123c3ca13d447772ac6ecbb3012"
TEST_PIXELS_SHA256 = "c867c93ff95360594e8ec3287995350b824dd110b11595c0e13d5423f621867a"


def require_package() -> None:
    """The Debian package's files, or a skip (a failure under CI=true)."""
    try:
        fashion_mnist.find_files(None)
    except ConfigError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"Fashion-MNIST not installed; CI must run: apt-get install -y dataset-fashion-mnist ({exc})",
                        pytrace=False)
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")


@pytest.fixture(scope="module")
def real(request):
    mp = pytest.MonkeyPatch()
    mp.delenv("ISDA_BENCH_DATA", raising=False)  # the package's own files
    request.addfinalizer(mp.undo)
    require_package()
    return load_dataset("fashion_mnist")


def write_idx(path, array: np.ndarray, gz: bool = False) -> None:
    """An IDX file as the format defines it: magic 0x0000 08 <ndim>, big-endian dimensions, uint8 data."""
    blob = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        path = path.with_name(path.name + ".gz")
        path.write_bytes(gzip.compress(blob))
    else:
        path.write_bytes(blob)


def write_tiny(folder, gz: bool, n_train: int = 20, n_test: int = 10, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {"train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
              "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
              "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
              "t10k-labels-idx1-ubyte": (np.arange(n_test)[::-1] % 10).astype(np.uint8)}
    for name, array in arrays.items():
        write_idx(folder / name, array, gz)
    return arrays


@pytest.fixture
def no_package(tmp_path, monkeypatch):
    """The package's folder pointed somewhere empty, and no ISDA_BENCH_DATA."""
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", tmp_path / "no-package")
    monkeypatch.delenv("ISDA_BENCH_DATA", raising=False)


@pytest.mark.parametrize("layout, gz", [("", False), ("", True), ("fashion-mnist", True),
                                        ("FashionMNIST/raw", False)])
def test_files_under_the_data_root_are_read_with_their_pixels_and_labels(tmp_path, no_package, layout, gz):
    arrays = write_tiny(tmp_path / "data" / layout, gz)
    train, test, info = load_dataset("fashion_mnist", str(tmp_path / "data"))
    assert train.x.dtype == torch.uint8 and train.x.shape == (20, 1, 28, 28) and test.x.shape == (10, 1, 28, 28)
    assert np.array_equal(train.x[:, 0].numpy(), arrays["train-images-idx3-ubyte"])
    assert np.array_equal(test.x[:, 0].numpy(), arrays["t10k-images-idx3-ubyte"])
    assert train.y.dtype == torch.int64 and train.y.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert test.y.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert (info.num_classes, info.channels, info.size, info.pad, info.flip, info.cutout) == (10, 1, 28, 4, True, 14)


def test_a_data_root_is_searched_instead_of_the_package(tmp_path, monkeypatch):
    """The system's copy is read only without a data root: a root that holds none of the files, or
    some of them, is named, and training never falls back on other files."""
    write_tiny(tmp_path / "env", gz=True, n_train=30)
    write_tiny(tmp_path / "package", gz=True, n_train=40)
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", tmp_path / "package")
    monkeypatch.setenv("ISDA_BENCH_DATA", str(tmp_path / "env"))
    assert len(load_dataset("fashion_mnist")[0].y) == 30
    with pytest.raises(ConfigError, match="^data_root: '.*elsewhere' is not allowed; a folder holding Fashion-MNIST's"):
        load_dataset("fashion_mnist", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("ISDA_BENCH_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(ConfigError, match="^ISDA_BENCH_DATA: .*without a data root the system's copy is read"):
        load_dataset("fashion_mnist")
    monkeypatch.delenv("ISDA_BENCH_DATA")
    assert len(load_dataset("fashion_mnist")[0].y) == 40


@pytest.mark.parametrize("missing", [["t10k-labels-idx1-ubyte"], ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"]])
def test_a_data_root_with_some_of_the_files_is_one_line_naming_the_missing_ones(tmp_path, monkeypatch, missing):
    write_tiny(tmp_path / "data", gz=True)
    write_tiny(tmp_path / "package", gz=True)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_FOLDER", tmp_path / "package")  # there, but not a fallback
    for name in missing:
        (tmp_path / "data" / f"{name}.gz").unlink()
    with pytest.raises(ConfigError) as info:
        load_dataset("fashion_mnist", str(tmp_path / "data"))
    text = str(info.value)
    assert "\n" not in text and text.startswith(f"data_root: '{tmp_path / 'data'}' is not allowed; a folder holding "
                                                "all four of Fashion-MNIST's files")
    assert text.endswith(f"({tmp_path / 'data'} lacks {', '.join(n + '[.gz]' for n in missing)})")


def test_without_the_files_anywhere_the_line_names_the_places_and_the_package(tmp_path, no_package):
    (tmp_path / "data").mkdir()
    with pytest.raises(ConfigError) as info:
        load_dataset("fashion_mnist", str(tmp_path / "data"))
    text = str(info.value)
    assert "\n" not in text and "t10k-labels-idx1-ubyte" in text and "apt-get install dataset-fashion-mnist" in text
    for place in (tmp_path / "data", tmp_path / "data" / "fashion-mnist", tmp_path / "data" / "FashionMNIST" / "raw"):
        assert str(place) in text
    with pytest.raises(ConfigError) as info:
        load_dataset("fashion_mnist")
    assert str(tmp_path / "no-package") in str(info.value) and "apt-get install" in str(info.value)


def test_a_damaged_file_is_one_line(tmp_path, no_package):
    write_tiny(tmp_path / "data", gz=True)
    path = tmp_path / "data" / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ConfigError, match="train-images-idx3-ubyte.gz.*EOFError") as info:
        load_dataset("fashion_mnist", str(tmp_path / "data"))
    assert "\n" not in str(info.value)


def test_the_cli_refuses_before_writing_anything(tmp_path, no_package, monkeypatch, capsys):
    from bench.cli import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    assert main(["train", "--dataset", "fashion_mnist", "--epochs", "1", "--data-root", "empty"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "apt-get install dataset-fashion-mnist" in err
    assert main(["train", "--dataset", "fashion_mnist", "--set", "train_size=60001"]) == 2
    assert "train_size: 60001" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["empty"]


def test_the_packages_absence_fails_in_ci_and_skips_elsewhere(no_package, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="apt-get install -y dataset-fashion-mnist"):
        require_package()
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="not installed"):
        require_package()


# ------------------------------------------------------------------ the real files


def test_real_files_counts_balance_and_pixel_checksums(real):
    from bench.experiment.datasets import DATASETS

    train, test, info = real
    assert train.x.shape == (60_000, 1, 28, 28) and test.x.shape == (10_000, 1, 28, 28)
    facts = DATASETS["fashion_mnist"]  # what a run is validated and estimated with
    assert (facts.train_images, facts.test_images, facts.channels, facts.image_size, facts.classes) == \
        (60_000, 10_000, 1, 28, 10) == (60_000, 10_000, info.channels, info.size, info.num_classes)
    assert torch.bincount(train.y).tolist() == [6000] * 10
    assert torch.bincount(test.y).tolist() == [1000] * 10
    assert hashlib.sha256(train.x.numpy().tobytes()).hexdigest() == TRAIN_PIXELS_SHA256
    assert hashlib.sha256(test.x.numpy().tobytes()).hexdigest() == TEST_PIXELS_SHA256


def test_real_pixels_are_the_files_bytes_decoded_without_torchvision(real):
    train, _, _ = real
    files = fashion_mnist.find_files(None)
    raw = files["train-images-idx3-ubyte"].read_bytes()
    raw = gzip.decompress(raw) if files["train-images-idx3-ubyte"].suffix == ".gz" else raw
    assert struct.unpack(">4I", raw[:16]) == (0x0803, 60_000, 28, 28)
    assert train.x.numpy().tobytes() == raw[16:]


def test_normalisation_constants_are_the_training_pixels_mean_and_std(real):
    train, _, info = real
    pixels = train.x.numpy().astype(np.float64) / 255
    assert info.mean[0] == pytest.approx(pixels.mean(), abs=1e-6)
    assert info.std[0] == pytest.approx(pixels.std(), abs=1e-6)


def test_real_subset_is_balanced_and_nested(real):
    from bench.data.subset import take

    train, _, _ = real
    small, large = take(train, 1000), take(train, 5000)
    assert torch.bincount(small.y).tolist() == [100] * 10 and torch.bincount(large.y).tolist() == [500] * 10
    keys = {hashlib.sha1(img.numpy().tobytes()).hexdigest() for img in large.x}
    assert all(hashlib.sha1(img.numpy().tobytes()).hexdigest() in keys for img in small.x)


@pytest.mark.slow
def test_short_real_training_beats_chance_on_all_10000_test_images(real, tmp_path):
    """1,000 training images, 2 epochs of ResNet-32 on the CPU; the final network is evaluated
    again here, by hand, on the 10,000 test images: the run's error must be that one, and far
    below chance (90 %)."""
    from bench.experiment.resolve import resolve
    from bench.models import create_model
    from bench.train.trainer import run

    _, test, _ = real
    # A small batch and a constant rate: 2 epochs of 1,000 images are about 125 steps, enough to learn.
    cfg = resolve({"dataset": "fashion_mnist", "arch": "resnet32", "method": "ce", "train_size": 1000, "epochs": 2,
                   "batch_size": 16, "lr": 0.02, "milestones": [], "device": "cpu", "tracking": "disabled"})
    res = run(cfg, tmp_path / "run", progress=False)
    assert res["status"] == "completed" and res["train_size"] == 1000
    state = torch.load(tmp_path / "run" / "checkpoint.pt", map_location="cpu", weights_only=True)
    model = create_model("resnet32", num_classes=10, in_chans=1)
    model.load_state_dict(state["model"])
    model.eval()
    wrong = 0
    with torch.no_grad():
        for i in range(0, 10_000, 1000):
            x = (test.x[i:i + 1000].double() / 255 - fashion_mnist.MEAN) / fashion_mnist.STD
            wrong += int((model(x.float()).argmax(1) != test.y[i:i + 1000]).sum())
    assert res["final_test_error"] == pytest.approx(100 * wrong / 10_000, abs=0.05)
    assert res["final_test_error"] < 60.0, res  # chance is 90 %
