"""A model server that speaks TF Serving's interface, for where TF Serving's own image cannot be had.

It takes `tensorflow_model_server`'s flags (those the operator passes are honoured, the other standard ones
accepted), reads the model config file in TF Serving's text format with the protos of the
`tensorflow-serving-api` package, applies each model's version policy to the version directories under its
base path (polled, as TF Serving's file-system source does), loads SavedModels with real TensorFlow, and
answers TF Serving's REST API (`/v1/models/<m>[/versions/<v>|/labels/<l>]`, `/metadata`, `:predict` with
`instances` or `inputs`, TF Serving's error JSON and HTTP codes) and its Prometheus metrics, under TF
Serving's own names. Its gRPC API on --port serves Predict and GetModelStatus. Not served: classify,
regress and multi-inference (UNIMPLEMENTED).

Modules: `flags` (command line), `config` (config files, version policy), `tensors` (REST JSON <-> arrays),
`servable` (a loaded SavedModel), `manager` (versions and their states), `metrics` (TF Serving's Prometheus
page), `rest` (the HTTP API), `grpc_api` (the gRPC API), `__main__` (`slipway-model-server`, which is
`tensorflow_model_server` in the image).
"""
