"""What alert data may do inside a chat message: be read, and nothing else.

Label and annotation values come from whoever writes alert rules or exposes the metrics they read
(an account alias, a check name, an error text a platform returned). On f014b6e they reached the
robots raw, so ``<at id=all></at>`` in a label paged a whole Feishu group and ``<@all>`` a WeCom
one, and a label listing 3,000 phone numbers built a 42 KB DingTalk body the robot refused (the
alert never arrived). Here:

* :func:`plain` makes a value one line of text whose mention and markup characters are shown,
  not interpreted: ``<``/``>`` (WeCom ``<@userid>``/``<font>``, Feishu ``<at>``), ``@`` (DingTalk
  ``@mobile``), ``[``/``]`` (links) become their full-width forms, which read the same;
* :func:`link_target` lets only http(s) URLs into ``[text](url)``, with every character that could
  end the link or open a tag percent-encoded;
* :func:`choose_mentions` mentions the receiver's configured people, and people alerts name only
  when the receiver allows them, at most ``max_mentions`` per message (the rest are counted and
  said: "and N more"), never ``all`` from a label.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from urllib.parse import urlsplit

_SHOWN_NOT_INTERPRETED = str.maketrans({"<": "＜", ">": "＞", "@": "＠", "[": "［", "]": "］"})
_URL_UNSAFE = re.compile(r"""[\s<>()\[\]"'`\\{}|^]""")


def plain(text: str) -> str:
    """One line of plain text that cannot start a heading, list, link, tag or mention."""
    return " ".join(text.split()).translate(_SHOWN_NOT_INTERPRETED)


def link_target(url: str) -> str | None:
    """``url`` made safe for ``[text](url)`` in every robot's markdown; None unless http(s)."""
    url = url.strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    if scheme not in ("http", "https"):
        return None
    return _URL_UNSAFE.sub(lambda found: "".join(f"%{byte:02X}" for byte in found.group().encode()), url)


def split_list(value: str) -> list[str]:
    """``"a, b;c"`` → ``["a", "b", "c"]`` (how alerts list people to mention)."""
    return [part.strip() for part in value.replace(";", ",").split(",") if part.strip()]


def choose_mentions(configured: Sequence[str], requested: Iterable[str], allowed: Iterable[str],
                    room: int) -> tuple[tuple[str, ...], int]:
    """Who to mention: the configured people first, then those alerts ask for that ``allowed``
    holds, without repeats, at most ``room``; and how many more would have been mentioned."""
    permitted = set(allowed)
    wanted = list(dict.fromkeys([*configured, *(person for person in requested if person in permitted)]))
    return tuple(wanted[:max(room, 0)]), max(len(wanted) - max(room, 0), 0)


__all__ = ["choose_mentions", "link_target", "plain", "split_list"]
