"""Choosing the ONNX Runtime execution provider: CUDA when it works, else the CPU.

``onnxruntime-gpu`` lists ``CUDAExecutionProvider`` whenever it was built with it, even
on a machine without a GPU or without the CUDA libraries; it then falls back to the
CPU silently after printing errors. So ``auto`` asks for CUDA only when it is offered,
checks which provider the session really got, and keeps ONNX Runtime's own log quiet.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class ProviderChoice:
    """The provider a session runs on, and why (recorded in the result)."""

    provider: str
    requested: str
    note: str


def requested_providers(device: str, available: Sequence[str]) -> list[str]:
    """Providers to ask ONNX Runtime for, in priority order, for ``--device``."""
    if device not in DEVICES:
        raise UsageError(f"--device must be one of {', '.join(DEVICES)}; got {device!r}")
    if device == "cpu":
        return [CPU]
    if device == "cuda" and CUDA not in available:
        raise UsageError(
            f"--device cuda: this onnxruntime offers no CUDA provider (it offers {', '.join(available) or 'none'}); "
            "install onnxruntime-gpu with CUDA and cuDNN, or use --device auto"
        )
    return [CUDA, CPU] if CUDA in available else [CPU]


def create_session(
    model: bytes,
    device: str = "auto",
    *,
    available: Sequence[str] | None = None,
    session_factory: Callable[..., Any] | None = None,
    threads: int | None = None,
) -> tuple[Any, ProviderChoice]:
    """Build an ``InferenceSession`` for ``model`` on the best provider for ``device``.

    ``available`` and ``session_factory`` default to onnxruntime's; tests replace them
    to exercise the CUDA branches on machines without a GPU. With ``auto``, a CUDA
    session that cannot be built, or that ONNX Runtime silently moved to the CPU, gives
    a CPU session; with ``cuda`` that is an error.
    """
    import onnxruntime as ort

    ort.set_default_logger_severity(4)  # only fatal messages: no CUDA-fallback noise on stderr
    if available is None:
        available = ort.get_available_providers()
    factory = session_factory or ort.InferenceSession
    options = ort.SessionOptions()
    options.log_severity_level = 4
    if threads:
        options.intra_op_num_threads = threads
    providers = requested_providers(device, available)
    if providers[0] == CUDA:
        failure = ""
        try:
            session = factory(model, sess_options=options, providers=providers)
            if session.get_providers()[:1] == [CUDA]:
                return session, ProviderChoice(CUDA, device, "CUDA offered and used")
            failure = "onnxruntime could not load its CUDA libraries (CUDA, cuDNN) and fell back to the CPU"
        except Exception as exc:  # the CUDA provider failed to initialise
            if _is_model_error(exc):
                raise
            failure = f"the CUDA session failed: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
        if device == "cuda":
            raise UsageError(f"--device cuda: {failure}; use --device auto to fall back to the CPU")
        session = factory(model, sess_options=options, providers=[CPU])
        return session, ProviderChoice(CPU, device, f"CUDA offered but not usable: {failure}")
    session = factory(model, sess_options=options, providers=[CPU])
    note = "CPU requested" if device == "cpu" else "no CUDA provider offered by this onnxruntime"
    return session, ProviderChoice(CPU, device, note)


def _is_model_error(exc: Exception) -> bool:
    """Errors about the model itself, which a CPU session would raise too."""
    text = str(exc)
    return any(
        marker in text
        for marker in ("INVALID_PROTOBUF", "IR version", "opset", "is not a registered function/op", "INVALID_GRAPH")
    )
