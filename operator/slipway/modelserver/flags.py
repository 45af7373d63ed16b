"""`tensorflow_model_server`'s command line: `--name=value` (a boolean may be given as `--name`), the
defaults of TF Serving's main.cc. The flags this server acts on are fields of `Options`; every other
standard flag is accepted and reported as ignored, and an unknown flag is an error, as in TF Serving."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

# TF Serving's flags this server accepts without acting on them (it serves REST only, on CPU, unbatched).
IGNORED = frozenset(
    {
        "grpc_socket_path",
        "rest_api_num_threads",
        "rest_api_timeout_in_ms",
        "enable_batching",
        "allow_version_labels_for_unavailable_models",
        "batching_parameters_file",
        "enable_per_model_batching_parameters",
        "num_load_threads",
        "num_unload_threads",
        "flush_filesystem_caches",
        "tensorflow_session_parallelism",
        "tensorflow_session_config_file",
        "use_alts_credentials",
        "ssl_config_file",
        "platform_config_file",
        "per_process_gpu_memory_fraction",
        "grpc_channel_arguments",
        "grpc_max_threads",
        "enable_model_warmup",
        "num_request_iterations_for_warmup",
        "remove_unused_fields_from_bundle_metagraph",
        "prefer_tflite_model",
        "num_tflite_pools",
        "num_tflite_interpreters_per_pool",
        "enable_signature_method_name_check",
        "xla_cpu_compilation_enabled",
        "xla_gpu_compilation_enabled",
        "enable_profiler",
        "thread_pool_factory_config_file",
        "mixed_precision",
        "skip_initialize_tpu",
        "enable_grpc_healthcheck_service",
        "enable_serialization_as_tensor_content",
    }
)


class FlagError(ValueError):
    pass


@dataclass
class Options:
    port: int = 8500
    rest_api_port: int = 0
    rest_api_enable_cors_support: bool = False
    model_config_file: str = ""
    model_config_file_poll_wait_seconds: int = 0
    model_name: str = "default"
    model_base_path: str = ""
    file_system_poll_wait_seconds: int = 1
    max_num_load_retries: int = 5
    load_retry_interval_micros: int = 60_000_000
    monitoring_config_file: str = ""
    saved_model_tags: str = "serve"
    tensorflow_intra_op_parallelism: int = 0
    tensorflow_inter_op_parallelism: int = 0
    version: bool = False
    ignored: dict[str, str] = field(default_factory=dict)
    given: set[str] = field(default_factory=set)


_TRUE = {"true", "1", "t", "yes"}
_FALSE = {"false", "0", "f", "no"}


def parse(argv: list[str]) -> Options:
    options = Options()
    types = {f.name: f.type for f in fields(Options) if f.name not in ("ignored", "given")}
    for argument in argv:
        if not argument.startswith("-") or argument in ("-", "--"):
            raise FlagError(f"unexpected argument {argument!r}: flags are --name=value")
        name, has_value, value = argument.lstrip("-").partition("=")
        if name in IGNORED:
            options.ignored[name] = value if has_value else "true"
            continue
        if name not in types:
            raise FlagError(f"unknown flag --{name}")
        kind = types[name]
        if kind == "bool":
            if not has_value or value.lower() in _TRUE:
                setattr(options, name, True)
            elif value.lower() in _FALSE:
                setattr(options, name, False)
            else:
                raise FlagError(f"--{name}={value}: expected true or false")
        elif not has_value:
            raise FlagError(f"--{name} needs a value (--{name}=...)")
        elif kind == "int":
            try:
                setattr(options, name, int(value))
            except ValueError:
                raise FlagError(f"--{name}={value}: expected an integer") from None
        else:
            setattr(options, name, value)
        options.given.add(name)
    return options
