import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.color import rgb2lab

from colorlib import data as D
from colorlib.lab import lab_to_rgb, rgb_to_lab


def jpeg(arr: np.ndarray, fmt="JPEG") -> bytes:
    b = io.BytesIO()
    Image.fromarray(arr).save(b, fmt)
    return b.getvalue()


def make_tar(path, members: dict[str, bytes]):
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))


@pytest.fixture
def colour_photos(photos):
    return {k: v for k, v in photos.items() if v.ndim == 3}


def test_reads_miniplaces_tar_shard_with_labels(miniplaces):
    s = D.load_miniplaces(miniplaces.parent, "train", shards=1, limit=40)
    assert len(s) == 40 and len(s.classes) == 100
    labels = D.read_label_file(miniplaces / "train.txt")
    assert all(labels[n] == y for n, y in zip(s.names, s.labels))
    assert D.decode(s.blobs[0]).shape == (128, 128, 3)
    val = D.load_images(miniplaces / "val.tar.gz", limit=10)
    assert len(val) == 10 and val.labels is not None and val.names[0].startswith("val/")


def test_reads_unpacked_miniplaces_folder(miniplaces, tmp_path):
    shard = D.load_miniplaces(miniplaces.parent, "train", shards=1, limit=12)
    root = tmp_path / "miniplaces"
    for name, blob in zip(shard.names, shard.blobs):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(blob)
    (root / "categories.txt").write_text((miniplaces / "categories.txt").read_text())
    (root / "train.txt").write_text("".join(f"{n} {y}\n" for n, y in zip(shard.names, shard.labels)))
    s = D.load_images(tmp_path, "train")
    assert sorted(s.names) == sorted(shard.names)
    assert dict(zip(s.names, s.labels)) == dict(zip(shard.names, shard.labels))


def test_plain_folder_is_unlabelled(tmp_path, colour_photos):
    for k, v in colour_photos.items():
        (tmp_path / "sub").mkdir(exist_ok=True)
        Image.fromarray(v).save(tmp_path / "sub" / f"{k}.png")
    s = D.load_images(tmp_path)
    assert len(s) == len(colour_photos) and s.labels is None
    dec = D.decode_all(s, 64, workers=0, progress=False)
    assert dec.pixels.shape == (len(colour_photos), 3, 64, 64) and not dec.labelled


def test_places365_layout(tmp_path, colour_photos):
    (tmp_path / "data_256" / "a" / "abbey").mkdir(parents=True)
    names = []
    for i, v in enumerate(colour_photos.values()):
        rel = f"a/abbey/{i:08d}.jpg"
        (tmp_path / "data_256" / rel).write_bytes(jpeg(v))
        names.append(rel)
    (tmp_path / "categories_places365.txt").write_text("/a/abbey 0\n/a/airport 1\n")
    listing = "".join(f"/{n} {i % 2}\n" for i, n in enumerate(names))
    (tmp_path / "places365_train_standard.txt").write_text(listing)
    s = D.load_images(tmp_path)
    assert s.classes == ["abbey", "airport"] and list(s.labels) == [i % 2 for i in range(len(names))]


def test_gray_filter_removes_gray_and_sepia(tmp_path, photos):
    gray = np.stack([photos["camera"]] * 3, -1)
    # a uniformly tinted (sepia-like) print: constant a*b*, so no colour variance
    L = rgb_to_lab(torch.from_numpy(gray).permute(2, 0, 1)[None].float() / 255)[:, :1]
    tint = torch.cat([L, torch.full_like(L, 2.0), torch.full_like(L, 6.0)], 1)
    sepia = (lab_to_rgb(tint)[0].permute(1, 2, 0) * 255).round().byte().numpy()
    s = D.ImageSet([jpeg(photos["astronaut"]), jpeg(gray), jpeg(sepia), jpeg(photos["coffee"])],
                   ["a", "g", "s", "c"])
    dec = D.decode_all(s, 64, workers=0, progress=False)
    assert len(dec) == 2 and dec.removed_gray == 2
    std = D.colour_std(torch.from_numpy(np.stack([photos["astronaut"], gray])).permute(0, 3, 1, 2))
    assert std[0] > D.LOW_COLOUR_STD > std[1]


def test_corrupt_images_in_a_shard_are_skipped_and_counted(tmp_path, colour_photos):
    good = {f"train/x/{k}.jpg": jpeg(v) for k, v in colour_photos.items()}
    make_tar(tmp_path / "train-0000.tar.gz", {**good, "train/x/broken.jpg": b"not a jpeg at all",
                                              "train/x/half.jpg": jpeg(colour_photos["astronaut"])[:300]})
    s = D.load_images(tmp_path)
    assert len(s) == len(good) + 2
    dec = D.decode_all(s, 32, workers=0, progress=False)
    assert dec.removed_corrupt == 2 and len(dec) == len(good)


def test_labels_follow_their_images_without_data(tmp_path, colour_photos):
    """A MiniPlaces-style shard whose members are not in label order: each image keeps the label
    train.txt gives it (chelsea 2, astronaut 0, coffee 1), in the shard's order."""
    order = [("chelsea", 2), ("astronaut", 0), ("coffee", 1)]
    make_tar(tmp_path / "train-0000.tar.gz", {f"train/{k}.jpg": jpeg(colour_photos[k]) for k, _ in order})
    (tmp_path / "categories.txt").write_text("/a/abbey 0\n/b/bakery 1\n/c/canyon 2\n")
    (tmp_path / "train.txt").write_text("".join(f"train/{k}.jpg {y}\n" for k, y in sorted(order)))
    s = D.load_images(tmp_path)
    assert s.names == [f"train/{k}.jpg" for k, _ in order] and list(s.labels) == [2, 0, 1]
    assert s.classes == ["abbey", "bakery", "canyon"]


def test_label_file_that_disagrees_is_a_clear_error(tmp_path, colour_photos):
    make_tar(tmp_path / "train-0000.tar.gz", {f"train/{k}.jpg": jpeg(v) for k, v in colour_photos.items()})
    (tmp_path / "categories.txt").write_text("/a/abbey 0\n")
    (tmp_path / "train.txt").write_text("train/astronaut.jpg 0\n")
    with pytest.raises(D.DataError, match="disagree"):
        D.load_images(tmp_path)
    (tmp_path / "train.txt").write_text("".join(f"train/{k}.jpg 5\n" for k in colour_photos))
    with pytest.raises(D.DataError, match="outside"):
        D.load_images(tmp_path)
    (tmp_path / "categories.txt").write_text("/a/abbey 1\n/b/bar 2\n")  # numbered from 1
    with pytest.raises(D.DataError, match="class indices must be 0 .. 1"):
        D.load_images(tmp_path)


def test_empty_or_missing_data_root_messages(tmp_path, monkeypatch):
    with pytest.raises(D.DataError, match="contains no images"):
        D.load_images(tmp_path)
    with pytest.raises(D.DataError, match="does not exist.*miniplaces"):
        D.data_root(tmp_path / "nope")
    monkeypatch.setenv("COLORLIB_DATA", str(tmp_path))
    assert D.data_root() == tmp_path


def test_pack_round_trip(tmp_path, colour_photos):
    blobs = [jpeg(v) for v in colour_photos.values()]
    s = D.ImageSet(blobs, list(colour_photos), np.arange(3), ["a", "b", "c"])
    back = D.load_images(D.save_pack(tmp_path / "x.pack", s))
    assert back.names == s.names and back.blobs == s.blobs and list(back.labels) == [0, 1, 2]
    two = D.load_images(tmp_path / "x.pack", limit=2)
    assert two.names == s.names[:2] and list(two.labels) == [0, 1]


def test_augment_is_an_exact_crop_and_flip():
    torch.manual_seed(0)
    img = torch.randint(0, 256, (2, 3, 16, 16), dtype=torch.uint8)
    boxes = torch.tensor([[0.0, 0.0, 0.5, 0.5, 0.0], [0.5, 0.25, 0.5, 0.5, 1.0]])
    out = D.augment(img, boxes, 8)
    assert torch.allclose(out[0], img[0, :, :8, :8].float() / 255, atol=1e-6)
    assert torch.allclose(out[1], img[1, :, 4:12, 8:16].flip(-1).float() / 255, atol=1e-6)


def test_paper_crop_boxes_and_random_resized_boxes():
    g = torch.Generator().manual_seed(0)
    b = D.crop_boxes(1000, g)
    assert torch.allclose(b[:, 2], torch.full((1000,), 224 / 256))
    assert (b[:, 0] >= 0).all() and (b[:, 0] + b[:, 2] <= 1 + 1e-6).all()
    assert 0.4 < b[:, 4].mean() < 0.6  # flips with p = 0.5
    r = D.crop_boxes(1000, g, min_scale=0.5)
    assert r[:, 2].min() >= 0.5**0.5 - 1e-6 and r[:, 2].max() <= 1


def test_lab_batch_shapes_and_ranges(photos):
    rgb = torch.from_numpy(photos["astronaut"][:64, :64]).permute(2, 0, 1)[None].float() / 255
    L, ab = D.lab_batch(rgb)
    assert L.shape == (1, 1, 64, 64) and ab.shape == (1, 2, 32, 32)
    assert 0 <= L.min() and L.max() <= 1 and 0 <= ab.min() and ab.max() <= 1


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_lab_batch_and_colour_std_against_skimage(photos, name):
    """The training input and target (paper 3.2.5) from scikit-image's L*a*b*: L*/100 per pixel,
    and a*b* normalised to (x + 128) / 255 and averaged over 2 x 2 blocks (the output is H/2 x W/2).
    Measured: within 1.7e-7 (float32). The gray filter's std(a*) + std(b*) (sample std, n - 1) is
    within 1e-5 relative of scikit-image's."""
    rgb = photos[name][:64, :96].copy()
    L, ab = D.lab_batch(torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255)
    lab = rgb2lab(rgb)
    expected_ab = ((lab[..., 1:] + 128) / 255).reshape(32, 2, 48, 2, 2).mean((1, 3))
    assert np.abs(L[0, 0].numpy() - lab[..., 0] / 100).max() < 1e-6
    assert np.abs(ab[0].permute(1, 2, 0).numpy() - expected_ab).max() < 1e-6
    std = D.colour_std(torch.from_numpy(rgb).permute(2, 0, 1)[None]).item()
    assert std == pytest.approx(lab[..., 1].std(ddof=1) + lab[..., 2].std(ddof=1), rel=1e-5)


def test_a_folder_named_like_an_image_or_a_pipe_among_the_photos_is_left_out(tmp_path, colour_photos):
    """A folder called x.jpg (read_bytes: IsADirectoryError) and a FIFO called y.png (read_bytes:
    waits forever) are not images: the photos beside them are read, they are left out."""
    (tmp_path / "x.jpg").mkdir()
    (tmp_path / "a.jpg").write_bytes(jpeg(colour_photos["coffee"]))
    if hasattr(os, "mkfifo"):
        os.mkfifo(tmp_path / "y.png")
    got = D.load_images(tmp_path)
    assert got.names == ["a.jpg"] and len(got.blobs) == 1


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_a_pipe_or_device_as_data_is_one_line_before_any_run_folder(tmp_path, cli):
    fifo = tmp_path / "data"
    os.mkfifo(fifo)
    for given in (fifo, Path("/dev/zero")):
        if not given.exists():
            continue
        with pytest.raises(D.DataError, match="is not a folder or a regular file"):
            D.load_images(given)
        status, out, err = cli("train", "--data", given, "--out", tmp_path / "run", "--smoke")
        assert status == 2 and "Traceback" not in err and len(err.splitlines()) == 1, err
        assert f"data path {given} is not a folder or a regular file" in err
        assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("label", ["²", "9" * 5000, "x"])
def test_a_label_int_would_refuse_is_one_line_naming_the_file_and_line(tmp_path, label):
    (tmp_path / "train.txt").write_text(f"train/a.jpg 0\ntrain/b.jpg {label}\n")
    with pytest.raises(D.DataError, match=r"train\.txt:2: expected 'path label'"):
        D.read_label_file(tmp_path / "train.txt")
    (tmp_path / "categories.txt").write_text(f"/a/abbey 0\n/b/bar {label}\n")
    with pytest.raises(D.DataError, match=r"categories\.txt:2: expected 'name index'"):
        D.read_categories(tmp_path / "categories.txt")
    (tmp_path / "categories.txt").write_bytes(b"/a/caf\xe9 0\n")  # Latin-1, not UTF-8
    with pytest.raises(D.DataError, match=r"categories\.txt: not UTF-8 text"):
        D.read_categories(tmp_path / "categories.txt")


# -- augmentation statistics (issue 27) ----------------------------------------------------------
# Section 4: each training image is cropped at a random place and flipped horizontally at random.
# crop_boxes' offsets, as fractions of the room the crop leaves, must be uniform on [0, 1] and
# independent in x and y, of the flip, of the crop's size and of the next photo's draw, and flips
# must happen half the time. Each bound below is set so that a correct sampler exceeds it with
# probability 1e-6 (Pearson's chi-square against the uniform, independent distribution, upper tail;
# for the flip count, the two-sided normal bound of a binomial); at most 1e-5 for every bound of
# this file together (their sum). The draws are seeded, so a pass is reproducible.
FALSE_ALARM = 1e-6


def _draws(min_scale: float = 1.0, batches: int = 625, batch: int = 32) -> torch.Tensor:
    """20,000 boxes drawn as training draws them: a batch at a time, from one generator."""
    g = torch.Generator().manual_seed(2016)
    return torch.cat([D.crop_boxes(batch, g, min_scale) for _ in range(batches)]).double()


def _offsets(b: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """x0 and y0 as fractions of the room the crop leaves (1 - side): uniform on [0, 1]."""
    return (b[:, 0] / (1 - b[:, 2])).numpy(), (b[:, 1] / (1 - b[:, 3])).numpy()


def _chi2_uniform(*columns: tuple[np.ndarray, int]) -> None:
    """Pearson's chi-square test that ``(values, bins)`` columns (values on [0, 1]; a flip, 0 or 1,
    with 2 bins) are uniform and independent: their joint histogram against equal counts in every
    cell. Fails when the statistic exceeds the chi-square bound of FALSE_ALARM."""
    from scipy.stats import chi2

    cells = np.zeros(len(columns[0][0]), np.int64)
    k = 1
    for values, bins in columns:
        cells = cells * bins + np.clip((values * bins).astype(np.int64), 0, bins - 1)
        k *= bins
    counts = np.bincount(cells, minlength=k)
    expected = len(cells) / k
    stat, bound = float(((counts - expected) ** 2 / expected).sum()), float(chi2.isf(FALSE_ALARM, k - 1))
    assert stat < bound, f"chi-square {stat:.0f} over {k} cells, above the bound {bound:.0f}"


def test_crop_offsets_are_uniform_and_independent_and_flips_half_the_time():
    from scipy.stats import norm

    b = _draws()
    assert torch.allclose(b[:, 2], torch.full_like(b[:, 2], 224 / 256)) and torch.equal(b[:, 2], b[:, 3])
    x, y = _offsets(b)
    flip = b[:, 4].numpy()
    assert ((0 <= x) & (x <= 1) & (0 <= y) & (y <= 1)).all() and set(np.unique(flip)) <= {0.0, 1.0}
    _chi2_uniform((x, 20))  # uniform in x: 20 bins
    _chi2_uniform((y, 20))  # and in y
    _chi2_uniform((x, 8), (y, 8))  # x and y independent: 64 cells
    _chi2_uniform((x, 4), (y, 4), (flip, 2))  # the flip independent of both: 32 cells
    pairs = np.arange(0, len(x), 2)  # photos 0 and 1, 2 and 3, ... of each batch of 32: disjoint pairs
    _chi2_uniform((x[pairs], 4), (x[pairs + 1], 4), (flip[pairs], 2), (flip[pairs + 1], 2))
    n = len(flip)  # flips: a binomial count, within its two-sided normal bound of n / 2
    assert abs(flip.sum() - n / 2) < norm.isf(FALSE_ALARM / 2) * (n / 4) ** 0.5, flip.mean()


def test_random_resized_crops_draw_the_area_uniformly_and_the_offsets_apart_from_it():
    """min_scale < 1: the crop's area (side squared) is uniform between min_scale and 1 of the
    image (crop_boxes' docstring), and the offsets are uniform and independent of it."""
    b = _draws(min_scale=0.5)
    assert torch.equal(b[:, 2], b[:, 3])  # square crops
    area = ((b[:, 2] ** 2 - 0.5) / 0.5).numpy()
    assert ((-1e-6 <= area) & (area <= 1 + 1e-6)).all()
    x, y = _offsets(b)
    _chi2_uniform((area, 20))
    _chi2_uniform((x, 20))
    _chi2_uniform((y, 20))
    _chi2_uniform((x, 4), (y, 4), (area, 4), (b[:, 4].numpy(), 2))  # 128 cells


def _bilinear_crop(img: np.ndarray, box: list[float], out: int) -> np.ndarray:
    """``box`` (x0, y0, w, h as fractions, flip) of a float (S, S, 3) image resampled to out x out by
    scipy: output pixel j samples the source at (x0 + w (j + 0.5) / out) S - 0.5 (mirrored in x when
    flipped), bilinearly, edge values held."""
    from scipy.ndimage import map_coordinates

    S = img.shape[0]
    x0, y0, w, h, flip = box
    t = (np.arange(out) + 0.5) / out
    xs = (x0 + w * (1 - t if flip else t)) * S - 0.5
    ys = (y0 + h * t) * S - 0.5
    Y, X = np.meshgrid(ys, xs, indexing="ij")
    return np.stack([map_coordinates(img[..., c], [Y, X], order=1, mode="nearest") for c in range(3)], -1)


def test_targets_are_cropped_and_flipped_with_their_inputs(colour_photos):
    """prepare_batch (what a training step does to pixels): the network's input L*/100 and its target
    (a*b* normalised, (x + 128) / 255, averaged over 2 x 2 blocks) both come from the same crop and
    flip of the photo. Expected: the crop taken by numpy slicing ([::-1] for a flip) for boxes on
    the pixel grid, and by scipy's bilinear resampling for boxes off it, converted by scikit-image.
    Measured: within 4e-7 (L*/100) and 7e-7 (target) on the grid, 2.5e-6 and 5e-7 off it (float32);
    the target of the crop left unflipped is 0.18 away."""
    photos = [np.asarray(Image.fromarray(colour_photos[k]).resize((64, 64), Image.Resampling.LANCZOS))
              for k in ("astronaut", "chelsea", "coffee", "astronaut")]
    pixels = torch.from_numpy(np.stack(photos)).permute(0, 3, 1, 2).contiguous()
    # on the pixel grid: 32 x 32 crops at (8, 4) flipped, (24, 30) not, (0, 0) flipped, (32, 32) not
    boxes = [[8 / 64, 4 / 64, 0.5, 0.5, 1.0], [24 / 64, 30 / 64, 0.5, 0.5, 0.0],
             [0.0, 0.0, 0.5, 0.5, 1.0], [0.5, 0.5, 0.5, 0.5, 0.0]]
    L, target = D.prepare_batch(pixels, torch.tensor(boxes), 32)
    assert L.shape == (4, 1, 32, 32) and target.shape == (4, 2, 16, 16)
    for i, (x0, y0, _, _, flip) in enumerate(boxes):
        c, r = round(x0 * 64), round(y0 * 64)
        crop = photos[i][r : r + 32, c : c + 32][:, ::-1 if flip else 1]
        lab = rgb2lab(crop)
        want = ((lab[..., 1:] + 128) / 255).reshape(16, 2, 16, 2, 2).mean((1, 3))
        assert np.abs(L[i, 0].numpy() - lab[..., 0] / 100).max() < 1e-5
        assert np.abs(target[i].permute(1, 2, 0).numpy() - want).max() < 1e-5
    # off the grid: crops of any size at any place, resampled (as random boxes are)
    g = torch.Generator().manual_seed(27)
    boxes = D.crop_boxes(4, g, min_scale=0.4)
    boxes[:, 4] = torch.tensor([1.0, 0.0, 1.0, 0.0])  # both kinds, whatever the draw
    L, target = D.prepare_batch(pixels, boxes, 32)
    for i in range(4):
        rgb = _bilinear_crop(photos[i].astype(np.float64) / 255, boxes[i].tolist(), 32)
        lab = rgb2lab(rgb)
        want = ((lab[..., 1:] + 128) / 255).reshape(16, 2, 16, 2, 2).mean((1, 3))
        assert np.abs(L[i, 0].numpy() - lab[..., 0] / 100).max() < 1e-5
        assert np.abs(target[i].permute(1, 2, 0).numpy() - want).max() < 1e-5


def test_the_cache_folder_is_resolved_once_with_home_and_relative_names(tmp_path, monkeypatch, request):
    """COLORLIB_CACHE=~/cc is the home's cc (never a folder named '~' in the working folder), and a
    relative COLORLIB_CACHE is resolved once, from the working folder of its first use: changing
    folder later (a notebook does) finds the same cache, not a new one there. Every user of the
    cache (the study's stimuli, the alpha app's runs) reads it through data.cache_dir."""
    from colorlib.apps import alpha_runs_dir
    from colorlib.study import default_cache_dir

    D._folder.cache_clear()  # "~" resolved under this test's home, whatever ran before
    request.addfinalizer(D._folder.cache_clear)  # and not kept for the tests after it
    home, first, second = tmp_path / "home", tmp_path / "a", tmp_path / "b"
    for d in (home, first, second):
        d.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(first)
    monkeypatch.setenv("COLORLIB_CACHE", "~/cc")
    assert D.cache_dir("study") == home / "cc" / "study" == default_cache_dir()
    relative = f"cache-{tmp_path.name}"  # a name no other test has resolved in this process
    monkeypatch.setenv("COLORLIB_CACHE", relative)
    assert D.cache_dir() == first.resolve() / relative
    monkeypatch.chdir(second)
    assert D.cache_dir("alpha-lab") == first.resolve() / relative / "alpha-lab" == alpha_runs_dir()
    monkeypatch.delenv("COLORLIB_CACHE")
    assert D.cache_dir("study") == home / ".cache" / "colorlib" / "study"
    assert not any(p.name == "~" for p in tmp_path.rglob("*"))  # nothing made, nothing named '~'
