"""``luigi.format``: how a target's bytes are read and written (``LocalTarget(path, format=...)``).

A format wraps the binary stream a target opens: ``pipe_reader`` for reading, ``pipe_writer``
for writing. ``Text``/``UTF8`` give text, ``Nop`` the bytes as they are, ``Gzip``/``Bzip2``
compressed bytes; ``UTF8 >> Gzip`` chains them (text, gzipped), and a chain whose parts do not
fit (``Gzip >> UTF8``: text given bytes) is refused when it is made, as in Luigi. Compression
runs in this process (Luigi pipes through the ``gzip``/``bzip2`` programs); the files are the
same.

Leaving a ``with`` block leaves the wrapped stream's too: a write that raised leaves no file
(the target's writer is atomic), a clean one is renamed into place once the compressed data
is complete.
"""

from __future__ import annotations

import bz2
import gzip
import io
import itertools
import locale
import os
import re
import warnings
import zlib
from typing import Any


class BaseWrapper:
    """A stream over another one, which it hands what it does not do itself."""

    def __init__(self, stream: Any, *args: Any, **kwargs: Any) -> None:
        self._stream = stream

    def __getattr__(self, name: str) -> Any:
        if name == "_stream":
            raise AttributeError(name)
        return getattr(self._stream, name)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stream.__exit__(*exc)

    def __iter__(self) -> Any:
        try:
            yield from self._stream
        finally:
            self.close()


class TextWrapper(io.TextIOWrapper):
    """Text over a binary stream (UTF-8 unless ``encoding=`` says otherwise)."""

    def __init__(self, stream: Any, *args: Any, **kwargs: Any) -> None:
        if not args:
            kwargs.setdefault("encoding", "utf-8")
        super().__init__(stream, *args, **kwargs)
        self._left = False
        """Detached from its stream, which was left as a failed write."""

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self._leave(exc_type, exc, tb)

    def _leave(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self._left = True
        stream: Any = self.detach()
        stream.__exit__(exc_type, exc, tb)

    def __del__(self) -> None:
        if self._left:
            return
        if not self.closed and self.writable():  # dropped without a close: the write never finished
            self._leave(RuntimeError, RuntimeError("the write did not finish"), None)
        else:
            super().__del__()


class NewlineWrapper(BaseWrapper):
    """Bytes whose line ends become ``newline`` (``None``: ``\\n`` when read, the system's
    when written)."""

    def __init__(self, stream: Any, newline: str | None = None) -> None:
        self.newline = None if newline is None else newline.encode("ascii")
        if self.newline not in (b"", b"\r\n", b"\n", b"\r", None):
            raise ValueError("newline need to be one of {b'', b'\\r\\n', b'\\n', b'\\r', None}")
        super().__init__(stream)

    def _ends(self, data: bytes, default: bytes) -> bytes:
        return data if self.newline == b"" else re.sub(b"(\r\n|\n|\r)", self.newline or default, data)

    def read(self, n: int = -1) -> bytes:
        return self._ends(self._stream.read(n), b"\n")

    def write(self, data: bytes) -> None:
        self._stream.write(self._ends(data, os.linesep.encode("ascii")))

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)


class MixedUnicodeBytesWrapper(BaseWrapper):
    """A binary writer that also takes text (encoded, with a warning)."""

    def __init__(self, stream: Any, encoding: str | None = None) -> None:
        self.encoding = encoding or locale.getpreferredencoding()
        super().__init__(stream)

    def write(self, data: Any) -> None:
        self._stream.write(self._convert(data))

    def writelines(self, lines: Any) -> None:
        self._stream.writelines(self._convert(line) for line in lines)

    def _convert(self, data: Any) -> bytes:
        if isinstance(data, str):
            warnings.warn("Writing unicode to byte stream", stacklevel=3)
            return data.encode(self.encoding)
        return bytes(data)


class _CompressingWriter(io.BufferedIOBase):
    """Bytes compressed into another binary writer; the data is complete on a clean close."""

    def __init__(self, stream: Any, compressor: Any) -> None:
        super().__init__()
        self._stream = stream
        self._compressor = compressor

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        if isinstance(data, str):
            raise TypeError("a bytes-like object is required, not 'str' (to write text: format=UTF8 >> Gzip)")
        self._stream.write(self._compressor.compress(data))
        return len(data)

    def close(self) -> None:
        if not self.closed:
            self._stream.write(self._compressor.flush())
            super().close()
            self._stream.close()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        elif not self.closed:
            super().close()
            self._stream.__exit__(exc_type, exc, tb)

    def __del__(self) -> None:
        if not self.closed:
            self.__exit__(RuntimeError, None, None)


class _GzipReader(gzip.GzipFile):
    def __init__(self, stream: Any) -> None:
        self._stream = stream
        super().__init__(fileobj=stream, mode="rb")

    def close(self) -> None:
        super().close()
        self._stream.close()


class _Bzip2Reader(bz2.BZ2File):
    def __init__(self, stream: Any) -> None:
        self._stream = stream
        super().__init__(stream, mode="rb")

    def close(self) -> None:
        super().close()
        self._stream.close()


class Format:
    """How a target's bytes are read (``pipe_reader``) and written (``pipe_writer``); ``input``
    and ``output`` say what each side takes (``"unicode"`` or ``"bytes"``)."""

    def pipe_reader(self, input_pipe: Any) -> Any:
        raise NotImplementedError()

    def pipe_writer(self, output_pipe: Any) -> Any:
        raise NotImplementedError()

    def __rshift__(self, other: Format) -> ChainFormat:
        return ChainFormat(self, other)


class ChainFormat(Format):
    """Formats applied in turn: ``UTF8 >> Gzip`` writes text, encoded, then gzipped."""

    def __init__(self, *args: Format, check_consistency: bool = True) -> None:
        self.args = args
        if hasattr(args[0], "input"):
            self.input = args[0].input
        if hasattr(args[-1], "output"):
            self.output = args[-1].output
        for first, then in itertools.pairwise(args):
            made, wanted = getattr(first, "output", None), getattr(then, "input", None)
            if check_consistency and made is not None and wanted is not None and made != wanted:
                raise TypeError(
                    f"The format chaining is not valid, {type(then).__name__} expect {wanted} "
                    f"but {type(first).__name__} provide {made}"
                )

    def pipe_reader(self, input_pipe: Any) -> Any:
        for part in reversed(self.args):
            input_pipe = part.pipe_reader(input_pipe)
        return input_pipe

    def pipe_writer(self, output_pipe: Any) -> Any:
        for part in reversed(self.args):
            output_pipe = part.pipe_writer(output_pipe)
        return output_pipe


class NopFormat(Format):
    """The bytes as they are: ``write(b"...")``, ``read()`` gives bytes."""

    def pipe_reader(self, input_pipe: Any) -> Any:
        return input_pipe

    def pipe_writer(self, output_pipe: Any) -> Any:
        return output_pipe


class WrappedFormat(Format):
    wrapper_cls: Any = BaseWrapper

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def pipe_reader(self, input_pipe: Any) -> Any:
        return self.wrapper_cls(input_pipe, *self.args, **self.kwargs)

    def pipe_writer(self, output_pipe: Any) -> Any:
        return self.wrapper_cls(output_pipe, *self.args, **self.kwargs)


class TextFormat(WrappedFormat):
    input = "unicode"
    output = "bytes"
    wrapper_cls = TextWrapper


class MixedUnicodeBytesFormat(WrappedFormat):
    output = "bytes"
    wrapper_cls = MixedUnicodeBytesWrapper


class NewlineFormat(WrappedFormat):
    input = "bytes"
    output = "bytes"
    wrapper_cls = NewlineWrapper


class GzipFormat(Format):
    input = "bytes"
    output = "bytes"

    def __init__(self, compression_level: int | None = None) -> None:
        self.compression_level = compression_level

    def pipe_reader(self, input_pipe: Any) -> Any:
        return _GzipReader(input_pipe)

    def pipe_writer(self, output_pipe: Any) -> Any:
        level = 6 if self.compression_level is None else int(self.compression_level)
        return _CompressingWriter(output_pipe, zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS))


class Bzip2Format(Format):
    input = "bytes"
    output = "bytes"

    def pipe_reader(self, input_pipe: Any) -> Any:
        return _Bzip2Reader(input_pipe)

    def pipe_writer(self, output_pipe: Any) -> Any:
        return _CompressingWriter(output_pipe, bz2.BZ2Compressor())


Text = TextFormat()
UTF8 = TextFormat(encoding="utf8")
Nop = NopFormat()
SysNewLine = NewlineFormat()
Gzip = GzipFormat()
Bzip2 = Bzip2Format()
MixedUnicodeBytes = MixedUnicodeBytesFormat()


def get_default_format() -> Format:
    return Text


def split_mode(mode: str) -> tuple[bool, bool]:
    """``(writing, binary)`` for a target's ``open`` mode: ``r``/``w``, with ``b`` or ``t``."""
    rw = mode.replace("b", "").replace("t", "")
    if rw not in ("r", "w"):
        raise ValueError(f"mode must be 'r' or 'w' (got: {mode})")
    return rw == "w", "b" in mode


def formatted(stream: Any, format: Format | None, *, writing: bool, binary: bool) -> Any:
    """A target's binary stream as its format gives it. As in Luigi a format decides alone (a
    ``b`` in the mode changes nothing); a target without one reads and writes text, or its
    bytes when the mode has a ``b``, which Ductwork's own targets do too."""
    if format is None:
        if binary:
            return stream
        format = get_default_format()
    return format.pipe_writer(stream) if writing else format.pipe_reader(stream)
