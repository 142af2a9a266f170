//! `impl_message!`: the [`Message`](crate::codec::Message) impl for user types without
//! `#[derive(AsterType)]` (which also describes the type for contracts and registers nested
//! types by itself).

/// Implements [`Message`](crate::codec::Message) for a user type.
///
/// ```
/// use serde::{Deserialize, Serialize};
///
/// #[derive(Debug, Default, Serialize, Deserialize, fory::ForyStruct)]
/// struct Money { cents: i64 }
/// #[derive(Debug, Default, Serialize, Deserialize, fory::ForyStruct)]
/// struct Line { sku: String, price: Money }
/// #[derive(Debug, Default, Serialize, Deserialize, fory::ForyStruct)]
/// struct Order { lines: Vec<Line> }
///
/// // JSON + NATIVE. Every ForyStruct/ForyEnum/ForyUnion type reachable from the fields is
/// // listed in `nested` (default tag: the root's namespace + the type's name, or give one
/// // with `=>`).
/// aster_runtime::impl_message!(Order, "shop/Order"; nested = [Line, Money => "shop/Money"]);
///
/// // JSON only (only serde derives needed); NATIVE then answers UNIMPLEMENTED.
/// #[derive(Debug, Serialize, Deserialize)]
/// struct Ping { n: i64 }
/// aster_runtime::impl_message!(Ping, "demo/Ping"; json_only);
///
/// use aster_runtime::codec::{Message, PayloadCodec};
/// use aster_runtime::SerializationMode;
/// let order = Order { lines: vec![Line { sku: "a-1".into(), price: Money { cents: 250 } }] };
/// let codec = PayloadCodec::new(SerializationMode::Native);
/// let (flags, bytes) = codec.encode(&order)?;
/// let back: Order = codec.decode(flags, &bytes)?;
/// assert_eq!(back.lines[0].price.cents, 250);
/// assert_eq!(Order::wire_tag(), "shop/Order");
/// # Ok::<(), aster_runtime::Status>(())
/// ```
///
/// XLANG and ROW return `UNIMPLEMENTED`: an XLANG payload is written field by field in
/// pyfory's order, from a schema this macro does not have. `#[derive(AsterType)]` (crate
/// `aster`, with `#[aster(tag = "..")]`) generates that schema and the XLANG codec; use it for
/// types that Python peers send or receive in XLANG mode. The type must not be generic (the NATIVE
/// codec is cached in a `static` inside the generated impl); a concrete instantiation such
/// as `Wrapper<u32>` is fine. The user crate needs `serde` (derive) and, unless `json_only`,
/// a direct `fory = "1.7.7"` dependency for the fory derives.
#[macro_export]
macro_rules! impl_message {
    (@nested_tag $root:expr, $nested:ty) => {
        $crate::codec::native::nested_tag($root, ::std::stringify!($nested))
    };
    (@nested_tag $root:expr, $nested:ty, $ntag:expr) => {
        ::std::string::String::from($ntag)
    };
    ($ty:ty, $tag:expr; json_only $(;)?) => {
        impl $crate::codec::Message for $ty {
            fn wire_tag() -> &'static str {
                $tag
            }

            fn encode_payload(
                &self,
                mode: $crate::SerializationMode,
                out: &mut ::std::vec::Vec<u8>,
            ) -> ::std::result::Result<(), $crate::Status> {
                $crate::codec::__private::encode_json_only(self, mode, out)
            }

            fn decode_payload(
                mode: $crate::SerializationMode,
                bytes: &[u8],
            ) -> ::std::result::Result<Self, $crate::Status> {
                $crate::codec::__private::decode_json_only::<Self>(mode, bytes)
            }
        }
    };
    ($ty:ty, $tag:expr $(; nested = [$($nested:ty $(=> $ntag:expr)?),* $(,)?])? $(;)?) => {
        impl $crate::codec::native::NativeMessage for $ty {
            fn native_fory() -> &'static $crate::codec::native::NativeFory {
                static FORY: ::std::sync::OnceLock<$crate::codec::native::NativeFory> =
                    ::std::sync::OnceLock::new();
                FORY.get_or_init(|| {
                    $crate::codec::native::NativeFory::build($tag, |registrar| {
                        $($(
                            {
                                let tag: ::std::string::String =
                                    $crate::impl_message!(@nested_tag $tag, $nested $(, $ntag)?);
                                registrar.register::<$nested>(&tag)?;
                            }
                        )*)?
                        registrar.register::<$ty>($tag)
                    })
                })
            }
        }

        impl $crate::codec::Message for $ty {
            fn wire_tag() -> &'static str {
                $tag
            }

            fn encode_payload(
                &self,
                mode: $crate::SerializationMode,
                out: &mut ::std::vec::Vec<u8>,
            ) -> ::std::result::Result<(), $crate::Status> {
                $crate::codec::__private::encode_json_native(self, mode, out)
            }

            fn decode_payload(
                mode: $crate::SerializationMode,
                bytes: &[u8],
            ) -> ::std::result::Result<Self, $crate::Status> {
                $crate::codec::__private::decode_json_native::<Self>(mode, bytes)
            }
        }
    };
}
