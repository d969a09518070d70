"""The "did you mean" hint for a mistyped choice, shared by every error message.

Its own module (it was in `edgedet/config.py`) so `boxes`, `data`, the
registries and `config` can all use it without importing one another.
"""

import difflib


def closest(value, choices):
    """Returns a ' Did you mean ...?' hint for a mistyped choice, or ''.

    Args:
        value: object. What the user typed (compared as `str`).
        choices: iterable of str. The valid names.
    """
    match = difflib.get_close_matches(str(value), list(choices), n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""
