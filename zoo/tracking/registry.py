"""The trained model in MLflow: the XLA SavedModel that `zoo export` would write, logged as an
MLflow model of the run and registered as a new version of the builder's registered model."""

import warnings

import mlflow
import numpy as np
from mlflow.models import ModelSignature
from mlflow.types.schema import Schema, TensorSpec

from zoo.models.serving_modules import serving_module_class

SERVING_MODEL_NAME = "serving_model"

def _numpy_dtype(dtype):
    return np.dtype("O") if dtype == "string" else np.dtype(dtype.as_numpy_dtype)


def serving_signature(concrete_function):
    """The MLflow signature of a serving function: its inputs and outputs as tensor specs
    (unknown dimensions as -1)."""
    def spec(tensor_spec, name=None):
        shape = tuple(-1 if d is None else d for d in tensor_spec.shape.as_list())
        return TensorSpec(_numpy_dtype(tensor_spec.dtype), shape, name)

    input_specs = concrete_function.structured_input_signature[0]
    # A single input stays unnamed: MLflow hands named inputs to a `tf.Module` as a dict, which
    # its `__call__` does not take; several inputs are named (MLflow passes them by name).
    if len(input_specs) == 1:
        inputs = Schema([spec(input_specs[0])])
    else:
        inputs = Schema([spec(s, s.name) for s in input_specs])
    outputs = Schema([spec(value, name)
                      for name, value in concrete_function.structured_outputs.items()])
    return ModelSignature(inputs=inputs, outputs=outputs)


def pip_requirements():
    import keras
    import tensorflow as tf
    import tensorflow_text

    return [f"tensorflow=={tf.__version__}", f"tensorflow-text=={tensorflow_text.__version__}",
            f"keras=={keras.__version__}", f"mlflow=={mlflow.__version__}"]


def registered_version(name, run_id, client=None):
    """The version of registered model `name` that run `run_id` created, or None."""
    client = client or mlflow.MlflowClient()
    try:
        versions = client.search_model_versions(f"run_id = '{run_id}'")
    except mlflow.exceptions.MlflowException:
        return None
    versions = [v for v in versions if v.name == name]
    return max(versions, key=lambda v: int(v.version)) if versions else None


def _pyfunc_module(serving_module):
    """The serving module with a `__call__` (what MLflow's pyfunc flavor of a `tf.Module`
    calls) that is its `serve` signature."""
    import tensorflow as tf

    class PyfuncServingModule(serving_module):
        @tf.function(input_signature=serving_module.serve.input_signature)
        def __call__(self, *args):
            return self.serve(*args)

    return PyfuncServingModule


def log_serving_model(model, config, run_id, jit_compile=True, client=None):
    """Log `model`'s serving SavedModel (text in → translation, attention, tokens out; the
    numeric core XLA-compiled) as the MLflow model `serving_model` of run `run_id` and register
    it as a new version of `config["model"]`. A run that already registered a version (a
    resumed training that got that far) gets that version back. Returns the `ModelVersion`.

    Loading it needs TensorFlow Text's ops registered (`import tensorflow_text`) first:
    `mlflow.pyfunc.load_model("models:/luong_translator/1").predict(np.array([...]))`.
    """
    import mlflow.tensorflow

    client = client or mlflow.MlflowClient()
    name = config["model"]
    existing = registered_version(name, run_id, client)
    if existing is not None:
        return existing
    module = _pyfunc_module(serving_module_class(config["task"]))(model, jit_compile=jit_compile)
    signatures = module.signatures()
    info = mlflow.tensorflow.log_model(
        module,
        name=SERVING_MODEL_NAME,
        saved_model_kwargs={"signatures": signatures},
        signature=serving_signature(signatures["serving_default"]),
        pip_requirements=pip_requirements(),
        registered_model_name=name,
        metadata={"zoo.model": name, "zoo.task": config["task"],
                  "zoo.attention": str(config.get("attention")), "jit_compile": jit_compile,
                  "serving": "TF Serving SavedModel, signature serving_default; export with "
                             f"`zoo export models:/{name}/<version>`"},
        tags={"zoo.model": name, "zoo.attention": str(config.get("attention"))},
    )
    version = info.registered_model_version
    if version is None:
        return registered_version(name, run_id, client)
    model_version = client.get_model_version(name, str(version))
    client.set_model_version_tag(name, str(version), "zoo.run_id", run_id)
    client.set_model_version_tag(name, str(version), "zoo.attention",
                                 str(config.get("attention")))
    return model_version


def tag_export(run_id, key, value, client=None):
    """Record an export of run `run_id`'s model as the run tag `zoo.export.<key>` (what was
    exported where, at which precision), visible beside the run in the MLflow UI. The export
    is published before: a store that cannot be written costs a warning, not the export."""
    client = client or mlflow.MlflowClient()
    try:
        client.set_tag(run_id, f"zoo.export.{key}", value)
    except mlflow.exceptions.MlflowException as error:
        warnings.warn(f"the export is not recorded on run {run_id}: {error.message}",
                      stacklevel=2)
