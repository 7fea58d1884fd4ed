"""The one error family (STYLE: LbError). Foreign exceptions are translated into these at
the adapter edge with `raise ... from exc`; outcomes of routing are values, not errors."""
from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from buddylb.config.model import Diagnostic


class LbError(Exception):
    """Base of every error buddylb raises on purpose."""


class ConfigError(LbError):
    """A configuration that cannot be used. Carries *every* diagnostic found, not the first."""

    def __init__(self, diagnostics: list["Diagnostic"]):
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.severity == "error"]
        super().__init__("\n".join(str(d) for d in errors) or "invalid configuration")


class ProtocolError(LbError):
    """Traffic that breaks the protocol; `status` is the HTTP status it must produce."""

    def __init__(self, status: int, reason: str):
        self.status = status
        self.reason = reason
        super().__init__(f"{status}: {reason}")


class StoreUnavailable(LbError):
    """The shared sticky store did not answer in time; the data path degrades, never fails."""


class CommandError(LbError):
    """An operator command that cannot be carried out; mapped to an exit code at one boundary."""

    def __init__(self, message: str, exit_code: int = 1):
        self.exit_code = exit_code
        super().__init__(message)
