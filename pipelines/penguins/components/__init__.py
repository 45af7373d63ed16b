"""The TFX standard chain as KFP v2 lightweight components on TensorFlow, TF Transform, TFMA and tfx-bsl,
one module per step; the model itself is a module file (TFX's contract), by default
`pipelines/penguins/model.py` (loaded by `pipelines.penguins.module_file`).

Artifacts keep TFX's on-disk layout (`Split-train/`, `Format-Serving/`, `schema.pbtxt`, `FeatureStats.pb`,
`SchemaDiff.pb`, `BLESSED`/`NOT_BLESSED`), so TFX tooling can read them. How a step gets the helpers it
calls: `base.component`.
"""

from pipelines.penguins.components.data_validation import example_validator, schema_gen, statistics_gen
from pipelines.penguins.components.evaluator import evaluator
from pipelines.penguins.components.example_gen import example_gen
from pipelines.penguins.components.infra_validator import infra_validator
from pipelines.penguins.components.pusher import pusher
from pipelines.penguins.components.trainer import trainer
from pipelines.penguins.components.transform import transform
from pipelines.penguins.components.tuner import tuner

__all__ = [
    "evaluator",
    "example_gen",
    "example_validator",
    "infra_validator",
    "pusher",
    "schema_gen",
    "statistics_gen",
    "trainer",
    "transform",
    "tuner",
]
