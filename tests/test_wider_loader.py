"""WIDER FACE to array_record and back (jaxnets/data/wider_builder.py, wider_source.py, `jaxnets
prepare wider_face`).

Tiny WIDER trees with real JPEGs (written by PIL) are prepared through the command line; every
record read back is checked against the files; each defect of the files is one stderr line
naming the txt and the line, with nothing prepared; tfds' own ``wider_face`` layout (its
``_info``, written here without TensorFlow) is read into the same records; changed files are
detected and prepared again; a preparation killed midway leaves nothing that looks prepared.
"""

from __future__ import annotations

import io
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np
import PIL.Image
import pytest
import tensorflow_datasets as tfds
from tensorflow_datasets.object_detection import wider_face as tfds_wider_face

from jaxnets import cli
from jaxnets.data.errors import DataError
from jaxnets.data.wider_builder import WiderFaceTxt
from jaxnets.data.wider_source import load_wider
from jaxnets.data.wider_txt import WiderImage, write_filelist, write_gt
from tests._tfds import to_tfrecord

SIZE = (48, 64)  # (H, W) of every image of the small trees
FACES = np.array([[2, 3, 10, 12, 0, 0, 0, 0, 0, 0],   # x1 y1 w h blur expression illumination invalid occlusion pose
                  [20, 5, 8, 9, 2, 1, 1, 1, 2, 1],    # an invalid face: kept, with its flag
                  [0, 30, 64, 18, 1, 0, 1, 0, 1, 0]])  # touching the left and right edges  # fmt: skip


def _jpeg(path: pathlib.Path, seed: int, size=SIZE) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    PIL.Image.fromarray(pixels).save(path, quality=90)


def make_tree(root: pathlib.Path, n: int = 3, *, test_faces: bool = False) -> dict[str, list[WiderImage]]:
    """A WIDER root: n images per split, image i with i % 4 faces of FACES (0 to 3)."""
    (root / "wider_face_split").mkdir(parents=True)
    out = {}
    for s, split in enumerate(("train", "val", "test")):
        images = []
        for i in range(n):
            name = f"{i % 2}--Event{i % 2}/{split}_{i}.jpg"
            _jpeg(root / f"WIDER_{split}" / "images" / name, seed=100 * s + i)
            images.append(WiderImage(name, FACES[: i % 4]))
        out[split] = images
        if split != "test":
            write_gt(root / "wider_face_split" / f"wider_face_{split}_bbx_gt.txt", images)
    write_filelist(root / "wider_face_split" / "wider_face_test_filelist.txt", [im.name for im in out["test"]])
    if test_faces:
        write_gt(root / "wider_face_split" / "wider_face_test_bbx_gt.txt", out["test"])
    return out


def prepare(capsys, root, data_dir) -> tuple[int, str, str]:
    rc = cli.main(["prepare", "wider_face", "--wider-dir", str(root), "--data-dir", str(data_dir)])
    out, err = capsys.readouterr()
    return rc, out, err


def prepared_dirs(data_dir: pathlib.Path) -> list[pathlib.Path]:
    return sorted(p.parent for p in data_dir.rglob("dataset_info.json"))


def _check_records(split, root: pathlib.Path, wider_split: str, images: list[WiderImage], annotated=True):
    assert len(split) == len(images) and split.annotated == annotated
    records = split.read(np.arange(len(images))[::-1])  # any order, one call
    for record, im in zip(records, images[::-1]):
        path = root / f"WIDER_{wider_split}" / "images" / im.name
        assert record["name"] == im.name
        with PIL.Image.open(path) as pil:
            np.testing.assert_array_equal(record["image"], np.asarray(pil.convert("RGB")))
        assert record["image"].dtype == np.uint8 and record["image"].shape == (*SIZE, 3)
        f = im.faces if annotated else im.faces[:0]
        want = np.stack([f[:, 0], f[:, 1], f[:, 0] + f[:, 2], f[:, 1] + f[:, 3]], 1)  # x1 y1 x2 y2
        np.testing.assert_array_equal(record["boxes"], want.reshape(-1, 4).astype(np.float32))
        assert record["boxes"].dtype == np.float32
        for col, key in zip(range(4, 10), ("blur", "expression", "illumination", "invalid", "occlusion", "pose")):
            np.testing.assert_array_equal(record[key], f[:, col].astype(bool if key == "invalid" else np.uint8))


def test_prepare_then_read_every_field(tmp_path, capsys):
    root, data_dir = tmp_path / "wider", tmp_path / "tfds"
    images = make_tree(root, n=5)
    rc, out, err = prepare(capsys, root, data_dir)
    assert rc == 0, err
    assert out.strip().endswith("train 5, validation 5, test 5")
    for wider_split, split in (("train", "train"), ("val", "validation"), ("val", "val")):
        _check_records(load_wider(root, split, str(data_dir)), root, wider_split, images[wider_split])
    test = load_wider(root, "test", str(data_dir))
    _check_records(test, root, "test", images["test"], annotated=False)  # faces unknown: K = 0
    raw = test.read([3], decode=False)[0]["image"]  # the JPEG bytes, stored unchanged
    assert raw == (root / "WIDER_test" / "images" / images["test"][3].name).read_bytes()
    d = test.describe()
    assert (d["split"], d["examples"], d["annotated"]) == ("test", 5, False) and str(root) in d["summary"]
    assert len(prepared_dirs(data_dir)) == 1


def test_dense_face_test_gt_gives_test_faces(tmp_path, capsys):
    root, data_dir = tmp_path / "faces", tmp_path / "tfds"
    images = make_tree(root, n=4, test_faces=True)
    assert prepare(capsys, root, data_dir)[0] == 0
    _check_records(load_wider(root, "test", str(data_dir)), root, "test", images["test"])


def test_only_the_splits_present_are_prepared(tmp_path, capsys):
    root, data_dir = tmp_path / "wider", tmp_path / "tfds"
    make_tree(root, n=2)
    for split in ("train", "test"):
        for p in sorted((root / f"WIDER_{split}").rglob("*"), reverse=True):
            p.unlink() if p.is_file() else p.rmdir()
        (root / f"WIDER_{split}").rmdir()
    rc, out, _ = prepare(capsys, root, data_dir)
    assert rc == 0 and out.strip().endswith(": validation 2")
    with pytest.raises(DataError, match="no train split"):
        load_wider(root, "train", str(data_dir))
    with pytest.raises(DataError, match="split 'dev'"):
        load_wider(root, "dev", str(data_dir))
    with pytest.raises(DataError, match=r"index 2 outside \[0, 2\)"):
        load_wider(root, "val", str(data_dir)).read([0, 2])


def test_two_roots_live_side_by_side(tmp_path, capsys):
    data_dir = tmp_path / "tfds"
    a, b = make_tree(tmp_path / "a", n=2), make_tree(tmp_path / "b", n=3)
    assert prepare(capsys, tmp_path / "a", data_dir)[0] == prepare(capsys, tmp_path / "b", data_dir)[0] == 0
    assert len(load_wider(tmp_path / "a", "val", str(data_dir))) == len(a["val"])
    assert len(load_wider(tmp_path / "b", "val", str(data_dir))) == len(b["val"])
    assert len(prepared_dirs(data_dir)) == 2


# --------------------------------------------------------------------------- one defect, one line

GOOD = "0--A/a.jpg\n2\n2 3 10 12 0 0 0 0 0 0 \n20 5 8 9 0 0 0 0 0 0 \n1--B/b.jpg\n1\n1 1 4 4 0 0 0 0 0 0 \n"
VAL_TXT = "wider_face_split/wider_face_val_bbx_gt.txt"


def _defect_tree(root: pathlib.Path, text: str) -> pathlib.Path:
    for name in ("0--A/a.jpg", "1--B/b.jpg"):
        _jpeg(root / "WIDER_val" / "images" / name, seed=len(name))
    (root / "wider_face_split").mkdir(parents=True)
    (root / VAL_TXT).write_text(text)
    return root / VAL_TXT


@pytest.mark.parametrize("text, line, words", [
    (GOOD.replace("\n2\n", "\n3\n"), 5, "the count on line 2 says 3 faces"),       # count too large
    (GOOD.replace("\n2\n", "\n1\n"), 4, "expected an image name"),                 # count too small
    (GOOD.replace("20 5 8 9 0", "20 5 8 nine 0"), 4, "field h = 'nine' is not a number"),
    (GOOD.replace("1 1 4 4", "1 1 -4 4"), 7, "negative size: w = -4"),
    (GOOD.replace("20 5 8 9", "60 5 8 9"), 4, "reaches outside its image 0--A/a.jpg (64x48)"),
    (GOOD.replace("1--B/b.jpg", "1--B/gone.jpg"), 5, "image not found"),
])  # fmt: skip
def test_each_defect_is_one_line_naming_txt_and_line(tmp_path, capsys, text, line, words):
    txt = _defect_tree(tmp_path / "wider", text)
    rc, out, err = prepare(capsys, tmp_path / "wider", tmp_path / "tfds")
    assert rc == 2 and out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"jaxnets prepare: {txt}:{line}: ") and words in err, err
    assert prepared_dirs(tmp_path / "tfds") == []  # checked before anything is written


def test_missing_test_image_names_the_filelist_line(tmp_path, capsys):
    root = tmp_path / "wider"
    make_tree(root, n=3)
    (root / "WIDER_test" / "images" / "0--Event0" / "test_2.jpg").unlink()
    rc, _, err = prepare(capsys, root, tmp_path / "tfds")
    filelist = root / "wider_face_split" / "wider_face_test_filelist.txt"
    assert rc == 2 and err.startswith(f"jaxnets prepare: {filelist}:3: image not found")


# --------------------------------------------------------------------------- tfds' own wider_face


class WiderFace(tfds_wider_face.WiderFace, skip_registration=True):
    """tfds' catalog ``wider_face``: its own ``_info`` (features, name, version), examples made as
    its ``_generate_examples`` makes them (which reads the files with TensorFlow's gfile)."""

    root: pathlib.Path
    images: dict[str, list[WiderImage]]

    def _split_generators(self, dl_manager):
        return {"train": self._examples("train"), "validation": self._examples("val"), "test": self._examples("test")}

    def _examples(self, split):
        for im in self.images[split]:
            path = self.root / f"WIDER_{split}" / "images" / im.name
            h, w = SIZE
            faces = [] if split == "test" else [
                {"bbox": tfds.features.BBox(ymin=y / h, xmin=x / w, ymax=min(y + bh, h) / h, xmax=min(x + bw, w) / w),
                 "blur": b, "expression": e, "illumination": il, "invalid": inv, "occlusion": o, "pose": p}
                for x, y, bw, bh, b, e, il, inv, o, p in im.faces.tolist()]  # fmt: skip
            yield im.name, {"image": str(path), "image/filename": im.name, "faces": faces}


def _standard_wider_face(tmp_path) -> tuple[pathlib.Path, pathlib.Path, dict]:
    root, data_dir = tmp_path / "wider", tmp_path / "tfds"
    WiderFace.root, WiderFace.images = root, make_tree(root, n=4)
    WiderFace(data_dir=str(data_dir)).download_and_prepare(file_format="array_record")
    return root, data_dir, WiderFace.images


def test_standard_tfds_wider_face_is_read_into_the_same_records(tmp_path, capsys):
    root, data_dir, images = _standard_wider_face(tmp_path)
    assert cli.main(["prepare", "wider_face", "--data-dir", str(data_dir)]) == 0
    assert "tfds prepared wider_face 0.1.0" in capsys.readouterr().out
    split = load_wider(None, "validation", str(data_dir))
    assert split.source.startswith("tfds prepared wider_face 0.1.0")
    by_name = {r["name"]: r for r in split.read(range(len(split)))}  # tfds shuffled the records
    assert sorted(by_name) == sorted(im.name for im in images["val"])
    ours = load_wider(root, "validation", str(data_dir))  # explicit root wins: our builder
    assert ours.source.startswith("WIDER files in")
    for r in ours.read(range(len(ours))):
        theirs = by_name[r["name"]]
        assert r.keys() == theirs.keys()
        for k in r:
            np.testing.assert_array_equal(theirs[k], r[k], err_msg=k)
            assert np.asarray(theirs[k]).dtype == np.asarray(r[k]).dtype, k
    test = load_wider(None, "test", str(data_dir))
    assert not test.annotated and all(len(r["boxes"]) == 0 for r in test.read(range(len(test))))


def test_standard_tfds_wider_face_as_tfrecord_says_how_to_rebuild(tmp_path, capsys):
    _, data_dir, _ = _standard_wider_face(tmp_path)
    to_tfrecord(data_dir / "wider_face" / "0.1.0")
    capsys.readouterr()  # tfds' progress bars
    assert cli.main(["prepare", "wider_face", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "needs TensorFlow" in err
    assert "tfds build wider_face --file_format=array_record" in err and "--wider-dir" in err


def test_no_wider_face_anywhere_says_what_to_pass(tmp_path, capsys):
    assert cli.main(["prepare", "wider_face", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "--wider-dir" in err and str(tmp_path) in err


# --------------------------------------------------------------------------- stale and killed


def test_changed_files_are_named_and_prepared_again(tmp_path, capsys, monkeypatch):
    root, data_dir = tmp_path / "wider", tmp_path / "tfds"
    images = make_tree(root, n=3)
    assert prepare(capsys, root, data_dir)[0] == 0
    image = root / "WIDER_val" / "images" / images["val"][1].name
    image.write_bytes(image.read_bytes())  # a new mtime, the same bytes: still current
    with monkeypatch.context() as m:
        m.setattr(WiderFaceTxt, "download_and_prepare", lambda *a, **k: pytest.fail("prepared again"))
        rc, out, _ = prepare(capsys, root, data_dir)
        assert rc == 0 and "stale" not in out

    _jpeg(image, seed=999)  # new pixels
    rc, out, _ = prepare(capsys, root, data_dir)
    assert rc == 0 and f"is stale: {image} (contents changed)" in out
    with PIL.Image.open(image) as pil:
        np.testing.assert_array_equal(load_wider(root, "val", str(data_dir)).read([1])[0]["image"], np.asarray(pil))

    txt = root / VAL_TXT
    txt.write_text(txt.read_text().replace("2 3 10 12 0 0 0 0 0 0", "2 3 11 12 0 0 0 0 0 0", 1))
    rc, out, _ = prepare(capsys, root, data_dir)
    assert rc == 0 and f"is stale: {txt} (contents changed)" in out
    assert load_wider(root, "val", str(data_dir)).read([1])[0]["boxes"][0].tolist() == [2, 3, 13, 15]

    image.unlink()  # stale, and the files are now wrong: the defect, the old set left alone
    rc, _, err = prepare(capsys, root, data_dir)
    assert rc == 2 and err.startswith(f"jaxnets prepare: {txt}:4: image not found")
    assert len(prepared_dirs(data_dir)) == 1


def test_a_killed_preparation_leaves_nothing_that_looks_prepared(tmp_path):
    root, data_dir = tmp_path / "wider", tmp_path / "tfds"
    (root / "wider_face_split").mkdir(parents=True)
    base = np.random.default_rng(0).integers(0, 256, (120, 160, 3), dtype=np.uint8)
    images = []
    for i in range(300):  # enough records that writing them takes a while (~0.3 s here)
        buf = io.BytesIO()
        PIL.Image.fromarray(np.roll(base, i, 0)).save(buf, format="jpeg", quality=95)
        (root / "WIDER_val" / "images" / "0--A").mkdir(parents=True, exist_ok=True)
        (root / "WIDER_val" / "images" / "0--A" / f"{i}.jpg").write_bytes(buf.getvalue())
        images.append(WiderImage(f"0--A/{i}.jpg", FACES[:1]))
    write_gt(root / VAL_TXT, images)
    cmd = [sys.executable, "-m", "jaxnets.cli", "prepare", "wider_face", "--wider-dir", str(root),
           "--data-dir", str(data_dir)]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while proc.poll() is None:  # kill it once tfds has started writing records
            if any(any(d.iterdir()) for d in data_dir.glob("wider_face_txt/*/incomplete.*")):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.002)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, "finished before it could be killed midway"
    assert list(data_dir.glob("wider_face_txt/*/incomplete.*"))  # the partial write is where tfds left it
    assert prepared_dirs(data_dir) == []
    assert not WiderFaceTxt(root=root, data_dir=str(data_dir)).is_prepared()
    val = load_wider(root, "val", str(data_dir))  # prepared again, whole
    assert len(val) == 300 and val.read([299])[0]["name"] == "0--A/299.jpg"
