"""The error every runtime of the simulator raises when the runtime itself fails."""


class RuntimeFailure(RuntimeError):
    """The runtime itself failed (the MicroPython VM died, a factory could not be loaded)."""
