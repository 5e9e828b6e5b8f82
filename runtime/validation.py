"""Reading files slmkit did not necessarily write itself: one schema (pydantic) per format, one error
naming the file and the field, and paths that stay inside their folder (docs/security.md).

Every reader of an on-disk format goes through here: manifests (runtime/manifest.py), router heads
(runtime/router/head.py), sentence encoders (runtime/router/encoder.py), parity prompt files
(converter/parity/prompts.py), onnxruntime-genai configs (runtime/engines/genai.py). The routing
spec has its own pydantic model (runtime/spec.py) and a bundle's spec is checked to be
self-contained (`spec_paths_inside`).
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BaseModel, ValidationError

from slmkit.runtime.errors import SlmkitError

M = TypeVar("M", bound=BaseModel)


def relative_inside(value: str) -> str:
    """`value` when it is a relative POSIX path that stays inside its folder (no `..`, no absolute
    path, no `~` home prefix (expanded by some readers), no backslash, no NUL, already normalised); else
    ValueError (the source of a path-traversal read)."""
    pure = PurePosixPath(value)
    if (not value or "\\" in value or "\x00" in value or pure.is_absolute() or ".." in pure.parts
            or value.startswith("~") or str(pure) != value):
        raise ValueError(f"{value!r} is not a relative path inside the folder")
    return value


RelativePath = Annotated[str, AfterValidator(relative_inside)]


def problem(error: ValidationError) -> str:
    """The first problem of a pydantic error as "field a.b: message"."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"]) or "(top level)"
    return f"field {field}: {first['msg']}"


def validated(model: type[M], data: object, source: Path | str) -> M:
    """`data` as `model`. Raises SlmkitError "SOURCE is invalid: field F: why" (never a traceback)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise SlmkitError(f"{source} is invalid: {problem(exc)}.") from None


def read_json(path: Path, what: str, hint: str | None = None) -> Any:
    """The JSON value in `path`. Raises SlmkitError naming `what` the file should be when it is
    missing, unreadable or not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SlmkitError(f"{path} not found ({what}).", hint=hint) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SlmkitError(f"{path} is not {what} ({type(exc).__name__}: {exc}).", hint=hint) from None


def inside(folder: Path, relative: str, named_by: Path | str) -> Path:
    """`folder`/`relative`, checked: a relative path inside `folder` reached without a symlink.
    Raises SlmkitError naming the file (`named_by`) that gave the path."""
    try:
        relative_inside(relative)
    except ValueError as exc:
        raise SlmkitError(f"{named_by} names {exc}.") from None
    path = Path(folder) / relative
    parts = PurePosixPath(relative).parts
    for depth in range(1, len(parts) + 1):
        if (Path(folder).joinpath(*parts[:depth])).is_symlink():
            raise SlmkitError(f"{named_by} names {relative!r}, reached through a symlink (not followed).")
    return path


def spec_paths_inside(spec_file: Path) -> list[str]:
    """Problems, one line each, with the paths a bundle's routing.json names: each must be a relative
    path inside the bundle reached without a symlink, so a bundle runs only what it holds and what
    its manifest covers. Raises SlmkitError when the spec itself does not load."""
    from slmkit.runtime.spec import load_spec

    spec = load_spec(spec_file)
    problems = []
    for field, path in spec.local_paths():
        try:
            inside(Path(spec_file).parent, path, f"{Path(spec_file).name} {field}")
        except SlmkitError as exc:
            problems.append(exc.args[0])
    return problems
