"""The socket fast path's frames, read back by an independent WebSocket implementation."""

import pytest
from websockets.frames import Frame, Opcode
from websockets.streams import StreamReader

from workbooks.routing import text_frame


def parse(data: bytes) -> tuple[Frame, bytes]:
    """One frame as a client reads it, and whatever follows it."""
    reader = StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    parser = Frame.parse(reader.read_exact, mask=False)
    try:
        next(parser)
    except StopIteration as done:
        return done.value, bytes(reader.buffer)
    raise AssertionError("the frame is incomplete")


class TextFrameTest:
    @pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65_535, 65_536, 300_000])
    def test_text_frame_every_length_encoding_reads_back_whole(self, size):
        text = "é" * (size // 2) + "x" * (size % 2)  # ``size`` bytes of UTF-8

        frame, rest = parse(text_frame(text))

        assert (frame.opcode, frame.fin, frame.rsv1, frame.data.decode(), rest) == (Opcode.TEXT, True, False, text, b"")

    def test_text_frame_non_ascii_length_counts_bytes(self):
        text = '{"value":"Zürich ✓ 東京"}'

        frame, rest = parse(text_frame(text) + b"next")

        assert (frame.data.decode(), rest) == (text, b"next")
