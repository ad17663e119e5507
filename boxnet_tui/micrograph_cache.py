"""Micrographs prepared for display, loaded ahead in a background thread.

The viewer asks for the current micrograph and names the ones it will likely want next
(the neighbours); those are read and prepared in one worker thread while the user curates.
Only the wanted few are kept, so memory stays flat however many micrographs the folder has.
New display settings (low-pass, contrast) restyle the held ones in the same thread, from the
binned image each keeps: no file is read again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import CancelledError, Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from boxnet_tui.display import DisplaySettings, PreparedImage, prepare, restyle
from boxnet_tui.errors import UserError
from boxnet_tui.io.micrographs import read_micrograph


@dataclass
class Loaded:
    """A prepared micrograph, or the one line saying why it cannot be shown."""

    path: Path
    image: PreparedImage | None = None
    error: str | None = None


def load_prepared(path: Path, pixel_size: float | None = None) -> Loaded:
    try:
        return Loaded(path, prepare(read_micrograph(path, pixel_size)))
    except UserError as error:
        return Loaded(path, error=str(error))
    except MemoryError:
        return Loaded(path, error=f"{path}: too large to load into memory")


class MicrographCache:
    """Prepared micrographs of ``paths`` by index; at most the requested few are held."""

    def __init__(
        self,
        paths: Sequence[Path],
        pixel_size: float | None = None,
        load: Callable[[Path, float | None], Loaded] = load_prepared,
    ) -> None:
        self.paths = list(paths)
        self.pixel_size = pixel_size
        self._load = load
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="prefetch")
        self._futures: dict[int, Future[Loaded]] = {}
        self._lock = threading.Lock()
        self.settings = DisplaySettings()

    def _future(self, index: int) -> Future[Loaded]:
        with self._lock:
            future = self._futures.get(index)
            if future is None:
                future = self._pool.submit(self._load_styled, index, self.settings)
                self._futures[index] = future
            return future

    def _load_styled(self, index: int, settings: DisplaySettings) -> Loaded:
        return self._styled(self._load(self.paths[index], self.pixel_size), settings)

    def _styled(self, loaded: Loaded, settings: DisplaySettings) -> Loaded:
        image = loaded.image
        if image is None or image.settings == settings or image.source is None:
            return loaded
        if settings != self.settings:  # changed again meanwhile: the next job styles it
            return loaded
        return Loaded(loaded.path, restyle(image, settings))

    def _restyle(self, index: int, previous: Future[Loaded], settings: DisplaySettings) -> Loaded:
        try:
            loaded = previous.result()  # done: it was queued before this job, on one thread
        except CancelledError:
            return self._load_styled(index, settings)
        return self._styled(loaded, settings)

    def set_settings(self, settings: DisplaySettings, first: int | None = None) -> None:
        """Prepare the held micrographs (``first`` first) and those asked for later with
        ``settings``."""
        with self._lock:
            if settings == self.settings:
                return
            self.settings = settings
            held = sorted(self._futures, key=lambda index: index != first)
            for index in held:
                previous = self._futures[index]
                self._futures[index] = self._pool.submit(self._restyle, index, previous, settings)

    def get(self, index: int) -> Loaded:
        """The prepared micrograph ``index`` (waits if it is still loading)."""
        while True:
            future = self._future(index)
            try:
                return future.result()
            except CancelledError:  # dropped by keep() for a while: load it again
                with self._lock:
                    if self._futures.get(index) is future:
                        del self._futures[index]

    def ready(self, index: int) -> bool:
        with self._lock:
            future = self._futures.get(index)
        return future is not None and future.done() and not future.cancelled()

    def keep(self, indices: Iterable[int]) -> None:
        """Hold (loading in the background) exactly ``indices``; drop everything else."""
        wanted = [i for i in dict.fromkeys(indices) if 0 <= i < len(self.paths)]
        with self._lock:
            for index in list(self._futures):
                if index not in wanted:
                    self._futures.pop(index).cancel()
        for index in wanted:
            self._future(index)

    def add(self, paths: Iterable[Path]) -> None:
        """Micrographs appended to the folder's list (indices following the last)."""
        self.paths.extend(paths)  # an append: the loading thread's indices stay valid

    def invalidate(self, index: int) -> None:
        """Forget micrograph ``index``: it is read again when next asked for."""
        with self._lock:
            future = self._futures.pop(index, None)
        if future is not None:
            future.cancel()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
