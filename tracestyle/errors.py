"""One error type for bad user input, so the CLI can print one line instead of a traceback."""

from __future__ import annotations


class InputError(Exception):
    """Bad user input: names the file, line and field when they are known."""

    def __init__(self, message: str, path: str | None = None, line: int | None = None,
                 field: str | None = None) -> None:
        self.path, self.line, self.field = path, line, field
        where = ""
        if path is not None:
            where = str(path)
            if line is not None:
                where += f":{line}"
            if field is not None:
                where += f": field '{field}'"
            where += ": "
        elif field is not None:
            where = f"field '{field}': "
        super().__init__(where + message)


class MissingExtraError(InputError):
    """An optional backend is not installed; names the extra that provides it."""

    def __init__(self, package: str, extra: str | None = None, *, how: str | None = None) -> None:
        """`extra`: the tracestyle extra that installs it; `how`: the install step where no extra does."""
        if how is None:
            how = f"pip install 'tracestyle[{extra}]'" if extra else f"pip install {package}"
        super().__init__(f"'{package}' is not installed; install it with: {how}")
