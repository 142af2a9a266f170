"""Types for the XLANG vectors (aster-runtime/src/codec/xlang.rs tests).

Registered the way aster-rpc 0.1.2 registers them (`aster.codec.ForyCodec` in XLANG mode):
dataclasses by their `@wire_type` tag, enums by module/qualname (namespace "xtypes").
The seven `taskmgr/*` types mirror ../../../../../shared/interop/taskmanager.py (same tags,
same fields) so the generator does not depend on files outside the project.
"""
import enum
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Set

import pyfory
from aster.codec import wire_type


# ── taskmgr (mirrors shared/interop/taskmanager.py) ─────────────────────────

@wire_type("taskmgr/TaskAssignment")
@dataclass
class TaskAssignment:
    task_id: str = ""
    title: str = ""
    priority: int = 0
    tags: list[str] = field(default_factory=list)


@wire_type("taskmgr/TaskAck")
@dataclass
class TaskAck:
    task_id: str = ""
    accepted: bool = False
    worker: str = ""


@wire_type("taskmgr/ProgressRequest")
@dataclass
class ProgressRequest:
    task_id: str = ""
    steps: int = 0


@wire_type("taskmgr/ProgressUpdate")
@dataclass
class ProgressUpdate:
    task_id: str = ""
    step: int = 0
    percent: float = 0.0
    note: str = ""


@wire_type("taskmgr/StepUpload")
@dataclass
class StepUpload:
    task_id: str = ""
    step: int = 0
    data: bytes = b""


@wire_type("taskmgr/UploadSummary")
@dataclass
class UploadSummary:
    task_id: str = ""
    steps_received: int = 0
    total_bytes: int = 0


@wire_type("taskmgr/ChatMessage")
@dataclass
class ChatMessage:
    sender: str = ""
    text: str = ""
    seq: int = 0


# ── enums (registered by module/qualname: namespace "xtypes") ───────────────

class Color(enum.Enum):
    # values are irrelevant on the wire: pyfory writes the declaration index
    RED = "red"
    GREEN = "green"
    BLUE = "blue"


class Priority(enum.IntEnum):
    LOW = 10
    HIGH = 20
    URGENT = 30
    CRITICAL = 30  # alias of URGENT: not a member of its own, no ordinal


# ── field-type coverage ─────────────────────────────────────────────────────

@wire_type("xt/Inner")
@dataclass
class Inner:
    id: int = 0
    name: str = ""


@wire_type("xt/Scalars")
@dataclass
class Scalars:
    flag: bool = False
    count: int = 0
    small: pyfory.int32 = 0
    ratio: float = 0.0
    text: str = ""
    blob: bytes = b""
    color: Color = Color.RED
    level: Priority = Priority.LOW


@wire_type("xt/Optionals")
@dataclass
class Optionals:
    o_flag: Optional[bool] = None
    o_count: Optional[int] = None
    o_small: Optional[pyfory.int32] = None
    o_ratio: Optional[float] = None
    o_text: Optional[str] = None
    o_blob: Optional[bytes] = None
    o_list: Optional[List[str]] = None
    o_set: Optional[Set[int]] = None
    o_map: Optional[Dict[str, int]] = None
    o_inner: Optional[Inner] = None
    o_color: Optional[Color] = None


@wire_type("xt/Lists")
@dataclass
class Lists:
    strs: List[str] = field(default_factory=list)
    ints: List[int] = field(default_factory=list)
    smalls: List[pyfory.int32] = field(default_factory=list)
    floats: List[float] = field(default_factory=list)
    flags: List[bool] = field(default_factory=list)
    blobs: List[bytes] = field(default_factory=list)
    nested: List[List[str]] = field(default_factory=list)
    inners: List[Inner] = field(default_factory=list)
    maybe_inners: List[Optional[Inner]] = field(default_factory=list)
    maybe_strs: List[Optional[str]] = field(default_factory=list)
    colors: List[Color] = field(default_factory=list)


@wire_type("xt/SetsMaps")
@dataclass
class SetsMaps:
    str_set: Set[str] = field(default_factory=set)
    int_set: Set[int] = field(default_factory=set)
    counts: Dict[str, int] = field(default_factory=dict)
    names: Dict[int, str] = field(default_factory=dict)
    by_name: Dict[str, Inner] = field(default_factory=dict)
    maybe: Dict[str, Optional[str]] = field(default_factory=dict)
    groups: Dict[str, List[int]] = field(default_factory=dict)
    colors: Dict[str, Color] = field(default_factory=dict)
    nested: Dict[str, Dict[str, int]] = field(default_factory=dict)


@wire_type("xt/Nested")
@dataclass
class Nested:
    first: Inner = field(default_factory=Inner)
    second: Inner = field(default_factory=Inner)
    maybe: Optional[Inner] = None
    items: List[Inner] = field(default_factory=list)
    child: Optional["Nested"] = None
    color: Color = Color.RED
    label: str = ""


@wire_type("xt/Texts")
@dataclass
class Texts:
    ascii: str = ""
    latin: str = ""
    bmp: str = ""
    astral: str = ""
    mixed: str = ""


@wire_type("Bare")
@dataclass
class Bare:
    x: int = 0


@wire_type("xt/Empty")
@dataclass
class Empty:
    pass


@wire_type("com.example.deeply_nested.namespace/Type_With_Digits2")
@dataclass
class LongNames:
    value: int = 0
    inner: Optional[Inner] = None


@wire_type("xt/Holder")
@dataclass
class Holder:
    empty: Empty = field(default_factory=Empty)
    bare: Bare = field(default_factory=Bare)
    bares: List[Bare] = field(default_factory=list)
    long: LongNames = field(default_factory=LongNames)
    again: Optional[LongNames] = None
    nothing: Inner = None  # non-Optional struct field holding None (a common Python idiom)


ROOT_TYPES = [
    TaskAssignment, TaskAck, ProgressRequest, ProgressUpdate, StepUpload, UploadSummary, ChatMessage,
    Inner, Scalars, Optionals, Lists, SetsMaps, Nested, Texts, Bare, Empty, LongNames, Holder,
]
