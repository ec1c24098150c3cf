"""The kubelet's device plugin API, as far as discovery serves and calls it."""
