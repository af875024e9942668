"""Datasets: bundled, procedural and a user's own files; splits, batches and BPTT windows.

A layer above the engine that needs only numpy: everything here is plain arrays.
"""

from bpcli.data.batching import batchify, bptt_windows, iter_batches, n_batches, n_bptt_windows
from bpcli.data.bundled import austen_text, load_austen, load_digits
from bpcli.data.dataset import TASKS, Dataset, align_classes, one_hot
from bpcli.data.digits1d import digits1d
from bpcli.data.idx import load_idx, read_idx
from bpcli.data.images import load_image_folder
from bpcli.data.loaders import load_csv, load_npy_folder, load_npz
from bpcli.data.split import Splits, Standardizer, split, split_indices, standardize
from bpcli.data.synthetic import circles, moons, sine, spirals, xor
from bpcli.data.text import Vocab, load_text, stream_of, text_dataset, vocab_of

__all__ = [
    "TASKS",
    "Dataset",
    "Splits",
    "Standardizer",
    "Vocab",
    "align_classes",
    "austen_text",
    "batchify",
    "bptt_windows",
    "circles",
    "digits1d",
    "iter_batches",
    "load_austen",
    "load_csv",
    "load_digits",
    "load_idx",
    "load_image_folder",
    "load_npy_folder",
    "load_npz",
    "load_text",
    "moons",
    "n_batches",
    "n_bptt_windows",
    "one_hot",
    "read_idx",
    "sine",
    "spirals",
    "split",
    "split_indices",
    "standardize",
    "stream_of",
    "text_dataset",
    "vocab_of",
    "xor",
]
