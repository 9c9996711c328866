"""Keep an openWakeWord ``Model``'s memory at what streaming 80 ms frames needs.

Why: openWakeWord 0.6 fills its feature buffer, on start-up and on ``reset()``, from 4 s of noise
in one batch: the melspectrogram interpreter is resized to 64000 samples and the embedding one to a
batch of 41 windows. LiteRT (with XNNPACK) keeps the memory planned for the largest shape even after
resizing back, about 20 MB that streaming never uses. And it keeps 10 s of raw audio as a deque of
Python ints (about 6 MB once full) although a frame only reads the last 1280 + 480 samples.

How: replace the two feature interpreters with fresh ones at streaming size (same model files, same
thread count, so the same scores) and give the raw-audio deque a short ``maxlen``.
"""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

__all__ = ["RAW_HISTORY_SAMPLES", "compact_streaming_memory"]

_FRAME = 1280  # samples per openWakeWord step; WakeWordDetector feeds exactly this
_MELSPEC_CONTEXT = 160 * 3  # extra samples openWakeWord reads before each chunk
#: Raw samples kept: one frame plus context, with room for a few frames fed at once.
RAW_HISTORY_SAMPLES = 4 * _FRAME + _MELSPEC_CONTEXT


def compact_streaming_memory(oww: Any, melspec_path: Path, embedding_path: Path) -> None:
    """Shrink ``oww`` (an ``openwakeword.model.Model`` on tflite) to streaming size, in place."""
    pre = oww.preprocessor
    if not hasattr(pre, "_tflite_current_melspec_input_size"):  # onnx feature models: not LiteRT
        return
    interpreter_cls = type(pre.melspec_model)
    melspec = interpreter_cls(model_path=str(melspec_path), num_threads=1)
    melspec.resize_tensor_input(0, [1, _FRAME], strict=True)
    melspec.allocate_tensors()
    embedding = interpreter_cls(model_path=str(embedding_path), num_threads=1)
    embedding.allocate_tensors()
    # openWakeWord's predict closures look these attributes up on every call.
    pre.melspec_model = melspec
    pre._tflite_current_melspec_input_size = _FRAME
    pre.embedding_model = embedding
    pre._tflite_current_embedding_batch_size = 1
    if pre.raw_data_buffer.maxlen != RAW_HISTORY_SAMPLES:
        pre.raw_data_buffer = deque(pre.raw_data_buffer, maxlen=RAW_HISTORY_SAMPLES)
