"""SavedModel export into a TF Serving model repository (`export/<model>/<version>/`)."""

from export.repository import next_version, publish_version
from export.saved_model import TranslatorServingModule, export_model, load_for_export

__all__ = [
    "TranslatorServingModule",
    "export_model",
    "load_for_export",
    "next_version",
    "publish_version",
]
