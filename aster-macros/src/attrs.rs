//! Helpers shared by the macros: serialization mode lists, capability requirements, error
//! collection and identifier spelling.

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::parse::ParseStream;
use syn::punctuated::Punctuated;
use syn::{Ident, LitStr, Token};

/// A serialization mode a service may declare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Xlang,
    Native,
    Json,
}

impl Mode {
    /// The contract spelling (`"xlang"`, `"native"`, `"json"`).
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Mode::Xlang => "xlang",
            Mode::Native => "native",
            Mode::Json => "json",
        }
    }

    /// The `SerializationMode` variant.
    pub(crate) fn tokens(self) -> TokenStream {
        match self {
            Mode::Xlang => quote!(::aster::__private::SerializationMode::Xlang),
            Mode::Native => quote!(::aster::__private::SerializationMode::Native),
            Mode::Json => quote!(::aster::__private::SerializationMode::Json),
        }
    }
}

/// Parses `[xlang, native, json]` (after the `=`); duplicates and unknown modes are errors.
pub(crate) fn parse_modes(input: ParseStream<'_>) -> syn::Result<Vec<(Mode, Span)>> {
    let content;
    syn::bracketed!(content in input);
    let idents: Punctuated<Ident, Token![,]> = Punctuated::parse_terminated(&content)?;
    let mut out: Vec<(Mode, Span)> = Vec::new();
    for ident in idents {
        let mode = match ident.to_string().as_str() {
            "xlang" => Mode::Xlang,
            "native" => Mode::Native,
            "json" => Mode::Json,
            "row" => {
                return Err(syn::Error::new(
                    ident.span(),
                    "serialization mode `row` is not supported by aster-rs; use xlang, native or json",
                ));
            }
            other => {
                return Err(syn::Error::new(
                    ident.span(),
                    format!("unknown serialization mode `{other}`; expected xlang, native or json"),
                ));
            }
        };
        if out.iter().any(|(m, _)| *m == mode) {
            return Err(syn::Error::new(ident.span(), format!("serialization mode `{ident}` is listed twice")));
        }
        out.push((mode, ident.span()));
    }
    if out.is_empty() {
        return Err(syn::Error::new(input.span(), "the serialization list must not be empty"));
    }
    Ok(out)
}

/// A capability requirement: `role("r")`, `any_of("a", ..)`, `all_of("a", ..)`.
#[derive(Clone, Debug)]
pub(crate) enum Requires {
    Role(String),
    AnyOf(Vec<String>),
    AllOf(Vec<String>),
}

impl Requires {
    /// Parses a requirement (after the `=`).
    pub(crate) fn parse(input: ParseStream<'_>) -> syn::Result<Requires> {
        let kind: Ident = input.parse()?;
        let content;
        syn::parenthesized!(content in input);
        let roles: Punctuated<LitStr, Token![,]> = Punctuated::parse_terminated(&content)?;
        let roles: Vec<String> = roles.iter().map(LitStr::value).collect();
        if let Some(empty) = roles.iter().position(String::is_empty) {
            return Err(syn::Error::new(kind.span(), format!("role #{} is empty", empty + 1)));
        }
        match kind.to_string().as_str() {
            "role" => match <[String; 1]>::try_from(roles) {
                Ok([role]) => Ok(Requires::Role(role)),
                Err(_) => Err(syn::Error::new(kind.span(), "`role(..)` takes exactly one role name")),
            },
            "any_of" | "all_of" if roles.is_empty() => {
                Err(syn::Error::new(kind.span(), format!("`{kind}(..)` needs at least one role")))
            }
            "any_of" => Ok(Requires::AnyOf(roles)),
            "all_of" => Ok(Requires::AllOf(roles)),
            other => Err(syn::Error::new(
                kind.span(),
                format!(
                    "unknown requirement `{other}(..)`; expected role(\"r\"), any_of(\"a\", ..) or all_of(\"a\", ..)"
                ),
            )),
        }
    }

    /// A `CapabilityRequirement` expression.
    pub(crate) fn tokens(&self) -> TokenStream {
        let (kind, roles): (TokenStream, &[String]) = match self {
            Requires::Role(r) => (quote!(Role), std::slice::from_ref(r)),
            Requires::AnyOf(roles) => (quote!(AnyOf), roles),
            Requires::AllOf(roles) => (quote!(AllOf), roles),
        };
        quote!(::aster::__private::requirement(::aster::__private::CapabilityKind::#kind, &[#(#roles),*]))
    }
}

/// Collects several errors into one.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    pub(crate) fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// `r#type` → `type`: the identifier as written on the wire and in messages.
pub(crate) fn unraw(ident: &Ident) -> String {
    let s = ident.to_string();
    s.strip_prefix("r#").map(str::to_owned).unwrap_or(s)
}
