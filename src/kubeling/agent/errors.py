"""The agent's failures, shaped for the events and statuses the pod-sync loop writes.

Each error carries exactly the text upstream's kubelet would put after its fixed prefix
(``MountVolume.SetUp failed for volume "<v>" : <message>``), so the caller formats the event
and never parses messages. Library code raises these; the sync loop decides what to log.
"""

from __future__ import annotations

from kubeling.machinery.errors import KubelingError


class AgentError(KubelingError):
    """Root of the node agent's own failures."""


class VolumeSetupError(AgentError):
    """A volume could not be set up; ``message`` is upstream's text for the cause.

    ``retryable`` says whether a later sync may succeed without the pod changing (a
    missing ConfigMap may appear; an invalid hostPath type will not fix itself).
    """

    def __init__(self, volume: str, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.volume = volume
        self.message = message
        self.retryable = retryable

    @property
    def event_message(self) -> str:
        """The ``FailedMount`` event message, byte for byte as the kubelet writes it."""
        return f'MountVolume.SetUp failed for volume "{self.volume}" : {self.message}'


class MountError(AgentError):
    """mount(2) or umount(2) failed; ``errno`` is the kernel's answer."""

    def __init__(self, message: str, *, errno: int = 0) -> None:
        super().__init__(message)
        self.errno = errno


class NetworkError(AgentError):
    """The pod network could not be set up or torn down."""


class ContainerError(AgentError):
    """A container could not be created, started, stopped or reached."""


class NotSupportedError(AgentError):
    """The runtime cannot do this at all (the simulated runtime has no processes)."""


class ImageError(AgentError):
    """An image archive is malformed or an image is unknown."""
