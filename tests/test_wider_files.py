"""WIDER FACE's txt records and official .mat ground truth (jaxnets/data/wider_txt.py, wider_mat.py).

Each defect of an annotation file is one WiderFormatError naming the file and the line; the
.mat files are written in the official nesting (checked with scipy directly, the way the
official Python port indexes them) and read back unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from scipy.io import loadmat, savemat

from jaxnets.data.errors import DataError
from jaxnets.data.wider_mat import find_val_mats, ground_truth_from_images, read_val_mats, write_val_mats
from jaxnets.data.wider_txt import (WiderFormatError, WiderImage, check_images, read_filelist, read_gt,
                                    write_filelist, write_gt)

FACE = "1 2 3 4 0 0 0 0 0 0"


def _images():
    return [
        WiderImage("0--A/a_1.jpg", np.array([[1, 2, 10, 12, 0, 0, 0, 0, 0, 0], [5, 5, 3, 3, 2, 1, 1, 1, 2, 1]])),
        WiderImage("0--A/a_2.jpg", np.zeros((0, 10), np.int64)),
        WiderImage("1--B/b_1.jpg", np.array([[0, 0, 20, 20, 1, 0, 0, 0, 1, 0]])),
    ]


def test_txt_round_trip_keeps_every_field_and_the_zero_face_line(tmp_path):
    write_gt(tmp_path / "gt.txt", _images())
    text = (tmp_path / "gt.txt").read_text().splitlines()
    assert text[4:7] == ["0--A/a_2.jpg", "0", "0 0 0 0 0 0 0 0 0 0 "]  # the official zero-face record
    back = read_gt(tmp_path / "gt.txt")
    assert [b.name for b in back] == [i.name for i in _images()]
    for b, i in zip(back, _images()):
        np.testing.assert_array_equal(b.faces, i.faces)
    assert back[0].line == 1 and back[0].face_lines == (3, 4) and back[2].face_lines == (10,)
    assert back[2].event == "1--B" and back[2].stem == "b_1"


@pytest.mark.parametrize("text, line, words", [
    (f"0--A/a.jpg\n2\n{FACE}\n1--B/b.jpg\n0\n", 4, "count on line 2 says 2 faces"),
    (f"0--A/a.jpg\n1\n{FACE}\n{FACE}\n", 4, "expected an image name"),
    ("0--A/a.jpg\nx\n", 2, "face count 'x' is not an integer"),
    ("0--A/a.jpg\n-1\n", 2, "negative"),
    ("0--A/a.jpg\n1\n1 2 -3 4 0 0 0 0 0 0\n", 3, "negative size: w = -3"),
    ("0--A/a.jpg\n1\n1 2 3 -4 0 0 0 0 0 0\n", 3, "negative size: h = -4"),
    ("0--A/a.jpg\n1\n1 2 3 4.5 0 0 0 0 0 0\n", 3, "field h = '4.5' is not an integer"),
    ("0--A/a.jpg\n1\n1 2 3 4 0 0 0 0 0 a\n", 3, "field pose = 'a' is not a number"),
    ("0--A/a.jpg\n1\n1 2 3 4 0 0 0 0 0\n", 3, "found 9"),
    ("0--A/a.jpg\n1\n1 2 3 4 0 0 0 0 3 0\n", 3, "occlusion = 3 is outside 0..2"),
    ("0--A/a.jpg\n1\n", 2, "ends after 0"),
    ("0--A/a.jpg\n", 1, "ends before this image's face count"),
    (f"0--A/a.jpg\n1\n{FACE}\n0--A/a.jpg\n1\n{FACE}\n", 4, "listed twice (first on line 1)"),
    ("0--A/a.jpg\n0\n1 0 0 0 0 0 0 0 0 0\n", 3, "count on line 2 is 0"),
    ("a.jpg\n0\n", 1, "expected an image name '<event>/<name>.jpg'"),
    ("0--A/a.jpg\n1\n1 1 1 99999999999999999999 0 0 0 0 0 0\n", 3, "field h = 99999999999999999999 is out of range"),
    ("0--A/a.jpg\n99999999999999999999\n", 2, "is out of range"),
    ("0--A/a.jpg\n1\n1 2 3 \u0661\u0660 0 0 0 0 0 0\n", 3, "field h = '\u0661\u0660' is not"),
    ("0--A/a.jpg\n1\n1 2 3 1_0 0 0 0 0 0 0\n", 3, "field h = '1_0' is not"),
    ("../etc/a.jpg\n0\n", 1, "must be a relative path inside the images folder"),
    ("/etc/a.jpg\n0\n", 1, "must be a relative path"),
    ("0--A//a.jpg\n0\n", 1, "must be a relative path"),
])
def test_each_defect_is_one_error_naming_file_and_line(tmp_path, text, line, words):
    p = tmp_path / "wider_face_val_bbx_gt.txt"
    p.write_text(text)
    with pytest.raises(WiderFormatError) as e:
        read_gt(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}:{line}: ") and words in msg and "\n" not in msg


def test_a_leading_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    (tmp_path / "gt.txt").write_bytes("\ufeff0--A/a.jpg\r\n1\r\n1 2 3 4 0 0 0 0 0 0 \r\n".encode("utf-8"))
    (im,) = read_gt(tmp_path / "gt.txt")
    assert im.name == "0--A/a.jpg" and im.faces[0, :4].tolist() == [1, 2, 3, 4]


def test_empty_binary_and_missing_files(tmp_path):
    (tmp_path / "e.txt").write_text("\n\n")
    with pytest.raises(WiderFormatError, match="empty"):
        read_gt(tmp_path / "e.txt")
    (tmp_path / "b.txt").write_bytes(b"0--A/a.jpg\n1\n\xff\xfe\n")
    with pytest.raises(WiderFormatError, match=r"b.txt:3: not UTF-8"):
        read_gt(tmp_path / "b.txt")
    with pytest.raises(WiderFormatError, match="not found"):
        read_gt(tmp_path / "nope.txt")


def test_check_images_missing_and_box_outside(tmp_path):
    (tmp_path / "0--A").mkdir()
    Image.new("RGB", (30, 20)).save(tmp_path / "0--A" / "a_1.jpg")
    p = tmp_path / "gt.txt"
    p.write_text("0--A/a_1.jpg\n2\n0 0 30 20 0 0 0 0 0 0\n10 5 21 4 0 0 0 0 0 0\n")
    with pytest.raises(WiderFormatError, match=rf"gt.txt:4: box x1=10 y1=5 w=21 h=4 reaches outside .*30x20"):
        check_images(p, read_gt(p), tmp_path)
    p.write_text("0--A/a_1.jpg\n1\n0 0 30 20 0 0 0 0 0 0\n0--A/a_2.jpg\n0\n0 0 0 0 0 0 0 0 0 0\n")
    with pytest.raises(WiderFormatError, match=r"gt.txt:4: image not found"):
        check_images(p, read_gt(p), tmp_path)
    (tmp_path / "0--A" / "a_2.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(WiderFormatError, match=r"gt.txt:4: image .* cannot be read"):
        check_images(p, read_gt(p), tmp_path)


def test_filelist_round_trip(tmp_path):
    write_filelist(tmp_path / "f.txt", ["0--A/a.jpg", "1--B/b.jpg"])
    assert read_filelist(tmp_path / "f.txt") == ["0--A/a.jpg", "1--B/b.jpg"]
    (tmp_path / "f.txt").write_text("0--A/a.jpg\n3\n")
    with pytest.raises(WiderFormatError, match="f.txt:2: expected an image name"):
        read_filelist(tmp_path / "f.txt")


def _subsets():
    return {"easy": {"0--A/a_1.jpg": [1]}, "medium": {"0--A/a_1.jpg": [1, 2]},
            "hard": {"0--A/a_1.jpg": [1, 2], "1--B/b_1.jpg": [1]}}


def test_mats_have_the_official_nesting(tmp_path):
    write_val_mats(tmp_path, _images(), _subsets())
    face, hard = loadmat(tmp_path / "wider_face_val.mat"), loadmat(tmp_path / "wider_hard_val.mat")
    # indexed exactly as the official evaluation code indexes the official files
    assert str(face["event_list"][1][0][0]) == "1--B"
    assert str(face["file_list"][0][0][1][0][0]) == "a_2"
    np.testing.assert_array_equal(face["face_bbx_list"][0][0][0][0], [[1, 2, 10, 12], [5, 5, 3, 3]])
    np.testing.assert_array_equal(face["invalid_label_list"][0][0][0][0], [[0], [1]])
    keep = hard["gt_list"][0][0][0][0]
    assert keep.shape == (2, 1) and np.issubdtype(keep.dtype, np.integer)
    ignore = np.zeros(2)
    ignore[keep - 1] = 1  # the official port's use of gt_list works on it
    assert ignore.tolist() == [1, 1]


def test_mats_round_trip(tmp_path):
    write_val_mats(tmp_path / "eval_tools" / "ground_truth", _images(), _subsets())
    gt = read_val_mats(find_val_mats(tmp_path))
    assert gt.official and gt.events == ["0--A", "1--B"] and gt.files == [["a_1", "a_2"], ["b_1"]]
    assert gt.boxes[0][1].shape == (0, 4) and gt.boxes[1][0].tolist() == [[0, 0, 20, 20]]
    assert [k.tolist() for k in gt.subsets["medium"][0]] == [[1, 2], []]
    assert gt.subsets["hard"][1][0].tolist() == [1] and gt.subsets["easy"][1][0].tolist() == []
    assert gt.invalid[0][0].tolist() == [False, True]
    assert list(gt.names())[1] == (0, 1, "0--A/a_2")
    txt = ground_truth_from_images(_images(), "gt.txt")
    assert not txt.official and txt.subsets == {} and txt.files == gt.files
    for a, b in zip(txt.boxes, gt.boxes):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_mats_are_byte_identical_for_the_same_content(tmp_path):
    import time

    write_val_mats(tmp_path / "a", _images(), _subsets())
    time.sleep(1.1)  # scipy would write the time of writing into the header
    write_val_mats(tmp_path / "b", _images(), _subsets())
    for name in ("wider_face_val.mat", "wider_easy_val.mat", "wider_hard_val.mat"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_damaged_mats_are_one_line_errors(tmp_path):
    assert find_val_mats(tmp_path) is None
    write_val_mats(tmp_path, _images(), _subsets())
    (tmp_path / "wider_easy_val.mat").unlink()
    with pytest.raises(DataError, match="not wider_easy_val.mat"):
        find_val_mats(tmp_path)
    write_val_mats(tmp_path, _images(), _subsets())
    (tmp_path / "wider_medium_val.mat").write_bytes(b"garbage" * 20)
    with pytest.raises(DataError, match="wider_medium_val.mat: not a readable MATLAB file"):
        read_val_mats(tmp_path)
    write_val_mats(tmp_path, _images(), {**_subsets(), "hard": {"0--A/a_1.jpg": [3]}})
    with pytest.raises(DataError, match=r"wider_hard_val.mat: gt_list\[0\]\[0\] holds \[3\]"):
        read_val_mats(tmp_path)
    write_val_mats(tmp_path, _images(), _subsets())
    m = {k: v for k, v in loadmat(tmp_path / "wider_face_val.mat").items() if not k.startswith("__")}
    m["face_bbx_list"][0][0][0][0] = "abc"
    savemat(tmp_path / "wider_face_val.mat", m)
    with pytest.raises(DataError, match=r"wider_face_val.mat: face_bbx_list\[0\]\[0\] is not numeric"):
        read_val_mats(tmp_path)
    m["face_bbx_list"][0][0][0][0] = np.array([[1.0, 2.0, -3.0, 4.0]])
    savemat(tmp_path / "wider_face_val.mat", m)
    with pytest.raises(DataError, match="negative width or height"):
        read_val_mats(tmp_path)
    write_val_mats(tmp_path, _images(), _subsets())
    e = {k: v for k, v in loadmat(tmp_path / "wider_easy_val.mat").items() if not k.startswith("__")}
    e["file_list"][0][0][1][0] = "other"
    savemat(tmp_path / "wider_easy_val.mat", e)
    with pytest.raises(DataError, match="wider_easy_val.mat: file_list differs"):
        read_val_mats(tmp_path)
    write_val_mats(tmp_path, _images(), _subsets())
    m = loadmat(tmp_path / "wider_face_val.mat")
    del m["face_bbx_list"]
    savemat(tmp_path / "wider_face_val.mat", {k: v for k, v in m.items() if not k.startswith("__")})
    with pytest.raises(DataError, match="has no variable 'face_bbx_list'"):
        read_val_mats(tmp_path)
