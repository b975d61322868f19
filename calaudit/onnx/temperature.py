"""A temperature-scaled copy of a vendor's ONNX model (``calaudit fix``).

The vendor's interface is kept: the same inputs, the same output names and types.
Only the tensor that holds the class scores is rescaled, by nodes appended to a
copy of the graph (the loaded model and its file are never touched):

* logits ``z``: ``Softmax(z / T)`` over the classes, or ``Sigmoid(z / T)`` for a
  single column;
* probabilities ``p``: temperature scaling of the log-probabilities,
  ``Softmax(Log(Max(p, eps)) / T)``, or for a single positive-class column
  ``Sigmoid((Log(Max(p, eps)) - Log(Max(1 - p, eps))) / T)``, ``eps = 1e-12``.

Wiring:

* a ZipMap output: the ZipMap reads the calibrated tensor, so the vendor's map
  output (e.g. ``output_probability``) carries calibrated probabilities;
* a probability tensor output ``NAME``: the original tensor is renamed
  ``NAME_uncalibrated`` (every node that read it reads it under the new name, so
  e.g. a label computed from it is unchanged) and the new nodes produce ``NAME``;
* a logits output: left as it is (the raw scores) and a new output
  ``probabilities`` (``calibrated_probabilities`` if that name is taken) is added;
  ``calaudit run`` prefers an output named like probabilities, so it reads it.

The ir_version and opsets of the model are kept. ``Softmax`` changed meaning in
opset 13 (one axis instead of "flatten from axis"): at opset 13 or later the new
Softmax uses ``axis=-1``, before it ``axis=1``; both are the softmax over the
classes of an ``(N, K)`` tensor. A score tensor of another rank is flattened to
``(N, K)`` first and reshaped back, so the classes are the flattened row, as
``calaudit run`` reads them.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .._version import __version__
from ..errors import InvalidInputError, first_line
from ..files.atomic import write_atomic
from .model import ScoreOutput, VendorModel

#: Floor on probabilities before their logarithm (in the score tensor's dtype).
EPS = 1e-12
PREFIX = "calaudit_"
#: The oldest default-domain opset the edit supports (Max broadcasts from opset 8).
MIN_OPSET = 8

_DEFAULT_DOMAINS = ("", "ai.onnx")


def temperature_scaled_model(
    model: VendorModel,
    score_output: ScoreOutput,
    temperature: float,
    *,
    scores_are_logits: bool,
    metadata: dict[str, str] | None = None,
    n_columns: int | None = None,
) -> Any:
    """A new ``onnx.ModelProto``: ``model`` with its scores temperature-scaled by ``temperature``.

    ``score_output`` is what :meth:`VendorModel.choose_score_output` chose;
    ``scores_are_logits`` how its values were read (``decide_logits``).
    ``n_columns`` (optional) is the number of score columns calaudit read from the
    model (``scores.shape[1]``); it is needed only when the graph does not declare
    the width of the score tensor, and must agree with it when it does.

    Raises :class:`InvalidInputError` (one line naming the model) when the edit
    cannot be made; the result passes ``onnx.checker`` and loads in onnxruntime.
    """
    import onnx

    where = str(model.path)
    temperature = _check_temperature(temperature, where)
    source = model.proto
    if _uses_external_data(source):
        raise InvalidInputError(
            f"{where}: the model keeps its weights in external data files; calaudit fix writes a single-file "
            "model: save the vendor's model with its weights inside (onnx.save_model(..., "
            "save_as_external_data=False)) and run calaudit fix on that"
        )
    proto = onnx.ModelProto()
    proto.CopyFrom(source)
    graph = proto.graph

    zipmap = _zipmap_producing(graph, score_output.name)
    scores = zipmap.input[0] if zipmap is not None else score_output.fetch
    elem_type, dims = _tensor_info(proto, model, scores)
    if elem_type is None:
        raise InvalidInputError(f"{where}: cannot tell the element type of the score tensor {scores!r}")
    if elem_type not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE):
        type_name = onnx.TensorProto.DataType.Name(elem_type).lower()
        raise InvalidInputError(
            f"{where}: the score tensor {scores!r} holds {type_name}, not float or double; "
            "calaudit fix can only rescale float scores"
        )
    dtype = np.float32 if elem_type == onnx.TensorProto.FLOAT else np.float64
    rank = len(dims) if dims is not None else None
    if rank is None and zipmap is not None:
        rank = 2  # a ZipMap reads (N, K) (a 1-D input would be one unbatched row)
    if rank == 0:
        raise InvalidInputError(f"{where}: the score tensor {scores!r} is a scalar, not one row of scores per input")
    labels = _zipmap_labels(zipmap) if zipmap is not None else None
    k = _columns(dims, labels, n_columns, scores, where)

    domain, opset = _default_opset(proto, where)
    names = _Names(graph)
    builder = _Builder(proto, names, dtype, domain)

    if zipmap is not None:
        calibrated = names.tensor(f"{PREFIX}calibrated_{scores}")
        wiring = "zipmap"
    elif scores_are_logits:
        calibrated = names.tensor("probabilities", "calibrated_probabilities")
        wiring = "new-output"
    else:
        calibrated = scores  # the new nodes take over the name; the original is renamed below
        wiring = "rename"

    source_tensor = scores
    if wiring == "rename":
        producer = _producer(graph, scores)
        if producer is None:
            raise InvalidInputError(
                f"{where}: output {scores!r} is not computed by a node (it is an input or a constant), "
                "so there is nothing to calibrate"
            )
        source_tensor = names.tensor(f"{scores}_uncalibrated")
        _rename_tensor(graph, producer, scores, source_tensor)

    _calibration_nodes(
        builder, source_tensor, calibrated, temperature,
        k=k, rank=rank, logits=scores_are_logits, opset=opset, where=where,
    )
    # Insert right after the node producing the score tensor: the graph stays
    # topologically sorted, including the ZipMap that now reads the new tensor.
    producer = _producer(graph, source_tensor)
    position = (list(graph.node).index(producer) + 1) if producer is not None else 0
    for offset, node in enumerate(builder.nodes):
        graph.node.insert(position + offset, node)
    graph.initializer.extend(builder.initializers)

    if wiring == "zipmap":
        zipmap.input[0] = calibrated
        output_name = score_output.name
    elif wiring == "new-output":
        graph.output.append(_new_output(graph, calibrated, elem_type, dims, k, scores))
        output_name = calibrated
    else:
        output_name = scores

    entries = {
        "calaudit_temperature": repr(temperature),
        "calaudit_source_sha256": model.sha256,
        "calaudit_scores": "logits" if scores_are_logits else "probabilities",
        "calaudit_output": output_name,
        "calaudit_version": __version__,
    }
    entries.update({str(key): str(value) for key, value in (metadata or {}).items()})
    _set_metadata(proto, entries)
    _validate(proto, source, where)
    return proto


def write_model(proto: Any, path: Path) -> Path:
    """Write ``proto`` to ``path`` atomically (a reader never sees half a model)."""
    return write_atomic(Path(path), proto.SerializeToString())


# ---------------------------------------------------------------------- the new nodes


class _Names:
    """Every name in use (tensors of all scopes, nodes), and fresh ones."""

    def __init__(self, graph: Any) -> None:
        self.tensors: set[str] = set()
        self.nodes: set[str] = set()
        for sub in _graphs(graph):
            self.tensors.update(v.name for v in (*sub.input, *sub.output, *sub.value_info))
            self.tensors.update(t.name for t in sub.initializer)
            self.tensors.update(s.values.name for s in sub.sparse_initializer)
            for node in sub.node:
                self.tensors.update(node.input)
                self.tensors.update(node.output)
                self.nodes.add(node.name)
        self.tensors.discard("")

    def tensor(self, *wanted: str) -> str:
        return self._fresh(self.tensors, wanted)

    def node(self, wanted: str) -> str:
        return self._fresh(self.nodes, (wanted,))

    @staticmethod
    def _fresh(used: set[str], wanted: tuple[str, ...]) -> str:
        for name in wanted:
            if name not in used:
                used.add(name)
                return name
        stem, number = wanted[-1], 2
        while f"{stem}_{number}" in used:
            number += 1
        used.add(f"{stem}_{number}")
        return f"{stem}_{number}"


class _Builder:
    """Nodes and scalar constants of the calibration, in the score tensor's dtype."""

    def __init__(self, proto: Any, names: _Names, dtype: Any, domain: str) -> None:
        self.names, self.dtype, self.domain = names, dtype, domain
        # IR < 4 requires every initializer to be a graph input too (which would add
        # inputs to the vendor's interface): constants become Constant nodes there.
        self.use_initializers = proto.ir_version >= 4
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []

    def scalar(self, label: str, value: float) -> str:
        from onnx import helper, numpy_helper

        name = self.names.tensor(f"{PREFIX}{label}")
        tensor = numpy_helper.from_array(np.array(value, dtype=self.dtype), name)
        if self.use_initializers:
            self.initializers.append(tensor)
        else:
            self.nodes.append(helper.make_node(
                "Constant", [], [name], name=self.names.node(f"{PREFIX}{label}"), domain=self.domain, value=tensor,
            ))
        return name

    def node(self, op: str, inputs: list[str], output: str | None = None, **attributes: Any) -> str:
        from onnx import helper

        out = output or self.names.tensor(f"{PREFIX}{op.lower()}")
        self.nodes.append(helper.make_node(
            op, inputs, [out], name=self.names.node(f"{PREFIX}{op.lower()}"), domain=self.domain, **attributes,
        ))
        return out


def _calibration_nodes(
    b: _Builder, x: str, out: str, temperature: float, *, k: int, rank: int | None, logits: bool, opset: int, where: str
) -> None:
    if opset < MIN_OPSET:
        raise InvalidInputError(
            f"{where}: the model uses opset {opset} of the default ONNX domain; calaudit fix needs opset "
            f"{MIN_OPSET} or newer (re-export the model with a newer opset)"
        )
    shape = None
    if k >= 2 and rank != 2:
        # Classes are the flattened row (as calaudit run reads them): (N, ...) -> (N, K) and back.
        shape = b.node("Shape", [x])
        x = b.node("Flatten", [x], axis=1)
    t = b.scalar("temperature", temperature)
    if logits:
        z = x
    else:
        eps = b.scalar("eps", EPS)
        log_p = b.node("Log", [b.node("Max", [x, eps])])
        if k >= 2:
            z = log_p
        else:
            one = b.scalar("one", 1.0)
            log_q = b.node("Log", [b.node("Max", [b.node("Sub", [one, x]), eps])])
            z = b.node("Sub", [log_p, log_q])
    if k == 1:
        b.node("Sigmoid", [b.node("Div", [z, t])], out)
        return
    # Opset 13 made Softmax's axis a single axis; before, axis=1 flattened the rest,
    # which for this (N, K) tensor is the same softmax over the classes.
    axis = -1 if opset >= 13 else 1
    scaled = b.node("Div", [z, t])
    if shape is None:
        b.node("Softmax", [scaled], out, axis=axis)
    else:
        b.node("Reshape", [b.node("Softmax", [scaled], axis=axis), shape], out)


def _new_output(graph: Any, name: str, elem_type: int, dims: list | None, k: int, scores: str) -> Any:
    """The added output: the logits' shape (batch dimension as declared), or [batch, K]."""
    from onnx import helper

    if dims is not None:
        shape: list | None = list(dims)
        if len(shape) == 2 and shape[1] is None:
            shape[1] = k
        if shape and shape[0] is None:
            shape[0] = _input_batch(graph)
    elif k >= 2:
        shape = [_input_batch(graph), k]
    else:
        shape = None
    return helper.make_tensor_value_info(name, elem_type, shape, doc_string=f"calaudit: temperature-scaled {scores}")


def _input_batch(graph: Any) -> int | str | None:
    initialized = {t.name for t in graph.initializer}
    for value in graph.input:
        if value.name in initialized or not value.type.tensor_type.HasField("shape"):
            continue
        dims = value.type.tensor_type.shape.dim
        if dims:
            return _dim(dims[0])
    return None


# ---------------------------------------------------------------------- reading the graph


def _graphs(graph: Any) -> Iterator[Any]:
    """``graph`` and every subgraph inside it."""
    yield graph
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("g"):
                yield from _graphs(attribute.g)
            for sub in attribute.graphs:
                yield from _graphs(sub)


def _producer(graph: Any, name: str) -> Any:
    return next((node for node in graph.node if name in node.output), None)


def _zipmap_producing(graph: Any, name: str) -> Any:
    node = _producer(graph, name)
    return node if node is not None and node.op_type == "ZipMap" and node.input else None


def _zipmap_labels(node: Any) -> tuple[str, ...] | None:
    for attribute in node.attribute:
        if attribute.name == "classlabels_strings" and attribute.strings:
            return tuple(s.decode("utf-8", "replace") for s in attribute.strings)
        if attribute.name == "classlabels_int64s" and attribute.ints:
            return tuple(str(i) for i in attribute.ints)
    return None


def _dim(dim: Any) -> int | str | None:
    if dim.HasField("dim_value") and dim.dim_value > 0:
        return int(dim.dim_value)
    if dim.HasField("dim_param") and dim.dim_param:
        return dim.dim_param
    return None


def _declared(values: Iterable[Any], name: str) -> tuple[int | None, list | None]:
    for value in values:
        if value.name == name and value.type.HasField("tensor_type"):
            tensor = value.type.tensor_type
            dims = [_dim(d) for d in tensor.shape.dim] if tensor.HasField("shape") else None
            return (tensor.elem_type or None), dims
    return None, None


def _known(dims: list | None) -> bool:
    return dims is not None and all(isinstance(d, int) for d in dims[1:])


def _tensor_info(proto: Any, model: VendorModel, name: str) -> tuple[int | None, list | None]:
    """Element type and dimensions (int, symbolic name or None) of ``name``; dims None if rank unknown."""
    graph = proto.graph
    elem_type, dims = _declared((*graph.output, *graph.value_info, *graph.input), name)
    for initializer in graph.initializer:
        if initializer.name == name:
            return initializer.data_type, [int(d) for d in initializer.dims]
    if elem_type is None or not _known(dims):
        try:
            import onnx

            inferred = onnx.shape_inference.infer_shapes(proto)
            found_type, found_dims = _declared((*inferred.graph.output, *inferred.graph.value_info), name)
        except Exception:
            found_type, found_dims = None, None
        elem_type = elem_type or found_type
        if found_dims is not None and (dims is None or (_known(found_dims) and not _known(dims))):
            dims = found_dims
    if elem_type is None or not _known(dims):
        elem_type, dims = _session_info(model, name, elem_type, dims)
    return elem_type, dims


def _session_info(model: VendorModel, name: str, elem_type: int | None, dims: list | None) -> tuple[int | None, list | None]:
    """Fill in from onnxruntime's view (it lists a ZipMap's input once calaudit exposed it)."""
    from onnx import TensorProto

    from .model import TensorSpec

    try:
        args = [*model.session.get_outputs(), *model.session.get_inputs()]
    except Exception:
        return elem_type, dims
    for arg in args:
        if arg.name != name:
            continue
        spec = TensorSpec.from_node_arg(arg)
        if spec.kind != "tensor":
            break
        if elem_type is None:
            elem_type = getattr(TensorProto, (spec.element_type or "undefined").upper(), TensorProto.UNDEFINED) or None
        found = [d if isinstance(d, int) and d > 0 else (d if isinstance(d, str) else None) for d in spec.shape]
        # onnxruntime reports an unknown rank as [] (a scalar score tensor would be no use anyway).
        if found and (dims is None or (_known(found) and not _known(dims))):
            dims = found
        break
    return elem_type, dims


def _columns(dims: list | None, labels: tuple[str, ...] | None, n_columns: int | None, scores: str, where: str) -> int:
    """Score columns per row: the product of the non-batch dimensions."""
    declared = None
    if dims is not None and len(dims) == 1:
        declared = 1
    elif _known(dims) and dims:
        declared = math.prod(dims[1:])
    if n_columns is not None:
        if n_columns < 1:
            raise InvalidInputError(f"{where}: n_columns must be at least 1; got {n_columns}")
        if declared is not None and declared != n_columns:
            raise InvalidInputError(
                f"{where}: the score tensor {scores!r} declares {declared} columns but {n_columns} were read"
            )
        return n_columns
    if declared is not None:
        return declared
    if labels:
        return len(labels)
    raise InvalidInputError(
        f"{where}: the model does not declare how many class scores {scores!r} holds; "
        "cannot tell softmax from sigmoid calibration"
    )


def _default_opset(proto: Any, where: str) -> tuple[str, int]:
    """The default-domain import (added, at the newest version the IR version allows, if missing)."""
    for entry in proto.opset_import:
        if entry.domain in _DEFAULT_DOMAINS:
            return entry.domain, int(entry.version)
    from onnx import helper

    allowed = [row[2] for row in helper.VERSION_TABLE if row[1] <= proto.ir_version]
    if not allowed:
        raise InvalidInputError(f"{where}: the model's IR version {proto.ir_version} is too old to edit")
    version = max(allowed)
    proto.opset_import.append(helper.make_opsetid("", version))
    return "", version


def _uses_external_data(proto: Any) -> bool:
    from onnx import TensorProto

    def tensors(graph: Any) -> Iterator[Any]:
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield sparse.values
            yield sparse.indices
        for node in graph.node:
            for attribute in node.attribute:
                if attribute.HasField("t"):
                    yield attribute.t
                yield from attribute.tensors

    return any(
        tensor.data_location == TensorProto.EXTERNAL
        for graph in _graphs(proto.graph)
        for tensor in tensors(graph)
    )


# ---------------------------------------------------------------------- editing


def _rename_tensor(graph: Any, producer: Any, old: str, new: str) -> None:
    """``old`` (produced by ``producer``) becomes ``new`` for the producer and every reader."""
    for index, name in enumerate(producer.output):
        if name == old:
            producer.output[index] = new
    _rename_uses(graph, old, new)
    for value in graph.value_info:
        if value.name == old:
            value.name = new
    if not any(value.name == new for value in graph.value_info):
        declared = next((value for value in graph.output if value.name == old), None)
        if declared is not None:
            info = graph.value_info.add()
            info.CopyFrom(declared)
            info.name = new


def _rename_uses(graph: Any, old: str, new: str) -> None:
    for node in graph.node:
        for index, name in enumerate(node.input):
            if name == old:
                node.input[index] = new
        for attribute in node.attribute:
            subgraphs = [attribute.g] if attribute.HasField("g") else []
            for sub in [*subgraphs, *attribute.graphs]:
                if _defines(sub, old):
                    continue  # shadowed: the subgraph's own tensor of that name
                _rename_uses(sub, old, new)
                for value in sub.output:  # a subgraph output passing the outer value through
                    if value.name == old:
                        value.name = new


def _defines(graph: Any, name: str) -> bool:
    return (
        any(v.name == name for v in graph.input)
        or any(t.name == name for t in graph.initializer)
        or any(name in node.output for node in graph.node)
    )


def _set_metadata(proto: Any, entries: dict[str, str]) -> None:
    """Set ``entries``, replacing same-key entries and keeping every other one."""
    kept = [(p.key, p.value) for p in proto.metadata_props if p.key not in entries]
    del proto.metadata_props[:]
    for key, value in [*kept, *entries.items()]:
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value


def _check_temperature(temperature: float, where: str) -> float:
    try:
        value = float(temperature)
    except (TypeError, ValueError):
        raise InvalidInputError(f"{where}: temperature {temperature!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise InvalidInputError(f"{where}: temperature must be a positive finite number; got {value!r}")
    return value


def _first_line(exc: Exception) -> str:
    return first_line(exc)[:300]


def _validate(proto: Any, source: Any, where: str) -> None:
    """``onnx.checker`` on the result, then an onnxruntime session (which also checks types).

    A vendor model that fails the checker itself (onnxruntime may still run it) is
    judged by onnxruntime alone: the checker's complaint would be about the vendor's
    graph, not the edit.
    """
    import onnx

    try:
        onnx.checker.check_model(proto)
    except Exception as exc:
        try:
            onnx.checker.check_model(source)
        except Exception:
            pass
        else:
            raise InvalidInputError(
                f"{where}: the temperature-scaled model fails onnx's checker: {_first_line(exc)}"
            ) from None
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise InvalidInputError(
            f"{where}: onnxruntime cannot load the temperature-scaled model: {_first_line(exc)}"
        ) from None
