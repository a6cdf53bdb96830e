"""TF Serving config messages that the `tensorflow-serving-api` wheel does not ship.

`tensorflow.serving.BatchingParameters` (`servables/tensorflow/session_bundle_config.proto`,
fields 1-7), `tensorflow.serving.MonitoringConfig` / `PrometheusConfig`
(`config/monitoring_config.proto`) and `tensorflow.serving.SSLConfig`
(`config/ssl_config.proto`, what `--ssl_config_file` reads) are rebuilt here from
descriptors with the upstream package, message and field names, numbers and types, so their
text format (what `--batching_parameters_file` and `--monitoring_config_file` read) and
wire format are the same as the real ones. If a future wheel ships them, those classes are
used instead.
"""

from __future__ import annotations

from google.protobuf import (
    descriptor_pb2,
    descriptor_pool,
    message_factory,
    wrappers_pb2,  # noqa: F401  (registers google/protobuf/wrappers.proto)
)

_F = descriptor_pb2.FieldDescriptorProto


def _existing(full_name: str):
    try:
        return message_factory.GetMessageClass(
            descriptor_pool.Default().FindMessageTypeByName(full_name))
    except KeyError:
        return None


def _add(message, name: str, number: int, kind: int, type_name: str | None = None,
         repeated: bool = False) -> None:
    field = message.field.add(name=name, number=number, type=kind,
                              label=_F.LABEL_REPEATED if repeated else _F.LABEL_OPTIONAL)
    if type_name:
        field.type_name = type_name


def _build():
    batching = _existing("tensorflow.serving.BatchingParameters")
    monitoring = _existing("tensorflow.serving.MonitoringConfig")
    pool = descriptor_pool.Default()
    if batching is None:
        file = descriptor_pb2.FileDescriptorProto(
            name="attention_zoo/tensorflow_serving/servables/tensorflow/"
                 "session_bundle_config.proto",
            package="tensorflow.serving", syntax="proto3",
            dependency=["google/protobuf/wrappers.proto"])
        message = file.message_type.add(name="BatchingParameters")
        for number, name in enumerate(
                ["max_batch_size", "batch_timeout_micros", "max_enqueued_batches",
                 "num_batch_threads"], start=1):
            _add(message, name, number, _F.TYPE_MESSAGE, ".google.protobuf.Int64Value")
        _add(message, "thread_pool_name", 5, _F.TYPE_MESSAGE, ".google.protobuf.StringValue")
        _add(message, "allowed_batch_sizes", 6, _F.TYPE_INT64, repeated=True)
        _add(message, "pad_variable_length_inputs", 7, _F.TYPE_BOOL)
        pool.Add(file)
        batching = _existing("tensorflow.serving.BatchingParameters")
    if monitoring is None:
        file = descriptor_pb2.FileDescriptorProto(
            name="attention_zoo/tensorflow_serving/config/monitoring_config.proto",
            package="tensorflow.serving", syntax="proto3")
        prometheus = file.message_type.add(name="PrometheusConfig")
        _add(prometheus, "enable", 1, _F.TYPE_BOOL)
        _add(prometheus, "path", 2, _F.TYPE_STRING)
        config = file.message_type.add(name="MonitoringConfig")
        _add(config, "prometheus_config", 1, _F.TYPE_MESSAGE,
             ".tensorflow.serving.PrometheusConfig")
        pool.Add(file)
        monitoring = _existing("tensorflow.serving.MonitoringConfig")
    if _existing("tensorflow.serving.SSLConfig") is None:
        file = descriptor_pb2.FileDescriptorProto(
            name="attention_zoo/tensorflow_serving/config/ssl_config.proto",
            package="tensorflow.serving", syntax="proto3")
        ssl = file.message_type.add(name="SSLConfig")
        for number, name in enumerate(["server_key", "server_cert", "custom_ca"], start=1):
            _add(ssl, name, number, _F.TYPE_STRING)
        _add(ssl, "client_verify", 4, _F.TYPE_BOOL)
        pool.Add(file)
    return batching, monitoring


BatchingParameters, MonitoringConfig = _build()
SSLConfig = _existing("tensorflow.serving.SSLConfig")
PrometheusConfig = _existing("tensorflow.serving.PrometheusConfig")
