"""Tasks: what one kind of training needs (example batch, loss + metrics, evaluators, the
model-selection rule); see :mod:`jaxnets.train.task`. Importing this package registers them.

* ``classification`` -- :mod:`jaxnets.tasks.classification` (sections 4 and 6)
* ``toy_boxes`` -- :mod:`jaxnets.tasks.toy_boxes` (one square per image: box regression + score)
* ``face_detection`` -- :mod:`jaxnets.tasks.face_detection` (section 5: FaceNet on WIDER FACE)
* ``toy_reverse`` -- :mod:`jaxnets.tasks.toy_reverse` (reverse a digit string, greedy decoding)
"""

from jaxnets.tasks import classification, toy_boxes, toy_reverse  # noqa: F401  (registration)
from jaxnets.tasks import face_detection  # noqa: F401  (registers "face_detection")
from jaxnets.tasks.classification import ClassificationTask, make_classification

__all__ = ["ClassificationTask", "make_classification"]
