"""One small error hierarchy: every failure a user can meet carries the fix.

The protocol edge (server.py) and the CLI map these to LSP messages and exit codes in one place each.
"""

from __future__ import annotations


class CodegemmaError(Exception):
    """Base for errors a user can act on; `fix` says what to do."""

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} — {self.fix}" if self.fix else self.message


class ConfigError(CodegemmaError):
    """A configuration value was invalid."""


class ModelError(CodegemmaError):
    """A model could not be found, verified or loaded."""


class ModelNotFound(ModelError):
    """The alias is unknown or the file is not on disk."""


class NoFimSupport(ModelError):
    """The GGUF vocabulary has no fill-in-the-middle tokens."""


class DownloadError(CodegemmaError):
    """A model download failed (network, HTTP status, disk, hash)."""


class HashMismatch(DownloadError):
    """Downloaded bytes do not match the pinned sha256."""


class GatedModel(DownloadError):
    """The hub refused access (401/403): terms not accepted on the model page, or HF_TOKEN missing/invalid."""


class DownloadInterrupted(DownloadError):
    """The transfer stopped early; the partial file is kept so the next pull resumes it."""


class BackendError(CodegemmaError):
    """A remote inference server (`--backend`) failed a request or answered in a way we cannot use."""


class BackendUnavailable(BackendError):
    """The remote server could not be reached (refused, timed out, reset) after the retries."""


class BackendAuthError(BackendError):
    """The remote server refused the request (401/403): the API key is missing or wrong."""


class EndpointMissing(BackendError):
    """The server has no such endpoint (404/405): it is another kind of server than the one asked for."""
