"""A kept exception must not keep the frames it went through (and everything they referenced)
alive until the cycle collector runs: `without_tracebacks` breaks that cycle, for the exception
and the ones it was raised from or during."""

from __future__ import annotations

import gc
import weakref

from reconciler.model.errors import ReconcilerError, without_tracebacks


class Big:
    """Something a frame references, whose lifetime the test watches."""


def failing(keep: list[BaseException], detach: bool) -> weakref.ref[Big]:
    big = Big()
    try:
        try:
            raise KeyError("inner")
        except KeyError as inner:
            raise ReconcilerError("outer") from inner
    except ReconcilerError as exc:
        keep.append(without_tracebacks(exc) if detach else exc)
    held = big  # the frame's locals reference `big` and, through `keep`, the exception
    del held
    return weakref.ref(big)


def test_a_kept_exception_without_tracebacks_frees_its_frames_at_once() -> None:
    gc.disable()
    try:
        kept: list[BaseException] = []
        freed = failing(kept, detach=True)
        assert freed() is None  # no cycle: reference counting freed it
        assert kept[0].__traceback__ is None and kept[0].__cause__ is not None
        assert kept[0].__cause__.__traceback__ is None
        assert str(kept[0]) == "outer"

        cycled: list[BaseException] = []
        held = failing(cycled, detach=False)
        assert held() is not None  # the cycle keeps the frame's locals until a collection
        gc.collect()
        assert held() is not None  # still reachable through `cycled`
    finally:
        gc.enable()
