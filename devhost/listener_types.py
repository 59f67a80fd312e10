"""What a trigger listener needs from the host: a way to run a function with a decoded trigger object."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

#: (function name, decoded trigger object) → the function's result; raises when the function fails
Invoke = Callable[[str, object], Awaitable[object]]
