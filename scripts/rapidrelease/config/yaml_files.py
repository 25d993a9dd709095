"""Reading the YAML files a site edits (config.yaml, specs.yaml) strictly.

Two things PyYAML's safe loader does that a specification cannot afford are changed here: a key
written twice in one mapping is an error instead of "the last one wins" (two ``viability``
attributes must not silently become one), and, for specifications, a decimal number keeps the
decimals as written (``4.50`` stays ``Decimal('4.50')``), because the number of decimals written
in a limit sets the rounding of the reportable value (USP General Notices 7.20).
"""

from __future__ import annotations

import hashlib
import math
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from rapidrelease.errors import ConfigError

__all__ = ["load_yaml", "read_config_bytes", "decode_text"]


class _UniqueKeyLoader(yaml.SafeLoader):
    """Safe loader that refuses a key repeated in one mapping."""

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict[Any, Any]:
        if isinstance(node, yaml.MappingNode):
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue
                key = self.construct_object(key_node, deep=deep)
                try:
                    repeated = key in seen
                    seen.add(key)
                except TypeError:
                    # An unhashable key is left to the base class, which reports it.
                    continue
                if repeated:
                    raise ConstructorError(None, None, f"key {key!r} is written twice", key_node.start_mark)
        return super().construct_mapping(node, deep=deep)


# YAML 1.1, which PyYAML follows, reads 1.0e8 (an exponent without its sign) as text; YAML 1.2 and
# every person writing a dose limit read it as a number.
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


class _ExactDecimalLoader(_UniqueKeyLoader):
    """Unique-key loader whose finite floats are ``Decimal`` with the decimals as written."""


def _construct_exact_float(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Decimal | float:
    value = loader.construct_yaml_float(node)
    if not math.isfinite(value):
        return value
    try:
        return Decimal(str(node.value).replace("_", ""))
    except InvalidOperation:
        # YAML 1.1 forms Decimal cannot read (e.g. sexagesimal 1:30.5) keep the float's shortest form.
        return Decimal(repr(value))


_ExactDecimalLoader.add_constructor("tag:yaml.org,2002:float", _construct_exact_float)


def read_config_bytes(path: Path) -> bytes:
    """The bytes of a configuration file; ConfigError naming the file if it cannot be read."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found.") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a folder, not a file.") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot be read ({exc.strerror or exc}).") from None


def decode_text(path: Path, data: bytes) -> str:
    """``data`` decoded as UTF-8 (a byte order mark is dropped); ConfigError if it is not UTF-8."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: is not UTF-8 text (byte {exc.start} cannot be decoded).") from None


def load_yaml(path: Path, *, exact_decimals: bool = False) -> tuple[Any, str]:
    """Parse a YAML file; return its content and the SHA-256 of the bytes parsed.

    With ``exact_decimals`` every finite float is a ``Decimal`` carrying the decimals as written.
    Raises ConfigError (file, line and problem) for a missing file, bad UTF-8, a YAML syntax
    error or a key written twice.
    """
    data = read_config_bytes(path)
    text = decode_text(path, data)
    loader = _ExactDecimalLoader if exact_decimals else _UniqueKeyLoader
    try:
        # Both loaders derive from SafeLoader: no arbitrary Python objects.
        content = yaml.load(text, Loader=loader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path} line {mark.line + 1}" if mark is not None else str(path)
        problem = (exc.problem or exc.context or "unreadable").rstrip(".")
        raise ConfigError(f"{where}: not valid YAML ({problem}).") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc}).") from None
    # The hash is of the very bytes parsed, so the audit trail names what was evaluated.
    return content, hashlib.sha256(data).hexdigest()
