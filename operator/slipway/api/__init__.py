"""The three kinds as pydantic models: the one source of truth for their schemas (see crd.py)."""

from slipway.api.common import Condition, StorageLocation, ValidationGates
from slipway.api.model_version import ModelVersion, ModelVersionSpec, ModelVersionStatus
from slipway.api.serving_endpoint import ServingEndpoint, ServingEndpointSpec, ServingEndpointStatus
from slipway.api.training_pipeline import TrainingPipeline, TrainingPipelineSpec, TrainingPipelineStatus

__all__ = [
    "Condition",
    "ModelVersion",
    "ModelVersionSpec",
    "ModelVersionStatus",
    "ServingEndpoint",
    "ServingEndpointSpec",
    "ServingEndpointStatus",
    "StorageLocation",
    "TrainingPipeline",
    "TrainingPipelineSpec",
    "TrainingPipelineStatus",
    "ValidationGates",
]
