"""SavedModel export into a TF Serving model repository (`export/<model>/<version>/`).

The serving modules themselves (one `tf.Module` per task) are part of the models:
`zoo.models.serving_modules`.
"""

from export.repository import next_version, publish_version
from export.saved_model import export_model
from zoo.models.serving_modules.translation import TranslatorServingModule

__all__ = [
    "TranslatorServingModule",
    "export_model",
    "next_version",
    "publish_version",
]
