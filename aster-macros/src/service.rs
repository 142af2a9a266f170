//! `#[service]`: parsing and validation of the trait, then code generation.

use std::collections::HashMap;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{
    Attribute, FnArg, GenericArgument, Ident, ItemTrait, LitFloat, LitInt, LitStr, PathArguments, ReturnType,
    TraitItem, TraitItemFn, Type,
};

use crate::attrs::{Errors, Mode, Requires, parse_modes, unraw};

/// Entry point: never fails; errors become `compile_error!`s next to the (cleaned) trait.
pub(crate) fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let item_trait: ItemTrait = match syn::parse2(item.clone()) {
        Ok(t) => t,
        Err(_) => {
            let e = syn::Error::new(
                Span::call_site(),
                "#[service] applies to a trait of `async fn` methods (`pub trait MyServiceHandler { .. }`)",
            );
            let e = e.to_compile_error();
            return quote!(#e #item);
        }
    };
    match expand_trait(args, &item_trait) {
        Ok(tokens) => tokens,
        Err(e) => {
            // Keep the trait (minus our attributes) so the rest of the crate still resolves
            // its name and only the real errors are reported.
            let mut cleaned = item_trait;
            for item in &mut cleaned.items {
                if let TraitItem::Fn(f) = item {
                    f.attrs.retain(|a| pattern_of(a).is_none());
                }
            }
            let e = e.to_compile_error();
            quote!(#cleaned #e)
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    Shared,
    Session,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Pattern {
    Unary,
    ServerStream,
    ClientStream,
    Bidi,
}

impl Pattern {
    fn attr_name(self) -> &'static str {
        match self {
            Pattern::Unary => "unary",
            Pattern::ServerStream => "server_stream",
            Pattern::ClientStream => "client_stream",
            Pattern::Bidi => "bidi_stream",
        }
    }

    /// The expected signature, for error messages.
    fn expected(self, f: &str, receiver: &str) -> String {
        match self {
            Pattern::Unary => format!("async fn {f}({receiver}, ctx: CallContext, req: Req) -> Result<Resp, Status>"),
            Pattern::ServerStream => format!(
                "async fn {f}({receiver}, ctx: CallContext, req: Req, sink: ServerSink<Resp>) -> Result<(), Status>"
            ),
            Pattern::ClientStream => {
                format!("async fn {f}({receiver}, ctx: CallContext, reqs: Streaming<Req>) -> Result<Resp, Status>")
            }
            Pattern::Bidi => format!(
                "async fn {f}({receiver}, ctx: CallContext, reqs: Streaming<Req>, sink: ServerSink<Resp>) -> Result<(), Status>"
            ),
        }
    }

    fn runtime(self) -> TokenStream {
        match self {
            Pattern::Unary => quote!(::aster::__private::Pattern::Unary),
            Pattern::ServerStream => quote!(::aster::__private::Pattern::ServerStream),
            Pattern::ClientStream => quote!(::aster::__private::Pattern::ClientStream),
            Pattern::Bidi => quote!(::aster::__private::Pattern::Bidi),
        }
    }

    fn contract(self) -> TokenStream {
        match self {
            Pattern::Unary => quote!(::aster::__private::MethodPattern::Unary),
            Pattern::ServerStream => quote!(::aster::__private::MethodPattern::ServerStream),
            Pattern::ClientStream => quote!(::aster::__private::MethodPattern::ClientStream),
            Pattern::Bidi => quote!(::aster::__private::MethodPattern::BidiStream),
        }
    }
}

/// The pattern named by a method attribute (`rpc` is an alias of `unary`, as in Python).
fn pattern_of(attr: &Attribute) -> Option<Pattern> {
    let ident = attr.path().get_ident()?;
    match ident.to_string().as_str() {
        "unary" | "rpc" => Some(Pattern::Unary),
        "server_stream" => Some(Pattern::ServerStream),
        "client_stream" => Some(Pattern::ClientStream),
        "bidi_stream" => Some(Pattern::Bidi),
        _ => None,
    }
}

struct ServiceArgs {
    name: Option<LitStr>,
    version: i32,
    scope: Scope,
    serialization: Vec<Mode>,
    requires: Option<Requires>,
}

fn parse_service_args(args: TokenStream) -> syn::Result<ServiceArgs> {
    let mut out =
        ServiceArgs { name: None, version: 1, scope: Scope::Shared, serialization: vec![Mode::Xlang], requires: None };
    let mut seen: Vec<String> = Vec::new();
    let parser = syn::meta::parser(|meta| {
        let key = first_use(&meta, &mut seen)?;
        match key.as_str() {
            "name" => out.name = Some(non_empty_name(&meta, "service")?),
            "version" => {
                let lit: LitInt = meta.value()?.parse()?;
                out.version = lit.base10_parse::<i32>()?;
            }
            "scope" => {
                let ident: Ident = meta.value()?.parse()?;
                out.scope = match ident.to_string().as_str() {
                    "shared" => Scope::Shared,
                    "session" => Scope::Session,
                    other => {
                        return Err(syn::Error::new(
                            ident.span(),
                            format!("unknown scope `{other}`; expected `shared` or `session`"),
                        ));
                    }
                };
            }
            "serialization" => {
                out.serialization = parse_modes(meta.value()?)?.into_iter().map(|(m, _)| m).collect();
            }
            "requires" => out.requires = Some(Requires::parse(meta.value()?)?),
            _ => {
                return Err(meta.error(format!(
                    "unknown `service` argument `{}`; expected one of: name, version, scope, serialization, requires",
                    path_text(&meta.path)
                )));
            }
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, args)?;
    Ok(out)
}

/// The argument's name, or an error when it was already given.
fn first_use(meta: &syn::meta::ParseNestedMeta<'_>, seen: &mut Vec<String>) -> syn::Result<String> {
    let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
    if seen.contains(&key) {
        return Err(meta.error(format!("`{key}` is given twice")));
    }
    seen.push(key.clone());
    Ok(key)
}

/// Parses `name = "..."`, refusing an empty string.
fn non_empty_name(meta: &syn::meta::ParseNestedMeta<'_>, what: &str) -> syn::Result<LitStr> {
    let lit: LitStr = meta.value()?.parse()?;
    if lit.value().is_empty() {
        return Err(syn::Error::new(lit.span(), format!("the {what} name must not be empty")));
    }
    Ok(lit)
}

fn path_text(path: &syn::Path) -> String {
    path.segments.iter().map(|s| s.ident.to_string()).collect::<Vec<_>>().join("::")
}

struct MethodArgs {
    name: Option<LitStr>,
    timeout: Option<f64>,
    idempotent: bool,
    requires: Option<Requires>,
    serialization: Option<Vec<Mode>>,
}

fn parse_method_args(attr: &Attribute, pattern: Pattern) -> syn::Result<MethodArgs> {
    let mut out = MethodArgs { name: None, timeout: None, idempotent: false, requires: None, serialization: None };
    if matches!(attr.meta, syn::Meta::Path(_)) {
        return Ok(out);
    }
    let mut seen: Vec<String> = Vec::new();
    attr.parse_nested_meta(|meta| {
        let key = first_use(&meta, &mut seen)?;
        match key.as_str() {
            "name" => out.name = Some(non_empty_name(&meta, "method")?),
            "timeout" => {
                let value = meta.value()?;
                let secs = if value.peek(LitFloat) {
                    value.parse::<LitFloat>()?.base10_parse::<f64>()?
                } else {
                    let lit: LitInt = value.parse()?;
                    lit.base10_parse::<u32>().map(f64::from)?
                };
                if !(secs.is_finite() && secs > 0.0) {
                    return Err(meta.error("`timeout` is a positive number of seconds, e.g. `timeout = 5.0`"));
                }
                out.timeout = Some(secs);
            }
            "idempotent" => {
                if meta.input.peek(syn::Token![=]) {
                    let lit: syn::LitBool = meta.value()?.parse()?;
                    out.idempotent = lit.value;
                } else {
                    out.idempotent = true;
                }
            }
            "requires" => out.requires = Some(Requires::parse(meta.value()?)?),
            "serialization" => {
                out.serialization = Some(parse_modes(meta.value()?)?.into_iter().map(|(m, _)| m).collect());
            }
            _ => {
                return Err(meta.error(format!(
                    "unknown `{}` argument `{}`; expected one of: name, timeout, idempotent, requires, serialization",
                    pattern.attr_name(),
                    path_text(&meta.path)
                )));
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// One analysed RPC method.
struct Method {
    /// The trait item with our attribute removed and the signature rewritten.
    item: TraitItemFn,
    fn_ident: Ident,
    wire_name: String,
    variant: Ident,
    pattern: Pattern,
    args: MethodArgs,
    req: Type,
    resp: Type,
}

/// `assign_task` → `AssignTask`.
fn pascal_case(snake: &str) -> String {
    let mut out = String::with_capacity(snake.len());
    for part in snake.split('_').filter(|p| !p.is_empty()) {
        let mut chars = part.chars();
        if let Some(first) = chars.next() {
            out.extend(first.to_uppercase());
            out.push_str(chars.as_str());
        }
    }
    if out.is_empty() { "Method".to_owned() } else { out }
}

/// The last path segment of `ty` and its generic type arguments, if `ty` is a plain path.
fn last_segment(ty: &Type) -> Option<(&Ident, Vec<&Type>)> {
    let Type::Path(p) = ty else { return None };
    if p.qself.is_some() {
        return None;
    }
    let seg = p.path.segments.last()?;
    let args = match &seg.arguments {
        PathArguments::None => Vec::new(),
        PathArguments::AngleBracketed(a) => a
            .args
            .iter()
            .filter_map(|g| match g {
                GenericArgument::Type(t) => Some(t),
                _ => None,
            })
            .collect(),
        PathArguments::Parenthesized(_) => return None,
    };
    Some((&seg.ident, args))
}

/// `Name<T>` → `T` (one type argument).
fn wrapper_arg<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    match last_segment(ty) {
        Some((ident, args)) if ident == name && args.len() == 1 => args.first().copied(),
        _ => None,
    }
}

fn is_named(ty: &Type, name: &str) -> bool {
    matches!(last_segment(ty), Some((ident, args)) if ident == name && args.is_empty())
}

fn is_unit(ty: &Type) -> bool {
    matches!(ty, Type::Tuple(t) if t.elems.is_empty())
}

fn type_text(ty: &Type) -> String {
    quote!(#ty).to_string().replace(" < ", "<").replace(" >", ">").replace(" ,", ",").replace(":: ", "::")
}

/// `prefix` is the generated-name prefix ([`name_prefix`]), for the client-name clash check.
fn analyse_method(mut f: TraitItemFn, scope: Scope, prefix: &str, errors: &mut Errors) -> Option<Method> {
    let fn_ident = f.sig.ident.clone();
    let fn_name = unraw(&fn_ident);

    // the pattern attribute
    let mut found: Vec<(usize, Pattern)> =
        f.attrs.iter().enumerate().filter_map(|(i, a)| pattern_of(a).map(|p| (i, p))).collect();
    let (attr_index, pattern) = match found.len() {
        0 => {
            errors.push(syn::Error::new(
                fn_ident.span(),
                format!(
                    "`{fn_name}` has no RPC pattern: mark it #[unary], #[server_stream], #[client_stream] or #[bidi_stream]"
                ),
            ));
            return None;
        }
        1 => found.remove(0),
        _ => {
            errors.push(syn::Error::new(
                f.attrs[found[1].0].span(),
                format!("`{fn_name}` has more than one RPC pattern attribute"),
            ));
            return None;
        }
    };
    let attr = f.attrs.remove(attr_index);
    let args = match parse_method_args(&attr, pattern) {
        Ok(a) => a,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };

    let receiver_text = match scope {
        Scope::Shared => "&self",
        Scope::Session => "&mut self",
    };
    let expected = pattern.expected(&fn_name, receiver_text);
    let mut ok = true;
    let mut fail = |span: Span, msg: String| {
        errors.push(syn::Error::new(span, msg));
        ok = false;
    };

    // the typed client gets one method per RPC method, next to its own items
    let (client, taken) = client_items(prefix, scope);
    if taken.contains(&fn_name.as_str()) {
        let keep_wire_name = match &args.name {
            Some(name) => format!("its wire name stays `{}`", name.value()),
            None => format!("the wire name can stay: `#[{}(name = \"{fn_name}\")]`", pattern.attr_name()),
        };
        fail(
            fn_ident.span(),
            format!(
                "RPC method `{fn_name}` clashes with `{client}::{fn_name}`, which the generated client already \
                 defines; rename the Rust method ({keep_wire_name})"
            ),
        );
    }

    let sig = &f.sig;
    if sig.asyncness.is_none() {
        fail(sig.fn_token.span(), format!("RPC method `{fn_name}` must be an `async fn`; expected `{expected}`"));
    }
    if let Some(c) = &sig.constness {
        fail(c.span(), "RPC methods cannot be `const`".into());
    }
    if let Some(u) = &sig.unsafety {
        fail(u.span(), "RPC methods cannot be `unsafe`".into());
    }
    if let Some(a) = &sig.abi {
        fail(a.span(), "RPC methods cannot have an `extern` ABI".into());
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        fail(sig.generics.span(), format!("RPC method `{fn_name}` cannot be generic"));
    }
    if let Some(v) = &sig.variadic {
        fail(v.span(), "RPC methods cannot be variadic".into());
    }

    // receiver
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) => {
            let mutable = r.mutability.is_some();
            let by_ref = r.reference.is_some() && r.colon_token.is_none();
            match (scope, by_ref, mutable) {
                (Scope::Shared, true, false) | (Scope::Session, true, true) => {}
                (Scope::Shared, true, true) => fail(
                    r.span(),
                    format!(
                        "`{fn_name}` takes `&mut self`, but a shared-scope service is called concurrently through `&self`; \
                         use `&self`, or `scope = session` for one instance per session"
                    ),
                ),
                (Scope::Session, true, false) => fail(
                    r.span(),
                    format!("`{fn_name}`: methods of a session-scope service take `&mut self`; expected `{expected}`"),
                ),
                _ => fail(r.span(), format!("`{fn_name}` must take `{receiver_text}`; expected `{expected}`")),
            }
        }
        _ => fail(sig.ident.span(), format!("`{fn_name}` must take `{receiver_text}`; expected `{expected}`")),
    }

    let typed: Vec<&syn::PatType> = inputs
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            FnArg::Receiver(_) => None,
        })
        .collect();

    // ctx
    match typed.first() {
        Some(ctx) if is_named(&ctx.ty, "CallContext") => {}
        Some(other) => fail(
            other.span(),
            format!(
                "the first parameter of `{fn_name}` after `self` must be `ctx: CallContext`, found `{}`; expected `{expected}`",
                type_text(&other.ty)
            ),
        ),
        None => {
            fail(sig.paren_token.span.join(), format!("`{fn_name}` is missing its parameters; expected `{expected}`"))
        }
    }

    let want = match pattern {
        Pattern::Unary | Pattern::ClientStream => 2,
        Pattern::ServerStream | Pattern::Bidi => 3,
    };
    let mut req: Option<Type> = None;
    let mut sink_resp: Option<Type> = None;
    if typed.len() != want && typed.first().is_some_and(|c| is_named(&c.ty, "CallContext")) {
        fail(
            sig.paren_token.span.join(),
            format!(
                "#[{}] method `{fn_name}` takes {} parameters after `self`, found {}; expected `{expected}`",
                pattern.attr_name(),
                want,
                typed.len()
            ),
        );
    } else if typed.len() == want {
        let second = &typed[1].ty;
        match pattern {
            Pattern::Unary | Pattern::ServerStream => {
                if wrapper_arg(second, "Streaming").is_some() || wrapper_arg(second, "ServerSink").is_some() {
                    fail(
                        second.span(),
                        format!(
                            "#[{}] method `{fn_name}` takes one request `req: Req`, found `{}` (use #[client_stream] or \
                             #[bidi_stream] for a stream of requests); expected `{expected}`",
                            pattern.attr_name(),
                            type_text(second)
                        ),
                    );
                } else {
                    req = Some((**second).clone());
                }
            }
            Pattern::ClientStream | Pattern::Bidi => match wrapper_arg(second, "Streaming") {
                Some(t) => req = Some(t.clone()),
                None => fail(
                    second.span(),
                    format!(
                        "#[{}] method `{fn_name}` receives its requests as `reqs: Streaming<Req>`, found `{}`; expected `{expected}`",
                        pattern.attr_name(),
                        type_text(second)
                    ),
                ),
            },
        }
        if want == 3 {
            let third = &typed[2].ty;
            match wrapper_arg(third, "ServerSink") {
                Some(t) => sink_resp = Some(t.clone()),
                None => fail(
                    third.span(),
                    format!(
                        "#[{}] method `{fn_name}` sends its responses through `sink: ServerSink<Resp>`, found `{}`; expected `{expected}`",
                        pattern.attr_name(),
                        type_text(third)
                    ),
                ),
            }
        }
    }

    // return type: Result<X, Status>
    let ret_ok = match &sig.output {
        ReturnType::Type(_, ty) => match last_segment(ty) {
            Some((ident, targs)) if ident == "Result" && targs.len() == 2 && is_named(targs[1], "Status") => {
                Some(targs[0].clone())
            }
            _ => None,
        },
        ReturnType::Default => None,
    };
    let resp = match (ret_ok, pattern) {
        (None, _) => {
            let span = match &sig.output {
                ReturnType::Type(_, ty) => ty.span(),
                ReturnType::Default => sig.paren_token.span.join(),
            };
            fail(span, format!("`{fn_name}` must return `Result<_, Status>`; expected `{expected}`"));
            None
        }
        (Some(ok), Pattern::Unary | Pattern::ClientStream) => Some(ok),
        (Some(ok), Pattern::ServerStream | Pattern::Bidi) => {
            if !is_unit(&ok) {
                fail(
                    ok.span(),
                    format!(
                        "#[{}] method `{fn_name}` returns `Result<(), Status>` (responses go through the sink), found \
                         `Result<{}, Status>`",
                        pattern.attr_name(),
                        type_text(&ok)
                    ),
                );
            }
            sink_resp.clone()
        }
    };

    if !ok {
        return None;
    }
    let (Some(req), Some(resp)) = (req, resp) else { return None };

    let wire_name = args.name.as_ref().map(LitStr::value).unwrap_or_else(|| fn_name.clone());
    let variant = format_ident!("{}", pascal_case(&fn_name), span = fn_ident.span());

    // rewrite: async fn m(..) -> R  ⇒  fn m(..) -> impl Future<Output = R> + Send
    let output = match &f.sig.output {
        ReturnType::Type(_, ty) => (**ty).clone(),
        ReturnType::Default => return None,
    };
    f.sig.asyncness = None;
    f.sig.output = syn::parse_quote_spanned! {output.span()=>
        -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
    };
    if let Some(body) = f.default.take() {
        f.default = Some(syn::parse_quote!({ async move #body }));
    }
    Some(Method { item: f, fn_ident, wire_name, variant, pattern, args, req, resp })
}

fn expand_trait(args: TokenStream, item: &ItemTrait) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    let args = match parse_service_args(args) {
        Ok(a) => Some(a),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    let scope = args.as_ref().map_or(Scope::Shared, |a| a.scope);
    let prefix = name_prefix(&item.ident);

    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        errors.push(syn::Error::new(item.generics.span(), "a #[service] trait cannot be generic"));
    }
    if let Some(u) = &item.unsafety {
        errors.push(syn::Error::new(u.span(), "a #[service] trait cannot be `unsafe`"));
    }
    if let Some(a) = &item.auto_token {
        errors.push(syn::Error::new(a.span(), "a #[service] trait cannot be `auto`"));
    }

    let mut methods: Vec<Method> = Vec::new();
    let mut wire_names: HashMap<String, Ident> = HashMap::new();
    let mut variants: HashMap<String, Ident> = HashMap::new();
    for it in &item.items {
        match it {
            TraitItem::Fn(f) => {
                if let Some(m) = analyse_method(f.clone(), scope, &prefix, &mut errors) {
                    let name_span = m.args.name.as_ref().map_or(m.fn_ident.span(), LitStr::span);
                    if let Some(first) = wire_names.get(&m.wire_name) {
                        errors.push(syn::Error::new(
                            name_span,
                            format!(
                                "duplicate method name `{}`: `{}` and `{}` would share one wire name",
                                m.wire_name, first, m.fn_ident
                            ),
                        ));
                        continue;
                    }
                    if let Some(first) = variants.get(&m.variant.to_string()) {
                        errors.push(syn::Error::new(
                            m.fn_ident.span(),
                            format!(
                                "`{}` and `{}` map to the same message variant `{}`; rename one of them",
                                first, m.fn_ident, m.variant
                            ),
                        ));
                        continue;
                    }
                    wire_names.insert(m.wire_name.clone(), m.fn_ident.clone());
                    variants.insert(m.variant.to_string(), m.fn_ident.clone());
                    methods.push(m);
                }
            }
            other => errors.push(syn::Error::new(
                other.span(),
                "a #[service] trait may only contain RPC methods (`async fn` marked #[unary], #[server_stream], \
                 #[client_stream] or #[bidi_stream])",
            )),
        }
    }
    errors.finish()?;
    let Some(args) = args else { return Err(syn::Error::new(Span::call_site(), "invalid #[service] arguments")) };
    Ok(generate(item, &args, &methods))
}

/// The prefix of the generated names: `TaskManagerHandler` → `TaskManager` (a trait not ending
/// in `Handler` keeps its whole name).
fn name_prefix(trait_ident: &Ident) -> String {
    let trait_name = unraw(trait_ident);
    match trait_name.strip_suffix("Handler") {
        Some(s) if !s.is_empty() => s.to_owned(),
        _ => trait_name,
    }
}

/// The generated client type and the associated items it defines besides the RPC methods: an
/// RPC method of one of these names would be a second definition in the same `impl` (E0592).
fn client_items(prefix: &str, scope: Scope) -> (String, &'static [&'static str]) {
    match scope {
        Scope::Shared => (format!("{prefix}Client"), &["new", "SERVICE", "VERSION"]),
        Scope::Session => {
            (format!("{prefix}SessionClient"), &["open", "open_with", "from_session", "close", "SERVICE", "VERSION"])
        }
    }
}

fn generate(item: &ItemTrait, args: &ServiceArgs, methods: &[Method]) -> TokenStream {
    let p = quote!(::aster::__private);
    let vis = &item.vis;
    let trait_ident = &item.ident;
    let trait_name = unraw(trait_ident);
    let prefix = name_prefix(trait_ident);
    let span = trait_ident.span();
    let msg_ident = format_ident!("{}Msg", prefix, span = span);
    let svc_ident = format_ident!("{}Service", prefix, span = span);
    let client_ident = format_ident!("{}Client", prefix, span = span);
    let session_client_ident = format_ident!("{}SessionClient", prefix, span = span);
    let wire = args.name.as_ref().map(LitStr::value).unwrap_or_else(|| prefix.clone());
    let version = args.version;
    let version_i64 = i64::from(version);

    // ── the trait ──
    let attrs = &item.attrs;
    let supertraits = &item.supertraits;
    let plus = if supertraits.is_empty() { quote!() } else { quote!(+) };
    let extra_bounds = match args.scope {
        Scope::Shared => quote!(::core::marker::Send + ::core::marker::Sync + 'static),
        Scope::Session => quote!(::core::marker::Send + 'static),
    };
    let items = methods.iter().map(|m| &m.item);
    let trait_tokens = quote! {
        #(#attrs)*
        #vis trait #trait_ident: #supertraits #plus #extra_bounds {
            #(#items)*
        }
    };

    // ── the message enum ──
    let variants = methods.iter().map(|m| {
        let v = &m.variant;
        let (req, resp) = (&m.req, &m.resp);
        let doc = format!("`{}` ({}).", m.wire_name, m.pattern.attr_name());
        match m.pattern {
            Pattern::Unary => quote! { #[doc = #doc] #v(#p::CallContext, #req, #p::ReplyPort<#resp>) },
            Pattern::ServerStream => {
                quote! { #[doc = #doc] #v(#p::CallContext, #req, #p::ServerSink<#resp>, #p::ReplyPort<()>) }
            }
            Pattern::ClientStream => {
                quote! { #[doc = #doc] #v(#p::CallContext, #p::Streaming<#req>, #p::ReplyPort<#resp>) }
            }
            Pattern::Bidi => quote! {
                #[doc = #doc] #v(#p::CallContext, #p::Streaming<#req>, #p::ServerSink<#resp>, #p::ReplyPort<()>)
            },
        }
    });
    let msg_doc = format!("The typed mailbox of service `{wire}`: one variant per method.");
    let msg_tokens = quote! {
        #[doc = #msg_doc]
        #vis enum #msg_ident {
            #(#variants,)*
        }
    };

    // ── descriptor ──
    let scope_rt = match args.scope {
        Scope::Shared => quote!(#p::Scope::Shared),
        Scope::Session => quote!(#p::Scope::Session),
    };
    let mut runtime_modes: Vec<Mode> = args.serialization.clone();
    if !runtime_modes.contains(&Mode::Native) {
        runtime_modes.push(Mode::Native);
    }
    let runtime_modes = runtime_modes.iter().map(|m| m.tokens());
    let method_descs = methods.iter().map(|m| {
        let name = &m.wire_name;
        let pat = m.pattern.runtime();
        let mut sets = Vec::new();
        if let Some(t) = m.args.timeout {
            sets.push(quote!(m.timeout = ::core::option::Option::Some(::std::time::Duration::from_secs_f64(#t));));
        }
        if m.args.idempotent {
            sets.push(quote!(m.idempotent = true;));
        }
        if let Some(r) = &m.args.requires {
            let r = r.tokens();
            sets.push(quote!(m.requires = ::core::option::Option::Some(#r);));
        }
        if let Some(modes) = &m.args.serialization {
            let modes = modes.iter().map(|x| x.tokens());
            sets.push(quote!(m.serialization = ::core::option::Option::Some(::std::vec![#(#modes),*]);));
        }
        if sets.is_empty() {
            quote!(#p::MethodDescriptor::new(#name, #pat))
        } else {
            quote!({
                let mut m = #p::MethodDescriptor::new(#name, #pat);
                #(#sets)*
                m
            })
        }
    });
    let route_arms = methods.iter().enumerate().map(|(i, m)| {
        let v = &m.variant;
        let helper = match m.pattern {
            Pattern::Unary => quote!(unary),
            Pattern::ServerStream => quote!(server_stream),
            Pattern::ClientStream => quote!(client_stream),
            Pattern::Bidi => quote!(bidi),
        };
        quote!(#i => call.#helper(#msg_ident::#v))
    });
    let no_method = format!("{wire} has no method #{{method}}");

    // ── contract ──
    let contract_modes = args.serialization.iter().map(|m| m.as_str());
    let scope_contract = match args.scope {
        Scope::Shared => quote!(#p::ScopeKind::Shared),
        Scope::Session => quote!(#p::ScopeKind::Session),
    };
    let service_requires = match &args.requires {
        Some(r) => {
            let r = r.tokens();
            quote!(::core::option::Option::Some(#r))
        }
        None => quote!(::core::option::Option::None),
    };
    let contract_methods = methods.iter().map(|m| {
        let name = &m.wire_name;
        let pat = m.pattern.contract();
        let (req, resp) = (&m.req, &m.resp);
        let idem = m.args.idempotent;
        let timeout = m.args.timeout.unwrap_or(0.0);
        let req_span = req.span();
        let resp_span = resp.span();
        let req_ty = quote_spanned!(req_span=> #p::MethodType::Message(<#req as #p::Describe>::describe));
        let resp_ty = quote_spanned!(resp_span=> #p::MethodType::Message(<#resp as #p::Describe>::describe));
        quote! {
            #p::MethodDesc {
                name: ::std::string::String::from(#name),
                pattern: #pat,
                request: #req_ty,
                response: #resp_ty,
                idempotent: #idem,
                timeout_secs: #timeout,
            }
        }
    });

    // ── dispatch ──
    let dispatch_arms = methods.iter().map(|m| {
        let v = &m.variant;
        let f = &m.fn_ident;
        match m.pattern {
            Pattern::Unary | Pattern::ClientStream => quote! {
                #msg_ident::#v(ctx, req, reply) => {
                    let _ = reply.send(self.0.#f(ctx, req).await);
                }
            },
            Pattern::ServerStream | Pattern::Bidi => quote! {
                #msg_ident::#v(ctx, req, sink, done) => {
                    let _ = done.send(self.0.#f(ctx, req, sink).await);
                }
            },
        }
    });
    let dispatch_impl = match args.scope {
        Scope::Shared => quote! {
            impl<H: #trait_ident> #p::SharedService for #svc_ident<H> {
                async fn dispatch(&self, msg: #msg_ident) {
                    match msg {
                        #(#dispatch_arms)*
                    }
                }
            }
        },
        Scope::Session => quote! {
            impl<H: #trait_ident> #p::SessionService for #svc_ident<H> {
                async fn dispatch(&mut self, msg: #msg_ident) {
                    match msg {
                        #(#dispatch_arms)*
                    }
                }
            }
        },
    };

    let svc_doc = format!(
        "Service `{wire}` v{version} served by a handler `H: {trait_name}` (generated by `#[aster::service]`)."
    );
    let svc_tokens = quote! {
        #[doc = #svc_doc]
        #vis struct #svc_ident<H>(pub H);

        impl<H> #svc_ident<H> {
            /// The wire name of the service.
            pub const NAME: &'static str = #wire;
            /// The service version.
            pub const VERSION: i32 = #version;

            /// The contract-side description of the service (input of `build_contract`).
            pub fn service_desc() -> #p::ServiceDesc {
                #p::ServiceDesc {
                    name: ::std::string::String::from(#wire),
                    version: #version,
                    scope: #scope_contract,
                    serialization: ::std::vec![#(::std::string::String::from(#contract_modes)),*],
                    methods: ::std::vec![#(#contract_methods),*],
                }
            }

            /// The capability the whole service requires (`requires =` of `#[service]`; also
            /// `ServiceDef::requires`, checked by the node for every call). Method requirements
            /// are in `MethodDescriptor::requires`. Neither reaches the 0.1.2 contract.
            pub fn requires() -> ::core::option::Option<#p::CapabilityRequirement> {
                #service_requires
            }

            /// The service's contract (aster-rpc 0.1.2 profile), built on first use.
            pub fn contract() -> ::core::result::Result<&'static #p::BuiltContract, #p::ContractError> {
                static CONTRACT: ::std::sync::OnceLock<
                    ::core::result::Result<#p::BuiltContract, #p::ContractError>,
                > = ::std::sync::OnceLock::new();
                CONTRACT
                    .get_or_init(|| #p::build_contract(&#svc_ident::<()>::service_desc(), #p::Profile::V0_1))
                    .as_ref()
                    .map_err(::core::clone::Clone::clone)
            }
        }

        impl<H: #trait_ident> #p::ServiceDef for #svc_ident<H> {
            type Msg = #msg_ident;

            fn descriptor() -> #p::ServiceDescriptor {
                #p::ServiceDescriptor {
                    name: #wire,
                    version: #version_i64,
                    scope: #scope_rt,
                    methods: ::std::vec![#(#method_descs),*],
                    serialization: ::std::vec![#(#runtime_modes),*],
                }
            }

            fn route(
                method: usize,
                call: #p::RawCall,
            ) -> ::core::result::Result<#p::Routed<#msg_ident>, #p::Status> {
                match method {
                    #(#route_arms,)*
                    _ => ::core::result::Result::Err(#p::Status::unimplemented(::std::format!(#no_method))),
                }
            }

            fn contract_id() -> ::core::option::Option<#p::ContractId> {
                Self::contract().ok().map(|c| c.contract_id)
            }

            fn requires() -> ::core::option::Option<#p::CapabilityRequirement> {
                #service_requires
            }
        }

        #dispatch_impl
    };

    let client_tokens = match args.scope {
        Scope::Shared => shared_client(vis, &client_ident, &wire, version_i64, methods),
        Scope::Session => session_client(vis, &session_client_ident, &wire, version_i64, methods),
    };

    quote! {
        #trait_tokens
        #msg_tokens
        #svc_tokens
        #client_tokens
    }
}

fn client_method_doc(m: &Method) -> String {
    match m.pattern {
        Pattern::Unary => format!("Calls `{}` (unary).", m.wire_name),
        Pattern::ServerStream => format!("Calls `{}` (server stream): returns the response stream.", m.wire_name),
        Pattern::ClientStream => format!(
            "Starts `{}` (client stream): send requests on the returned call, then `finish()` for the response.",
            m.wire_name
        ),
        Pattern::Bidi => {
            format!("Starts `{}` (bidi stream): returns the request sink and the response stream.", m.wire_name)
        }
    }
}

/// The typed call methods of a client. `target` is the receiver expression
/// (`self.channel` or `self.session`) and `lead` the arguments that address the method before
/// its name (`Self::SERVICE, Self::VERSION,` for a channel; nothing for a session).
fn client_fns(methods: &[Method], target: TokenStream, lead: TokenStream) -> Vec<TokenStream> {
    let p = quote!(::aster::__private);
    methods
        .iter()
        .map(|m| {
            let f = &m.fn_ident;
            let name = &m.wire_name;
            let (req, resp) = (&m.req, &m.resp);
            let doc = client_method_doc(m);
            match m.pattern {
                Pattern::Unary => quote! {
                    #[doc = #doc]
                    pub async fn #f(&self, req: &#req, opts: #p::CallOptions) -> ::core::result::Result<#resp, #p::Status> {
                        #target.unary(#lead #name, req, opts).await
                    }
                },
                Pattern::ServerStream => quote! {
                    #[doc = #doc]
                    pub async fn #f(
                        &self,
                        req: &#req,
                        opts: #p::CallOptions,
                    ) -> ::core::result::Result<#p::ClientStreaming<#resp>, #p::Status> {
                        #target.server_stream(#lead #name, req, opts).await
                    }
                },
                Pattern::ClientStream => quote! {
                    #[doc = #doc]
                    pub async fn #f(
                        &self,
                        opts: #p::CallOptions,
                    ) -> ::core::result::Result<#p::ClientStreamCall<#req, #resp>, #p::Status> {
                        #target.client_stream(#lead #name, opts).await
                    }
                },
                Pattern::Bidi => quote! {
                    #[doc = #doc]
                    pub async fn #f(
                        &self,
                        opts: #p::CallOptions,
                    ) -> ::core::result::Result<(#p::RequestSink<#req>, #p::ClientStreaming<#resp>), #p::Status> {
                        #target.bidi(#lead #name, opts).await
                    }
                },
            }
        })
        .collect()
}

fn shared_client(vis: &syn::Visibility, ident: &Ident, wire: &str, version: i64, methods: &[Method]) -> TokenStream {
    let p = quote!(::aster::__private);
    let fns = client_fns(methods, quote!(self.channel), quote!(Self::SERVICE, Self::VERSION,));
    let doc = format!("Typed client of service `{wire}` v{version} (one stream per call).");
    quote! {
        #[doc = #doc]
        #[derive(Clone, Debug)]
        #vis struct #ident {
            /// The connection the calls go through.
            pub channel: #p::Channel,
        }

        impl #ident {
            /// The wire name of the service.
            pub const SERVICE: &'static str = #wire;
            /// The service version.
            pub const VERSION: i64 = #version;

            /// A client calling through `channel`.
            pub fn new(channel: #p::Channel) -> Self {
                #ident { channel }
            }

            #(#fns)*
        }
    }
}

fn session_client(vis: &syn::Visibility, ident: &Ident, wire: &str, version: i64, methods: &[Method]) -> TokenStream {
    let p = quote!(::aster::__private);
    let fns = client_fns(methods, quote!(self.session), quote!());
    let doc = format!(
        "Typed client of session-scope service `{wire}` v{version}: one session (one server-side instance), \
         calls strictly one at a time."
    );
    quote! {
        #[doc = #doc]
        #[derive(Debug)]
        #vis struct #ident {
            /// The session the calls go through.
            pub session: #p::Session,
        }

        impl #ident {
            /// The wire name of the service.
            pub const SERVICE: &'static str = #wire;
            /// The service version.
            pub const VERSION: i64 = #version;

            /// Opens a new session on `channel` (the channel's default mode; no timeout).
            pub async fn open(channel: &#p::Channel) -> ::core::result::Result<Self, #p::Status> {
                Self::open_with(channel, #p::CallOptions::new()).await
            }

            /// Opens a new session with options (mode, metadata; the timeout bounds the opening).
            pub async fn open_with(
                channel: &#p::Channel,
                opts: #p::CallOptions,
            ) -> ::core::result::Result<Self, #p::Status> {
                let session = channel.open_session(Self::SERVICE, Self::VERSION, opts).await?;
                ::core::result::Result::Ok(#ident { session })
            }

            /// Wraps an already opened session of this service.
            pub fn from_session(session: #p::Session) -> Self {
                #ident { session }
            }

            /// Closes the session at a call boundary (see `Session::close`).
            pub async fn close(self) -> ::core::result::Result<(), #p::Status> {
                self.session.close().await
            }

            #(#fns)*
        }
    }
}
