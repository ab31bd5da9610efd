"""The capture-file codec: Viam's on-disk format, read and written fast.

Public API (re-exported from private modules):

- records: ``RecordEncoder``, ``SensorRecord``, ``decode_sensor_data``,
  ``decode_sensor_payload``, ``encode_header``, ``decode_header``, ``encode_timestamp``;
- Struct values: ``StructEncoder``, ``decode_struct``, ``JsonValue``;
- tabular rows for ingest: ``TabularTranscoder`` (records to times and JSON text);
- files: ``CaptureFileWriter``, ``CaptureFileReader``, ``iter_records``,
  ``recover_prog`` and the ``CaptureFileError`` family;
- layout: ``collector_dir``, ``file_stem``, ``file_extension_for``,
  ``is_binary_method`` and the extension constants;
- the ``UploadFiles`` RPC's messages: ``UploadFilesRequestWire``,
  ``UploadFilesResponseWire``, ``SmallFileWire``, ``SmallFileResultWire`` and
  ``UPLOAD_FILES_PATH``.
"""

from actors.codec._file import (
    CaptureFileError,
    CaptureFileReader,
    CorruptCaptureFile,
    RawRecord,
    Recovery,
    TruncatedCaptureFile,
    iter_records,
    recover_prog,
)
from actors.codec._file_writer import CaptureFileWriter
from actors.codec._layout import (
    BINARY_METHODS,
    CAPTURE_EXT,
    FAILED_DIR,
    PROG_EXT,
    SKIPPED_DIRS,
    collector_dir,
    data_type_for,
    extension_for_mime,
    file_extension_for,
    file_stem,
    is_binary_method,
    mime_for_extension,
    stem_time_ns,
)
from actors.codec._pbwire import WireError, decode_varint, encode_varint
from actors.codec._records import (
    RecordEncoder,
    SensorRecord,
    decode_header,
    encode_header,
    encode_timestamp,
)
from actors.codec._records_decode import (
    decode_sensor_data,
    decode_sensor_payload,
    decode_timestamp,
)
from actors.codec._struct import JsonObject, JsonValue, StructEncodeError, StructEncoder
from actors.codec._struct_decode import decode_struct
from actors.codec._tabular_json import TabularTranscoder
from actors.codec._upload_files import (
    UPLOAD_FILES_PATH,
    UploadFilesRequestWire,
    UploadFilesResponseWire,
)
from actors.codec._upload_files_decode import SmallFileResultWire, SmallFileWire

__all__ = [
    "BINARY_METHODS",
    "CAPTURE_EXT",
    "FAILED_DIR",
    "PROG_EXT",
    "SKIPPED_DIRS",
    "UPLOAD_FILES_PATH",
    "CaptureFileError",
    "CaptureFileReader",
    "CaptureFileWriter",
    "CorruptCaptureFile",
    "JsonObject",
    "JsonValue",
    "RawRecord",
    "RecordEncoder",
    "Recovery",
    "SensorRecord",
    "SmallFileResultWire",
    "SmallFileWire",
    "StructEncodeError",
    "StructEncoder",
    "TabularTranscoder",
    "TruncatedCaptureFile",
    "UploadFilesRequestWire",
    "UploadFilesResponseWire",
    "WireError",
    "collector_dir",
    "data_type_for",
    "decode_header",
    "decode_sensor_data",
    "decode_sensor_payload",
    "decode_struct",
    "decode_timestamp",
    "decode_varint",
    "encode_header",
    "encode_timestamp",
    "encode_varint",
    "extension_for_mime",
    "file_extension_for",
    "file_stem",
    "is_binary_method",
    "iter_records",
    "mime_for_extension",
    "recover_prog",
    "stem_time_ns",
]
