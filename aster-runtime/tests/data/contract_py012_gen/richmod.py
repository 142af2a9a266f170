"""Field-mapping coverage for aster 0.1.2. Module 'richmod', tag namespace 'rich'."""
import datetime
import enum
import typing
from dataclasses import dataclass, field
from typing import Any, Optional, Union

import pyfory
from aster.codec import wire_type


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Level(enum.IntEnum):
    LOW = 0
    HIGH = 5


@wire_type("rich/Leaf")
@dataclass
class Leaf:
    id: str = ""


@wire_type("rich/Hidden")
@dataclass
class Hidden:
    """Only reachable through list[list[Hidden]] (an ANY field)."""
    n: int = 0


@wire_type("rich/KeyType")
@dataclass(frozen=True)
class KeyType:
    k: str = ""


@wire_type("rich/Rich")
@dataclass
class Rich:
    s: str = ""
    i: int = 0
    f: float = 0.0
    b: bool = False
    by: bytes = b""
    ba: bytearray = field(default_factory=bytearray)
    o_s: Optional[str] = None
    o_ref: Optional[Leaf] = None
    pipe_opt: int | None = None
    l_i: list[int] = field(default_factory=list)
    l_ref: list[Leaf] = field(default_factory=list)
    typing_list: typing.List[float] = field(default_factory=list)
    set_s: set[str] = field(default_factory=set)
    fs: frozenset[int] = field(default_factory=frozenset)
    m_si: dict[str, int] = field(default_factory=dict)
    m_s_ref: dict[str, Leaf] = field(default_factory=dict)
    m_ref_b: dict[KeyType, bool] = field(default_factory=dict)
    m_i_opt: dict[int, Optional[str]] = field(default_factory=dict)
    color: Color = Color.RED
    level: Level = Level.LOW
    o_color: Optional[Color] = None
    l_color: list[Color] = field(default_factory=list)
    m_color: dict[str, Color] = field(default_factory=dict)
    opt_list: Optional[list[str]] = None
    list_opt: list[Optional[str]] = field(default_factory=list)
    nested: list[list[int]] = field(default_factory=list)
    nested_hidden: list[list[Hidden]] = field(default_factory=list)
    any_: Any = None
    i32: pyfory.int32 = 0
    i8: pyfory.int8 = 0
    i16: pyfory.int16 = 0
    i64: pyfory.int64 = 0
    f32: pyfory.float32 = 0.0
    f64: pyfory.float64 = 0.0
    tup: tuple[int, str] = (0, "")
    uni: Union[int, str] = 0
    dt: datetime.datetime = None
    me: Optional["Rich"] = None
    m_me: dict[str, "Rich"] = field(default_factory=dict)
    k_me: dict["Rich", int] = field(default_factory=dict)
    l_me: list["Rich"] = field(default_factory=list)


@wire_type("rich/Empty")
@dataclass
class Empty:
    pass


@wire_type("rich/X")
@dataclass
class X:
    """SCC through an ANY-typed edge: X.ys is ANY but still a graph edge."""
    ys: list[list["Y"]] = field(default_factory=list)


@wire_type("rich/Y")
@dataclass
class Y:
    x: Optional[X] = None
