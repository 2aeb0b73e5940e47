"""Where the tests' data lives."""

from pathlib import Path

#: Test models made by models/make_models.py (TFLite) and models/make_onnx_quantized.py.
MODELS = Path(__file__).parent / "models"
