"""_lib.py — finds and loads libclipc.so with ctypes and declares the C functions (include/clipc.h).

The library is loaded with ctypes.CDLL, which releases the GIL for the duration of every foreign
call (ctypes.PyDLL would hold it): other Python threads run while clipc embeds or searches.
"""
import ctypes
import ctypes.util
import os
import sys

_HERE = os.path.dirname(os.path.abspath(__file__))


class ClipcError(RuntimeError):
    """An error reported by libclipc; the message is the C library's (clipc_last_error)."""


def _candidates():
    env = os.environ.get("CLIPC_LIB")
    if env:
        yield env
        return  # an explicit choice: no silent fallback to another copy
    # running from the source tree (python/clipc): the freshly built build/libclipc.so
    root = os.path.dirname(os.path.dirname(_HERE))
    if os.path.exists(os.path.join(root, "include", "clipc.h")):
        yield os.path.join(root, "build", "libclipc.so")
    yield os.path.join(_HERE, "libclipc.so")  # installed with the package (make python-lib)
    found = ctypes.util.find_library("clipc")
    if found:
        yield found
    for prefix in dict.fromkeys([sys.prefix, "/usr/local", "/usr"]):  # `make install PREFIX=...`
        yield os.path.join(prefix, "lib", "libclipc.so")
    yield "libclipc.so"  # LD_LIBRARY_PATH and ld.so.cache


def _load():
    tried = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            tried.append(f"{path} (absent)")
            continue
        try:
            return ctypes.CDLL(path), path
        except OSError as e:
            tried.append(f"{path} ({e})")
    raise ImportError("clipc: cannot load libclipc.so; build it with `make` and/or set CLIPC_LIB. Tried: "
                      + "; ".join(tried))


lib, path = _load()

_c = ctypes
_P = _c.c_void_p
_F = _c.POINTER(_c.c_float)
_I = _c.POINTER(_c.c_int)
_LL = _c.POINTER(_c.c_longlong)
_STRS = _c.POINTER(_c.c_char_p)

_PROTOTYPES = {
    "clipc_open": (_P, [_c.c_char_p, _c.c_char_p]),
    "clipc_close": (None, [_P]),
    "clipc_dim": (_c.c_int, [_P]),
    "clipc_context_length": (_c.c_int, [_P]),
    "clipc_embed_texts": (_c.c_int, [_P, _STRS, _c.c_int, _F]),
    "clipc_embed_image_files": (_c.c_int, [_P, _STRS, _c.c_int, _F]),
    "clipc_embed_images_rgb": (_c.c_int, [_P, _c.c_int, _c.POINTER(_c.c_void_p), _I, _I, _F]),
    "clipc_image_size": (_c.c_int, [_P]),
    "clipc_embed_pixels": (_c.c_int, [_P, _c.c_int, _F, _F]),
    "clipc_tokenize": (_c.c_int, [_P, _STRS, _c.c_int, _I, _I]),
    "clipc_last_error": (_c.c_char_p, []),
    "clipc_set_threads": (None, [_c.c_int]),
    "clipc_index_new": (_P, [_c.c_char_p, _c.c_int, _c.c_int]),
    "clipc_index_train": (_c.c_int, [_P, _c.c_longlong, _F]),
    "clipc_index_add": (_c.c_int, [_P, _c.c_longlong, _F, _LL]),
    "clipc_index_remove": (_c.c_longlong, [_P, _c.c_longlong, _LL]),
    "clipc_index_search": (_c.c_int, [_P, _c.c_longlong, _F, _c.c_int, _F, _LL]),
    "clipc_index_set_param": (_c.c_int, [_P, _c.c_char_p, _c.c_longlong]),
    "clipc_index_save": (_c.c_int, [_P, _c.c_char_p]),
    "clipc_index_load": (_P, [_c.c_char_p]),
    "clipc_index_free": (None, [_P]),
    "clipc_index_count": (_c.c_longlong, [_P]),
    "clipc_index_dim": (_c.c_int, [_P]),
    "clipc_index_metric": (_c.c_int, [_P]),
    "clipc_index_desc": (_c.c_char_p, [_P]),
}

for _name, (_restype, _argtypes) in _PROTOTYPES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes


def last_error():
    message = lib.clipc_last_error()
    return message.decode("utf-8", "replace") if message else "unknown error"


def check(status, what):
    """Raises ClipcError with the C library's message when status is -1 (or NULL)."""
    if status is None or (isinstance(status, int) and status < 0):
        raise ClipcError(f"{what}: {last_error()}")
    return status
