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
