"""clipc — CLIP image/text embeddings and vector indexes from Python, over libclipc.so (ctypes).

    import clipc
    m = clipc.Model("clip-vit-base-patch32")
    v = m.encode_image(["cat.jpg", rgb_uint8_array])   # float32 [n, dim], L2-normalised rows
    t = m.encode_text(["a photo of a cat"])
    ix = clipc.Index.build(v, "HNSW32")
    scores, ids = ix.search(t, k=5)

Threads: every call into the library releases the GIL (ctypes.CDLL). A Model serialises its own
calls with a lock (the C model is not thread-safe); use one Model per thread for parallel embedding.
An Index runs one call at a time (its lock), each search on all cores (OpenMP over the queries).
"""
import ctypes
import os
import threading

import numpy as np

from ._lib import ClipcError, check, lib, path as library_path

__all__ = ["Model", "Index", "ClipcError", "set_threads", "library_path"]
__version__ = "0.1.0"

_METRICS = {"ip": 0, "l2": 1}


def set_threads(n):
    """Threads the kernels use (0 = all cores)."""
    lib.clipc_set_threads(int(n))


def _as_list(items, single_types):
    if isinstance(items, single_types):
        return [items], True
    return list(items), False


def _c_strings(texts):
    encoded = [t.encode("utf-8") if isinstance(t, str) else bytes(t) for t in texts]
    for i, t in enumerate(encoded):
        if b"\0" in t:
            raise ValueError(f"text {i} contains a NUL character")
    return (ctypes.c_char_p * max(1, len(encoded)))(*encoded), encoded


def _float_ptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_float))


def _i64_ptr(a):
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_longlong))


def _rows(x, dim, what):
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    if x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        raise ValueError(f"{what}: expected an array [n, {dim if dim is not None else 'dim'}], got shape {x.shape}")
    return x


class Model:
    """A CLIP model directory (Hugging Face layout: config.json, model.safetensors, tokenizer files)."""

    def __init__(self, model_dir, device=None):
        self._lock = threading.Lock()
        self._handle = None
        handle = lib.clipc_open(os.fsencode(model_dir), device.encode() if device else None)
        if not handle:
            raise ClipcError(f"clipc.Model({str(model_dir)!r}): {_lib_error()}")
        self._handle = handle
        self.dim = lib.clipc_dim(handle)
        self.context_length = lib.clipc_context_length(handle)
        self.image_size = lib.clipc_image_size(handle)
        self.model_dir = os.fspath(model_dir)

    def close(self):
        with self._lock:
            if self._handle:
                lib.clipc_close(self._handle)
                self._handle = None

    def __del__(self):
        if getattr(self, "_handle", None):
            lib.clipc_close(self._handle)
            self._handle = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _live(self):
        if not self._handle:
            raise ClipcError("the model is closed")
        return self._handle

    def encode_text(self, texts):
        """Captions (a str or a list of str) -> float32 [n, dim], L2-normalised; long ones truncated."""
        texts, single = _as_list(texts, (str, bytes))
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        if texts:
            array, _keep = _c_strings(texts)
            with self._lock:
                check(lib.clipc_embed_texts(self._live(), array, len(texts), _float_ptr(out)), "encode_text")
        return out[0] if single else out

    def tokenize(self, texts, return_eot=False):
        """clip.tokenize: int32 [n, context_length] (start, tokens, end, zero padding); with return_eot,
        also the int32 [n] positions of the end tokens (where the text tower pools)."""
        texts, _single = _as_list(texts, (str, bytes))
        ids = np.zeros((len(texts), self.context_length), dtype=np.int32)
        eot = np.zeros(len(texts), dtype=np.int32)
        if texts:
            array, _keep = _c_strings(texts)
            int_p = ctypes.POINTER(ctypes.c_int)
            with self._lock:
                check(lib.clipc_tokenize(self._live(), array, len(texts), ids.ctypes.data_as(int_p),
                                         eot.ctypes.data_as(int_p)), "tokenize")
        return (ids, eot) if return_eot else ids

    def encode_image(self, images):
        """Images -> float32 [n, dim], L2-normalised. Each image is a file path (JPEG or PNG, decoded by
        clipc) or an HxWx3 uint8 RGB array (e.g. np.asarray(PIL.Image.open(p).convert("RGB"))); a uint8
        array [n, H, W, 3] is n images."""
        if isinstance(images, np.ndarray) and images.ndim == 4:  # a batch [n, H, W, 3]
            images = list(images)
        images, single = _as_list(images, (str, bytes, os.PathLike, np.ndarray))
        out = np.empty((len(images), self.dim), dtype=np.float32)
        paths = [i for i, x in enumerate(images) if not isinstance(x, np.ndarray)]
        arrays = [i for i, x in enumerate(images) if isinstance(x, np.ndarray)]
        if paths:
            out[paths] = self._encode_files([os.fsencode(images[i]) for i in paths])
        if arrays:
            out[arrays] = self._encode_arrays([images[i] for i in arrays], arrays)
        return out[0] if single else out

    def encode_pixels(self, pixels):
        """Preprocessed images, float32 [n, 3, S, S] (S = image_size; CLIP's resize, crop and mean/std,
        e.g. from CLIPImageProcessor) -> float32 [n, dim], L2-normalised."""
        x = np.ascontiguousarray(pixels, dtype=np.float32)
        single = x.ndim == 3
        if single:
            x = x[None]
        want = (3, self.image_size, self.image_size)
        if x.ndim != 4 or x.shape[1:] != want:
            raise ValueError(f"encode_pixels: expected [n, {want[0]}, {want[1]}, {want[2]}], got {x.shape}")
        out = np.empty((x.shape[0], self.dim), dtype=np.float32)
        if x.shape[0]:
            with self._lock:
                check(lib.clipc_embed_pixels(self._live(), x.shape[0], _float_ptr(x), _float_ptr(out)), "encode_pixels")
        return out[0] if single else out

    def _encode_files(self, paths):
        out = np.empty((len(paths), self.dim), dtype=np.float32)
        array = (ctypes.c_char_p * len(paths))(*paths)
        with self._lock:
            check(lib.clipc_embed_image_files(self._live(), array, len(paths), _float_ptr(out)), "encode_image")
        return out

    def _encode_arrays(self, arrays, positions):
        kept = []
        for a, at in zip(arrays, positions):
            if a.dtype != np.uint8 or a.ndim != 3 or a.shape[2] != 3:
                raise ValueError(f"image {at}: expected an HxWx3 uint8 RGB array, got {a.dtype} {a.shape}")
            kept.append(np.ascontiguousarray(a))
        n = len(kept)
        pointers = (ctypes.c_void_p * n)(*[a.ctypes.data for a in kept])
        heights = (ctypes.c_int * n)(*[a.shape[0] for a in kept])
        widths = (ctypes.c_int * n)(*[a.shape[1] for a in kept])
        out = np.empty((n, self.dim), dtype=np.float32)
        with self._lock:
            check(lib.clipc_embed_images_rgb(self._live(), n, pointers, widths, heights, _float_ptr(out)),
                  "encode_image")
        return out


def _lib_error():
    from ._lib import last_error
    return last_error()


class Index:
    """A clipc vector index (the same files as `clipc index build/search`)."""

    def __init__(self, handle):
        if not handle:
            raise ClipcError(_lib_error())
        self._handle = handle
        self._lock = threading.Lock()

    @classmethod
    def create(cls, desc, dim, metric="ip"):
        """An empty index: desc as faiss's factory ("Flat", "HNSW32", "IVF64,Flat", "IVF64,PQ8", ...)."""
        if metric not in _METRICS:
            raise ValueError(f"metric must be 'ip' or 'l2', not {metric!r}")
        handle = lib.clipc_index_new(desc.encode(), int(dim), _METRICS[metric])
        if not handle:
            raise ClipcError(f"Index.create({desc!r}): {_lib_error()}")
        return cls(handle)

    @classmethod
    def build(cls, vectors, desc="Flat", metric="ip", ids=None):
        """create + train (IVF/PQ types, on all vectors) + add."""
        x = _rows(vectors, None, "Index.build vectors")
        index = cls.create(desc, x.shape[1], metric)
        index.train(x)
        index.add(x, ids)
        return index

    @classmethod
    def load(cls, path):
        handle = lib.clipc_index_load(os.fsencode(path))
        if not handle:
            raise ClipcError(f"Index.load({os.fspath(path)!r}): {_lib_error()}")
        return cls(handle)

    def __del__(self):
        if getattr(self, "_handle", None):
            lib.clipc_index_free(self._handle)
            self._handle = None

    @property
    def dim(self):
        return lib.clipc_index_dim(self._handle)

    @property
    def metric(self):
        return "l2" if lib.clipc_index_metric(self._handle) == 1 else "ip"

    @property
    def desc(self):
        return lib.clipc_index_desc(self._handle).decode()

    def __len__(self):
        return int(lib.clipc_index_count(self._handle))

    def __repr__(self):
        return f"clipc.Index({self.desc!r}, dim={self.dim}, metric={self.metric!r}, count={len(self)})"

    def train(self, vectors):
        x = _rows(vectors, self.dim, "train vectors")
        with self._lock:
            check(lib.clipc_index_train(self._handle, x.shape[0], _float_ptr(x)), "Index.train")

    def add(self, vectors, ids=None):
        """Adds rows; ids None numbers them in insertion order, else one distinct int >= 0 per row."""
        x = _rows(vectors, self.dim, "vectors")
        id_array = None
        if ids is not None:
            id_array = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
            if id_array.shape[0] != x.shape[0]:
                raise ValueError(f"{x.shape[0]} vectors but {id_array.shape[0]} ids")
        with self._lock:
            check(lib.clipc_index_add(self._handle, x.shape[0], _float_ptr(x),
                                      _i64_ptr(id_array) if id_array is not None else None), "Index.add")

    def remove(self, ids):
        """Removes ids (unknown ones ignored); returns how many were removed."""
        id_array = np.ascontiguousarray(ids, dtype=np.int64).reshape(-1)
        with self._lock:
            return int(check(lib.clipc_index_remove(self._handle, id_array.shape[0], _i64_ptr(id_array)),
                             "Index.remove"))

    def search(self, queries, k=10):
        """-> (scores float32 [nq, k], ids int64 [nq, k]), best first; id -1 where there is none.
        Scores: inner product (higher is better) or squared L2 (lower is better)."""
        q = _rows(queries, self.dim, "queries")
        scores = np.empty((q.shape[0], k), dtype=np.float32)
        ids = np.empty((q.shape[0], k), dtype=np.int64)
        with self._lock:  # never overlapping an add/remove (the C search itself runs on all threads)
            check(lib.clipc_index_search(self._handle, q.shape[0], _float_ptr(q), int(k), _float_ptr(scores),
                                         _i64_ptr(ids)), "Index.search")
        return scores, ids

    def set_param(self, name, value):
        """Search defaults: "nprobe" (IVF), "efSearch" (HNSW), "rerank" (RFlat)."""
        with self._lock:
            check(lib.clipc_index_set_param(self._handle, name.encode(), int(value)), f"Index.set_param({name!r})")

    def save(self, path):
        """Writes the index file (atomically: a temp file, then rename)."""
        with self._lock:
            check(lib.clipc_index_save(self._handle, os.fsencode(path)), "Index.save")
