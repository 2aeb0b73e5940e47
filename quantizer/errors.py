"""The one exception type the quantizer raises for bad input."""


class QuantizerError(ValueError):
    """Invalid input to the quantizer or golden model; the message says what to change."""
