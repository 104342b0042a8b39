"""Streaming reader of multichannel 16-bit PCM WAV files (plain and WAVE_FORMAT_EXTENSIBLE), block by block.

Python 3.11's :mod:`wave` rejects WAVE_FORMAT_EXTENSIBLE, which most multichannel recorders write, so the RIFF
chunks are parsed here (EBU Tech 3306 / Microsoft RIFF spec). The file is hostile input: every header field is
checked and a bad file raises :class:`~skytrace.errors.FormatError` with one clear sentence.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from skytrace.errors import FormatError

WAVE_FORMAT_PCM = 0x0001
WAVE_FORMAT_EXTENSIBLE = 0xFFFE
_PCM_GUID_TAIL = b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71"


@dataclass(frozen=True)
class WavInfo:
    sample_rate_hz: int
    n_channels: int
    n_frames: int
    data_offset: int

    @property
    def duration_s(self) -> float:
        return self.n_frames / self.sample_rate_hz


def read_header(fh: BinaryIO, path: str) -> WavInfo:
    """Parse RIFF/WAVE chunks up to ``data``; only 16-bit integer PCM is accepted."""
    head = fh.read(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise FormatError(path, "not a RIFF/WAVE file")
    fmt = None
    while True:
        ch = fh.read(8)
        if len(ch) < 8:
            raise FormatError(path, "no 'data' chunk (truncated file?)")
        cid, size = ch[:4], struct.unpack("<I", ch[4:])[0]
        if cid == b"fmt ":
            if not 16 <= size <= 1024:
                raise FormatError(path, f"'fmt ' chunk of {size} bytes is invalid")
            body = fh.read(size + (size & 1))
            if len(body) < size:
                raise FormatError(path, "truncated 'fmt ' chunk")
            tag, nch, fs, _byte_rate, block_align, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == WAVE_FORMAT_EXTENSIBLE:
                if size < 40 or body[26:40] != _PCM_GUID_TAIL or struct.unpack("<H", body[24:26])[0] != 1:
                    raise FormatError(path, "extensible WAV whose sub-format is not integer PCM")
            elif tag != WAVE_FORMAT_PCM:
                raise FormatError(path, f"audio format {tag:#06x} is not integer PCM (need 16-bit PCM)")
            if bits != 16:
                raise FormatError(path, f"{bits}-bit samples: need 16-bit PCM")
            if not 1 <= nch <= 64:
                raise FormatError(path, f"{nch} channels is not supported (1 to 64)")
            if not 4000 <= fs <= 384_000:
                raise FormatError(path, f"sample rate {fs} Hz is outside 4000..384000")
            if block_align != 2 * nch:
                raise FormatError(path, f"block align {block_align} does not match {nch} channels of 16 bits")
            fmt = (nch, fs)
        elif cid == b"data":
            if fmt is None:
                raise FormatError(path, "'data' chunk before 'fmt ' chunk")
            nch, fs = fmt
            offset = fh.tell()
            fh.seek(0, 2)
            avail = fh.tell() - offset
            fh.seek(offset)
            if size == 0xFFFFFFFF or size > avail:  # streaming writers leave the size open: use what is there
                size = avail
            return WavInfo(sample_rate_hz=fs, n_channels=nch, n_frames=size // (2 * nch), data_offset=offset)
        else:
            if size > 1 << 30:
                raise FormatError(path, f"chunk {cid!r} of {size} bytes is implausible")
            fh.seek(size + (size & 1), 1)


def open_wav(path: str | Path) -> tuple[WavInfo, BinaryIO]:
    p = Path(path)
    try:
        fh = p.open("rb")
    except FileNotFoundError:
        raise FormatError(str(p), "file not found") from None
    try:
        return read_header(fh, str(p)), fh
    except Exception:
        fh.close()
        raise


def iter_blocks(path: str | Path, block_frames: int) -> tuple[WavInfo, Iterator[np.ndarray]]:
    """Header and an iterator of float32 blocks (n, channels) scaled to [-1, 1), read lazily from disk."""
    info, fh = open_wav(path)

    def gen() -> Iterator[np.ndarray]:
        with fh:
            fh.seek(info.data_offset)
            left = info.n_frames
            while left > 0:
                n = min(block_frames, left)
                raw = fh.read(n * 2 * info.n_channels)
                n = len(raw) // (2 * info.n_channels)
                if n == 0:
                    return
                a = np.frombuffer(raw[: n * 2 * info.n_channels], dtype="<i2").reshape(n, info.n_channels)
                yield a.astype(np.float32) / 32768.0
                left -= n

    return info, gen()


def write_wav(path: str | Path, audio: np.ndarray, sample_rate_hz: int) -> None:
    """Write float audio (n, channels) in [-1, 1] as 16-bit PCM (plain format tag: fine for any channel count
    that readers here accept; clipping is applied)."""
    a = np.asarray(audio, dtype=float)
    if a.ndim == 1:
        a = a[:, None]
    pcm = np.clip(np.round(a * 32767.0), -32768, 32767).astype("<i2")
    n, nch = pcm.shape
    data = pcm.tobytes()
    hdr = b"RIFF" + struct.pack("<I", 36 + len(data)) + b"WAVE"
    hdr += b"fmt " + struct.pack("<IHHIIHH", 16, WAVE_FORMAT_PCM, nch, sample_rate_hz, sample_rate_hz * 2 * nch,
                                 2 * nch, 16)
    hdr += b"data" + struct.pack("<I", len(data))
    Path(path).write_bytes(hdr + data)
