"""Wake-word engines: streaming scorers behind one small interface (``base.WakeEngine``).

``oww``: openWakeWord's models on the project's own feature pipeline (``triggers/features.py``), the
one engine today; its embeddings also feed the verifier. A second engine (microWakeWord through
``pymicro-wakeword``, its own features, no embeddings) fits the same interface: the detector's wake
rule, refractory and self-wake filter only need one score per model per frame.
"""
