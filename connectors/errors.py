"""Errors a connector raises when a vendor call fails for good.

Each names the vendor and the stream, and says what went wrong in words an
operator can act on; none carries a credential.
"""

from __future__ import annotations


class ConnectorError(RuntimeError):
    def __init__(self, vendor: str, stream: str | None, problem: str):
        self.vendor, self.stream, self.problem = vendor, stream, problem
        where = f"{vendor} stream '{stream}'" if stream else vendor
        super().__init__(f"{where}: {problem}")


class SourceUnreachable(ConnectorError):
    """The server could not be reached at all (DNS, refused, TLS, timeout)."""


class SourceRejected(ConnectorError):
    """The server answered with an error that retrying will not fix."""


class StreamRefused(SourceRejected):
    """The vendor refuses one stream for good: revoked credentials, a deleted object or field,
    a missing permission. That stream stops; the source's other streams still land."""


class StreamsFailed(RuntimeError):
    """Some streams of a source were refused (the others landed): one line naming each, the
    streams refused for the same reason (revoked credentials, say) together."""

    def __init__(self, vendor: str, errors: list[ConnectorError]):
        self.vendor, self.errors = vendor, errors
        by_problem: dict[str, list[str]] = {}
        for error in errors:
            by_problem.setdefault(error.problem, []).append(f"'{error.stream}'")
        super().__init__("; ".join(f"{vendor} stream{'s' if len(names) > 1 else ''} {', '.join(names)}: {problem}"
                                   for problem, names in by_problem.items()))
