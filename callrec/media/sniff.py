"""Tell an uploaded recording's format from its first bytes, and check its name against it, as Nextcloud Talk does.

Only the content decides the mimetype; the file name must then carry an extension allowed for that mimetype.
"""

from __future__ import annotations

import re
import unicodedata

# Nextcloud Talk's RecordingService::DEFAULT_ALLOWED_RECORDING_FORMATS: mimetype -> allowed extensions.
ALLOWED_FORMATS: dict[str, tuple[str, ...]] = {
    "audio/ogg": ("ogg",),
    "video/ogg": ("ogv",),
    "video/mp4": ("mp4",),
    "video/webm": ("webm",),
    "video/x-matroska": ("mkv",),
}

# The other way round: what a stored recording is served as.
CONTENT_TYPES = {extension: mimetype for mimetype, extensions in ALLOWED_FORMATS.items() for extension in extensions}

SNIFF_BYTES = 4096  # how many leading bytes the caller buffers before sniffing

_OGG_PAGE = b"OggS"
_OGG_BOS = 0x02  # page flag: first page of a logical stream; all of them come before any other page
# First header packet of the video codecs that can be muxed in Ogg: Theora, Daala, VP8, Dirac, OGM video.
_OGG_VIDEO_HEADERS = (b"\x80theora", b"\x80daala", b"OVP80", b"BBCD\x00", b"\x01video")

_EBML_MAGIC = b"\x1a\x45\xdf\xa3"  # the EBML header element's id
_EBML_DOCTYPE = 0x4282
_EBML_SEGMENT = 0x18538067
_EBML_DOCTYPES = {"webm": "video/webm", "matroska": "video/x-matroska"}


class UploadFormatError(Exception):
    """An upload Talk would refuse; `error` is Talk's code: file_name, file_mimetype or file_extension."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def _ogg_has_video(head: bytes) -> bool:
    """True when one of the beginning-of-stream pages at the start of an Ogg file opens a video stream."""
    pos = 0
    while head.startswith(_OGG_PAGE, pos) and pos + 27 <= len(head) and head[pos + 5] & _OGG_BOS:
        segments = head[pos + 26]
        body = pos + 27 + segments
        if head.startswith(_OGG_VIDEO_HEADERS, body):
            return True
        pos = body + sum(head[pos + 27 : body])
    return False


def _ebml_vint(data: bytes, pos: int) -> tuple[int, int] | None:
    """The raw EBML variable-size integer at `pos` (length marker kept) and the position after it, or None."""
    if pos >= len(data) or data[pos] == 0:
        return None
    end = pos + 9 - data[pos].bit_length()
    return (int.from_bytes(data[pos:end], "big"), end) if end <= len(data) else None


def _ebml_element(data: bytes, pos: int) -> tuple[int, int, int | None] | None:
    """(id, start of data, data size or None if unknown) of the EBML element at `pos`, or None if cut off."""
    element_id = _ebml_vint(data, pos)
    size = _ebml_vint(data, element_id[1]) if element_id is not None else None
    if element_id is None or size is None:
        return None
    mask = (1 << 7 * (size[1] - element_id[1])) - 1  # the size without its length marker; all ones: unknown
    return element_id[0], size[1], None if size[0] & mask == mask else size[0] & mask


def _ebml_doctype(head: bytes) -> str | None:
    """The DocType inside the EBML header at the start of `head` (e.g. 'webm', 'matroska'), or None."""
    header = _ebml_element(head, 0)
    if header is None:
        return None
    pos, end = header[1], len(head) if header[2] is None else min(len(head), header[1] + header[2])
    while pos < end:
        child = _ebml_element(head, pos)
        if child is None or child[2] is None:
            return None
        child_id, start, size = child[0], child[1], child[2]
        if child_id == _EBML_DOCTYPE:
            return head[start : start + size].rstrip(b"\0").decode("ascii", "replace") if start + size <= end else None
        pos = start + size
    return None


def ebml_segment_end(head: bytes) -> int | None:
    """The byte offset where the Segment after the EBML header of a WebM/Matroska file ends.

    None when that is not known from `head`, e.g. the Segment's size is unknown (a file written live).
    """
    header = _ebml_element(head, 0)
    if header is None or header[2] is None:
        return None
    segment = _ebml_element(head, header[1] + header[2])
    if segment is None or segment[0] != _EBML_SEGMENT or segment[2] is None:
        return None
    return segment[1] + segment[2]


def sniff_mimetype(head: bytes) -> str | None:
    """The mimetype of a file judged from its first bytes (up to SNIFF_BYTES), or None if it is not a known one."""
    head = head[:SNIFF_BYTES]
    if len(head) >= 8 and head[4:8] == b"ftyp":
        return "video/mp4"  # Talk files every MP4, audio-only ones too, as video/mp4
    if head.startswith(_OGG_PAGE):
        return "video/ogg" if _ogg_has_video(head) else "audio/ogg"
    if head.startswith(_EBML_MAGIC):
        return _EBML_DOCTYPES.get(_ebml_doctype(head) or "")
    return None


def check_upload(filename: str, head: bytes) -> tuple[str, str]:
    """(mimetype, extension) of an upload named `filename` that starts with `head`, or UploadFormatError."""
    name = re.split(r"[/\\]", filename)[-1]
    if name in ("", ".", "..") or any(unicodedata.category(char) == "Cc" for char in name):
        raise UploadFormatError("file_name")
    mimetype = sniff_mimetype(head)
    if mimetype is None or mimetype not in ALLOWED_FORMATS:
        raise UploadFormatError("file_mimetype")
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    if extension not in ALLOWED_FORMATS[mimetype]:
        raise UploadFormatError("file_extension")
    return mimetype, extension
