"""``luigi.format``: ``Text``/``UTF8``/``Nop`` (targets already read and write text or bytes)."""

from __future__ import annotations

from typing import Any


class Format:
    @classmethod
    def pipe_reader(cls, input_pipe: Any) -> Any:
        return input_pipe

    @classmethod
    def pipe_writer(cls, output_pipe: Any) -> Any:
        return output_pipe


class NopFormat(Format):
    pass


class TextFormat(Format):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass


Nop = NopFormat()
Text = TextFormat()
UTF8 = TextFormat()
SysNewLine = TextFormat()
