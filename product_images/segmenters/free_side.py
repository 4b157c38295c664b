"""An ONNX model exported at one image side, made to accept any side, in memory.

Exporters write a fully convolutional model's input as fixed (U²-Net: 1×3×320×320) even when
its graph computes every resize from the actual shape, and onnxruntime then refuses any other
size. Declaring the height and width of the input and outputs free is all it takes.

The `onnx` package would do this, but importing it costs ~0.6 s of CPU (ml_dtypes) in every
process that loads a model, a third of a one-photo run. So the few messages on the path from
the model to a dimension are declared here, with their field numbers from onnx.proto (stable
since 2017); protobuf keeps every field it is not told about as it was, weights included.
"""

from __future__ import annotations

from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

__all__ = ["free_image_side"]

_LABEL = descriptor_pb2.FieldDescriptorProto
# message: [(field, number, type or message name, repeated)], onnx.proto's numbering
_MESSAGES: dict[str, list[tuple[str, int, int | str, bool]]] = {
    "Dimension": [("dim_value", 1, _LABEL.TYPE_INT64, False),
                  ("dim_param", 2, _LABEL.TYPE_STRING, False)],
    "Shape": [("dim", 1, "Dimension", True)],
    "Tensor": [("shape", 2, "Shape", False)],
    "Type": [("tensor_type", 1, "Tensor", False)],
    "ValueInfo": [("type", 2, "Type", False)],
    "Graph": [("input", 11, "ValueInfo", True), ("output", 12, "ValueInfo", True),
              ("value_info", 13, "ValueInfo", True)],
    "Model": [("graph", 7, "Graph", False)],
}  # fmt: skip


def _schema() -> Any:
    """The Model message class of the partial schema."""
    file = descriptor_pb2.FileDescriptorProto(name="onnx_side.proto", package="onnx_side")
    for name, fields in _MESSAGES.items():
        message = file.message_type.add(name=name)
        for field, number, kind, repeated in fields:
            entry = message.field.add(name=field, number=number)
            entry.label = _LABEL.LABEL_REPEATED if repeated else _LABEL.LABEL_OPTIONAL
            if isinstance(kind, str):
                entry.type, entry.type_name = _LABEL.TYPE_MESSAGE, f".onnx_side.{kind}"
            else:
                entry.type = kind
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return message_factory.GetMessageClass(pool.FindMessageTypeByName("onnx_side.Model"))


_MODEL = _schema()  # built once; a constant


def free_image_side(data: bytes, side: int) -> bytes:
    """The model (an ONNX file's bytes) with the last two dimensions of its first input and of
    its outputs left free; unchanged when the file already takes `side` or any side."""
    model = _MODEL.FromString(data)
    image = model.graph.input[0].type.tensor_type.shape.dim[2:]
    if all(dim.dim_value in (0, side) for dim in image):
        return data
    for value in (model.graph.input[0], *model.graph.output):
        for dim in value.type.tensor_type.shape.dim[2:]:
            dim.ClearField("dim_value")
            dim.dim_param = "side"
    del model.graph.value_info[:]  # shapes inferred at the exported side: inferred again
    return bytes(model.SerializeToString())
