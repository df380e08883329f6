"""A prediction's place among its deployment's unfinished work: taken once, released once."""

from __future__ import annotations

from collections import Counter

from foretell.errors import TooManyUnfinished
from foretell.scheduler import Admission


class Unfinished:
    """Asynchronous predictions unfinished, by the owner who created them, against a limit."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._counts: Counter[str] = Counter()

    def take(self, owner: str) -> None:
        """Count one more of `owner`'s, or raise TooManyUnfinished."""
        if self._counts[owner] >= self.limit:
            raise TooManyUnfinished(owner, self.limit)
        self._counts[owner] += 1

    def retake(self, owner: str) -> None:
        """Count one accepted before a restart: it was acknowledged, so never refused."""
        self._counts[owner] += 1

    def give(self, owner: str) -> None:
        self._counts[owner] -= 1

    def __getitem__(self, owner: str) -> int:
        return self._counts[owner]


class Reservation:
    """One prediction's slot in its deployment's admission, and (for an asynchronous one with
    an owner) in its owner's unfinished count. Whoever holds it releases it when the prediction
    ends, fails to start or is handed back; a second release does nothing, so every path may
    release it without asking whether another did."""

    __slots__ = ("_admission", "_owner", "_owners")

    def __init__(
        self, admission: Admission, owners: Unfinished | None = None, owner: str | None = None
    ) -> None:
        """A reservation of a slot already counted (see `take` and `retake`)."""
        self._admission: Admission | None = admission
        self._owners = owners
        self._owner = owner if owners is not None else None

    @classmethod
    def take(cls, admission: Admission, owners: Unfinished, owner: str | None) -> Reservation:
        """Admit one more prediction (Overloaded if the queue is full) and, with an `owner`,
        count it against the owner's limit (TooManyUnfinished): nothing is held if refused."""
        admission.admit()
        if owner is not None:
            try:
                owners.take(owner)
            except TooManyUnfinished:
                admission.release()
                raise
        return cls(admission, owners, owner)

    @classmethod
    def retake(cls, admission: Admission, owners: Unfinished, owner: str | None) -> Reservation:
        """A prediction accepted before a restart, taken over: counted, never refused."""
        admission.readmit()
        if owner is not None:
            owners.retake(owner)
        return cls(admission, owners, owner)

    @property
    def held(self) -> bool:
        return self._admission is not None

    def release(self) -> None:
        """Give the slot back, once."""
        admission, self._admission = self._admission, None
        if admission is None:
            return
        admission.release()
        if self._owner is not None and self._owners is not None:
            self._owners.give(self._owner)
