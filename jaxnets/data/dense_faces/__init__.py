"""The dense-face set: real LFW faces composited into crowd scenes, written in WIDER FACE's layout.

Public names:

* :func:`write_set` -- make a set (``jaxnets make-faces``): images, WIDER txt, val .mat files,
  contact sheet, manifest; atomic, deterministic from the seed
* :func:`make_scene` -> :class:`Scene` -- one image and its (K, 10) WIDER annotations
* :func:`subset_masks`, :func:`subset_indices` -- the easy / medium / hard rule
* :func:`load_library` -> :class:`Library` -- faces, non-faces, backgrounds, the cat
"""

from jaxnets.data.dense_faces.difficulty import subset_indices, subset_masks
from jaxnets.data.dense_faces.library import SPLIT_IDENTITIES, Library, load_library
from jaxnets.data.dense_faces.scenes import Scene, make_scene
from jaxnets.data.dense_faces.writer import is_complete_set, write_set

__all__ = ["Library", "SPLIT_IDENTITIES", "Scene", "is_complete_set", "load_library", "make_scene",
           "subset_indices", "subset_masks", "write_set"]
