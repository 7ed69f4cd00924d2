"""TensorFlow and tf-keras for the host side; the decision lives in ``exporters._tf``."""
from exporters.tfkeras import INSTALL_HINT, keras, tf, weights_sha256

__all__ = ["INSTALL_HINT", "keras", "tf", "weights_sha256"]
