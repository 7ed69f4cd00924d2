"""The one exception type that means "the user gave us something wrong".

Every floor (runtime, exporters, edgedl, benchmarks) raises it for bad input;
the command-line front ends print its message on one line and exit non-zero,
while any other exception is a bug and keeps its traceback.
"""


class UserError(Exception):
    """Bad input: the message names what is wrong and what to do about it."""
