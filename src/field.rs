//! [`AsterField`]: how a Rust type appears as a field of an `AsterType`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use aster_runtime::Status;
use aster_runtime::codec::native::NativeRegistrar;
use aster_runtime::codec::xlang::XlangType;
use aster_runtime::contract::FieldType;
use aster_runtime::contract::primitive as p;

/// A type usable as a field of an `AsterType`: its contract field type, its NATIVE (fory)
/// registration and its XLANG type.
///
/// `#[derive(AsterType)]` calls `<FieldTy as AsterField>::field_type()`, `register_native`
/// and [`XLANG`](AsterField::XLANG) for every field, so field types are resolved by the
/// compiler (aliases, qualified paths and nested generics all work). Implemented here for the
/// supported std types and by the derive for every AsterType; implement it yourself for
/// another type that serde and fory already handle (typically mapping it to
/// [`FieldType::Any`]). Such a type also needs
/// [`XlangValue`](aster_runtime::codec::xlang::XlangValue) to be a field of a derived type;
/// without an XLANG form, keep the default `XLANG` and make the `XlangValue` methods return an
/// `UNIMPLEMENTED` status.
///
/// # XLANG
///
/// `XLANG` is what pyfory 0.16 makes of the Python annotation the field corresponds to; it
/// decides the struct hash, the field order and the bytes
/// (see [`aster_runtime::codec::xlang`]):
///
/// | Rust | XLANG | Python |
/// |---|---|---|
/// | `String` | `String` | `str` |
/// | `bool` | `Bool` | `bool` |
/// | `i64`, and `i8`, `i16`, `u8`, `u16`, `u32`, `u64` (range-checked) | `Int64` (zigzag var-int64) | `int` |
/// | `i32` | `Int32` (zigzag var-int32) | `pyfory.int32` |
/// | `f64`, `f32` (rounded when read) | `Float64` | `float` |
/// | `Vec<u8>` | `Binary` | `bytes` |
/// | `Vec<T>` | `List(T)` | `list[T]` |
/// | `HashSet<T>`, `BTreeSet<T>` | `Set(T)` | `set[T]` |
/// | `HashMap<K, V>`, `BTreeMap<K, V>` | `Map(K, V)` | `dict[K, V]` |
/// | `Option<T>` | `Optional(T)` | `Optional[T]` |
/// | `Box<T>` | `T` | `T` |
/// | tagged AsterType struct | `Struct` (its tag, its struct hash) | `@wire_type` dataclass |
/// | AsterType enum | `Enum` (written as the variant's declaration index) | `enum.Enum` |
/// | `()`, untagged AsterType struct | `Unsupported`: XLANG answers `UNIMPLEMENTED` | — |
///
/// `Option<Option<T>>` and `Option` map keys have no XLANG form either (`UNIMPLEMENTED`). The
/// integer widths that Python lacks travel as `int`: a value out of the Rust type's range is
/// `INVALID_ARGUMENT` when read, a `u64` above `i64::MAX` when written. Use `i32` only where
/// the Python field is annotated `pyfory.int32`, and `i64` for a plain `int`.
///
/// The mapping (with what the 0.1.2 profile makes of it) is documented in
/// [`aster_runtime::contract::describe`]; in short: `String`, `bool`, `i64`, `f64`, `Vec<u8>`
/// and `()` are the primitives `string`, `bool`, `int64`, `float64`, `binary` and `null`
/// (Python `str`, `bool`, `int`, `float`, `bytes`, `None`); the other integer widths and `f32`
/// are primitives that 0.1.2 contracts record as ANY; `Vec<T>`, `HashSet`/`BTreeSet`,
/// `HashMap`/`BTreeMap` and `Option<T>` are list, set, map and optional; `Box<T>` is `T`; an
/// AsterType (struct or enum) is a reference to its description (an enum is ANY under 0.1.2).
///
/// NATIVE note: fory 1.7.7 cannot encode a type that contains itself through `Box`
/// (`Option<Box<Self>>`: its size estimate recurses forever); recursion through `Vec<Self>`
/// or a map works.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a field of an AsterType",
    label = "unsupported field type",
    note = "supported: String, bool, integers, f32, f64, (), Vec<u8>, Vec<T>, Option<T>, Box<T>, HashMap/BTreeMap<K, V>, \
            HashSet/BTreeSet<T>, and types deriving AsterType (or implement `aster::AsterField` for it)"
)]
pub trait AsterField {
    /// The contract field type.
    fn field_type() -> FieldType;

    /// Registers the fory types this type needs for NATIVE mode (itself and, recursively, the
    /// types of its fields). Primitives and std containers of primitives need nothing.
    fn register_native(registrar: &mut NativeRegistrar<'_>) -> Result<(), Status> {
        let _ = registrar;
        Ok(())
    }

    /// The field type of `Vec<Self>` (a list, except `Vec<u8>` = binary).
    #[doc(hidden)]
    fn vec_field_type() -> FieldType {
        FieldType::List(Box::new(Self::field_type()))
    }

    /// The XLANG type of a field of this type (see the table above). The default says the
    /// type has none: a struct with such a field answers XLANG with `UNIMPLEMENTED`.
    const XLANG: XlangType =
        XlangType::Unsupported("the field type does not declare an XLANG type (AsterField::XLANG)");

    /// The XLANG type of `Vec<Self>` (a list, except `Vec<u8>` = binary).
    #[doc(hidden)]
    const XLANG_VEC: XlangType = XlangType::List(&Self::XLANG);
}

macro_rules! primitive {
    ($($ty:ty => $name:expr, $xlang:expr;)*) => {$(
        impl AsterField for $ty {
            fn field_type() -> FieldType {
                FieldType::Primitive($name)
            }

            const XLANG: XlangType = $xlang;
        }
    )*};
}

primitive! {
    String => p::STRING, XlangType::String;
    bool => p::BOOL, XlangType::Bool;
    i8 => p::INT8, XlangType::Int64;
    i16 => p::INT16, XlangType::Int64;
    i32 => p::INT32, XlangType::Int32;
    i64 => p::INT64, XlangType::Int64;
    u16 => p::UINT16, XlangType::Int64;
    u32 => p::UINT32, XlangType::Int64;
    u64 => p::UINT64, XlangType::Int64;
    f32 => p::FLOAT32, XlangType::Float64;
    f64 => p::FLOAT64, XlangType::Float64;
    () => p::NULL, XlangType::Unsupported("() has no XLANG form");
}

/// `u8`; `Vec<u8>` is `binary` (Python `bytes`), not a list of `u8`.
impl AsterField for u8 {
    fn field_type() -> FieldType {
        FieldType::Primitive(p::UINT8)
    }

    fn vec_field_type() -> FieldType {
        FieldType::Primitive(p::BINARY)
    }

    const XLANG: XlangType = XlangType::Int64;
    const XLANG_VEC: XlangType = XlangType::Binary;
}

impl<T: AsterField> AsterField for Vec<T> {
    fn field_type() -> FieldType {
        T::vec_field_type()
    }

    const XLANG: XlangType = T::XLANG_VEC;

    fn register_native(registrar: &mut NativeRegistrar<'_>) -> Result<(), Status> {
        T::register_native(registrar)
    }
}

impl<T: AsterField> AsterField for Option<T> {
    fn field_type() -> FieldType {
        FieldType::Optional(Box::new(T::field_type()))
    }

    const XLANG: XlangType = XlangType::Optional(&T::XLANG);

    fn register_native(registrar: &mut NativeRegistrar<'_>) -> Result<(), Status> {
        T::register_native(registrar)
    }
}

impl<T: AsterField> AsterField for Box<T> {
    fn field_type() -> FieldType {
        T::field_type()
    }

    const XLANG: XlangType = T::XLANG;

    fn register_native(registrar: &mut NativeRegistrar<'_>) -> Result<(), Status> {
        T::register_native(registrar)
    }
}

macro_rules! set {
    ($($set:ident),*) => {$(
        impl<T: AsterField, S> AsterField for $set<T, S> {
            fn field_type() -> FieldType {
                FieldType::Set(Box::new(T::field_type()))
            }

            const XLANG: XlangType = XlangType::Set(&T::XLANG);

            fn register_native(registrar: &mut NativeRegistrar<'_>) -> Result<(), Status> {
                T::register_native(registrar)
            }
        }
    )*};
}

macro_rules! map {
    ($($map:ident),*) => {$(
        impl<K: AsterField, V: AsterField, S> AsterField for $map<K, V, S> {
            fn field_type() -> FieldType {
                FieldType::Map(Box::new(K::field_type()), Box::new(V::field_type()))
            }

            const XLANG: XlangType = XlangType::Map(&K::XLANG, &V::XLANG);

            fn register_native(registrar: &mut NativeRegistrar<'_>) -> Result<(), Status> {
                K::register_native(registrar)?;
                V::register_native(registrar)
            }
        }
    )*};
}

set!(HashSet);
map!(HashMap);

impl<T: AsterField> AsterField for BTreeSet<T> {
    fn field_type() -> FieldType {
        FieldType::Set(Box::new(T::field_type()))
    }

    const XLANG: XlangType = XlangType::Set(&T::XLANG);

    fn register_native(registrar: &mut NativeRegistrar<'_>) -> Result<(), Status> {
        T::register_native(registrar)
    }
}

impl<K: AsterField, V: AsterField> AsterField for BTreeMap<K, V> {
    fn field_type() -> FieldType {
        FieldType::Map(Box::new(K::field_type()), Box::new(V::field_type()))
    }

    const XLANG: XlangType = XlangType::Map(&K::XLANG, &V::XLANG);

    fn register_native(registrar: &mut NativeRegistrar<'_>) -> Result<(), Status> {
        K::register_native(registrar)?;
        V::register_native(registrar)
    }
}
