import numpy as np
import pytest

from tinyface.eval import Eigenfaces, l2_normalize, open_set_identification, split_gallery, squared_distances
from tinyface.face.gallery import UNKNOWN, Gallery, GalleryError, Identification


def unit(*angles_degrees: float) -> np.ndarray:
    a = np.radians(angles_degrees)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


@pytest.fixture
def gallery() -> Gallery:
    # ada: two faces at 0 and 20 degrees; bob: one face at 90 degrees
    return Gallery(meta={"architecture": "tiny"}).enroll(unit(0, 20, 90), ["ada", "ada", "bob"], ["a1", "a2", "b1"])


def test_identify_by_hand(gallery):
    d_ada = float(np.sum((unit(25) - unit(20)) ** 2))
    d_far = float(np.sum((unit(200) - unit(90)) ** 2))
    result = gallery.identify(unit(25, 200, 85), tau=0.5)
    assert result[0] == Identification("ada", pytest.approx(d_ada))
    assert result[1] == (UNKNOWN, pytest.approx(d_far, rel=1e-5))  # nearest is bob, but beyond tau
    assert result[2].name == "bob"
    assert gallery.identify(unit(200), tau=4.0)[0].name == "bob"  # tau = 4 accepts everything


def test_identify_by_mean_uses_the_renormalised_mean(gallery):
    np.testing.assert_allclose(gallery.means(), unit(10, 90), atol=1e-6)
    (name, distance), = gallery.identify(unit(10), tau=1.0, by="mean")
    assert name == "ada" and distance == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="'nearest' or 'mean'"):
        gallery.identify(unit(10), tau=1.0, by="median")


def test_identity_distances_are_the_minimum_over_each_identity():
    rng = np.random.default_rng(0)
    names = list(rng.choice(["p", "q", "r", "s"], size=30))
    names[:4] = ["p", "q", "r", "s"]
    g = Gallery().enroll(l2_normalize(rng.normal(size=(30, 6))), names)
    probes = l2_normalize(rng.normal(size=(7, 6)))
    d = squared_distances(probes, g.embeddings)
    expected = np.stack([d[:, g.labels == k].min(axis=1) for k in range(len(g.names))], axis=1)
    np.testing.assert_allclose(g.identity_distances(probes), expected, rtol=1e-6)


def test_enroll_adds_faces_and_people(gallery):
    bigger = gallery.enroll(unit(180, 5), ["cy", "ada"])
    assert bigger.names == ["ada", "bob", "cy"] and len(bigger) == 5 and len(gallery) == 3
    np.testing.assert_array_equal(bigger.labels, [0, 0, 1, 2, 0])
    assert bigger.paths[-2:] == ["", ""] and bigger.meta == {"architecture": "tiny"}


def test_enroll_and_identify_reject_bad_input(gallery):
    with pytest.raises(GalleryError, match="nothing to enroll"):
        Gallery().enroll(np.zeros((0, 2)), [])
    with pytest.raises(GalleryError, match="one name and one path each"):
        gallery.enroll(unit(0, 1), ["x"])
    with pytest.raises(GalleryError, match="another model"):
        gallery.enroll(np.ones((1, 3)), ["x"])
    with pytest.raises(GalleryError, match="'unknown'"):
        gallery.enroll(unit(0), [UNKNOWN])
    with pytest.raises(GalleryError, match=r"\(N, 2\).*another model"):
        gallery.identify(np.ones((1, 3)), tau=1.0)
    with pytest.raises(GalleryError, match="empty"):
        Gallery().identify(unit(0), tau=1.0)
    with pytest.raises(ValueError, match="tau"):
        gallery.identify(unit(0), tau=float("nan"))


def test_save_and_load_round_trip(gallery, tmp_path):
    g = gallery.enroll(unit(45), ["Zoë Ünïcode"], ["faces/zoë.jpg"])
    path = g.save(tmp_path / "sub" / "gallery.npz")
    loaded = Gallery.load(path)
    np.testing.assert_array_equal(loaded.embeddings, g.embeddings)
    np.testing.assert_array_equal(loaded.labels, g.labels)
    assert (loaded.names, loaded.paths, loaded.meta) == (g.names, g.paths, g.meta)
    assert [p.name for p in path.parent.iterdir()] == ["gallery.npz"]  # no temporary file left behind


def test_an_interrupted_save_leaves_the_old_file_whole(gallery, tmp_path, monkeypatch):
    path = gallery.save(tmp_path / "gallery.npz")
    before = path.read_bytes()

    def interrupted(file, **arrays):
        file.write(b"PK half a zip")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez", interrupted)
    with pytest.raises(KeyboardInterrupt):
        gallery.enroll(unit(1), ["new"]).save(path)
    assert path.read_bytes() == before and len(list(tmp_path.iterdir())) == 1


def test_load_explains_what_is_wrong(gallery, tmp_path):
    with pytest.raises(FileNotFoundError, match="tinyface enroll"):
        Gallery.load(tmp_path / "missing.npz")
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"this is not a zip file at all")
    with pytest.raises(GalleryError, match="corrupt"):
        Gallery.load(garbage)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(gallery.save(tmp_path / "good.npz").read_bytes()[:200])
    with pytest.raises(GalleryError, match="corrupt"):
        Gallery.load(truncated)
    np.save(tmp_path / "array.npy", np.zeros(3))
    with pytest.raises(GalleryError, match="single .npy array"):
        Gallery.load(tmp_path / "array.npy")
    np.savez(tmp_path / "other.npz", weights=np.zeros(3))
    with pytest.raises(GalleryError, match="not a tinyface gallery"):
        Gallery.load(tmp_path / "other.npz")
    np.savez(tmp_path / "empty.npz", embeddings=np.zeros((0, 2)), labels=np.zeros(0, dtype=int),
             names=np.array([], dtype=str), paths=np.array([], dtype=str), meta=np.array("{}"), format=np.array(1))
    with pytest.raises(GalleryError, match="empty gallery"):
        Gallery.load(tmp_path / "empty.npz")
    with pytest.raises(GalleryError, match="empty"):
        Gallery().save(tmp_path / "nothing.npz")


def test_identify_agrees_with_open_set_identification_on_olivetti(olivetti):
    held_out = olivetti.labels >= 20
    eigenfaces = Eigenfaces(40).fit(olivetti.images[~held_out])
    embeddings, labels = eigenfaces.transform(olivetti.images[held_out]), olivetti.labels[held_out]
    enrolled_people = labels < 30  # 30..39 are strangers
    known = np.flatnonzero(enrolled_people)
    enrolled, known_probes = split_gallery(labels[known], rng=0, per_person=2)
    enrolled, probes = known[enrolled], np.concatenate([known[known_probes], np.flatnonzero(~enrolled_people)])
    gallery = Gallery().enroll(embeddings[enrolled], [f"person{label}" for label in labels[enrolled]])
    tau = 0.5
    answers = gallery.identify(embeddings[probes], tau)
    names = np.array([name for name, _ in answers])
    truth = np.array([f"person{label}" for label in labels[probes]])
    is_known = labels[probes] < 30
    rate, false_alarms, _ = open_set_identification(embeddings[enrolled], labels[enrolled], embeddings[probes],
                                                    labels[probes], tau=tau)
    assert np.mean(names[is_known] == truth[is_known]) == pytest.approx(rate)
    assert np.mean(names[~is_known] != UNKNOWN) == pytest.approx(false_alarms)
    assert rate > 0.3 and false_alarms < 0.5
