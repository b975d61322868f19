"""A vendor's ONNX classifier: what it expects, what it emits, and how to run it.

The model file is untrusted: it is parsed as protobuf (never unpickled), its
strings are only ever shown escaped, and nothing is written beside it. The output
holding the class scores is chosen by rule (docs/onnx.md, "Running an ONNX model"): a
probability tensor or a ZipMap sequence of maps; label outputs are ignored. A
ZipMap output is read through the tensor that feeds it, exposed as an extra graph
output, so no Python loop turns per-row dictionaries into a matrix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInputError, UsageError
from .providers import ProviderChoice, create_session

#: ONNX Runtime element types and the numpy dtype calaudit feeds for each.
INPUT_DTYPES: dict[str, Any] = {
    "float": np.float32,
    "double": np.float64,
    "float16": np.float16,
    "int64": np.int64,
    "int32": np.int32,
    "int16": np.int16,
    "int8": np.int8,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "uint32": np.uint32,
    "uint64": np.uint64,
    "bool": np.bool_,
    "string": np.str_,
}
_FLOAT_TYPES = {"float", "double", "float16", "bfloat16"}
_TYPE_PATTERN = re.compile(r"^tensor\((\w+)\)$")
_MAP_PATTERN = re.compile(r"^seq\(map\((\w+),\s*tensor\((\w+)\)\)\)$")


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of the model as ONNX Runtime reports it.

    ``kind`` is ``"tensor"``, ``"sequence-of-maps"`` (ZipMap) or ``"other"``;
    ``element_type`` the tensor element type (``float``, ``int64``, ``string``...) or,
    for a ZipMap, the map's value type; ``shape`` has ints for fixed dimensions and
    strings or ``None`` for symbolic ones.
    """

    name: str
    type: str
    shape: tuple[int | str | None, ...]
    kind: str
    element_type: str | None
    key_type: str | None = None

    @classmethod
    def from_node_arg(cls, arg: Any) -> TensorSpec:
        shape = tuple(arg.shape) if isinstance(arg.shape, (list, tuple)) else ()
        tensor = _TYPE_PATTERN.match(arg.type)
        if tensor:
            return cls(arg.name, arg.type, shape, "tensor", tensor.group(1))
        mapped = _MAP_PATTERN.match(arg.type)
        if mapped:
            return cls(arg.name, arg.type, shape, "sequence-of-maps", mapped.group(2), mapped.group(1))
        return cls(arg.name, arg.type, shape, "other", None)

    @property
    def fixed_batch(self) -> int | None:
        """The batch dimension when it is a fixed number, else ``None``."""
        if self.shape and isinstance(self.shape[0], int) and self.shape[0] > 0:
            return self.shape[0]
        return None

    @property
    def row_shape(self) -> tuple[int | str | None, ...]:
        return self.shape[1:]

    def describe(self) -> str:
        dims = ", ".join("?" if d is None or isinstance(d, str) or d < 0 else str(d) for d in self.shape)
        return f"{self.name} {self.type} [{dims}]"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "type": self.type, "shape": [d if isinstance(d, int) else None for d in self.shape]}


@dataclass(frozen=True)
class ScoreOutput:
    """The output chosen to hold class scores, and how to read it."""

    name: str
    spec: TensorSpec
    fetch: str  # the tensor actually fetched (a ZipMap's input when exposed)
    via_zipmap: bool
    class_labels: tuple[str, ...] | None
    reason: str


@dataclass
class VendorModel:
    """An ONNX model loaded for inference, with its provenance."""

    path: Path
    sha256: str
    proto: Any
    session: Any
    provider: ProviderChoice
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    metadata: dict[str, str] = field(default_factory=dict)
    exposed: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ provenance
    def provenance(self) -> dict[str, Any]:
        proto = self.proto
        return {
            "sha256": self.sha256,
            "producer_name": proto.producer_name or None,
            "producer_version": proto.producer_version or None,
            "ir_version": int(proto.ir_version),
            "opsets": {(op.domain or "ai.onnx"): int(op.version) for op in proto.opset_import},
            "graph_name": proto.graph.name or None,
            "model_version": int(proto.model_version),
            "metadata": dict(self.metadata),
            "inputs": [spec.to_dict() for spec in self.inputs],
            "outputs": [spec.to_dict() for spec in self.outputs],
            "provider": self.provider.provider,
            "device_requested": self.provider.requested,
            "provider_note": self.provider.note,
        }

    # ------------------------------------------------------------------ class names
    def metadata_class_names(self) -> tuple[str, ...] | None:
        """Class names from a ``classes`` / ``labels`` / ``class_names`` metadata entry.

        The names remember the model and key they came from (a name given twice is
        reported there, where the names are used: :func:`class_names_from_sources`).
        """
        from ..predictions.labels import ClassNames

        for key in ("classes", "class_names", "labels"):
            for meta_key, value in self.metadata.items():
                if meta_key.lower() == key:
                    names = _parse_name_list(value)
                    if names:
                        return ClassNames(names, where=f"{self.path}: metadata key {meta_key!r}")
        return None

    def metadata_preprocessing(self) -> tuple[str, str] | None:
        """The ``preprocessing`` metadata entry as ``(key, text)``, or ``None``.

        Read by :func:`calaudit.loaders.image_preprocess.read_metadata`: settings when
        the text is a JSON object of them, else the vendor's description.
        """
        for meta_key, value in self.metadata.items():
            if meta_key.lower() == "preprocessing":
                return meta_key, value
        return None

    def graph_class_labels(self) -> tuple[str, ...] | None:
        """``classlabels_strings`` / ``classlabels_int64s`` of a classifier node."""
        for node in self.proto.graph.node:
            labels = _node_class_labels(node)
            if labels is not None:
                return labels
        return None

    # ------------------------------------------------------------------ outputs
    def choose_score_output(self, requested: str | None = None) -> ScoreOutput:
        """Pick the output that holds class scores (the rule of docs/onnx.md), or ``requested``."""
        names = ", ".join(spec.describe() for spec in self.outputs)
        if requested is not None:
            spec = next((s for s in self.outputs if s.name == requested), None)
            if spec is None:
                raise UsageError(f"{self.path}: --output {requested!r} is not an output of the model; outputs: {names}")
            if not _holds_scores(spec):
                raise UsageError(
                    f"{self.path}: output {requested!r} is {spec.type}, not class scores; outputs: {names}"
                )
            return self._score_output(spec, f"chosen with --output {requested}")
        candidates = [s for s in self.outputs if _holds_scores(s)]
        calibrated = self.metadata.get("calaudit_output")
        chosen = next((s for s in candidates if s.name == calibrated), None)
        if chosen is not None:  # a model written by `calaudit fix` names its calibrated output
            return self._score_output(chosen, "the calibrated output written by calaudit fix")
        if not candidates:
            raise InvalidInputError(
                f"{self.path}: no output holds class scores (a float tensor or a ZipMap); outputs: {names}"
            )
        if len(candidates) == 1:
            return self._score_output(candidates[0], "the only output holding scores")
        maps = [s for s in candidates if s.kind == "sequence-of-maps"]
        if len(maps) == 1:
            return self._score_output(maps[0], "the ZipMap output (class -> probability)")
        for word, why in (("prob", "its name says probabilities"), ("logit", "its name says logits")):
            named = [s for s in candidates if word in s.name.lower()]
            if len(named) == 1:
                return self._score_output(named[0], why)
        raise UsageError(
            f"{self.path}: several outputs could hold class scores ({', '.join(s.name for s in candidates)}); "
            "choose one with --output NAME"
        )

    def _score_output(self, spec: TensorSpec, reason: str) -> ScoreOutput:
        producer = next((node for node in self.proto.graph.node if spec.name in node.output), None)
        if spec.kind == "sequence-of-maps":
            labels = _node_class_labels(producer) if producer is not None else None
            if producer is not None and producer.op_type == "ZipMap" and self.expose(producer.input[0]):
                return ScoreOutput(spec.name, spec, producer.input[0], True, labels, reason)
            return ScoreOutput(spec.name, spec, spec.name, False, labels, reason)
        return ScoreOutput(spec.name, spec, spec.name, False, None, reason)

    def expose(self, tensor: str) -> bool:
        """Rebuild the session with ``tensor`` as an extra graph output.

        Returns False (and keeps the session) when the graph cannot be edited, e.g.
        a model whose weights live in external files.
        """
        if any(o.name == tensor for o in self.session.get_outputs()):
            return True
        if _has_external_data(self.proto):
            return False
        import onnx

        edited = onnx.ModelProto()
        edited.CopyFrom(self.proto)
        for name in [*self.exposed, tensor]:  # every tensor exposed so far stays exposed
            edited.graph.output.append(onnx.helper.make_empty_tensor_value_info(name))
        try:
            session, provider = create_session(edited.SerializeToString(), self.provider.requested)
        except Exception:
            return False
        self.session, self.provider = session, provider
        self.exposed.append(tensor)
        return True

    def penultimate_tensor(self, score_tensor: str) -> str | None:
        """The input of the last Gemm/MatMul before ``score_tensor`` (the embedding a
        classifier head reads), walking back through single-input ops; or ``None``."""
        producers = {output: node for node in self.proto.graph.node for output in node.output}
        weights = {init.name for init in self.proto.graph.initializer}
        tensor = score_tensor
        for _ in range(16):  # a few element-wise ops at most between head and scores
            node = producers.get(tensor)
            if node is None:
                return None
            if node.op_type in ("Gemm", "MatMul"):
                data = [name for name in node.input[:2] if name not in weights]
                return data[0] if len(data) == 1 else None
            data = [name for name in node.input if name and name not in weights]
            if len(data) != 1:
                return None
            tensor = data[0]
        return None

    def run_many(self, fetches: list[str], feeds: dict[str, np.ndarray]) -> list[Any]:
        """Run one batch and return every fetched output."""
        return self.session.run(fetches, feeds)

    # ------------------------------------------------------------------ running
    def run(self, fetch: str, feeds: dict[str, np.ndarray]) -> Any:
        """Run one batch and return the fetched output."""
        return self.session.run([fetch], feeds)[0]


def load_model(path: str | Path, *, device: str = "auto") -> VendorModel:
    """Parse, check and open an ONNX model; errors are one line naming the file."""
    import hashlib

    import onnx

    from ..files.info import path_problem

    path = Path(path)
    problem = path_problem(path, missing="no such model file")
    if problem is not None:
        raise InvalidInputError(f"{path}: {problem}; expected an ONNX model file")
    data = path.read_bytes()
    proto = onnx.ModelProto()
    try:
        proto.ParseFromString(data)
    except Exception:
        raise InvalidInputError(f"{path}: not an ONNX model (the file is not a valid ONNX protobuf)") from None
    if not proto.graph.node and not proto.graph.output:
        raise InvalidInputError(f"{path}: not an ONNX model (no graph found in the file)")
    _check_custom_ops(path, proto)
    try:
        if _has_external_data(proto):
            session, provider = create_session(str(path), device)  # weights are found next to the model
        else:
            session, provider = create_session(data, device)
    except (UsageError, InvalidInputError):
        raise
    except Exception as exc:
        raise InvalidInputError(_explain_load_failure(path, proto, exc)) from None
    meta = session.get_modelmeta()
    return VendorModel(
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),  # the bytes already read: no second read
        proto=proto,
        session=session,
        provider=provider,
        inputs=[TensorSpec.from_node_arg(arg) for arg in session.get_inputs()],
        outputs=[TensorSpec.from_node_arg(arg) for arg in session.get_outputs()],
        metadata=dict(meta.custom_metadata_map or {}),
    )


# ---------------------------------------------------------------------- helpers


def _holds_scores(spec: TensorSpec) -> bool:
    if spec.kind == "sequence-of-maps":
        return spec.element_type in _FLOAT_TYPES
    return spec.kind == "tensor" and spec.element_type in _FLOAT_TYPES


def _node_class_labels(node: Any) -> tuple[str, ...] | None:
    for attribute in node.attribute:
        if attribute.name == "classlabels_strings" and attribute.strings:
            return tuple(s.decode("utf-8", "replace") for s in attribute.strings)
        if attribute.name in ("classlabels_int64s", "classlabels_ints") and attribute.ints:
            return tuple(str(i) for i in attribute.ints)
    return None


def _parse_name_list(value: str) -> tuple[str, ...] | None:
    """A JSON list, a JSON object {index: name}, or comma/newline separated names."""
    text = value.strip()
    if not text:
        return None
    try:
        parsed = json.loads(text)
    except ValueError:
        parsed = None
    if isinstance(parsed, list) and parsed:
        return tuple(str(item) for item in parsed)
    if isinstance(parsed, dict) and parsed:
        try:
            ordered = sorted(parsed.items(), key=lambda item: int(item[0]))
        except ValueError:
            return None
        return tuple(str(name) for _, name in ordered)
    separator = "\n" if "\n" in text else ","
    names = tuple(part.strip() for part in text.split(separator) if part.strip())
    return names or None


def _has_external_data(proto: Any) -> bool:
    from onnx import TensorProto

    return any(t.data_location == TensorProto.EXTERNAL for t in proto.graph.initializer)


_STANDARD_DOMAINS = {"", "ai.onnx", "ai.onnx.ml", "com.microsoft", "ai.onnx.preview.training", "com.microsoft.nchwc"}


def _check_custom_ops(path: Path, proto: Any) -> None:
    functions = {(f.domain, f.name) for f in proto.functions}
    custom = sorted(
        {
            f"{node.domain}:{node.op_type}"
            for node in _all_nodes(proto.graph)
            if node.domain not in _STANDARD_DOMAINS and (node.domain, node.op_type) not in functions
        }
    )
    if custom:
        raise InvalidInputError(
            f"{path}: the model uses custom operators that onnxruntime cannot run without the vendor's "
            f"extension library: {', '.join(custom)}; ask the vendor for an export with standard ONNX operators"
        )


def _all_nodes(graph: Any) -> Iterable[Any]:
    for node in graph.node:
        yield node
        for attribute in node.attribute:
            if attribute.g is not None and attribute.g.node:
                yield from _all_nodes(attribute.g)
            for subgraph in attribute.graphs:
                yield from _all_nodes(subgraph)


def _explain_load_failure(path: Path, proto: Any, exc: Exception) -> str:
    import onnxruntime

    text = str(exc)
    version = onnxruntime.__version__
    ir = re.search(r"Unsupported model IR version: (\d+), max supported IR version: (\d+)", text)
    if ir:
        return (
            f"{path}: the model has ONNX IR version {ir.group(1)}, newer than onnxruntime {version} runs "
            f"(at most {ir.group(2)}); it was saved with a newer onnx package: re-save it with "
            f"model.ir_version = {ir.group(2)} (if its opsets allow) or upgrade onnxruntime"
        )
    opset = re.search(r"Opset (\d+) is under development.*?domain ([\w.]+) is till opset (\d+)", text, re.S)
    if opset:
        return (
            f"{path}: the model uses opset {opset.group(1)} of {opset.group(2)}, newer than onnxruntime "
            f"{version} supports (up to {opset.group(3)}); ask for an export at opset {opset.group(3)} or lower, "
            "or upgrade onnxruntime"
        )
    unsupported = re.search(r"(\S+) is not a registered function/op", text)
    if unsupported:
        return f"{path}: operator {unsupported.group(1)} is not available in onnxruntime {version}"
    first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    first = re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", first)
    first = re.sub(r"/onnxruntime_src/\S+ \S+", "", first).strip()
    return f"{path}: onnxruntime cannot load the model: {first[:300]}"


def class_names_from_sources(
    n_columns: int, sources: Sequence[tuple[str, Sequence[str] | None]]
) -> tuple[tuple[str, ...], str, list[str]]:
    """The first source whose names fit ``n_columns`` score columns.

    Returns the names, the source used, and notes on sources skipped because their
    count did not match (recorded in the result, so a surprise is visible). The names
    used must be unique: a name given twice is an error naming where it was given
    (the file and both lines, or the model and its metadata key).
    """
    from ..predictions.labels import check_unique_class_names

    notes = []
    for source, names in sources:
        if names is None:
            continue
        if len(names) == n_columns:
            check_unique_class_names(names, source)
            return tuple(str(n) for n in names), source, notes
        notes.append(f"{source} lists {len(names)} classes but the model emits {n_columns} scores; not used")
    return tuple(str(k) for k in range(n_columns)), "column indices (no class names found)", notes
