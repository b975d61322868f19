"""Vendor ONNX models: reading one, running it, and writing a calibrated copy.

``model`` reads and checks a model (inputs, outputs, class names, which output holds
the scores) and opens an inference session on the providers ``providers`` chooses;
``scores`` decides whether an output holds logits or probabilities; ``temperature``
writes a temperature into a copy of the graph (``calaudit fix``). Inside this package
``import onnx`` is the ``onnx`` library (imports are absolute).
"""
