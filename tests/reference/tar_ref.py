"""tar_ref.py — tar archives written by Python's tarfile, for tests/test_data_tar.c.

    tar_ref.py DIR   writes DIR/{gnu,pax,ustar}.tar and DIR/<name>.members: one line per regular file,
                     "offset size name" (tarfile's offset_data and size), in archive order.
Each archive holds short names, a name longer than 100 bytes (GNU 'L' / pax 'x' path / ustar prefix),
a non-ASCII name, an empty member, a directory and a symlink (the last two are not regular files).
"""
import io
import sys
import tarfile

FORMATS = {"gnu": tarfile.GNU_FORMAT, "pax": tarfile.PAX_FORMAT, "ustar": tarfile.USTAR_FORMAT}


def members(fmt):
    long_dir = "d" * 120 if fmt != "ustar" else "p" * 120  # ustar: fits the 155-byte prefix
    out = [
        ("000000000.jpg", b"\xff\xd8 not really a jpeg " * 40),
        ("000000000.txt", b"a red circle\n"),
        (long_dir + "/000000001.png", b"png bytes" * 100),
        (long_dir + "/000000001.txt", b"a long name"),
        ("empty.txt", b""),
    ]
    if fmt != "ustar":
        out.append(("caf\u00e9/" + "n" * 150 + ".txt", b"non-ascii long name"))
    out.append(("exact" + "x" * 91 + ".txt", b"a name of exactly 100 bytes"))
    return out


def write(path, fmt):
    with tarfile.open(path, "w", format=FORMATS[fmt], encoding="utf-8") as t:
        d = tarfile.TarInfo("adir")
        d.type = tarfile.DIRTYPE
        t.addfile(d)
        for name, data in members(fmt):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("alink")
        link.type = tarfile.SYMTYPE
        link.linkname = "000000000.jpg"
        t.addfile(link)
    with tarfile.open(path, "r", encoding="utf-8") as t, open(path[:-4] + ".members", "w", encoding="utf-8") as out:
        for m in t.getmembers():
            if m.isfile():
                out.write(f"{m.offset_data} {m.size} {m.name}\n")


if __name__ == "__main__":
    for fmt in FORMATS:
        write(f"{sys.argv[1]}/{fmt}.tar", fmt)
