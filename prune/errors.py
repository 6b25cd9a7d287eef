"""User-facing errors: one line naming the file or value and the fix; the CLI prints them and exits 2."""


class PrunebenchError(Exception):
    """Bad input a user can fix (unknown name, missing data, unreadable file); never an internal bug."""


class UsageError(PrunebenchError):
    """An option value outside what the toolkit supports (unknown model, ratio out of range, ...)."""


class DatasetUnavailable(PrunebenchError):
    """A dataset is not on disk and cannot be fetched or substituted."""


class ArtifactError(PrunebenchError):
    """A checkpoint or exported artifact is truncated, corrupt, mismatched or for another architecture."""


class DiskFull(PrunebenchError):
    """A write failed because the output disk is full; what was written before it is kept for the rerun."""
