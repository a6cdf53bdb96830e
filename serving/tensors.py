"""Request tensor checks and conversions shared by the server (TensorProto <-> numpy).

Every check raises `ServingError` carrying a gRPC status code and a message that names
the offending input, the way TF Serving reports errors. Nothing here trusts the request: the
element count is bounded *before* `tf.make_ndarray` allocates anything, so a proto announcing
a shape of `[10**12]` with no values cannot exhaust the server's memory.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping

import grpc
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import tensor_pb2, types_pb2
from tensorflow.core.protobuf import meta_graph_pb2

DEFAULT_MAX_MESSAGE_SIZE = 64 * 1024 * 1024  # largest gRPC request/response, in bytes


class ServingError(Exception):
    """An error with a gRPC status code, sent back to the client as is."""

    def __init__(self, code: grpc.StatusCode, message: str):
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:  # pragma: no cover - cosmetic
        return f"{self.code.name}: {self.message}"


def invalid(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
    return ServingError(grpc.StatusCode.NOT_FOUND, message)


@dataclasses.dataclass(frozen=True)
class Limits:
    """Request limits. `None` disables a limit.

    Args:
        max_batch_size: most elements along dimension 0 of any input (e.g. texts per request).
        max_string_bytes: longest single string element, in bytes (e.g. one text).
        max_tensor_elements: most elements in one input tensor (guards memory).
        require_utf8: reject string inputs that are not valid UTF-8 (Predict inputs only;
            Classify checks the `bytes_list` features of its examples instead).
    """

    # 64: the client's chunk. Exports pad batches past 32 to multiples of 32, each a fresh XLA
    # compile, so a larger bound lets one client keep the server compiling new shapes.
    max_batch_size: int | None = 64
    max_string_bytes: int | None = 16 * 1024
    max_tensor_elements: int | None = 16 * 1024 * 1024
    require_utf8: bool = True


def dtype_name(dtype: int) -> str:
    try:
        return types_pb2.DataType.Name(dtype)
    except ValueError:
        return f"DataType({dtype})"


def _shape_str(dims) -> str:
    return "[" + ",".join("?" if d < 0 else str(d) for d in dims) + "]"


def check_strings(alias: str, values: np.ndarray, limits: Limits, utf8: bool) -> None:
    """Length and UTF-8 checks on a string array (numpy object array of bytes)."""
    max_len = limits.max_string_bytes
    for index, value in enumerate(values.reshape(-1)):
        if not isinstance(value, bytes):  # pragma: no cover - make_ndarray gives bytes
            value = str(value).encode()
        if max_len is not None and len(value) > max_len:
            raise invalid(
                f"input '{alias}': element {index} is {len(value)} bytes long, "
                f"more than the limit of {max_len} bytes")
        if utf8:
            try:
                value.decode("utf-8")
            except UnicodeDecodeError as error:
                raise invalid(
                    f"input '{alias}': element {index} is not valid UTF-8 "
                    f"(byte {error.start}: {error.reason})") from None


def proto_to_ndarray(alias: str, proto: tensor_pb2.TensorProto, info: meta_graph_pb2.TensorInfo,
                     limits: Limits) -> np.ndarray:
    """Checks `proto` against the signature's `TensorInfo` and converts it to numpy."""
    if proto.dtype != info.dtype:
        raise invalid(
            f"input '{alias}': expects dtype {dtype_name(info.dtype)} but "
            f"{dtype_name(proto.dtype)} was provided")
    if proto.tensor_shape.unknown_rank:
        raise invalid(f"input '{alias}': tensor shape has unknown rank")
    dims = [d.size for d in proto.tensor_shape.dim]
    if any(d < 0 for d in dims):
        raise invalid(f"input '{alias}': negative dimension in shape {_shape_str(dims)}")
    expected = info.tensor_shape
    if not expected.unknown_rank:
        want = [d.size for d in expected.dim]
        if len(want) != len(dims):
            raise invalid(
                f"input '{alias}': expects rank {len(want)} (shape {_shape_str(want)}) but got "
                f"rank {len(dims)} (shape {_shape_str(dims)})")
        for axis, (w, d) in enumerate(zip(want, dims, strict=True)):
            if w >= 0 and w != d:
                raise invalid(
                    f"input '{alias}': dimension {axis} must be {w} (shape {_shape_str(want)}) "
                    f"but got shape {_shape_str(dims)}")
    if dims and dims[0] == 0:
        raise invalid(f"input '{alias}': empty batch (dimension 0 is 0)")
    if limits.max_batch_size is not None and dims and dims[0] > limits.max_batch_size:
        raise invalid(
            f"input '{alias}': batch of {dims[0]} elements is larger than the limit of "
            f"{limits.max_batch_size}")
    count = math.prod(dims)
    if limits.max_tensor_elements is not None and count > limits.max_tensor_elements:
        raise invalid(
            f"input '{alias}': {count} elements is more than the limit of "
            f"{limits.max_tensor_elements}")
    try:
        tf_dtype = tf.dtypes.as_dtype(proto.dtype)
    except TypeError:
        raise invalid(f"input '{alias}': unsupported dtype {dtype_name(proto.dtype)}") from None
    if tf_dtype in (tf.resource, tf.variant):
        raise invalid(f"input '{alias}': unsupported dtype {dtype_name(proto.dtype)}")
    if proto.tensor_content:
        if tf_dtype == tf.string:
            raise invalid(f"input '{alias}': string tensors cannot use tensor_content")
        itemsize = np.dtype(tf_dtype.as_numpy_dtype).itemsize
        if len(proto.tensor_content) != count * itemsize:
            raise invalid(
                f"input '{alias}': tensor_content has {len(proto.tensor_content)} bytes, "
                f"shape {_shape_str(dims)} of {dtype_name(proto.dtype)} needs {count * itemsize}")
    elif tf_dtype == tf.string and len(proto.string_val) > count:
        raise invalid(
            f"input '{alias}': {len(proto.string_val)} values for shape {_shape_str(dims)}")
    try:
        array = tf.make_ndarray(proto)
    except Exception as error:  # noqa: BLE001 - malformed proto: wrong number of values, ...
        raise invalid(f"input '{alias}': cannot read tensor: {error}") from None
    if tuple(array.shape) != tuple(dims):  # pragma: no cover - defensive
        raise invalid(f"input '{alias}': tensor values do not match shape {_shape_str(dims)}")
    if tf_dtype == tf.string:
        check_strings(alias, array, limits, limits.require_utf8)
    return array


def has_strings(value) -> bool:
    """Whether a (nested) list or tuple of values holds a `str` or `bytes`: numpy would turn it
    into a fixed-width unicode array instead of the object array a `DT_STRING` tensor needs."""
    if isinstance(value, (str, bytes)):
        return True
    if isinstance(value, (list, tuple)):
        return any(has_strings(v) for v in value)
    return False


def ndarray_to_proto(value) -> tensor_pb2.TensorProto:
    if isinstance(value, tf.Tensor):
        value = value.numpy()
    return tf.make_tensor_proto(value)


def request_to_arrays(inputs: Mapping[str, tensor_pb2.TensorProto],
                      signature: meta_graph_pb2.SignatureDef, limits: Limits
                      ) -> dict[str, np.ndarray]:
    """Checks a PredictRequest's `inputs` against `signature` and returns numpy arrays."""
    expected = signature.inputs
    extra = sorted(set(inputs) - set(expected))
    if extra:
        names = ", ".join(extra[:10]) + (f" (and {len(extra) - 10} more)" if len(extra) > 10
                                         else "")
        raise invalid(
            f"input tensor alias not found in signature: {names}. Inputs expected to "
            f"be in the set {{{','.join(sorted(expected))}}}.")
    missing = sorted(set(expected) - set(inputs))
    if missing:
        raise invalid(
            f"missing input: {', '.join(missing)}. Inputs expected to be in the set "
            f"{{{','.join(sorted(expected))}}}.")
    arrays = {alias: proto_to_ndarray(alias, inputs[alias], expected[alias], limits)
              for alias in sorted(expected)}
    batch_sizes = {alias: a.shape[0] for alias, a in arrays.items()
                   if a.ndim >= 1 and (expected[alias].tensor_shape.unknown_rank
                                       or expected[alias].tensor_shape.dim[0].size < 0)}
    if len(set(batch_sizes.values())) > 1:
        detail = ", ".join(f"'{a}': {n}" for a, n in sorted(batch_sizes.items()))
        raise invalid(f"inputs have different batch sizes (dimension 0): {detail}")
    return arrays


def batch_size_of(arrays: Mapping[str, np.ndarray]) -> int | None:
    sizes = {a.shape[0] for a in arrays.values() if a.ndim >= 1}
    return sizes.pop() if len(sizes) == 1 else None
