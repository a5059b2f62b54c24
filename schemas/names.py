"""The one rule for names that become folder names, partition keys and table keys: task and study names.

Lower-case letters, digits, '.', '_' and '-', 1 to 64 characters, starting with a letter or digit. No
'/', no '..' segment, no '|' or ',' (Dagster's multi-partition key separators), no upper case (folders
would differ only by case on a case-insensitive disk): such a name can never address a path outside its
parent folder, and every partition key built from it can run.
"""

from __future__ import annotations

import re

NAME_PATTERN = r"[a-z0-9][a-z0-9._-]{0,63}"
NAME_RULE = "1-64 characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit"
_NAME = re.compile(NAME_PATTERN)


def is_valid_name(name: object) -> bool:
    return isinstance(name, str) and bool(_NAME.fullmatch(name))
