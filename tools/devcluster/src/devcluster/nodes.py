"""Node names: node N of a cluster is ``node-N`` (its network place is ``network.Node``)."""


def name(index: int) -> str:
    """Name of the ``index``-th node (1-based)."""
    return f"node-{index}"
