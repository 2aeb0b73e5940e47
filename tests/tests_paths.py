"""Where the tests' data lives."""

from pathlib import Path

#: Test models made by models/make_models.py (TFLite) and models/make_onnx_quantized.py.
MODELS = Path(__file__).parent / "models"
#: The int8 digits CNN shipped with the package (made by scripts/make_digits_cnn.py).
DIGITS_CNN = Path(__file__).parents[1] / "mxugen" / "data" / "digits_cnn.tflite"
