"""Where results live: a runs folder (one SQLite file per study) or a SQLAlchemy URL; passwords never shown."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from robustbench_vit.errors import UserError

PASSWORD_ENV = "ROBUSTBENCH_VIT_STORAGE_PASSWORD"  # the storage password of worker jobs (see job_url)
RUNS_DIR = "runs"  # the default runs folder: runs/<study>/study.db, runs/<study>/trials/


@dataclass(frozen=True)
class Results:
    """Where a command's results live: a runs folder (checkpoints, and the SQLite file of each study unless a
    storage URL is given) and an optional storage URL (any SQLAlchemy URL) that holds every study."""

    runs_dir: Path = Path(RUNS_DIR)
    storage: str | tuple[str, ...] | None = None  # several URLs: read together (the analysis merges them)

    @classmethod
    def of(cls, runs_dir: str | Path | None = None, storage: str | list[str] | tuple[str, ...] | None = None,
           ) -> Results:
        """From loose values (`--runs-dir`, `--storage`; a list of URLs to read several storages together)."""
        several = tuple(storage) if isinstance(storage, (list, tuple)) else None
        return cls(Path(runs_dir if runs_dir is not None else RUNS_DIR), several or storage or None)

    def urls(self, study: str) -> list[str]:
        """The storage URLs `study` is read from: the given one(s), else its SQLite file."""
        if isinstance(self.storage, tuple):
            return list(self.storage)
        return [self.url(study)]

    def url(self, study: str) -> str:
        """The storage URL of `study` (the first given, else the SQLite file <runs_dir>/<study>/study.db)."""
        storage = self.storage[0] if isinstance(self.storage, tuple) else self.storage
        return resolve_storage(study, self.runs_dir, storage)


def resolve_storage(study: str, runs_dir: str | Path = RUNS_DIR, storage: str | None = None) -> str:
    """The storage URL of a study: `storage` if given, else the SQLite file <runs_dir>/<study>/study.db."""
    if storage:
        return storage
    return f"sqlite:///{(Path(runs_dir) / study / 'study.db').resolve()}"


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None for a server URL or an in-memory database)."""
    if not url.startswith("sqlite"):
        return None
    parsed = _parsed(url)
    return Path(parsed.database) if parsed is not None and parsed.database else None


def _parsed(url: str) -> Any:
    """SQLAlchemy's URL object for `url`, or None for a string it cannot parse."""
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        return None


def mask_url(url: str) -> str:
    """The storage URL with any password replaced by *** (also for strings SQLAlchemy cannot parse): the one helper
    for every URL that is printed, logged, raised, stored or written into a file."""
    parsed = _parsed(url)
    if parsed is None:
        return re.sub(r"//([^:/@]*):[^@/]*@", r"//\1:***@", url)
    return parsed.render_as_string(hide_password=True)


def job_url(url: str) -> str:
    """The URL to give worker jobs, whose pickles lie in the runs folder: masked, its password moved to
    $ROBUSTBENCH_VIT_STORAGE_PASSWORD, which local workers and SLURM jobs (sbatch exports the environment) inherit;
    `open_storage` puts it back."""
    parsed = _parsed(url)
    if parsed is None or not parsed.password:
        return url
    os.environ[PASSWORD_ENV] = str(parsed.password)
    return mask_url(url)


def unmasked(url: str) -> str:
    """A `job_url` with its password back from the environment (any other URL as it is)."""
    parsed = _parsed(url)
    if parsed is None or parsed.password != "***" or PASSWORD_ENV not in os.environ:
        return url
    return parsed.set(password=os.environ[PASSWORD_ENV]).render_as_string(hide_password=False)


@contextmanager
def storage_errors(url: str, doing: str = "open") -> Iterator[None]:
    """Turn an unreachable server, a malformed URL or a missing driver into one UserError line (password masked)."""
    try:
        yield
    except (SQLAlchemyError, optuna.exceptions.StorageInternalError, ValueError, ImportError) as e:
        cause = e.__cause__ or e  # Optuna re-raises driver errors as generic ones
        first = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        hint = "; name an installed driver, e.g. postgresql+psycopg2://" if isinstance(cause, ImportError) else ""
        raise UserError(f"storage {mask_url(url)}: cannot {doing} it ({first}{hint})") from None
