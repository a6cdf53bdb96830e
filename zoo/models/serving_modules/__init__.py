"""The serving modules: per task, the `tf.Module` a trained model is exported as (raw strings in,
the task's outputs out), registered in `SERVING_MODULES` under the task's name.

They belong to the model families (a task's model, its tokenization and its serving
signature go together); `export` writes them into a model repository and `zoo.tracking` logs
them to MLflow.

Example:

```python
module = serving_module_class(model_task(model))(model, jit_compile=False)
module.serve(tf.constant(["Ein Mann fährt Fahrrad."]))["translation"]
```
"""

from zoo.models.serving_modules.base import (
    BATCH_BUCKETS,
    SERVING_MODULES,
    WARMUP_SOURCE_LENGTHS,
    BaseServingModule,
    model_task,
    pad_batch,
    serving_module_class,
    warmup_texts,
)

__all__ = ["BATCH_BUCKETS", "SERVING_MODULES", "WARMUP_SOURCE_LENGTHS", "BaseServingModule",
           "model_task", "pad_batch", "serving_module_class", "warmup_texts"]
