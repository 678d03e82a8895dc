"""Hostile XML that every parser of the hub must refuse rather than expand."""

from __future__ import annotations


def billion_laughs(document: str) -> bytes:
    """The billion laughs: nine levels of entities, ten times each, used at `&lol9;` in `document`,
    whose root element names the DOCTYPE."""
    root = document.lstrip("<").split(" ", 1)[0].split(">", 1)[0]
    levels = ['<!ENTITY lol "lol">']
    for n in range(2, 10):
        below = "&lol;" if n == 2 else f"&lol{n - 1};"
        levels.append(f'<!ENTITY lol{n} "{below * 10}">')
    return (f'<?xml version="1.0"?>\n<!DOCTYPE {root} [\n ' + "\n ".join(levels) + f"\n]>\n{document}").encode()
