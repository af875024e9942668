"""Regenerate bpcli/data/files/pride_and_prejudice.txt from Debian's r-cran-janeaustenr.

Usage (no R needed: the R lazy-load database is read by the small parser below):

    cd /tmp && apt-get download r-cran-janeaustenr
    python3 scripts/make_austen.py /tmp/r-cran-janeaustenr_1.0.0-1_all.deb

The R package stores each novel as a character vector, one element per line of the Project
Gutenberg text (without Gutenberg's header and licence). The lines are joined with "\n" and
written as UTF-8; the script prints the sha256.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "bpcli" / "data" / "files" / "pride_and_prejudice.txt"
DATA = "usr/lib/R/site-library/janeaustenr/data"
NOVEL = "prideprejudice"
# R serialization type codes (R Internals, "Serialization Formats").
NILLIKE = {254, 242, 241, 253, 252, 251, 250}
SYMSXP, LISTSXP, CHARSXP, REFSXP = 1, 2, 9, 255
LGLSXP, INTSXP, REALSXP, STRSXP, VECSXP = 10, 13, 14, 16, 19


class Unserializer:
    """Just enough of R's XDR serialization for lists, strings and numbers."""

    def __init__(self, data: bytes):
        if data[:2] != b"X\n":
            raise ValueError(f"not an XDR R serialization (starts {data[:2]!r})")
        self.data, self.pos, self.refs = data, 2, []
        version = self.int()
        self.int(), self.int()
        if version == 3:
            n = self.int()  # then the native encoding's name
            self.pos += n

    def int(self) -> int:
        (v,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return v

    def item(self):
        flags = self.int()
        kind, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind in NILLIKE:
            return None
        if kind == REFSXP:
            return self.refs[(flags >> 8) - 1]
        if kind == SYMSXP:
            sym = self.item()
            self.refs.append(sym)
            return sym
        if kind == CHARSXP:
            n = self.int()
            if n == -1:
                return None
            text = self.data[self.pos : self.pos + n].decode("utf-8")
            self.pos += n
            return text
        if kind == LISTSXP:
            attr = self.item() if has_attr else None
            tag = self.item() if has_tag else None
            del attr
            car, cdr = self.item(), self.item()
            return {tag: car, **(cdr or {})}
        if kind in (STRSXP, VECSXP, LGLSXP, INTSXP, REALSXP):
            n = self.int()
            if kind in (STRSXP, VECSXP):
                values = [self.item() for _ in range(n)]
            else:
                fmt, size = (f">{n}d", 8) if kind == REALSXP else (f">{n}i", 4)
                values = list(struct.unpack_from(fmt, self.data, self.pos))
                self.pos += size * n
            attrs = self.item() if has_attr else None
            names = (attrs or {}).get("names")
            return dict(zip(names, values, strict=True)) if names else values
        raise ValueError(f"unsupported R type {kind} at byte {self.pos}")


def read_novel(data_dir: Path, name: str) -> list[str]:
    index = Unserializer(gzip.decompress((data_dir / "Rdata.rdx").read_bytes())).item()
    offset, length = (int(v) for v in index["variables"][name])
    blob = (data_dir / "Rdata.rdb").read_bytes()[offset : offset + length]
    # A lazy-load record: 4-byte big-endian uncompressed size, then a zlib stream.
    return Unserializer(zlib.decompress(blob[4:])).item()


def main() -> None:
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(["dpkg-deb", "-x", sys.argv[1], tmp], check=True)
        lines = read_novel(Path(tmp) / DATA, NOVEL)
    text = "\n".join(line or "" for line in lines).rstrip("\n") + "\n"
    OUT.write_text(text, encoding="utf-8", newline="\n")
    raw = OUT.read_bytes()
    print(f"wrote {OUT} ({len(raw)} bytes, {len(text)} characters, {len(set(text))} distinct)")
    print(f"sha256 {hashlib.sha256(raw).hexdigest()}")


if __name__ == "__main__":
    main()
