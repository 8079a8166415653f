"""Writing the dense-face set in WIDER FACE's layout, atomically.

What ``write_set(out, ...)`` leaves in ``out``::

    wider_face_split/wider_face_{train,val}_bbx_gt.txt   WIDER's annotation txt
    wider_face_split/wider_face_test_filelist.txt         WIDER's test list
    wider_face_split/wider_face_test_bbx_gt.txt           extra: our test split has ground truth
    wider_face_split/identities_{split}.json              extra: {image name: [LFW row per face]}
    WIDER_{train,val,test}/images/<event>/<stem>.jpg
    eval_tools/ground_truth/wider_face_val.mat, wider_{easy,medium,hard}_val.mat
    contact_sheet.png                                     the first images with boxes drawn
    dense_faces.json                                      manifest, written last: arguments, counts

Everything is written into ``<out>.partial`` (marked by a ``.make-faces-partial`` file) and renamed
to ``out`` at the end, so a killed run leaves no set that looks complete; the next run removes
the leftover ``.partial`` folder. A non-empty ``out`` is replaced only when it holds a manifest
(a set this writer made); anything else is refused.

Images are made independently (:func:`scenes.make_scene` seeds each from (seed, split, index)), in
``workers`` processes; files are the same byte for byte for any number of workers.
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil

import numpy as np

from jaxnets.data.errors import DataError

SPLITS = ("train", "val", "test")
MANIFEST = "dense_faces.json"
PARTIAL_MARK = ".make-faces-partial"
GENERATOR = "jaxnets make-faces"


def image_name(kind: str, split: str, index: int) -> str:
    """'<event>/<stem>.jpg' of image ``index`` of ``split``, e.g. '2--Crowd/2_Crowd_val_17.jpg'."""
    from jaxnets.data.dense_faces.layouts import KINDS

    event = KINDS[kind][0]
    number, label = event.split("--")
    return f"{event}/{number}_{label}_{split}_{index}.jpg"


def render_job(job: tuple) -> tuple:
    """Make and save one image. job = (root, seed, split, index, (W, H)) ->
    (split, index, name, faces (K, 10) int64, identities (K,) int64)."""
    from PIL import Image

    from jaxnets.data.dense_faces.scenes import make_scene

    root, seed, split, index, size = job
    scene = make_scene(seed, split, index, size)
    name = image_name(scene.kind, split, index)
    path = pathlib.Path(root) / f"WIDER_{split}" / "images" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(scene.image).save(path, format="JPEG", quality=scene.quality, subsampling=2,
                                      optimize=False, progressive=False)
    return split, index, name, scene.faces, scene.identities


def render_all(root: pathlib.Path, seed: int, counts: dict, size: tuple, workers: int, progress: bool) -> dict:
    """Render every image of every split into ``root``; split -> list of (name, faces, identities)
    in index order."""
    from tqdm import tqdm

    jobs = [(str(root), seed, split, i, tuple(size)) for split in SPLITS for i in range(counts.get(split, 0))]
    results = {split: [] for split in SPLITS}
    bar = tqdm(total=len(jobs), disable=not progress, unit="img", desc="make-faces")
    if workers > 1 and len(jobs) > 1:
        import multiprocessing

        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for split, _, name, faces, ids in pool.imap(render_job, jobs, chunksize=2):
                results[split].append((name, faces, ids))
                bar.update()
    else:
        for job in jobs:
            split, _, name, faces, ids = render_job(job)
            results[split].append((name, faces, ids))
            bar.update()
    bar.close()
    return results


def write_annotations(root: pathlib.Path, results: dict) -> dict:
    """The txt files, identity files and val .mat files from the rendered records; returns
    split -> list of WiderImage (sorted by event, then index)."""
    from jaxnets.data.dense_faces.difficulty import subset_indices
    from jaxnets.data.wider_mat import SUBSETS, write_val_mats
    from jaxnets.data.wider_txt import WiderImage, write_filelist, write_gt

    split_dir = root / "wider_face_split"
    split_dir.mkdir(parents=True, exist_ok=True)
    images = {}
    for split in SPLITS:
        records = sorted(results[split], key=lambda r: r[0].split("/")[0])  # stable: index order kept within an event
        images[split] = [WiderImage(name, np.asarray(faces, np.int64).reshape(-1, 10)) for name, faces, _ in records]
        ids = {name: [int(v) for v in idents] for name, _, idents in records}
        (split_dir / f"identities_{split}.json").write_text(json.dumps(ids, indent=0, sort_keys=True) + "\n")
        if split == "test":
            write_filelist(split_dir / "wider_face_test_filelist.txt", [im.name for im in images[split]])
        write_gt(split_dir / f"wider_face_{split}_bbx_gt.txt", images[split])
    if images["val"]:
        gt_dir = root / "eval_tools" / "ground_truth"
        subsets = {s: {} for s in SUBSETS}
        for im in images["val"]:
            for s, idx in subset_indices(im.faces).items():
                subsets[s][im.name] = idx
        write_val_mats(gt_dir, images["val"], subsets)
    return images


def is_complete_set(out: pathlib.Path) -> bool:
    try:
        return json.loads((out / MANIFEST).read_text()).get("generator") == GENERATOR
    except (OSError, ValueError, AttributeError):
        return False


def check_target(out: pathlib.Path) -> None:
    """DataError when ``out`` may not be written: a file, or a non-empty folder that is not a
    complete set made by make-faces; also when ``<out>.partial`` exists but is not ours."""
    if out.exists() and not out.is_dir():
        raise DataError(f"{out}: exists and is not a folder")
    parent = next((d for d in out.absolute().parents if d.exists()), None)
    if parent is not None and not parent.is_dir():
        raise DataError(f"{out}: {parent} is a file, not a folder")
    if parent is not None and not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(f"{out}: cannot write into {parent} (permission denied)")
    if out.is_dir() and any(out.iterdir()) and not is_complete_set(out):
        raise DataError(f"{out}: folder is not empty and is not a set made by make-faces "
                        f"(no {MANIFEST}); choose a new folder or empty it")
    partial = partial_path(out)
    if partial.exists() and not (partial / PARTIAL_MARK).is_file():
        raise DataError(f"{partial}: exists and was not left by make-faces; move it away")
    old = old_path(out)
    if old.exists() and not is_complete_set(old):
        raise DataError(f"{old}: exists and is not a set made by make-faces; move it away")


def partial_path(out: pathlib.Path) -> pathlib.Path:
    return out.with_name(out.name + ".partial")


def old_path(out: pathlib.Path) -> pathlib.Path:
    """Where a previous complete set is moved while the new one takes its place."""
    return out.with_name(out.name + ".replaced")


def publish(partial: pathlib.Path, out: pathlib.Path) -> None:
    """Replace ``out`` (absent, empty, or a previous complete set) by the finished ``partial``.

    Safe to kill at any instant: until ``partial`` is renamed it keeps its mark (a rerun removes
    it and starts again; a previous set moved aside to ``<out>.replaced`` is accepted and removed
    by that rerun); after the rename ``out`` holds the manifest, so it counts as a complete set
    even if the mark inside it was not removed yet."""
    old = old_path(out)
    if out.is_dir() and not any(out.iterdir()):
        out.rmdir()
    if out.exists():
        if old.exists():
            shutil.rmtree(old)
        os.replace(out, old)
    os.replace(partial, out)
    (out / PARTIAL_MARK).unlink()
    if old.exists():
        shutil.rmtree(old)


def write_set(out, counts: dict, seed: int, size: tuple = (640, 480), workers: int = 1,
              progress: bool = False) -> dict:
    """Make the set in ``out`` (see the module docstring). counts: split -> number of images;
    size: (W, H). Returns the manifest written (also ``out/dense_faces.json``).

    DataError when ``out`` may not be written (:func:`check_target`)."""
    from jaxnets.data.dense_faces.contact_sheet import write_contact_sheet

    out = pathlib.Path(out)
    check_target(out)
    partial = partial_path(out)
    if partial.exists():
        shutil.rmtree(partial)  # left by a killed run (it carries our mark)
    partial.mkdir(parents=True)
    (partial / PARTIAL_MARK).write_text("make-faces is writing this folder; it is removed when it finishes\n")
    results = render_all(partial, seed, counts, size, workers, progress)
    images = write_annotations(partial, results)
    shown = next((s for s in ("val", "train", "test") if images[s]), None)
    if shown:
        write_contact_sheet(partial / "contact_sheet.png", partial / f"WIDER_{shown}" / "images",
                            [im for im in sorted(images[shown], key=_index_of)])
    manifest = {
        "generator": GENERATOR, "seed": int(seed), "size": [int(size[0]), int(size[1])],
        "images": {s: len(images[s]) for s in SPLITS},
        "faces": {s: int(sum(len(im.faces) for im in images[s])) for s in SPLITS},
        "contact_sheet": f"first images of {shown}" if shown else None,
    }
    (partial / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    publish(partial, out)
    return manifest


def _index_of(im) -> int:
    """The image index at the end of a stem '<n>_<Kind>_<split>_<index>'."""
    return int(im.stem.rsplit("_", 1)[1])
