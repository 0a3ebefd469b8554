"""The upload's streaming multipart reader: the same parts whatever the pieces, and malformed bodies refused."""

from __future__ import annotations

import pytest

from callrec.api.recorder_backend.multipart import (
    Event,
    MultipartError,
    MultipartReader,
    PartData,
    PartStart,
)

BOUNDARY = b"b0und4ry"
FILE = bytes(range(256)) * 3 + b"\r\n--b0und\r\r\n--b0und4r" + b"x" * 50  # near-boundaries inside the file


def body(*, preamble: bytes = b"", epilogue: bytes = b"", file: bytes = FILE) -> bytes:
    return (
        preamble + b"--b0und4ry\r\n"
        b'Content-Disposition: form-data; name="owner"\r\n\r\n'
        b"alice\r\n"
        b"--b0und4ry\r\n"
        b'Content-Disposition: form-data; name="file"; filename="call.mp4"\r\n'
        b"Content-Type: video/mp4\r\n\r\n" + file + b"\r\n--b0und4ry--\r\n" + epilogue
    )


def read(pieces: list[bytes], max_parts: int = 8, max_header_bytes: int = 1024) -> list[tuple[str, str | None, bytes]]:
    """(name, filename, data) per part, checking the events' order on the way."""
    reader = MultipartReader(BOUNDARY, max_parts=max_parts, max_header_bytes=max_header_bytes)
    events: list[Event] = []
    for piece in pieces:
        events += reader.feed(piece)
    reader.close()
    parts: list[tuple[str, str | None, bytes]] = []
    open_part: list[bytes] | None = None
    for event in events:
        if isinstance(event, PartStart):
            assert open_part is None
            parts.append((event.name, event.filename, b""))
            open_part = []
        else:
            assert isinstance(event, PartData) and open_part is not None
            open_part.append(event.data)
            if event.last:
                name, filename, _ = parts[-1]
                parts[-1] = (name, filename, b"".join(open_part))
                open_part = None
    assert open_part is None
    return parts


EXPECTED = [("owner", None, b"alice"), ("file", "call.mp4", FILE)]


def test_one_piece() -> None:
    assert read([body()]) == EXPECTED


def test_split_at_every_offset() -> None:
    whole = body()
    for at in range(len(whole) + 1):
        assert read([whole[:at], whole[at:]]) == EXPECTED, at


def test_split_in_three_around_the_closing_boundary() -> None:
    whole = body()
    end = len(whole) - len(b"\r\n--b0und4ry--\r\n")
    for a in range(end - 20, len(whole)):
        for b in range(a, len(whole) + 1):
            assert read([whole[:a], whole[a:b], whole[b:]]) == EXPECTED, (a, b)


def test_byte_by_byte() -> None:
    whole = body()
    assert read([whole[i : i + 1] for i in range(len(whole))]) == EXPECTED


def test_a_piece_without_a_boundary_is_passed_on_uncopied() -> None:
    reader = MultipartReader(BOUNDARY, max_parts=8)
    head = body().split(FILE)[0]
    reader.feed(head)
    middle = b"m" * 65536
    (event,) = reader.feed(middle)
    assert isinstance(event, PartData) and event.data is middle and not event.last


def test_preamble_and_epilogue_are_dropped() -> None:
    assert read([body(preamble=b"this is a preamble\r\n", epilogue=b"and an epilogue\r\n")]) == EXPECTED


def test_crlf_in_data_and_empty_file() -> None:
    assert read([body(file=b"\r\n\r\n")])[1][2] == b"\r\n\r\n"
    assert read([body(file=b"")])[1][2] == b""


def test_transport_padding_after_a_boundary() -> None:
    padded = body().replace(b"--b0und4ry\r\nContent-Disposition: form-data; name=\"file\"",
                            b"--b0und4ry  \t\r\nContent-Disposition: form-data; name=\"file\"")  # fmt: skip
    assert read([padded]) == EXPECTED


def test_missing_closing_boundary() -> None:
    whole = body()
    for cut in (len(whole) - 4, len(whole) - 20, len(whole) // 2, 5):
        with pytest.raises(MultipartError):
            read([whole[:cut]])
    with pytest.raises(MultipartError):
        read([b""])


def test_no_boundary_at_all() -> None:
    with pytest.raises(MultipartError):
        read([b"just some bytes" * 100])


def test_oversize_part_headers() -> None:
    long = body().replace(b"Content-Type: video/mp4", b"X-Long: " + b"a" * 2000)
    with pytest.raises(MultipartError, match="too long"):
        read([long])
    with pytest.raises(MultipartError, match="too long"):
        read([long[i : i + 100] for i in range(0, len(long), 100)])


def test_too_many_parts() -> None:
    field = b'--b0und4ry\r\nContent-Disposition: form-data; name="x"\r\n\r\nv\r\n'
    many = field * 3 + b"--b0und4ry--\r\n"
    assert len(read([many], max_parts=3)) == 3
    with pytest.raises(MultipartError, match="too many"):
        read([many], max_parts=2)


@pytest.mark.parametrize(
    "bad",
    [
        b"--b0und4ry\r\nContent-Type: text/plain\r\n\r\nv\r\n--b0und4ry--\r\n",  # no disposition
        b"--b0und4ry\r\nno colon here\r\n\r\nv\r\n--b0und4ry--\r\n",
        b"--b0und4ry\r\n\r\nv\r\n--b0und4ry--\r\n",  # no headers
        b'--b0und4ry\r\nContent-Disposition: attachment; name="a"\r\n\r\nv\r\n--b0und4ry--\r\n',
        b"--b0und4ry\r\nContent-Disposition: form-data\r\n\r\nv\r\n--b0und4ry--\r\n",  # no name
        b'--b0und4ryjunk\r\nContent-Disposition: form-data; name="a"\r\n\r\nv\r\n--b0und4ry--\r\n',
    ],
)
def test_malformed_parts(bad: bytes) -> None:
    with pytest.raises(MultipartError):
        read([bad])


def test_bad_boundary() -> None:
    with pytest.raises(MultipartError):
        MultipartReader(b"", max_parts=1)
    with pytest.raises(MultipartError):
        MultipartReader(b"x" * 201, max_parts=1)


def test_memory_stays_bounded_on_a_body_without_boundary() -> None:
    reader = MultipartReader(BOUNDARY, max_parts=8)
    for _ in range(100):
        assert reader.feed(b"\r" * 100_000) == []
    assert len(reader._buffer) < len(BOUNDARY) + 4
