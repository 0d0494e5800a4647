# The compiled column builder (_columns.c); gather.py wraps it and documents the interface.
from typing import Any

def gather(objs: list[Any], paths: tuple[tuple[str, ...], ...], kinds: str, /) -> list[Any]: ...
