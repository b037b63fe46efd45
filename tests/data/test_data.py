"""Datasets, the MAT reader, the Olivetti download, image folders, LFW files, transforms, sampling."""

import hashlib
import http.server
import os
import shutil
import threading
import time
import zlib
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from tinyface.data import folders
from tinyface.data.dataset import FaceDataset, split_people
from tinyface.data.folders import decode_image, decode_images, image_files, load_image_folder, person_folders
from tinyface.data.lfw import (
    LFWFormatError,
    image_root,
    pair_paths,
    read_pairs,
    read_people,
    read_people_counts,
)
from tinyface.data.matfile import MatFileError, parse_mat, read_mat
from tinyface.data.olivetti import OLIVETTI_SHA256, DownloadError, load_olivetti
from tinyface.data.sampler import PKSampler
from tinyface.data.transforms import (
    center_crop,
    prewhiten,
    random_crop,
    random_flip,
    random_rotate_zoom,
    resize,
    standardize,
    to_float32,
)

# ---------------------------------------------------------------- fixtures


@pytest.fixture
def no_data_env(monkeypatch, tmp_path):
    """No $TINYFACE_DATA and an empty cache folder, so loaders can only use what a test gives them."""
    monkeypatch.delenv("TINYFACE_DATA", raising=False)
    monkeypatch.setenv("TINYFACE_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_folder(tmp_path):
    """(folder, base URL): files put in the folder are served on 127.0.0.1 by a server in a thread."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


def write_jpeg(path: Path, rgb, size=(20, 24)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, tuple(rgb)).save(path, quality=95)


@pytest.fixture
def face_folder(tmp_path):
    """root/person/*.jpg: alice 3 images, bob 2 (+1 corrupt file), carol 1; each image a flat grey level."""
    root = tmp_path / "faces"
    for person, levels in {"alice": [40, 60, 80], "bob": [120, 140], "carol": [200]}.items():
        for k, level in enumerate(levels, 1):
            write_jpeg(root / person / f"{person}_{k:04d}.jpg", (level, level, level))
    (root / "bob" / "bob_0003.jpg").write_bytes(b"this is not a jpeg")
    (root / "bob" / "notes.txt").write_text("not an image, ignored")
    return root


# ---------------------------------------------------------------- FaceDataset


def small_dataset():
    images = np.arange(6 * 4, dtype=np.uint8).reshape(6, 1, 2, 2)
    return FaceDataset(images, np.array([0, 0, 1, 1, 2, 2]), ["a", "b", "c"], [f"p{i}" for i in range(6)])


def test_dataset_subset_people_and_floats():
    dataset = small_dataset()
    assert len(dataset) == 6 and dataset.num_people == 3
    part = dataset.subset([5, 0])
    np.testing.assert_array_equal(part.labels, [2, 0])
    assert part.paths == ["p5", "p0"] and part.names == ["a", "b", "c"]
    two = dataset.people([2, 0])
    np.testing.assert_array_equal(two.labels, [1, 1, 0, 0])
    assert two.names == ["c", "a"] and two.paths == ["p0", "p1", "p4", "p5"]
    floats = dataset.to_float()
    assert floats.dtype == np.float32 and floats.max() == pytest.approx(23 / 255)
    np.testing.assert_array_equal(dataset.image_counts(), [2, 2, 2])


def test_dataset_refuses_inconsistent_fields():
    images = np.zeros((2, 1, 2, 2), np.uint8)
    with pytest.raises(ValueError, match="uint8"):
        FaceDataset(images.astype(np.float32), np.array([0, 0]), ["a"])
    with pytest.raises(ValueError, match="labels must lie"):
        FaceDataset(images, np.array([0, 1]), ["a"])
    with pytest.raises(ValueError, match="paths"):
        FaceDataset(images, np.array([0, 0]), ["a"], ["only one"])


def test_split_people_is_identity_disjoint():
    dataset = small_dataset()
    train, test = split_people(dataset, ["b"])
    assert train.names == ["a", "c"] and test.names == ["b"]
    train, test = split_people(dataset, 1 / 3, rng=0)
    assert len(train) == 4 and len(test) == 2 and not set(train.names) & set(test.names)
    assert split_people(dataset, 1, rng=5)[1].names == split_people(dataset, 1, rng=5)[1].names
    with pytest.raises(ValueError, match="rng"):
        split_people(dataset, 0.5)
    with pytest.raises(ValueError, match="no identity named"):
        split_people(dataset, ["zed"])


# ---------------------------------------------------------------- MAT files


def mat_element(code: int, payload: bytes, order: str) -> bytes:
    tag = np.array([code, len(payload)], dtype=f"{order}u4").tobytes()
    return tag + payload + b"\0" * (-len(payload) % 8)


def mat_small_element(code: int, payload: bytes, order: str) -> bytes:
    return np.array([len(payload) << 16 | code], dtype=f"{order}u4").tobytes() + payload.ljust(4, b"\0")


def mat_file(variables, order="<", compress=False) -> bytes:
    """A level-5 MAT file written by the spec: {name: (mx class, mi data type, array)}."""
    header = b"MATLAB 5.0 MAT-file, written by tinyface tests".ljust(116) + b"\0" * 8
    header += np.array([0x0100], dtype=f"{order}u2").tobytes() + (b"IM" if order == "<" else b"MI")
    body = b""
    for name, (mx_class, mi_type, array) in variables.items():
        dtype = {1: "i1", 2: "u1", 3: "i2", 9: "f8"}[mi_type]
        parts = mat_element(6, np.array([mx_class, 0], dtype=f"{order}u4").tobytes(), order)
        parts += mat_element(5, np.array(array.shape, dtype=f"{order}i4").tobytes(), order)
        name_bytes = name.encode()
        parts += (mat_small_element if len(name_bytes) <= 4 else mat_element)(1, name_bytes, order)
        parts += mat_element(
            mi_type, np.asarray(array).ravel(order="F").astype(order + dtype).tobytes(), order
        )
        element = mat_element(14, parts, order)
        if compress:
            packed = zlib.compress(element)
            element = np.array([15, len(packed)], dtype=f"{order}u4").tobytes() + packed
        body += element
    return header + body


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("compress", [False, True])
def test_mat_reader_on_files_written_by_the_spec(order, compress):
    doubles = np.arange(6.0).reshape(2, 3) / 7
    small = np.array([[-3, 4, 5]], dtype=np.int16)
    data = mat_file(
        {"doubles": (6, 9, doubles), "ab": (10, 3, small), "pix": (6, 2, np.array([[1, 2], [3, 255]]))},
        order=order,
        compress=compress,
    )
    variables = parse_mat(data)
    np.testing.assert_array_equal(variables["doubles"], doubles)
    np.testing.assert_array_equal(variables["ab"], small)
    assert variables["pix"].dtype == np.uint8  # stored type, as SciPy returns it by default
    np.testing.assert_array_equal(variables["pix"], [[1, 2], [3, 255]])


def test_mat_reader_on_the_real_olivetti_file(data_dir):
    faces = read_mat(data_dir / "olivettifaces.mat")["faces"]
    assert faces.dtype == np.uint8 and faces.shape == (4096, 400)
    np.testing.assert_array_equal(faces[:5, 0], [75, 83, 83, 74, 81])  # the first bytes of the data


def test_mat_reader_errors_name_the_problem(tmp_path):
    with pytest.raises(MatFileError, match="too short"):
        parse_mat(b"MATLAB 5.0", "x.mat")
    with pytest.raises(MatFileError, match="not a MATLAB level-5"):
        parse_mat(b"\0" * 200, "x.mat")
    with pytest.raises(MatFileError, match="v7.3"):
        parse_mat(b"MATLAB 7.3 MAT-file".ljust(200), "x.mat")
    whole = mat_file({"doubles": (6, 9, np.ones((5, 5)))})
    with pytest.raises(MatFileError, match="x.mat: truncated"):
        parse_mat(whole[:-30], "x.mat")
    packed = mat_file({"doubles": (6, 9, np.ones((5, 5)))}, compress=True)
    broken = packed[:140] + bytes(b ^ 0xFF for b in packed[140:160]) + packed[160:]
    with pytest.raises(MatFileError, match="corrupt"):
        parse_mat(broken, "x.mat")


# ---------------------------------------------------------------- Olivetti


def test_load_olivetti_from_a_folder(data_dir, no_data_env):
    dataset = load_olivetti(data_dir)
    assert dataset.images.shape == (400, 1, 64, 64) and dataset.images.dtype == np.uint8
    np.testing.assert_array_equal(dataset.labels, np.repeat(np.arange(40), 10))
    assert dataset.names[0] == "s01" and len(set(dataset.names)) == 40
    np.testing.assert_array_equal(dataset.images[0, 0, :5, 0], [75, 83, 83, 74, 81])  # image = column.T
    faces = read_mat(data_dir / "olivettifaces.mat")["faces"]
    np.testing.assert_array_equal(dataset.images[123, 0], faces[:, 123].reshape(64, 64).T)
    assert not no_data_env.exists()  # found locally: nothing cached


def test_load_olivetti_from_the_environment(data_dir, no_data_env, monkeypatch):
    monkeypatch.setenv("TINYFACE_DATA", str(data_dir))
    assert len(load_olivetti(download=False)) == 400


def test_load_olivetti_without_data_or_download(no_data_env, tmp_path):
    with pytest.raises(FileNotFoundError, match="TINYFACE_DATA"):
        load_olivetti(download=False)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_olivetti(tmp_path / "nowhere")


def test_load_olivetti_downloads_verifies_and_caches(data_dir, no_data_env, http_folder):
    folder, url = http_folder
    shutil.copy(data_dir / "olivettifaces.mat", folder / "faces.mat")
    dataset = load_olivetti(url=f"{url}/faces.mat")
    assert len(dataset) == 400
    cached = no_data_env / "olivettifaces.mat"
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == OLIVETTI_SHA256
    assert not [p for p in no_data_env.iterdir() if p.name != "olivettifaces.mat"]  # no temp file left
    (folder / "faces.mat").unlink()  # a second load must not need the network
    again = load_olivetti(url=f"{url}/faces.mat")
    np.testing.assert_array_equal(again.images, dataset.images)


def test_a_truncated_download_is_refused_and_not_cached(data_dir, no_data_env, http_folder):
    folder, url = http_folder
    (folder / "faces.mat").write_bytes((data_dir / "olivettifaces.mat").read_bytes()[:100_000])
    with pytest.raises(DownloadError, match="sha256.*not cached"):
        load_olivetti(url=f"{url}/faces.mat")
    assert not (no_data_env / "olivettifaces.mat").exists()
    with pytest.raises(DownloadError, match="could not download"):
        load_olivetti(url=f"{url}/missing.mat")


def test_a_corrupt_local_file_names_its_path(data_dir, tmp_path):
    (tmp_path / "olivettifaces.mat").write_bytes((data_dir / "olivettifaces.mat").read_bytes()[:5000])
    with pytest.raises(MatFileError, match=f"{tmp_path}.*Delete or replace"):
        load_olivetti(tmp_path)


# ---------------------------------------------------------------- image folders


def test_load_image_folder_skips_unreadable_images_with_a_warning(face_folder, tmp_path):
    with pytest.warns(UserWarning, match="bob_0003.jpg"):
        dataset = load_image_folder(face_folder, size=8, cache_dir=tmp_path / "cache")
    assert dataset.names == ["alice", "bob", "carol"]
    np.testing.assert_array_equal(dataset.labels, [0, 0, 0, 1, 1, 2])
    assert dataset.images.shape == (6, 1, 8, 8)
    np.testing.assert_allclose(dataset.images.mean(axis=(1, 2, 3)), [40, 60, 80, 120, 140, 200], atol=2)
    assert Path(dataset.paths[3]).name == "bob_0001.jpg"


def test_load_image_folder_filters_people(face_folder, tmp_path):
    with pytest.warns(UserWarning):
        assert load_image_folder(face_folder, size=8, min_images=2, cache=False).names == ["alice", "bob"]
    assert load_image_folder(face_folder, size=8, people=["carol", "alice"], cache=False).names == [
        "carol",
        "alice",
    ]
    with pytest.raises(FileNotFoundError, match="dave"):
        load_image_folder(face_folder, people=["dave"], cache=False)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        load_image_folder(tmp_path / "nowhere")


def test_load_image_folder_in_colour(face_folder):
    write_jpeg(face_folder / "dora" / "dora_0001.jpg", (250, 0, 0))
    dataset = load_image_folder(face_folder, size=4, grayscale=False, people=["dora"], cache=False)
    assert dataset.images.shape == (1, 3, 4, 4)
    np.testing.assert_allclose(dataset.images[0].mean(axis=(1, 2)), [250, 0, 0], atol=3)


def test_decoded_images_are_cached_and_the_cache_follows_the_files(face_folder, tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    with pytest.warns(UserWarning):
        first = load_image_folder(face_folder, size=8, cache_dir=cache)
    assert len(list(cache.glob("*.npz"))) == 1

    def no_decoding(*args, **kwargs):
        raise AssertionError("the cache should have been used")

    monkeypatch.setattr(folders, "decode_image", no_decoding)
    with pytest.warns(UserWarning, match="bob_0003.jpg"):  # still reported on a cached load
        second = load_image_folder(face_folder, size=8, cache_dir=cache)
    np.testing.assert_array_equal(first.images, second.images)
    assert first.paths == second.paths

    (next(cache.glob("*.npz"))).write_bytes(b"PK garbage")  # a damaged cache is decoded again, not trusted
    monkeypatch.undo()
    with pytest.warns(UserWarning):
        repaired = load_image_folder(face_folder, size=8, cache_dir=cache)
    np.testing.assert_array_equal(first.images, repaired.images)

    decoded = []
    monkeypatch.setattr(
        folders, "decode_image", lambda path, size, *a: decoded.append(path) or np.zeros((1, size, size))
    )
    changed = face_folder / "alice" / "alice_0001.jpg"
    write_jpeg(changed, (0, 0, 0))
    os.utime(changed, ns=(time.time_ns(), time.time_ns() + 10**9))
    load_image_folder(face_folder, size=8, cache_dir=cache)  # a changed file: decode again
    assert len(decoded) == 7
    load_image_folder(face_folder, size=16, cache_dir=cache)  # other settings: decode again
    assert len(decoded) == 14


def test_decode_image_crops_the_centre_before_resizing(tmp_path):
    image = Image.new("L", (100, 60), 0)
    image.paste(255, (30, 10, 70, 50))  # a white 40 x 40 square in the middle
    image.save(tmp_path / "square.png")
    cropped = decode_image(tmp_path / "square.png", size=10, face_crop=0.4)
    assert cropped.shape == (1, 10, 10) and cropped.min() == 255
    whole = decode_image(tmp_path / "square.png", size=10)
    assert whole.mean() < 128
    assert decode_image(tmp_path / "square.png", size=6, face_crop=1.0).shape == (1, 6, 6)


# ---------------------------------------------------------------- LFW files


def test_lfw_view2_pairs(data_dir):
    pairs = read_pairs(data_dir / "lfw" / "pairs.txt")
    assert len(pairs) == 6000 and sum(p.same for p in pairs) == 3000
    folds = np.array([p.fold for p in pairs])
    np.testing.assert_array_equal(np.bincount(folds), [600] * 10)
    assert pairs[0].same and not pairs[300].same and pairs[600].fold == 1
    assert pairs[0] == ("Abel_Pacheco", 1, "Abel_Pacheco", 4, 0)
    first, second = pair_paths(pairs[:50], data_dir / "lfw")[0]
    assert first.name == "Abel_Pacheco_0001.jpg" and second.parent.name == "Abel_Pacheco"


def test_lfw_view1_pairs(data_dir):
    train = read_pairs(data_dir / "lfw" / "pairsDevTrain.txt")
    test = read_pairs(data_dir / "lfw" / "pairsDevTest.txt")
    assert (len(train), len(test)) == (2200, 1000)
    assert sum(p.same for p in train) == 1100 and {p.fold for p in test} == {0}


def test_lfw_people_files(data_dir):
    folds = read_people(data_dir / "lfw" / "people.txt")
    assert len(folds) == 10 and len(folds[0]) == 601
    everyone = [name for fold in folds for name in fold]
    assert len(everyone) == len(set(everyone)) == 5749
    counts = read_people_counts(data_dir / "lfw" / "people.txt")
    assert sum(n for fold in counts for _, n in fold) == 13233
    assert [len(f) for f in read_people(data_dir / "lfw" / "peopleDevTrain.txt")] == [4038]
    assert [len(f) for f in read_people(data_dir / "lfw" / "peopleDevTest.txt")] == [1711]
    assert image_root(data_dir / "lfw").name == "lfw-deepfunneled"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1 2\nA\t1\t2\nA\t1\tB\t2\n", "line 3: expected a matched"),
        ("1 1\nA\t1\t2\nA\t1\tB\tx\n", "line 3: expected an integer"),
        ("2\nA\t1\t2\n", "line 3: unexpected end of file"),
        ("1\nA\t1\t2\nA\t1\tB\t2\nC\t1\t2\n", "line 4: more lines"),
        ("ten 300\n", "line 1: expected"),
    ],
)
def test_malformed_pairs_files_name_file_and_line(tmp_path, text, message):
    path = tmp_path / "pairs.txt"
    path.write_text(text)
    with pytest.raises(LFWFormatError, match=message) as error:
        read_pairs(path)
    assert str(path) in str(error.value)


def test_lfw_files_that_are_missing_or_malformed(tmp_path):
    with pytest.raises(FileNotFoundError, match="pairs.txt"):
        read_pairs(tmp_path / "pairs.txt")
    (tmp_path / "people.txt").write_text("2\n1\nA\t3\n2\nB\t1\n")
    with pytest.raises(LFWFormatError, match="line 6: unexpected end"):
        read_people(tmp_path / "people.txt")
    (tmp_path / "people.txt").write_text("2\n1\nA\t3\n1\nB\t1\n")
    assert read_people(tmp_path / "people.txt") == [["A"], ["B"]]


# ---------------------------------------------------------------- transforms


def batch(n=5, c=1, h=6, w=7, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, c, h, w), dtype=np.uint8)


def test_to_float32_and_standardisation():
    x = batch(c=3)
    f = to_float32(x)
    assert f.dtype == np.float32 and f.max() <= 1 and np.allclose(f * 255, x)
    white = prewhiten(x)
    np.testing.assert_allclose(white.mean(axis=(1, 2, 3)), 0, atol=1e-5)
    np.testing.assert_allclose(white.std(axis=(1, 2, 3)), 1, atol=1e-4)
    flat = prewhiten(np.full((2, 1, 4, 4), 7, np.uint8))
    assert np.all(np.isfinite(flat)) and np.all(flat == 0)
    channels = standardize(x, mean=[0.1, 0.2, 0.3], std=[0.5, 0.5, 0.25])
    np.testing.assert_allclose(channels[:, 2], (f[:, 2] - 0.3) / 0.25, rtol=1e-5)
    with pytest.raises(ValueError, match="positive"):
        standardize(x, 0.5, 0.0)


@pytest.mark.parametrize("p", [0.0, 0.5, 1.0])
def test_random_flip_mirrors_whole_images(p):
    x = batch(n=200)
    flipped = random_flip(x, np.random.default_rng(1), p=p)
    mirrored = np.all(flipped == x[..., ::-1], axis=(1, 2, 3))
    unchanged = np.all(flipped == x, axis=(1, 2, 3))
    assert np.all(mirrored | unchanged)
    assert mirrored.mean() == pytest.approx(p, abs=0.1)
    np.testing.assert_array_equal(flipped, random_flip(x, np.random.default_rng(1), p=p))


def test_random_crop_takes_a_window_of_the_padded_image():
    x = batch(n=20, c=2)
    out = random_crop(x, np.random.default_rng(3), padding=2)
    assert out.shape == x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (2, 2), (2, 2)))
    for image, crop in zip(padded, out, strict=True):  # some offset (top, left) must give exactly this crop
        assert any(np.array_equal(image[:, t : t + 6, s : s + 7], crop) for t in range(5) for s in range(5))
    np.testing.assert_array_equal(out, random_crop(x, np.random.default_rng(3), padding=2))
    np.testing.assert_array_equal(random_crop(x, np.random.default_rng(3)), x)
    assert random_crop(x, np.random.default_rng(3), size=4).shape == (20, 2, 4, 4)
    with pytest.raises(ValueError, match="larger"):
        random_crop(x, np.random.default_rng(3), size=9)


class _LargestDraws:
    """A stand-in for a Generator whose uniform draws are always the upper bound: the largest turn and zoom."""

    def uniform(self, low, high, size):
        return np.full(size, float(high))


def test_random_rotate_zoom_warps_about_the_centre():
    x = np.random.default_rng(0).random((4, 2, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(random_rotate_zoom(x, np.random.default_rng(1)), x)  # no turn, no zoom
    turned = random_rotate_zoom(x, _LargestDraws(), degrees=90)  # a quarter turn of a square image: rot90
    np.testing.assert_allclose(turned, np.rot90(x, k=-1, axes=(2, 3)), atol=1e-6)
    zoomed = random_rotate_zoom(x, _LargestDraws(), zoom=1.0)  # x2: output (i, j) samples (i + 3.5) / 2
    np.testing.assert_allclose(zoomed[..., 1, 1], (x[..., 2, 2] * 0.75 + x[..., 3, 2] * 0.25) * 0.75
                               + (x[..., 2, 3] * 0.75 + x[..., 3, 3] * 0.25) * 0.25, atol=1e-6)
    corners = random_rotate_zoom(np.ones((1, 1, 9, 9), np.float32), _LargestDraws(), degrees=45)
    assert corners[0, 0, 0, 0] == 0 and corners[0, 0, 4, 4] == 1  # outside the image is zero, the centre stays
    random = random_rotate_zoom(x, np.random.default_rng(2), degrees=10, zoom=0.1)
    np.testing.assert_array_equal(random, random_rotate_zoom(x, np.random.default_rng(2), degrees=10, zoom=0.1))
    assert random.shape == x.shape and random.dtype == np.float32 and not np.array_equal(random, x)
    for bad in ({"degrees": -1}, {"degrees": float("nan")}, {"zoom": -0.1}):
        with pytest.raises(ValueError, match="degrees must be"):
            random_rotate_zoom(x, np.random.default_rng(0), **bad)


def test_center_crop_and_resize():
    x = batch(h=8, w=8)
    np.testing.assert_array_equal(center_crop(x, 4), x[:, :, 2:6, 2:6])
    for size in (3, 8, 13):
        ours = resize(x, size)
        pillow = np.stack(
            [np.asarray(Image.fromarray(im[0]).resize((size, size), Image.Resampling.BILINEAR)) for im in x]
        )
        assert ours.dtype == np.uint8 and np.abs(ours[:, 0].astype(int) - pillow).max() <= 1
    np.testing.assert_array_equal(resize(x, 8), x)
    assert resize(to_float32(x), (4, 6)).shape == (5, 1, 4, 6)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        resize(x[0], 4)


# ---------------------------------------------------------------- sampler


@settings(max_examples=50, deadline=None)
@given(
    counts=st.lists(st.integers(1, 12), min_size=1, max_size=15),
    people=st.integers(1, 6),
    per_person=st.integers(2, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_pk_batches_hold_p_people_with_k_images_each(counts, people, per_person, seed):
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts))
    usable = sum(c >= 2 for c in counts)
    if usable < people:
        with pytest.raises(ValueError, match="only"):
            PKSampler(labels, people, per_person, rng=seed)
        return
    sampler = PKSampler(labels, people, per_person, rng=seed)
    assert sampler.skipped_identities == len(counts) - usable
    batches = list(sampler)
    assert len(batches) == len(sampler) >= 1
    for indices in batches:
        assert indices.shape == (people * per_person,)
        groups = labels[indices].reshape(people, per_person)
        assert np.all(groups == groups[:, :1]) and len(np.unique(groups[:, 0])) == people
        assert all(counts[person] >= 2 for person in groups[:, 0])
        for person, group in zip(groups[:, 0], indices.reshape(people, per_person), strict=True):
            if counts[person] >= per_person:
                assert len(np.unique(group)) == per_person  # without replacement when possible
    again = list(PKSampler(labels, people, per_person, rng=seed))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))


@settings(max_examples=40, deadline=None)
@given(counts=st.lists(st.integers(1, 5), min_size=4, max_size=12), extra=st.integers(0, 3),
       seed=st.integers(0, 2**32 - 1))
def test_extra_people_are_one_image_each_of_people_outside_the_p(counts, extra, seed):
    labels = np.random.default_rng(seed).permutation(np.repeat(np.arange(len(counts)), counts))
    people = 2
    if sum(c >= 2 for c in counts) < people or extra > len(counts) - people:
        return
    plain, sampler = PKSampler(labels, people, 2, rng=seed), PKSampler(labels, people, 2, rng=seed,
                                                                       extra_people=extra)
    singles_seen = set()
    for _ in range(10):
        indices = sampler.sample()
        pk, extra_people = labels[indices[: people * 2]], labels[indices[people * 2 :]]
        assert len(extra_people) == extra and len(set(extra_people)) == extra  # one image each
        assert np.all(pk.reshape(people, 2) == pk.reshape(people, 2)[:, :1]) and not set(pk) & set(extra_people)
        singles_seen |= {e for e in extra_people if counts[e] == 1}
    if extra and any(c == 1 for c in counts) and extra >= len(counts) - people:
        assert singles_seen  # everyone outside the P is drawn, one-image people included
    first = PKSampler(labels, people, 2, rng=seed, extra_people=extra).sample()
    assert np.array_equal(first, PKSampler(labels, people, 2, rng=seed, extra_people=extra).sample())
    assert np.array_equal(first[: people * 2], plain.sample())  # the P x K part comes first, drawn as without extras


def test_pk_sampler_errors():
    with pytest.raises(ValueError, match="images_per_person >= 2"):
        PKSampler(np.array([0, 0, 1, 1]), 2, 1, rng=0)
    with pytest.raises(ValueError, match="only 1 identities"):
        PKSampler(np.array([0, 0, 1, 2]), 2, 2, rng=0)
    with pytest.raises(ValueError, match="extra_people must be an integer between 0 and the 1 people"):
        PKSampler(np.array([0, 0, 1, 1, 2]), 2, 2, rng=0, extra_people=2)
    with pytest.raises(ValueError, match="must be an integer"):
        PKSampler(np.array([0, 0, 1, 1, 2]), 2, 2, rng=0, extra_people=0.5)


def test_folder_scans_skip_hidden_entries_and_other_files(tmp_path):
    for name in ["b/2.png", "b/1.JPG", "b/.3.png", "b/notes.txt", "a/1.png", ".cache/1.png"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    assert person_folders(tmp_path) == ["a", "b"]
    assert [p.name for p in image_files(tmp_path / "b")] == ["1.JPG", "2.png"]


def test_decode_images_says_why_each_unreadable_file_failed(tmp_path):
    Image.fromarray(np.full((12, 16), 200, np.uint8)).save(tmp_path / "good.png")
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    images, problems = decode_images([tmp_path / "good.png", tmp_path / "broken.jpg", tmp_path / "gone.png"], 4)
    assert images.shape == (3, 1, 4, 4) and images[0].min() == 200 and images[1:].max() == 0
    assert problems[0] is None and problems[1].startswith("UnidentifiedImageError") and problems[2] == "no such file"


# ---------------------------------------------------------------- untrusted images and files


def test_images_are_decoded_as_a_viewer_shows_them(tmp_path):
    from PIL import ImageOps  # noqa: F401 - the orientation tags are Pillow's

    stored = np.zeros((32, 32), np.uint8)
    stored[:8, :8] = 255  # a white corner, top left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    Image.fromarray(stored).save(tmp_path / "turned.png", exif=exif)
    np.testing.assert_array_equal(decode_image(tmp_path / "turned.png", 32)[0], np.rot90(stored, -1))
    np.testing.assert_array_equal(folders.read_photo(tmp_path / "turned.png"), np.rot90(stored, -1))

    deep = np.linspace(0, 65535, 32 * 32).reshape(32, 32).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "16-bit.png")
    np.testing.assert_allclose(decode_image(tmp_path / "16-bit.png", 32)[0], deep / 257, atol=1)

    Image.fromarray(np.zeros((16, 16, 4), np.uint8)).save(tmp_path / "transparent.png")  # black, all transparent
    palette = Image.new("P", (16, 16), 0)
    palette.putpalette([0, 0, 0, 255, 0, 0])
    palette.save(tmp_path / "palette.png", transparency=0)
    for name in ("transparent.png", "palette.png"):
        assert np.all(decode_image(tmp_path / name, 16, grayscale=False) == 255), name  # over white, as shown

    Image.new("RGB", (16, 16), (200, 100, 50)).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    np.testing.assert_allclose(decode_image(tmp_path / "cmyk.jpg", 16, grayscale=False)[:, 8, 8], (200, 100, 50),
                               atol=4)


def test_large_images_are_decoded_within_a_pixel_budget(tmp_path, monkeypatch):
    side = 256
    rng = np.random.default_rng(0)
    smooth = rng.random((8, 8, 3)).repeat(side // 8, 0).repeat(side // 8, 1)
    paths = []
    for k in range(6):
        paths.append(tmp_path / f"{k}.jpg")
        Image.fromarray((smooth * 255).astype(np.uint8)).save(paths[-1], quality=95)
    full = decode_images(paths, 16, grayscale=False)[0]

    decoding, seen, lock = [0], [], threading.Lock()
    real_as_shown = folders.as_shown

    def watched(image):
        with lock:
            decoding[0] += 1
            seen.append((decoding[0], image.size))
        time.sleep(0.02)
        try:
            return real_as_shown(image)
        finally:
            with lock:
                decoding[0] -= 1

    monkeypatch.setattr(folders, "as_shown", watched)
    monkeypatch.setattr(folders, "_DECODING", folders._PixelBudget(32 * 32 * 3 // 2))  # room for one at a time
    monkeypatch.setattr(folders, "LARGE_IMAGE_PIXELS", 1000)  # every one of these JPEGs is "large"
    reduced = decode_images(paths, 16, grayscale=False, workers=6)[0]
    assert max(count for count, _ in seen) == 1  # one image decoding at a time
    assert {size for _, size in seen} == {(32, 32)}  # decoded at 1/8 scale, still twice the 16 px kept
    assert np.abs(reduced.astype(int) - full).mean() < 3


def test_a_compressed_mat_element_that_inflates_too_far_is_refused():
    bomb = mat_file({"faces": (6, 2, np.zeros((4096, 4096), np.uint8))}, compress=True)  # 16 MB in 16 KB
    assert len(bomb) < 2**16
    with pytest.raises(MatFileError, match="inflates to more than"):
        parse_mat(bomb, "x.mat", max_bytes=2**20)
    assert parse_mat(bomb, "x.mat")["faces"].shape == (4096, 4096)  # under the default limit
