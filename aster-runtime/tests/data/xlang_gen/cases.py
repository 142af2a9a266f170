"""The values encoded by gen.py (and compared against by check_rust.py).

Dicts are built in ascending key order so that a Rust BTreeMap re-encodes them byte for byte
(pyfory writes dicts in insertion order). Sets with more than one element are written in
Python's hash order, so those cases are marked inexact (decode-only on the Rust side).
"""
from xtypes import (Bare, ChatMessage, Color, Empty, Holder, Inner, Lists, LongNames, Nested,
                    Optionals, Priority, ProgressRequest, ProgressUpdate, Scalars, SetsMaps,
                    StepUpload, TaskAck, TaskAssignment, Texts, UploadSummary)

I64_MIN, I64_MAX = -(1 << 63), (1 << 63) - 1
I32_MIN, I32_MAX = -(1 << 31), (1 << 31) - 1


def cases():
    """(name, value) pairs; names are unique."""
    out = []

    def add(name, value):
        out.append((name, value))

    # taskmgr
    add("task_assignment", TaskAssignment("t-1", "write report", 2, ["docs", "urgent"]))
    add("task_assignment_default", TaskAssignment())
    add("task_assignment_long_title", TaskAssignment("t-big", "x" * 5000, -7, []))
    add("task_assignment_unicode", TaskAssignment("t-ü", "Grüße, 世界 😀", 1 << 40, ["ß", "日本", "😀"]))
    add("task_ack", TaskAck("t-1", True, "py-worker-1"))
    add("task_ack_default", TaskAck())
    add("progress_request", ProgressRequest("t-1", 3))
    add("progress_update", ProgressUpdate("t-1", 1, 100.0 / 3, "ok"))
    add("progress_update_negative_zero", ProgressUpdate("", -1, -0.0, ""))
    add("step_upload", StepUpload("t-1", 2, bytes(range(256))))
    add("upload_summary", UploadSummary("t-1", 3, I64_MAX))
    add("chat_message", ChatMessage("client", "hello", I64_MIN))

    # scalars
    add("scalars_default", Scalars())
    add("scalars_max", Scalars(True, I64_MAX, I32_MAX, 1.7976931348623157e308, "abc", b"\x00\xff", Color.BLUE, Priority.URGENT))
    add("scalars_min", Scalars(False, I64_MIN, I32_MIN, 5e-324, "", b"", Color.GREEN, Priority.HIGH))
    add("scalars_misc", Scalars(True, -1, -1, 0.1, "é", b"\x7f", Color.RED, Priority.CRITICAL))
    add("scalars_varint_edges", Scalars(False, 1 << 56, 1 << 30, -2.5, "ā", b"x" * 300, Color.RED, Priority.LOW))

    # optionals
    add("optionals_absent", Optionals())
    add("optionals_present", Optionals(True, -5, 7, 2.5, "opt", b"\x01\x02", ["a", "b"], {42}, {"a": 1, "b": 2}, Inner(9, "nine"), Color.GREEN))
    add("optionals_present_empty", Optionals(False, 0, 0, 0.0, "", b"", [], set(), {}, Inner(), Color.RED))

    # lists
    add("lists_empty", Lists())
    add("lists_full", Lists(
        strs=["a", "é", "ā", "😀", ""],
        ints=[0, 1, -1, I64_MAX, I64_MIN, 300],
        smalls=[0, I32_MAX, I32_MIN, -3],
        floats=[0.0, -1.5, 1e100],
        flags=[True, False, True],
        blobs=[b"", b"ab", bytes(200)],
        nested=[["x"], [], ["y", "z"]],
        inners=[Inner(1, "one"), Inner(2, "two")],
        maybe_inners=[Inner(3, "three"), None, Inner(4, "")],
        maybe_strs=["p", None, "q"],
        colors=[Color.BLUE, Color.RED, Color.GREEN, Color.BLUE],
    ))
    add("lists_optional_elements_without_null", Lists(maybe_inners=[Inner(5, "five")], maybe_strs=["only"]))
    add("lists_long", Lists(ints=list(range(-200, 200)), strs=[str(i) for i in range(300)]))

    # sets and maps
    add("sets_maps_empty", SetsMaps())
    add("sets_maps_single", SetsMaps(
        str_set={"solo"},
        int_set={-7},
        counts={"a": 1, "b": -2, "c": I64_MAX},
        names={-1: "minus one", 0: "zero", 1 << 40: "big"},
        by_name={"x": Inner(1, "x"), "y": Inner(2, "y")},
        maybe={"a": "A", "b": None, "c": "C", "d": None, "e": None, "f": "F"},
        groups={"even": [0, 2, 4], "none": [], "odd": [1, 3]},
        colors={"bg": Color.BLUE, "fg": Color.GREEN},
        nested={"outer": {"i1": 1, "i2": 2}, "zempty": {}},
    ))
    add("sets_maps_multi_sets", SetsMaps(str_set={"alpha", "beta", "gamma"}, int_set={3, 1, 2}))
    add("sets_maps_big_map", SetsMaps(counts={f"k{i:04d}": i for i in range(600)}))
    add("sets_maps_map_null_runs", SetsMaps(maybe={f"k{i:03d}": (None if i % 100 == 7 else str(i)) for i in range(300)}))

    # nesting, meta-string back-references
    add("nested_simple", Nested(Inner(1, "a"), Inner(2, "b"), None, [], None, Color.RED, "top"))
    add("nested_full", Nested(
        first=Inner(1, "a"),
        second=Inner(2, "b"),
        maybe=Inner(3, "c"),
        items=[Inner(4, "d"), Inner(5, "e")],
        child=Nested(Inner(6, "f"), Inner(7, "g"), Inner(8, "h"), [Inner(9, "i")],
                     Nested(Inner(10, "j"), Inner(11, "k"), None, [], None, Color.GREEN, "leaf"),
                     Color.BLUE, "middle"),
        color=Color.BLUE,
        label="root",
    ))
    add("holder_default", Holder())
    add("holder_full", Holder(Empty(), Bare(-9), [Bare(1), Bare(2)], LongNames(5, Inner(1, "in")), LongNames(6, None), Inner(7, "seven")))
    add("bare", Bare(123456789))
    add("empty", Empty())
    add("long_names", LongNames(-1, Inner(2, "two")))
    add("inner", Inner(-42, "answer"))

    # strings: > 4096 bytes, every pyfory string encoding
    add("texts_long", Texts(
        ascii="a" * 6000,
        latin="é" * 6000,
        bmp="ā" * 6000,
        astral="😀" * 6000,
        mixed=("abc é ā 日本 " * 500) + "😀",
    ))
    add("texts_short", Texts("plain", "naïve café ÿ", "Ωμέγα 日本語 ключ", "𝄞 music", "a\u0000b\u007f\u0080\uffff"))
    return out


def is_exact(value):
    """False when pyfory's bytes depend on Python's set iteration order (set of > 1 element)."""
    import dataclasses
    if isinstance(value, (set, frozenset)):
        return len(value) <= 1 and all(is_exact(v) for v in value)
    if isinstance(value, dict):
        return all(is_exact(v) for v in value.values())
    if isinstance(value, list):
        return all(is_exact(v) for v in value)
    if dataclasses.is_dataclass(value):
        return all(is_exact(getattr(value, f.name)) for f in dataclasses.fields(value))
    return True
