"""The directory's errors: one root."""

from __future__ import annotations

__all__ = ["ChangesUnavailable", "DirectoryError"]


class DirectoryError(Exception):
    code = "directory_error"


class ChangesUnavailable(DirectoryError):
    """The cluster's database could not keep or give the admin API's changes (it is
    unreachable, or failed): a change is then not made, and a node catching up tries
    again."""

    code = "changes_unavailable"
