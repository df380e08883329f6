"""What the browser tests share besides fixtures: a page's recorded traffic."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Traffic:
    """What one page asked for: every request's URL, and the script errors it raised."""

    origin: str
    requests: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def foreign(self) -> list[str]:
        """The requests that left the server's origin."""
        return [url for url in self.requests if not same_origin(url, self.origin)]


def same_origin(url: str, origin: str) -> bool:
    return url == origin or url.startswith(origin + "/") or url.startswith(("blob:", "data:"))
