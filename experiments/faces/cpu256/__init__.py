"""Table 4 rows in a second CPU form: 256² crops instead of 128², the faces' scale unchanged.

At 128² the deepest levels are tiny (conv6 2×2, conv7 1×1), so their batch-norm statistics
describe maps made mostly of padding, and a 640² test image (conv6 10×10) puts them far outside
what they saw; and a crop of 0.2-0.45 of the short side rarely holds a large face whole. 256²
crops of 0.4-0.9 of the short side (:func:`experiments.faces.common.cpu_config` with
``crop=256``) keep the faces' scale and quarter the gap. docs/faces_deep_levels.md measures it.
"""
