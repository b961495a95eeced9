"""The log: the only source of truth.

Event types and their codec, the writer that appends them (envelope, clock, checksum chain),
the reader that replays them, the label log, and the store backends that hold the bytes. May
import ``joshreg.errors`` and nothing else of joshreg: everything above builds on it.
"""
