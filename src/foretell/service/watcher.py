"""Watch the model repository's folders and call back once a burst of changes has gone quiet."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Awaitable, Callable
from pathlib import Path

from watchfiles import Change, DefaultFilter, awatch

log = logging.getLogger(__name__)

# A copy of a model folder writes many files: the callback waits until none has changed for
# this long, so it reads the folder whole, not half-copied ...
QUIET_MS = 500
# ... but no longer than this after the first change, however busy the folder stays.
MAX_WAIT_MS = 10_000
# Folders that are not models' versions: a push's staging (".push-…"), caches, hidden files.
_PRIVATE = (".", "_")


class RepositoryWatcher:
    """Calls `changed` after files under `<root>/<owner>/<name>/<version>/` change (a version
    folder added, removed or written), or an owner or model folder comes or goes; one call
    at a time, each after the changes have been quiet for `quiet_ms`."""

    def __init__(
        self, root: Path, changed: Callable[[], Awaitable[object]], *, quiet_ms: int = QUIET_MS
    ) -> None:
        self._root = root.resolve()
        self._changed = changed
        self._quiet_ms = quiet_ms
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._ignored = DefaultFilter()  # editors' swap files, __pycache__, .git …

    def start(self) -> None:
        """Begin watching, in the background; a root that is not a folder is not watched."""
        if self._task is not None:
            return
        if not self._root.is_dir():
            log.warning("model repository %s is not a folder: not watching it", self._root)
            return
        self._task = asyncio.create_task(self._watch(), name=f"watch {self._root}")
        log.info("watching model repository %s for versions added or removed", self._root)

    async def close(self) -> None:
        """Stop watching (the watcher's thread looks at the stop every few milliseconds)."""
        self._stop.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)

    async def _watch(self) -> None:
        try:
            async for changes in awatch(
                self._root,
                watch_filter=self._relevant,
                step=self._quiet_ms,
                debounce=MAX_WAIT_MS,
                stop_event=self._stop,
            ):
                log.info("model repository changed (%d paths): reading it again", len(changes))
                try:
                    await self._changed()
                except Exception:
                    log.exception("reading the model repository again failed")
        except Exception:
            # Never the server's end: it serves on, and SIGHUP or a rescan still reads it.
            log.exception(
                "watching model repository %s failed; it is no longer watched", self._root
            )

    def _relevant(self, change: Change, path: str) -> bool:
        if not self._ignored(change, path):
            return False
        parts = Path(os.path.relpath(path, self._root)).parts
        if not parts or parts[0] == ".." or any(p.startswith(_PRIVATE) for p in parts[:3]):
            return False
        # A file beside the owners or models (a README) is none of theirs; a folder there
        # coming or going is a whole owner's or model's versions coming or going.
        return len(parts) >= 3 or change is not Change.modified
