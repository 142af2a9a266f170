//! [`AsterField`]: how a Rust type appears as a field of an `AsterType`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use aster_runtime::Status;
use aster_runtime::codec::native::NativeRegistrar;
use aster_runtime::contract::FieldType;
use aster_runtime::contract::primitive as p;

/// A type usable as a field of an `AsterType`: its contract field type and its NATIVE
/// (fory) registration.
///
/// `#[derive(AsterType)]` calls `<FieldTy as AsterField>::field_type()` and
/// `register_native` for every field, so field types are resolved by the compiler (aliases,
/// qualified paths and nested generics all work). Implemented here for the supported std
/// types and by the derive for every AsterType; implement it yourself for another type that
/// serde and fory already handle (typically mapping it to [`FieldType::Any`]).
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
}

macro_rules! primitive {
    ($($ty:ty => $name:expr),* $(,)?) => {$(
        impl AsterField for $ty {
            fn field_type() -> FieldType {
                FieldType::Primitive($name)
            }
        }
    )*};
}

primitive! {
    String => p::STRING,
    bool => p::BOOL,
    i8 => p::INT8,
    i16 => p::INT16,
    i32 => p::INT32,
    i64 => p::INT64,
    u16 => p::UINT16,
    u32 => p::UINT32,
    u64 => p::UINT64,
    f32 => p::FLOAT32,
    f64 => p::FLOAT64,
    () => p::NULL,
}

/// `u8`; `Vec<u8>` is `binary` (Python `bytes`), not a list of `u8`.
impl AsterField for u8 {
    fn field_type() -> FieldType {
        FieldType::Primitive(p::UINT8)
    }

    fn vec_field_type() -> FieldType {
        FieldType::Primitive(p::BINARY)
    }
}

impl<T: AsterField> AsterField for Vec<T> {
    fn field_type() -> FieldType {
        T::vec_field_type()
    }

    fn register_native(registrar: &mut NativeRegistrar<'_>) -> Result<(), Status> {
        T::register_native(registrar)
    }
}

impl<T: AsterField> AsterField for Option<T> {
    fn field_type() -> FieldType {
        FieldType::Optional(Box::new(T::field_type()))
    }

    fn register_native(registrar: &mut NativeRegistrar<'_>) -> Result<(), Status> {
        T::register_native(registrar)
    }
}

impl<T: AsterField> AsterField for Box<T> {
    fn field_type() -> FieldType {
        T::field_type()
    }

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

    fn register_native(registrar: &mut NativeRegistrar<'_>) -> Result<(), Status> {
        T::register_native(registrar)
    }
}

impl<K: AsterField, V: AsterField> AsterField for BTreeMap<K, V> {
    fn field_type() -> FieldType {
        FieldType::Map(Box::new(K::field_type()), Box::new(V::field_type()))
    }

    fn register_native(registrar: &mut NativeRegistrar<'_>) -> Result<(), Status> {
        K::register_native(registrar)?;
        V::register_native(registrar)
    }
}
