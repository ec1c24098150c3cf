"""The one error of image building, raised by every step of it; :mod:`devcluster.images` exports it."""


class ImageError(RuntimeError):
    """An image could not be built; the message says which step and where its log is."""
