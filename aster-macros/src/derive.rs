//! `#[derive(AsterType)]`.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Expr, ExprLit, Fields, Lit, LitStr};

use crate::attrs::{Errors, unraw};

/// The wire tag of the type: explicit, or derived from the module path.
enum Tag {
    Explicit { namespace: String, name: String, full: String },
    Untagged,
}

/// The container attributes.
struct Container {
    tag: Tag,
    /// `fqn = ".."`: the type-graph key, default `"{namespace}.{TypeName}"`.
    fqn: Option<String>,
}

fn parse_container_attrs(input: &DeriveInput) -> syn::Result<Container> {
    let mut tag: Option<(LitStr, Tag)> = None;
    let mut untagged: Option<Span> = None;
    let mut fqn: Option<String> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("aster")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("tag") {
                let lit: LitStr = meta.value()?.parse()?;
                if tag.is_some() {
                    return Err(meta.error("`tag` is given twice"));
                }
                let parsed = validate_tag(&lit)?;
                tag = Some((lit, parsed));
                Ok(())
            } else if meta.path.is_ident("untagged") {
                untagged = Some(meta.path.span());
                Ok(())
            } else if meta.path.is_ident("fqn") {
                let lit: LitStr = meta.value()?.parse()?;
                if lit.value().is_empty() || lit.value().chars().any(char::is_whitespace) {
                    return Err(syn::Error::new(lit.span(), "`fqn` is a non-empty name without whitespace"));
                }
                fqn = Some(lit.value());
                Ok(())
            } else {
                let name = meta.path.get_ident().map(ToString::to_string).unwrap_or_else(|| "?".into());
                Err(meta.error(format!(
                    "unknown `aster` attribute `{name}`; expected `tag = \"namespace/TypeName\"`, `untagged` or \
                     `fqn = \"module.TypeName\"`"
                )))
            }
        })?;
    }
    let tag = match (tag, untagged) {
        (Some(_), Some(span)) => Err(syn::Error::new(span, "`untagged` contradicts the explicit `tag`")),
        (Some((_, t)), None) => Ok(t),
        (None, Some(_)) => Ok(Tag::Untagged),
        (None, None) => Err(syn::Error::new(
            input.ident.span(),
            format!(
                "`{0}` needs a wire tag: add #[aster(tag = \"namespace/{0}\")] (XLANG peers find types by tag), \
                 or #[aster(untagged)] to derive one from the module path",
                input.ident
            ),
        )),
    }?;
    Ok(Container { tag, fqn })
}

fn validate_tag(lit: &LitStr) -> syn::Result<Tag> {
    let full = lit.value();
    if full.is_empty() || full.chars().any(char::is_whitespace) {
        return Err(syn::Error::new(lit.span(), "a wire tag is \"namespace/TypeName\" without whitespace"));
    }
    let (namespace, name) = match full.rsplit_once('/') {
        Some((ns, name)) => (ns.to_owned(), name.to_owned()),
        None => (String::new(), full.clone()),
    };
    if name.is_empty() {
        return Err(syn::Error::new(lit.span(), "the wire tag's TypeName (after the last `/`) is empty"));
    }
    Ok(Tag::Explicit { namespace, name, full })
}

/// Rejects `#[aster(..)]` on fields and variants (no field-level options exist).
fn reject_inner_attrs<'a>(attrs: impl Iterator<Item = &'a syn::Attribute>, errors: &mut Errors) {
    for attr in attrs.filter(|a| a.path().is_ident("aster")) {
        errors.push(syn::Error::new(
            attr.span(),
            "unknown attribute: `#[aster(..)]` is only accepted on the type itself (tag / untagged)",
        ));
    }
}

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    if !input.generics.params.is_empty() {
        errors.push(syn::Error::new(
            input.generics.span(),
            "AsterType cannot be derived for a generic type (its NATIVE codec and contract are per concrete type)",
        ));
    }
    let container = match parse_container_attrs(&input) {
        Ok(t) => Some(t),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let body = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => {
                reject_inner_attrs(named.named.iter().flat_map(|f| f.attrs.iter()), &mut errors);
                Body::Struct(named.named.iter().collect())
            }
            other => {
                errors.push(syn::Error::new(
                    other.span(),
                    "AsterType needs a struct with named fields (message types map to Python dataclasses)",
                ));
                Body::Struct(Vec::new())
            }
        },
        Data::Enum(e) => {
            let mut variants = Vec::new();
            let mut next: i64 = 0;
            reject_inner_attrs(e.variants.iter().flat_map(|v| v.attrs.iter()), &mut errors);
            for v in &e.variants {
                if !matches!(v.fields, Fields::Unit) {
                    errors.push(syn::Error::new(
                        v.span(),
                        "AsterType enums must be unit-only (`enum Color { Red, Green }`); data-carrying enums are not supported",
                    ));
                    continue;
                }
                let value = match &v.discriminant {
                    Some((_, Expr::Lit(ExprLit { lit: Lit::Int(i), .. }))) => match i.base10_parse::<i64>() {
                        Ok(n) => n,
                        Err(e) => {
                            errors.push(e);
                            next
                        }
                    },
                    Some((_, expr)) => {
                        errors.push(syn::Error::new(
                            expr.span(),
                            "AsterType enum discriminants must be integer literals",
                        ));
                        next
                    }
                    None => next,
                };
                match i32::try_from(value) {
                    Ok(v32) => variants.push((v.ident.clone(), v32)),
                    Err(_) => errors.push(syn::Error::new(v.span(), "enum discriminant does not fit in an i32")),
                }
                next = value.saturating_add(1);
            }
            Body::Enum(variants)
        }
        Data::Union(u) => {
            errors.push(syn::Error::new(u.union_token.span(), "AsterType cannot be derived for a union"));
            Body::Enum(Vec::new())
        }
    };
    errors.finish()?;
    let Some(container) = container else {
        return Err(syn::Error::new(input.ident.span(), "missing wire tag"));
    };
    Ok(generate(&input, &container, &body))
}

enum Body<'a> {
    Struct(Vec<&'a syn::Field>),
    /// Variants in declaration order (the XLANG ordinal is the index) with their values.
    Enum(Vec<(syn::Ident, i32)>),
}

fn generate(input: &DeriveInput, container: &Container, body: &Body<'_>) -> TokenStream {
    let tag = &container.tag;
    let ty = &input.ident;
    let type_name = unraw(ty);
    let p = quote!(::aster::__private);

    // wire_tag(), and the (namespace, name) pair as expressions of type String
    let (wire_tag_body, namespace_expr, name_expr) = match tag {
        Tag::Explicit { namespace, name, full } => {
            (quote!(#full), quote!(::std::string::String::from(#namespace)), quote!(::std::string::String::from(#name)))
        }
        Tag::Untagged => (
            quote! {
                static TAG: ::std::sync::OnceLock<::std::string::String> = ::std::sync::OnceLock::new();
                TAG.get_or_init(|| #p::untagged_wire_tag(::std::module_path!(), #type_name)).as_str()
            },
            quote!(#p::untagged_namespace(::std::module_path!())),
            quote!(::std::string::String::from(#type_name)),
        ),
    };

    let fqn_expr = match (&container.fqn, tag) {
        (Some(f), _) => quote!(::std::string::String::from(#f)),
        // literals: `&String::from("")` for an empty namespace would trip clippy in user code
        (None, Tag::Explicit { namespace, name, .. }) => quote!(#p::type_fqn(#namespace, #name)),
        (None, Tag::Untagged) => quote!(#p::type_fqn(&#namespace_expr, &#name_expr)),
    };
    let describe_fqn = match &container.fqn {
        Some(f) => quote!(::std::string::String::from(#f)),
        None => quote!(#p::type_fqn(&package, &name)),
    };
    let describe_impl = |kind: TokenStream| {
        quote! {
            #[automatically_derived]
            impl #p::Describe for #ty {
                fn describe() -> #p::TypeDesc {
                    let package = #namespace_expr;
                    let name = #name_expr;
                    #p::TypeDesc { fqn: #describe_fqn, package, name, kind: #kind }
                }
            }
        }
    };
    let field_type_impl = quote! {
        fn field_type() -> #p::FieldType {
            #p::FieldType::Ref { fqn: #fqn_expr, describe: <Self as #p::Describe>::describe }
        }
    };

    match body {
        Body::Struct(fields) => {
            let field_tys: Vec<&syn::Type> = fields.iter().map(|f| &f.ty).collect();
            let field_names: Vec<String> = fields.iter().filter_map(|f| f.ident.as_ref()).map(unraw).collect();
            let field_spans: Vec<Span> = fields.iter().map(|f| f.ty.span()).collect();
            let field_types = field_tys
                .iter()
                .zip(&field_spans)
                .map(|(t, span)| quote::quote_spanned!(*span=> <#t as #p::AsterField>::field_type()));
            let describe_struct = describe_impl(quote! {
                #p::TypeDescKind::Message(::std::vec![
                    #(#p::FieldDesc { name: ::std::string::String::from(#field_names), ty: #field_types }),*
                ])
            });
            let registrations = field_tys
                .iter()
                .zip(&field_spans)
                .map(|(t, span)| quote::quote_spanned!(*span=> <#t as #p::AsterField>::register_native(registrar)?;));
            let xlang = xlang_struct(ty, &type_name, tag, fields);
            let XlangStructParts { impls: xlang_impls, field_const: xlang_const, encode, decode } = xlang;
            quote! {
                #[automatically_derived]
                impl #p::Message for #ty {
                    fn wire_tag() -> &'static str {
                        #wire_tag_body
                    }

                    fn encode_payload(
                        &self,
                        mode: #p::SerializationMode,
                        out: &mut ::std::vec::Vec<u8>,
                    ) -> ::std::result::Result<(), #p::Status> {
                        #p::#encode(self, mode, out)
                    }

                    fn decode_payload(
                        mode: #p::SerializationMode,
                        bytes: &[u8],
                    ) -> ::std::result::Result<Self, #p::Status> {
                        #p::#decode::<Self>(mode, bytes)
                    }
                }

                #[automatically_derived]
                impl #p::NativeMessage for #ty {
                    fn native_fory() -> &'static #p::NativeFory {
                        static FORY: ::std::sync::OnceLock<#p::NativeFory> = ::std::sync::OnceLock::new();
                        FORY.get_or_init(|| {
                            #p::NativeFory::build(<Self as #p::Message>::wire_tag(), |registrar| {
                                <Self as #p::AsterField>::register_native(registrar)
                            })
                        })
                    }
                }

                #[automatically_derived]
                impl #p::AsterField for #ty {
                    #field_type_impl

                    fn register_native(
                        registrar: &mut #p::NativeRegistrar<'_>,
                    ) -> ::std::result::Result<(), #p::Status> {
                        if registrar.register_once::<Self>(<Self as #p::Message>::wire_tag())? {
                            #(#registrations)*
                        }
                        ::std::result::Result::Ok(())
                    }

                    #xlang_const
                }

                #xlang_impls

                #describe_struct
            }
        }
        Body::Enum(variants) => {
            let names = variants.iter().map(|(n, _)| unraw(n));
            let values = variants.iter().map(|(_, v)| v);
            let describe_enum = describe_impl(quote! {
                #p::TypeDescKind::Enum(::std::vec![#((::std::string::String::from(#names), #values)),*])
            });
            let xlang_impls = xlang_enum(ty, &type_name, tag, variants);
            quote! {
                #[automatically_derived]
                impl #p::AsterField for #ty {
                    #field_type_impl

                    fn register_native(
                        registrar: &mut #p::NativeRegistrar<'_>,
                    ) -> ::std::result::Result<(), #p::Status> {
                        fn wire_tag() -> &'static str {
                            #wire_tag_body
                        }
                        registrar.register_once::<Self>(wire_tag())?;
                        ::std::result::Result::Ok(())
                    }

                    const XLANG: #p::XlangType = #p::XlangType::of_enum::<Self>();
                }

                #xlang_impls

                #describe_enum
            }
        }
    }
}

/// The XLANG part of a struct's expansion.
struct XlangStructParts {
    /// `XlangStruct` + `XlangValue` (tagged), or an `XlangValue` that refuses (untagged).
    impls: TokenStream,
    /// The `AsterField::XLANG` item.
    field_const: TokenStream,
    /// The `__private` helpers the `Message` impl forwards to.
    encode: syn::Ident,
    decode: syn::Ident,
}

/// `XlangStruct` + `XlangValue` for a tagged struct: the field schema in declaration order
/// (types from `AsterField::XLANG`) and the driven write/read loops. An untagged struct has no
/// XLANG form (Python requires a tag for XLANG too): its `XLANG` is `Unsupported`, its
/// `XlangValue` answers `UNIMPLEMENTED` and its `Message` keeps JSON + NATIVE.
fn xlang_struct(ty: &syn::Ident, type_name: &str, tag: &Tag, fields: &[&syn::Field]) -> XlangStructParts {
    let p = quote!(::aster::__private);
    let struct_value_impl = xlang_value_impl(&p, &quote!(#ty), "struct");
    let (namespace, typename) = match tag {
        Tag::Explicit { namespace, name, .. } => (namespace, name),
        Tag::Untagged => {
            let why = format!(
                "{type_name} is #[aster(untagged)]; XLANG needs an explicit #[aster(tag = \"namespace/{type_name}\")]"
            );
            let refuse = quote!(::std::result::Result::Err(#p::Status::unimplemented(#why)));
            return XlangStructParts {
                impls: quote! {
                    #[automatically_derived]
                    impl #p::XlangValue for #ty {
                        fn write_xlang(
                            &self,
                            _ty: &#p::XlangType,
                            _enc: &mut #p::XlangEncoder,
                        ) -> ::std::result::Result<(), #p::Status> {
                            #refuse
                        }

                        fn read_xlang(
                            _ty: &#p::XlangType,
                            _dec: &mut #p::XlangDecoder<'_>,
                        ) -> ::std::result::Result<Self, #p::Status> {
                            #refuse
                        }
                    }
                },
                field_const: quote!(const XLANG: #p::XlangType = #p::XlangType::Unsupported(#why);),
                encode: syn::Ident::new("encode_json_native", Span::call_site()),
                decode: syn::Ident::new("decode_json_native", Span::call_site()),
            };
        }
    };

    let idents: Vec<&syn::Ident> = fields.iter().filter_map(|f| f.ident.as_ref()).collect();
    let names: Vec<String> = idents.iter().map(|i| unraw(i)).collect();
    let indices: Vec<proc_macro2::Literal> = (0..idents.len()).map(proc_macro2::Literal::usize_unsuffixed).collect();
    let slots: Vec<syn::Ident> = (0..idents.len()).map(|i| quote::format_ident!("__aster_field_{i}")).collect();
    let descriptors = fields.iter().zip(&names).map(|(f, name)| {
        let t = &f.ty;
        quote::quote_spanned!(t.span()=> #p::XlangField { name: #name, ty: <#t as #p::AsterField>::XLANG })
    });
    let writes = fields
        .iter()
        .zip(&idents)
        .zip(&indices)
        .map(|((f, ident), i)| quote::quote_spanned!(f.ty.span()=> #i => __aster_w.write(&self.#ident)?,));
    let reads = slots
        .iter()
        .zip(&indices)
        .map(|(slot, i)| quote!(#i => #slot = ::std::option::Option::Some(__aster_r.read()?),));
    let takes =
        idents.iter().zip(&slots).zip(&indices).map(|((ident, slot), i)| quote!(#ident: __aster_r.take(#slot, #i)?));
    let (write_body, read_body) = if idents.is_empty() {
        (
            quote! {
                if let ::std::option::Option::Some(__aster_i) = __aster_w.next_field() {
                    return ::std::result::Result::Err(__aster_w.unknown_field(__aster_i));
                }
                ::std::result::Result::Ok(())
            },
            quote! {
                if let ::std::option::Option::Some(__aster_i) = __aster_r.next_field() {
                    return ::std::result::Result::Err(__aster_r.unknown_field(__aster_i));
                }
                ::std::result::Result::Ok(Self {})
            },
        )
    } else {
        (
            quote! {
                while let ::std::option::Option::Some(__aster_i) = __aster_w.next_field() {
                    match __aster_i {
                        #(#writes)*
                        _ => return ::std::result::Result::Err(__aster_w.unknown_field(__aster_i)),
                    }
                }
                ::std::result::Result::Ok(())
            },
            quote! {
                #(let mut #slots = ::std::option::Option::None;)*
                while let ::std::option::Option::Some(__aster_i) = __aster_r.next_field() {
                    match __aster_i {
                        #(#reads)*
                        _ => return ::std::result::Result::Err(__aster_r.unknown_field(__aster_i)),
                    }
                }
                ::std::result::Result::Ok(Self { #(#takes),* })
            },
        )
    };

    XlangStructParts {
        impls: quote! {
            #[automatically_derived]
            impl #p::XlangStruct for #ty {
                const NAMESPACE: &'static str = #namespace;
                const TYPENAME: &'static str = #typename;

                fn fields() -> &'static [#p::XlangField] {
                    const FIELDS: &[#p::XlangField] = &[#(#descriptors),*];
                    FIELDS
                }

                fn write_fields(
                    &self,
                    __aster_w: &mut #p::XlangStructWriter<'_>,
                ) -> ::std::result::Result<(), #p::Status> {
                    #write_body
                }

                fn read_fields(
                    __aster_r: &mut #p::XlangStructReader<'_, '_>,
                ) -> ::std::result::Result<Self, #p::Status> {
                    #read_body
                }
            }

            #struct_value_impl
        },
        field_const: quote!(const XLANG: #p::XlangType = #p::XlangType::of_struct::<Self>();),
        encode: syn::Ident::new("encode_json_native_xlang", Span::call_site()),
        decode: syn::Ident::new("decode_json_native_xlang", Span::call_site()),
    }
}

/// `XlangEnum` + `XlangValue` for a unit enum: the ordinal is the declaration index (Python's
/// `tuple(EnumType)` order), never the discriminant. Tagged or not (Python registers enums by
/// module/qualname and the names never reach the wire in fields); an untagged enum is named
/// after its module path, like its wire tag.
fn xlang_enum(ty: &syn::Ident, type_name: &str, tag: &Tag, variants: &[(syn::Ident, i32)]) -> TokenStream {
    let p = quote!(::aster::__private);
    let enum_value_impl = xlang_value_impl(&p, &quote!(#ty), "enum");
    let (namespace, typename) = match tag {
        Tag::Explicit { namespace, name, .. } => (quote!(#namespace), name.clone()),
        Tag::Untagged => (
            quote! {{
                const PATH: &str = ::std::module_path!();
                const LEN: usize = #p::dotted_path_len(PATH);
                const BYTES: [u8; LEN] = #p::dotted_path::<LEN>(PATH);
                match ::std::str::from_utf8(&BYTES) {
                    ::std::result::Result::Ok(s) => s,
                    ::std::result::Result::Err(_) => PATH,
                }
            }},
            type_name.to_owned(),
        ),
    };
    let idents: Vec<&syn::Ident> = variants.iter().map(|(i, _)| i).collect();
    let ordinals: Vec<proc_macro2::Literal> =
        (0u32..).take(idents.len()).map(proc_macro2::Literal::u32_unsuffixed).collect();
    let from_ordinal = if idents.is_empty() {
        quote! {
            let _ = ordinal;
            ::std::option::Option::None
        }
    } else {
        quote! {
            match ordinal {
                #(#ordinals => ::std::option::Option::Some(Self::#idents),)*
                _ => ::std::option::Option::None,
            }
        }
    };
    quote! {
        #[automatically_derived]
        impl #p::XlangEnum for #ty {
            const NAMESPACE: &'static str = #namespace;
            const TYPENAME: &'static str = #typename;

            fn to_ordinal(&self) -> u32 {
                match *self {
                    #(Self::#idents => #ordinals,)*
                }
            }

            fn from_ordinal(ordinal: u32) -> ::std::option::Option<Self> {
                #from_ordinal
            }
        }

        #enum_value_impl
    }
}

/// The `XlangValue` impl of a derived type: forwards to the codec's struct or enum helpers.
fn xlang_value_impl(p: &TokenStream, ty: &TokenStream, kind: &str) -> TokenStream {
    let write = syn::Ident::new(&format!("write_{kind}_value"), Span::call_site());
    let read = syn::Ident::new(&format!("read_{kind}_value"), Span::call_site());
    quote! {
        #[automatically_derived]
        impl #p::XlangValue for #ty {
            fn write_xlang(
                &self,
                ty: &#p::XlangType,
                enc: &mut #p::XlangEncoder,
            ) -> ::std::result::Result<(), #p::Status> {
                #p::#write(self, ty, enc)
            }

            fn read_xlang(
                ty: &#p::XlangType,
                dec: &mut #p::XlangDecoder<'_>,
            ) -> ::std::result::Result<Self, #p::Status> {
                #p::#read(ty, dec)
            }
        }
    }
}
