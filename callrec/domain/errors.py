"""Errors shared by every layer."""

from __future__ import annotations


class ServiceUnavailable(Exception):
    """A backing service (Temporal, the object store) did not answer; the same request may work later.

    Front doors answer 503 with `Retry-After: retry_after_s`.
    """

    retry_after_s = 5
