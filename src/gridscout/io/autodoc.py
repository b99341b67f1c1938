"""IMOD autodoc text, the container of SerialEM's .mdoc and .nav files.

An autodoc is ``key = value`` lines: first the global ones, then sections opened by a
bracketed ``[kind = name]`` line. Values stay text here; the .mdoc and .nav modules
give them types. Blank lines separate sections on writing and mean nothing on reading;
lines starting with ``#`` are comments and are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..model.errors import FileFormatError


@dataclass(frozen=True)
class AutodocSection:
    """One ``[kind = name]`` section and its key-value pairs, in file order."""

    kind: str
    name: str
    values: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Autodoc:
    """The global key-value pairs and the sections of one autodoc file, in file order."""

    globals: dict[str, str]
    sections: list[AutodocSection]


def parse_autodoc(text: str, *, source: str = "autodoc") -> Autodoc:
    """Parse autodoc text.

    Parameters
    ----------
    text : str
        The whole file.
    source : str
        Name used in error messages (usually the file path).

    Raises
    ------
    FileFormatError
        A line that is neither blank, a comment, a ``[kind = name]`` header nor a
        ``key = value`` pair, or a key given twice in one section.
    """
    globals_: dict[str, str] = {}
    sections: list[AutodocSection] = []
    current = globals_
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            kind, name = _header(line, source, number)
            sections.append(AutodocSection(kind, name))
            current = sections[-1].values
            continue
        key, value = _pair(line, source, number)
        if key in current:
            raise FileFormatError(f"{source}, line {number}: '{key}' given twice in the same section")
        current[key] = value
    return Autodoc(globals_, sections)


def format_autodoc(doc: Autodoc) -> str:
    """Autodoc text of `doc`, a blank line before each section; `parse_autodoc` reads it back equal."""
    lines = [f"{key} = {value}" for key, value in doc.globals.items()]
    for section in doc.sections:
        lines += ["", f"[{section.kind} = {section.name}]"]
        lines += [f"{key} = {value}" for key, value in section.values.items()]
    return "\n".join(lines) + "\n"


def read_text(path: str | Path) -> str:
    """The text of an autodoc file; a missing or binary file raises `FileFormatError`."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")  # SerialEM on Windows may write a byte-order mark
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise FileFormatError(f"{path}: not a text file (an autodoc is text)") from None
    except OSError as err:
        raise FileFormatError(f"{path}: cannot read ({err.strerror})") from None


def write_text(path: str | Path, text: str) -> Path:
    """Write `text` through a temporary name, so a crash never leaves half a file; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_text(text, encoding="utf-8", newline="\r\n")  # SerialEM writes and expects Windows line ends
    tmp.replace(path)
    return path


def floats(values: Mapping[str, str], key: str, count: int | None, *, where: str) -> tuple[float, ...] | None:
    """The whitespace-separated numbers under `key` (exactly `count` of them unless None); None when absent."""
    if key not in values:
        return None
    try:
        numbers = tuple(float(v) for v in values[key].split())
    except ValueError:
        raise FileFormatError(f"{where}: {key} = {values[key]!r} is not a list of numbers") from None
    if count is not None and len(numbers) != count:
        raise FileFormatError(f"{where}: {key} needs {count} numbers, got {len(numbers)} ({values[key]!r})")
    return numbers


def integer(values: Mapping[str, str], key: str, *, where: str) -> int | None:
    """The integer under `key`; None when absent."""
    if key not in values:
        return None
    try:
        return int(values[key].strip())
    except ValueError:
        raise FileFormatError(f"{where}: {key} = {values[key]!r} is not an integer") from None


def number_text(values: Iterable[float], digits: int = 6) -> str:
    """Numbers as autodoc text: space-separated, `digits` decimals, trailing zeros dropped."""
    return " ".join(_short(v, digits) for v in values)


def _short(value: float, digits: int) -> str:
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".")
    return text if text not in ("-0", "") else "0"


def _header(line: str, source: str, number: int) -> tuple[str, str]:
    if not line.endswith("]") or "=" not in line:
        raise FileFormatError(f"{source}, line {number}: a section header must read [kind = name], not {line!r}")
    kind, name = line[1:-1].split("=", 1)  # names may hold '=' themselves ([T = Tilt axis angle = 85])
    if not kind.strip():
        raise FileFormatError(f"{source}, line {number}: section header without a kind: {line!r}")
    return kind.strip(), name.strip()


def _pair(line: str, source: str, number: int) -> tuple[str, str]:
    if "=" not in line:
        raise FileFormatError(f"{source}, line {number}: expected 'key = value', got {line!r}")
    key, value = line.split("=", 1)
    if not key.strip():
        raise FileFormatError(f"{source}, line {number}: a value without a key: {line!r}")
    return key.strip(), value.strip()
