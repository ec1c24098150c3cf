"""Where a report goes: the pod annotation in a cluster, or a file for local runs and tests."""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Protocol

from hsm_common import constants

from . import errors, kube


class Sink(Protocol):
    def write(self, document: str) -> None:
        """Store document (the report's JSON); raise errors.ReportError or errors.ApiError on failure."""


class PodAnnotation:
    """Writes the report into this pod's ``hsm.j5t.io/device-report`` annotation."""

    def __init__(self, client: kube.Client, namespace: str, pod: str) -> None:
        self._client = client
        self._namespace = namespace
        self._pod = pod

    def write(self, document: str) -> None:
        self._client.annotate_pod(self._namespace, self._pod, constants.ANNOTATION_DEVICE_REPORT, document)


class File:
    """Writes the report to a file, atomically, so a reader never sees half a report."""

    def __init__(self, path: pathlib.Path) -> None:
        self._path = path

    def write(self, document: str) -> None:
        try:
            fd, tmp = tempfile.mkstemp(dir=self._path.parent, prefix=f".{self._path.name}.")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(document)
            os.replace(tmp, self._path)
        except OSError as err:
            raise errors.ReportError(f"cannot write {self._path}: {err.strerror}") from err
