"""Types shaped like the B.* canonical vectors: module name 'example' so that FQN == 'example.<Name>'."""
from dataclasses import dataclass, field
from typing import Optional
from aster.codec import wire_type


@wire_type("example/TreeNode")
@dataclass
class TreeNode:
    value: str = ""
    left: Optional["TreeNode"] = None
    right: Optional["TreeNode"] = None


@wire_type("example/Author")
@dataclass
class Author:
    name: str = ""
    books: list["Book"] = field(default_factory=list)


@wire_type("example/Book")
@dataclass
class Book:
    title: str = ""
    written_by: Author = None


@wire_type("example/Alpha")
@dataclass
class Alpha:
    next: "Beta" = None


@wire_type("example/Beta")
@dataclass
class Beta:
    next: "Gamma" = None


@wire_type("example/Gamma")
@dataclass
class Gamma:
    next: Alpha = None


@wire_type("example/A")
@dataclass
class A:
    b_field: "B" = None
    c_field: "C" = None


@wire_type("example/B")
@dataclass
class B:
    c_field: "C" = None


@wire_type("example/C")
@dataclass
class C:
    a_field: A = None


@wire_type("example/Forest")
@dataclass
class Forest:
    """Outside the cycles: REFs into completed SCCs carry real hashes."""
    root: Optional[TreeNode] = None
    library: list[Author] = field(default_factory=list)
    alpha: Alpha = None
    a: A = None
