"""Choosing the ONNX Runtime execution provider (calaudit.providers).

The CUDA branches are exercised with a fake ``available`` list and a fake
``session_factory``: this machine has onnxruntime-gpu (which offers CUDA) but no GPU.
"""

from __future__ import annotations

import numpy as np
import pytest

import onnx_graphs as g
from calaudit.errors import UsageError
from calaudit.onnx.providers import CPU, CUDA, ProviderChoice, create_session, requested_providers

TRT = "TensorrtExecutionProvider"


# ---------------------------------------------------------------------- requested_providers


@pytest.mark.parametrize(
    ("device", "available", "expected"),
    [
        ("auto", [CUDA, CPU], [CUDA, CPU]),
        ("auto", [TRT, CUDA, CPU], [CUDA, CPU]),
        ("auto", [CPU], [CPU]),
        ("cpu", [CUDA, CPU], [CPU]),
        ("cpu", [CPU], [CPU]),
        ("cuda", [CUDA, CPU], [CUDA, CPU]),
        ("cuda", [TRT, CUDA, CPU], [CUDA, CPU]),
    ],
)
def test_requested_providers(device, available, expected):
    assert requested_providers(device, available) == expected


@pytest.mark.parametrize("available", [[CPU], [TRT, CPU], []])
def test_requested_providers_cuda_without_cuda_is_a_usage_error(available):
    with pytest.raises(UsageError) as info:
        requested_providers("cuda", available)
    message = str(info.value)
    assert "--device cuda" in message
    assert "--device auto" in message
    assert "\n" not in message


def test_requested_providers_unknown_device():
    with pytest.raises(UsageError, match="--device"):
        requested_providers("gpu", [CUDA, CPU])


# ---------------------------------------------------------------------- create_session with fakes


class FakeSession:
    def __init__(self, providers):
        self._providers = list(providers)

    def get_providers(self):
        return list(self._providers)


class FakeFactory:
    """Records every call; ``behaviour(providers)`` returns the session's real providers or raises."""

    def __init__(self, behaviour):
        self.behaviour = behaviour
        self.calls: list[list[str]] = []

    def __call__(self, model, sess_options=None, providers=None):
        assert sess_options is not None
        self.calls.append(list(providers))
        return FakeSession(self.behaviour(list(providers)))


MODEL = b"not parsed by the fake factory"


def works(providers):
    return providers


def silently_falls_back(providers):
    return [p for p in providers if p != CUDA]


def cuda_raises(providers):
    if CUDA in providers:
        raise RuntimeError("CUDA failure 100: no CUDA-capable device is detected\nsecond line")
    return providers


def test_cuda_offered_and_working_records_cuda():
    factory = FakeFactory(works)
    session, choice = create_session(MODEL, "auto", available=[CUDA, CPU], session_factory=factory)
    assert isinstance(choice, ProviderChoice)
    assert choice.provider == CUDA
    assert choice.requested == "auto"
    assert session.get_providers()[0] == CUDA
    assert factory.calls == [[CUDA, CPU]]


def test_device_cuda_with_working_cuda():
    factory = FakeFactory(works)
    _, choice = create_session(MODEL, "cuda", available=[CUDA, CPU], session_factory=factory)
    assert choice.provider == CUDA
    assert choice.requested == "cuda"


def test_auto_silent_fallback_gives_cpu_with_a_note():
    factory = FakeFactory(silently_falls_back)
    session, choice = create_session(MODEL, "auto", available=[CUDA, CPU], session_factory=factory)
    assert choice.provider == CPU
    assert session.get_providers()[0] == CPU
    assert "CUDA" in choice.note and "CPU" in choice.note
    assert factory.calls[0] == [CUDA, CPU]


def test_cuda_silent_fallback_is_a_usage_error():
    factory = FakeFactory(silently_falls_back)
    with pytest.raises(UsageError) as info:
        create_session(MODEL, "cuda", available=[CUDA, CPU], session_factory=factory)
    message = str(info.value)
    assert "--device cuda" in message and "--device auto" in message
    assert "\n" not in message


def test_auto_cuda_factory_raising_falls_back_to_cpu():
    factory = FakeFactory(cuda_raises)
    session, choice = create_session(MODEL, "auto", available=[CUDA, CPU], session_factory=factory)
    assert choice.provider == CPU
    assert session.get_providers() == [CPU]
    assert "no CUDA-capable device" in choice.note
    assert "second line" not in choice.note
    assert factory.calls == [[CUDA, CPU], [CPU]]


def test_cuda_factory_raising_is_a_usage_error():
    factory = FakeFactory(cuda_raises)
    with pytest.raises(UsageError) as info:
        create_session(MODEL, "cuda", available=[CUDA, CPU], session_factory=factory)
    message = str(info.value)
    assert "no CUDA-capable device" in message
    assert "\n" not in message
    assert factory.calls == [[CUDA, CPU]]  # no CPU session was built behind the user's back


def test_model_errors_from_the_cuda_session_are_not_hidden_by_a_fallback():
    def invalid(providers):
        raise RuntimeError("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model failed")

    factory = FakeFactory(invalid)
    with pytest.raises(RuntimeError, match="INVALID_PROTOBUF"):
        create_session(MODEL, "auto", available=[CUDA, CPU], session_factory=factory)
    assert factory.calls == [[CUDA, CPU]]


def test_no_cuda_offered_and_device_cuda_is_a_usage_error():
    factory = FakeFactory(works)
    with pytest.raises(UsageError, match="--device cuda"):
        create_session(MODEL, "cuda", available=[CPU], session_factory=factory)
    assert factory.calls == []


@pytest.mark.parametrize("device", ["auto", "cpu"])
def test_no_cuda_offered_gives_cpu(device):
    factory = FakeFactory(works)
    _, choice = create_session(MODEL, device, available=[CPU], session_factory=factory)
    assert choice.provider == CPU
    assert factory.calls == [[CPU]]


def test_device_cpu_never_tries_cuda_even_when_offered():
    factory = FakeFactory(works)
    _, choice = create_session(MODEL, "cpu", available=[CUDA, CPU], session_factory=factory)
    assert choice.provider == CPU
    assert factory.calls == [[CPU]]


# ---------------------------------------------------------------------- the real onnxruntime


def test_real_onnxruntime_auto_gives_a_quiet_working_cpu_session(capfd):
    w, b = g.weights(4, 3)
    model = g.prob_model(w, b)
    x = np.random.default_rng(3).normal(size=(5, 4)).astype(np.float32)
    capfd.readouterr()
    session, choice = create_session(model.SerializeToString(), "auto")
    (probabilities,) = session.run(None, {"x": x})
    captured = capfd.readouterr()
    assert captured.err == ""
    assert captured.out == ""
    assert choice.provider == CPU
    assert session.get_providers()[0] == CPU
    np.testing.assert_allclose(probabilities, g.softmax(x.astype(np.float64) @ w + b), rtol=1e-5, atol=1e-6)


def test_real_onnxruntime_auto_is_quiet_in_a_fresh_process(tmp_path):
    """onnxruntime-gpu prints CUDA-loading errors the first time a process asks for CUDA."""
    import subprocess
    import sys

    w, b = g.weights(4, 3)
    model = g.save(g.prob_model(w, b), tmp_path / "m.onnx")
    code = (
        "import sys; from calaudit.onnx.providers import create_session; "
        "s, c = create_session(open(sys.argv[1], 'rb').read(), 'auto'); "
        "print(c.provider, s.get_providers()[0])"
    )
    completed = subprocess.run([sys.executable, "-c", code, str(model)], capture_output=True, text=True, timeout=60)
    assert completed.returncode == 0, completed.stderr
    assert completed.stderr == ""
    assert completed.stdout.split() == [CPU, CPU]
