"""Throughput of ``calaudit run model.onnx data/`` against a bare onnxruntime loop.

    python benchmarks/bench_onnx.py [--rows 20000] [--batch-size 256] [--repeat 3]

Builds a small dense network (random weights, seeded) and an arrays data directory
(features.npy, labels.npy) in a temporary folder, then times, in one process and at
the same batch size: (a) the bare loop, ``np.load`` then ``InferenceSession.run`` per
batch; (b) calaudit's path from the files to validated predictions, which adds model
introspection, data-directory detection, casting, the score rule, validation and
provenance (file digests, hashed while the model runs). The ratio (bare time /
calaudit time) is the throughput calaudit keeps; target >= 0.9. The audit that
follows (metrics, intervals) is work the bare loop does not do: printed separately.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from bench_metrics import best_time  # the same timer as the metrics benchmark (same folder)


def build_model(path: Path, n_features: int, n_classes: int, hidden: int = 1024, seed: int = 0) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    sizes = [n_features, hidden, hidden, n_classes]
    nodes, inits, current = [], [], "x"
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        w = (rng.normal(size=(n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        b = np.zeros(n_out, dtype=np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = "logits" if i == len(sizes) - 2 else f"h{i}"
        nodes.append(helper.make_node("Gemm", [current, f"w{i}", f"b{i}"], [out if out == "logits" else f"g{i}"]))
        if out != "logits":
            nodes.append(helper.make_node("Relu", [f"g{i}"], [out]))
        current = out
    graph = helper.make_graph(
        nodes, "bench", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", n_features])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", n_classes])], inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)


def bare_loop(model: Path, data: Path, batch_size: int) -> np.ndarray:
    import onnxruntime as ort

    ort.set_default_logger_severity(4)
    session = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    features = np.load(data / "features.npy", allow_pickle=False)
    outputs = [session.run(["logits"], {"x": features[i : i + batch_size]})[0] for i in range(0, len(features), batch_size)]
    return np.concatenate(outputs)


def calaudit_run(model: Path, data: Path, batch_size: int):
    """calaudit's whole path from files to validated predictions: model introspection,
    data-directory detection, batching and casting, the score rule, validation and
    provenance (digests). The audit that follows is timed separately."""
    from calaudit.loaders.model_run import load_model_predictions

    return load_model_predictions(model, data, device="cpu", batch_size=batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=256)
    parser.add_argument("--classes", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--hidden", type=int, default=1024, help="width of the two hidden layers")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        model, data = root / "model.onnx", root / "data"
        data.mkdir()
        build_model(model, args.features, args.classes, hidden=args.hidden)
        np.save(data / "features.npy", rng.normal(size=(args.rows, args.features)).astype(np.float32))
        np.save(data / "labels.npy", rng.integers(0, args.classes, args.rows))
        bare_loop(model, data, args.batch_size)  # warm-up: page cache, thread pool
        t_bare = best_time(lambda: bare_loop(model, data, args.batch_size), args.repeat)
        t_calaudit = best_time(lambda: calaudit_run(model, data, args.batch_size), args.repeat)
        import calaudit

        predictions = calaudit_run(model, data, args.batch_size)
        t_audit = best_time(lambda: calaudit.audit_predictions(predictions, bootstrap=0), args.repeat)
        t_audit_boot = best_time(lambda: calaudit.audit_predictions(predictions), 1)
    print(f"rows={args.rows:,} features={args.features} hidden={args.hidden} classes={args.classes} "
          f"batch={args.batch_size} "
          f"(best of {args.repeat})")
    print(f"{'bare InferenceSession.run loop':<40} {t_bare:8.3f} s  {args.rows / t_bare:10,.0f} rows/s")
    print(f"{'calaudit run, up to validated predictions':<40} {t_calaudit:8.3f} s  {args.rows / t_calaudit:10,.0f} rows/s")
    ratio = t_bare / t_calaudit
    print(f"throughput ratio (calaudit / bare): {ratio:.3f}; target >= 0.9 -> "
          f"{'met' if ratio >= 0.9 else 'missed by ' + format(0.9 - ratio, '.3f')}")
    print(f"then the audit: {t_audit:.3f} s without intervals, {t_audit_boot:.3f} s with 1,000 bootstrap resamples")


if __name__ == "__main__":
    main()
