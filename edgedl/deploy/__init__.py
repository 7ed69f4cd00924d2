"""What goes to a device: the targets (their interpreters and operators), the bundle, and the figures counted
from an artifact's own operators."""
