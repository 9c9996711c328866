"""The streaming wake-word feature pipeline: 16 kHz audio -> mel spectrogram -> speech embeddings.

openWakeWord's two feature models (from the pyopen-wakeword wheel) run on LiteRT, one 80 ms frame
at a time, exactly as openWakeWord 0.6 streams them:

* each 1280-sample frame, with the 480 samples before it, goes through ``melspectrogram.tflite``:
  8 new mel frames (10 ms hop) of 32 bins, rescaled by ``x / 10 + 2`` as openWakeWord does;
* the last 76 mel frames (about 775 ms) go through ``embedding_model.tflite``: one 96-value speech
  embedding per 80 ms frame;
* wake-word classifiers, the verifier, the self-wake twin and any later enrolment read the last
  embeddings (``window``; the stock models and the verifier read 16, about 1.3 s).

Start and reset are deterministic: the pipeline starts as if it had heard digital silence for ever
(a zero audio context, the mel frames of silence, silence's embedding in every history row).
openWakeWord itself fills its embedding history from 4 s of random noise and reports 0 for its
first five frames; once it has heard a few seconds of silence its state is the one this pipeline
starts in, which is how ``scripts/wake_reference_scores.py`` makes the scores the tests compare with.

``FeatureModels`` holds the interpreters (loaded once); ``WakeFeatures`` is one stream's state over
them, so several streams (the detector and its self-wake twin) can share one set of models as long
as one thread runs them all.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from appliance.triggers.litert import FixedShapeModel
from appliance.triggers.wake_models import EMBEDDING_MODEL, MELSPEC_MODEL, WakeWordModelError, feature_model

__all__ = [
    "EMBEDDING_DIM",
    "FRAME_SAMPLES",
    "FeatureModels",
    "WakeFeatures",
]

FRAME_SAMPLES = 1280  # 80 ms at 16 kHz: one step, one embedding
MEL_CONTEXT_SAMPLES = 480  # 3 hops of 160: the window overlap the mel model needs before a frame
MEL_INPUT_SAMPLES = MEL_CONTEXT_SAMPLES + FRAME_SAMPLES
MELS_PER_FRAME = 8
MEL_BINS = 32
EMBEDDING_MELS = 76  # mel frames per embedding
EMBEDDING_DIM = 96

Float32Array = npt.NDArray[np.float32]


class FeatureModels:
    """The mel-spectrogram and embedding interpreters, and what digital silence looks like through them."""

    def __init__(self) -> None:
        self._melspec = FixedShapeModel(feature_model(MELSPEC_MODEL), (1, MEL_INPUT_SAMPLES))
        self._embedding = FixedShapeModel(feature_model(EMBEDDING_MODEL), (1, EMBEDDING_MELS, MEL_BINS, 1))
        for model, got, want in (
            (self._melspec, self._melspec.output_shape, (1, 1, MELS_PER_FRAME, MEL_BINS)),
            (self._embedding, self._embedding.output_shape, (1, 1, 1, EMBEDDING_DIM)),
        ):
            if got != want:
                raise WakeWordModelError(f"feature model {model.path} gives shape {got}, expected {want}")
        silence = self.mels(np.zeros(MEL_INPUT_SAMPLES, dtype=np.float32))
        # The mel window after a long silence: each step appends the same 8 frames, the window keeps 76.
        repeats = math.ceil(EMBEDDING_MELS / MELS_PER_FRAME)
        self.silent_mels: Float32Array = np.ascontiguousarray(np.tile(silence, (repeats, 1))[-EMBEDDING_MELS:])
        self.silent_embedding: Float32Array = self.embed(self.silent_mels)

    def mels(self, audio: Float32Array) -> Float32Array:
        """The 8 mel frames (8 x 32) of one frame plus its context (1760 samples, int16 values as float32)."""
        spec = self._melspec.run(audio.reshape(1, MEL_INPUT_SAMPLES))[0, 0]
        return spec / 10 + 2  # openWakeWord's rescaling, towards Google's TF speech_embedding front end

    def embed(self, mel_window: Float32Array) -> Float32Array:
        """The speech embedding (96) of the last 76 mel frames (76 x 32)."""
        return self._embedding.run(mel_window.reshape(1, EMBEDDING_MELS, MEL_BINS, 1)).reshape(EMBEDDING_DIM)


class WakeFeatures:
    """One audio stream through the feature models: feed 1280-sample frames, read the last embeddings.

    ``history``: how many embeddings to keep (the longest window any reader asks for). Not
    thread-safe; the models may be shared with other streams run by the same thread.
    """

    def __init__(self, models: FeatureModels | None = None, history: int = 16) -> None:
        if history < 1:
            raise ValueError("history must be at least one embedding")
        self.models = models if models is not None else FeatureModels()
        self.history = history
        self._audio = np.zeros(MEL_INPUT_SAMPLES, dtype=np.float32)
        self._mels = self.models.silent_mels.copy()
        self._embeddings = np.empty((history, EMBEDDING_DIM), dtype=np.float32)
        self.reset()

    def reset(self) -> None:
        """Back to the start state: as if only digital silence had been heard."""
        self._audio[:] = 0.0
        self._mels[:] = self.models.silent_mels
        self._embeddings[:] = self.models.silent_embedding

    def push(self, frame: np.ndarray) -> None:
        """Add one 80 ms frame (1280 samples of 16 kHz int16): 8 mel frames and one embedding."""
        if frame.shape != (FRAME_SAMPLES,):
            raise ValueError(f"a feature frame is {FRAME_SAMPLES} samples, got shape {frame.shape}")
        audio = self._audio
        audio[:MEL_CONTEXT_SAMPLES] = audio[FRAME_SAMPLES:]
        audio[MEL_CONTEXT_SAMPLES:] = frame  # int16 -> float32 is exact
        mels = self._mels
        mels[:-MELS_PER_FRAME] = mels[MELS_PER_FRAME:]
        mels[-MELS_PER_FRAME:] = self.models.mels(audio)
        embeddings = self._embeddings
        embeddings[:-1] = embeddings[1:]
        embeddings[-1] = self.models.embed(mels)

    def window(self, frames: int = 16) -> Float32Array:
        """The last ``frames`` embeddings (frames x 96), oldest first: a read-only view, valid until the next push."""
        if not 1 <= frames <= self.history:
            raise ValueError(f"window of {frames} embeddings asked, {self.history} kept")
        view = self._embeddings[-frames:]
        view.flags.writeable = False
        return view
