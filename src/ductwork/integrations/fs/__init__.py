"""Files on any storage fsspec reaches: ``FileTarget``, formats and ``FileSensor``."""

from ductwork.integrations.fs.formats import CsvFormat, Format, JsonFormat, ParquetFormat, TextFormat, resolve_format
from ductwork.integrations.fs.sensors import FileSensor
from ductwork.integrations.fs.targets import FileTarget

__all__ = [
    "CsvFormat",
    "FileSensor",
    "FileTarget",
    "Format",
    "JsonFormat",
    "ParquetFormat",
    "TextFormat",
    "resolve_format",
]
