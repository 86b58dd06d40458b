//! The proc macros of `tabmesh-sdk`. Use them through `tabmesh_sdk::app`; the generated code names
//! `::tabmesh_sdk`, so an app depends on the `tabmesh-sdk` package under its own name.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::{
    parse_macro_input, Attribute, Fields, FnArg, ImplItem, ImplItemFn, Item, ItemImpl, ItemStruct,
    Pat, ReturnType, Type, Visibility,
};

/// Names reserved for runtime hooks (mirrors `tabmesh_abi::RESERVED_PREFIX`).
const RESERVED_PREFIX: &str = "__tabmesh";
/// The init hook's export name (mirrors `tabmesh_abi::INIT_HOOK`).
const INIT_HOOK: &str = "__tabmesh_init";
/// Longest method name (mirrors `tabmesh_abi::MAX_METHOD_NAME_BYTES`).
const MAX_METHOD_NAME_BYTES: usize = 128;
/// The SDK's collection types, the only field types of an app state.
const COLLECTIONS: &[&str] = &[
    "Register",
    "Counter",
    "PnCounter",
    "Map",
    "Set",
    "List",
    "Text",
];

/// Marks an app's state: a struct with named fields, all SDK collections. Implements
/// `tabmesh_sdk::State`, whose `load` addresses each field's collection by the field's name.
#[proc_macro_attribute]
pub fn state(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let item = parse_macro_input!(item as ItemStruct);
    match expand_state(attr, item) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Marks the state's inherent impl: each `pub` method taking `&self` or `&mut self` becomes an
/// exported method of the module; the one marked `#[app::init]` becomes the init hook.
#[proc_macro_attribute]
pub fn logic(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let item = parse_macro_input!(item as ItemImpl);
    match expand_logic(attr, item) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

/// Marks the init method inside an `#[app::logic]` impl (which consumes this attribute).
#[proc_macro_attribute]
pub fn init(_attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = TokenStream2::from(item);
    let mut out = syn::Error::new(
        Span::call_site(),
        "`#[app::init]` marks a method inside an `#[app::logic]` impl block",
    )
    .to_compile_error();
    out.extend(item);
    out.into()
}

/// Marks an event type (an enum, or a struct): implements `tabmesh_sdk::Event` with the variant's
/// (struct's) name as kind and its fields as a JSON object as data.
#[proc_macro_attribute]
pub fn event(attr: TokenStream, item: TokenStream) -> TokenStream {
    let attr = TokenStream2::from(attr);
    let item = parse_macro_input!(item as Item);
    match expand_event(attr, item) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn no_arguments(attr: TokenStream2, what: &str) -> syn::Result<()> {
    if attr.is_empty() {
        return Ok(());
    }
    let text = attr.to_string();
    let message = if text.contains("merge") {
        "custom merge functions are not supported: an app's state merges exactly as its \
         collections do"
            .to_owned()
    } else {
        format!("`#[app::{what}]` takes no arguments")
    };
    Err(syn::Error::new_spanned(attr, message))
}

fn combine(errors: Vec<syn::Error>) -> syn::Result<()> {
    let mut iter = errors.into_iter();
    let Some(mut first) = iter.next() else {
        return Ok(());
    };
    for e in iter {
        first.combine(e);
    }
    Err(first)
}

/// Whether `ty` is written as one of the SDK's collections (the trait bound in the generated code
/// is the real check; this one gives the clear message).
fn is_collection(ty: &Type) -> bool {
    match ty {
        Type::Path(p) if p.qself.is_none() => p
            .path
            .segments
            .last()
            .is_some_and(|s| COLLECTIONS.iter().any(|c| s.ident == c)),
        Type::Group(g) => is_collection(&g.elem),
        Type::Paren(p) => is_collection(&p.elem),
        _ => false,
    }
}

fn expand_state(attr: TokenStream2, item: ItemStruct) -> syn::Result<TokenStream2> {
    no_arguments(attr, "state")?;
    let name = &item.ident;
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &item.generics,
            "an app state has no generic parameters",
        ));
    }
    let Fields::Named(fields) = &item.fields else {
        return Err(syn::Error::new_spanned(
            &item,
            "an app state is a struct with named fields (each field names a collection)",
        ));
    };
    let mut errors = Vec::new();
    let mut inits = Vec::new();
    for field in &fields.named {
        let Some(ident) = &field.ident else { continue };
        let ty = &field.ty;
        if !is_collection(ty) {
            errors.push(syn::Error::new_spanned(
                ty,
                format!(
                    "field `{ident}` of app state `{name}` has type `{}`: an app's state holds only \
                     tabmesh collections ({}), written out; keep other data inside one (e.g. a \
                     `Register`)",
                    ty.to_token_stream(),
                    COLLECTIONS.join(", "),
                ),
            ));
            continue;
        }
        let id = ident.unraw().to_string();
        inits.push(quote_spanned! {ty.span()=>
            #ident: <#ty as ::tabmesh_sdk::Collection>::root(#id)
        });
    }
    combine(errors)?;
    Ok(quote! {
        #item

        impl ::tabmesh_sdk::State for #name {
            fn load() -> Self {
                Self { #(#inits,)* }
            }
        }
    })
}

fn is_init_attr(attr: &Attribute) -> bool {
    attr.path()
        .segments
        .last()
        .is_some_and(|s| s.ident == "init")
}

/// Whether the return type is written as a `Result` (answered with `Ok`, failed with `Err`).
fn returns_result(ret: &ReturnType) -> bool {
    match ret {
        ReturnType::Default => false,
        ReturnType::Type(_, ty) => match &**ty {
            Type::Path(p) => p.path.segments.last().is_some_and(|s| s.ident == "Result"),
            _ => false,
        },
    }
}

fn expand_logic(attr: TokenStream2, mut item: ItemImpl) -> syn::Result<TokenStream2> {
    no_arguments(attr, "logic")?;
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "`#[app::logic]` goes on the state's inherent impl, not a trait impl",
        ));
    }
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &item.generics,
            "`#[app::logic]` impls have no generic parameters",
        ));
    }
    let self_ty = item.self_ty.clone();
    let mut errors = Vec::new();
    let mut exports = Vec::new();
    let mut init_seen: Option<Span> = None;
    for impl_item in &mut item.items {
        let ImplItem::Fn(method) = impl_item else {
            continue;
        };
        let before = method.attrs.len();
        method.attrs.retain(|a| !is_init_attr(a));
        let is_init = method.attrs.len() != before;
        if is_init {
            if init_seen.is_some() {
                errors.push(syn::Error::new_spanned(
                    &method.sig.ident,
                    "at most one method is `#[app::init]`",
                ));
                continue;
            }
            init_seen = Some(method.sig.ident.span());
        }
        let public = matches!(method.vis, Visibility::Public(_));
        if !public && !is_init {
            continue;
        }
        match export(&self_ty, method, is_init) {
            Ok(tokens) => exports.push(tokens),
            Err(e) => errors.push(e),
        }
    }
    combine(errors)?;
    Ok(quote! {
        #item
        #(#exports)*
    })
}

/// The exported `extern "C" fn` of one method.
fn export(self_ty: &Type, method: &ImplItemFn, is_init: bool) -> syn::Result<TokenStream2> {
    let sig = &method.sig;
    let ident = &sig.ident;
    let name = ident.unraw().to_string();
    let fail = |tokens: &dyn ToTokens, message: &str| {
        Err(syn::Error::new_spanned(
            tokens,
            format!("method `{name}`: {message}"),
        ))
    };
    if !sig.generics.params.is_empty() {
        return fail(&sig.generics, "exported methods have no generic parameters");
    }
    if let Some(a) = &sig.asyncness {
        return fail(a, "exported methods are not async");
    }
    if let Some(v) = &sig.variadic {
        return fail(v, "exported methods are not variadic");
    }
    if !is_init {
        if name.starts_with(RESERVED_PREFIX) {
            return fail(
                ident,
                &format!("names starting with `{RESERVED_PREFIX}` are reserved for runtime hooks"),
            );
        }
        if name.len() > MAX_METHOD_NAME_BYTES {
            return fail(
                ident,
                &format!("names are at most {MAX_METHOD_NAME_BYTES} bytes"),
            );
        }
    }
    let mut inputs = sig.inputs.iter();
    let receiver = match inputs.next() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() => r,
        Some(FnArg::Receiver(r)) => {
            return fail(
                r,
                "exported methods take `&self` or `&mut self`, not `self`",
            )
        }
        _ => {
            return fail(
                ident,
                "exported methods take `&self` (read-only) or `&mut self`; make associated \
                 functions private",
            )
        }
    };
    let state = if receiver.mutability.is_some() {
        quote! { let mut __state = <#self_ty as ::tabmesh_sdk::State>::load(); }
    } else {
        quote! { let __state = <#self_ty as ::tabmesh_sdk::State>::load(); }
    };
    let mut fields = Vec::new();
    let mut args = Vec::new();
    for input in inputs {
        let FnArg::Typed(arg) = input else { continue };
        let Pat::Ident(pat) = &*arg.pat else {
            return fail(
                &arg.pat,
                "arguments are plain names (they are the input object's members)",
            );
        };
        if matches!(&*arg.ty, Type::Reference(_) | Type::ImplTrait(_)) {
            return fail(
                &arg.ty,
                "arguments are decoded from JSON into owned values (e.g. `String`, not `&str`)",
            );
        }
        let arg_ident = &pat.ident;
        let ty = &arg.ty;
        fields.push(quote_spanned! {ty.span()=> #arg_ident: #ty });
        args.push(quote! { __args.#arg_ident });
    }
    let answer = if returns_result(&sig.output) {
        quote! { ::tabmesh_sdk::__private::result(&__ret) }
    } else {
        quote! { ::tabmesh_sdk::__private::ok(&__ret) }
    };
    let export_name = if is_init {
        INIT_HOOK.to_owned()
    } else {
        name.clone()
    };
    let fn_ident = format_ident!("__tabmesh_export_{}", name);
    Ok(quote! {
        #[doc(hidden)]
        #[allow(unsafe_code, dead_code, non_snake_case)]
        #[cfg_attr(target_arch = "wasm32", unsafe(export_name = #export_name))]
        extern "C" fn #fn_ident() {
            #[derive(::tabmesh_sdk::__private::serde::Deserialize)]
            #[serde(crate = "::tabmesh_sdk::__private::serde")]
            struct __Args { #(#fields,)* }
            ::tabmesh_sdk::__private::dispatch(|__input: &[u8]| {
                let __args: __Args = match ::tabmesh_sdk::__private::args(__input) {
                    ::core::result::Result::Ok(a) => a,
                    ::core::result::Result::Err(e) => return ::core::result::Result::Err(e),
                };
                #state
                let __ret = __state.#ident(#(#args),*);
                #answer
            })
        }
    })
}

fn expand_event(attr: TokenStream2, item: Item) -> syn::Result<TokenStream2> {
    no_arguments(attr, "event")?;
    let (name, generics, arms) = match &item {
        Item::Enum(e) => {
            let mut kinds = Vec::new();
            let mut datas = Vec::new();
            for v in &e.variants {
                let vi = &v.ident;
                let kind = vi.unraw().to_string();
                let (pattern, body) = fields_data(&v.fields);
                let any = any_fields(&v.fields);
                kinds.push(quote! { Self::#vi #any => #kind });
                datas.push(quote! { Self::#vi #pattern => { #body } });
            }
            (&e.ident, &e.generics, (kinds, datas))
        }
        Item::Struct(s) => {
            let kind = s.ident.unraw().to_string();
            let (pattern, body) = fields_data(&s.fields);
            let any = any_fields(&s.fields);
            (
                &s.ident,
                &s.generics,
                (
                    vec![quote! { Self #any => #kind }],
                    vec![quote! { Self #pattern => { #body } }],
                ),
            )
        }
        other => {
            return Err(syn::Error::new_spanned(
                other,
                "`#[app::event]` goes on an enum (one kind per variant) or a struct",
            ))
        }
    };
    let (kinds, datas) = arms;
    let (impl_generics, ty_generics, where_clause) = generics.split_for_impl();
    Ok(quote! {
        #item

        impl #impl_generics ::tabmesh_sdk::Event for #name #ty_generics #where_clause {
            fn kind(&self) -> &'static str {
                match *self { #(#kinds,)* }
            }

            fn data(&self) -> ::tabmesh_sdk::Result<::std::vec::Vec<u8>> {
                #[allow(unused_imports)]
                use ::tabmesh_sdk::__private::serde::ser::{SerializeMap as _, Serializer as _};
                ::tabmesh_sdk::__private::event_data(|__ser| {
                    #[allow(unused_variables)]
                    let __r = match *self { #(#datas)* };
                    __r
                })
            }
        }
    })
}

/// The pattern matching a variant (struct) whatever its fields.
fn any_fields(fields: &Fields) -> TokenStream2 {
    match fields {
        Fields::Named(_) => quote! { { .. } },
        Fields::Unnamed(_) => quote! { ( .. ) },
        Fields::Unit => quote! {},
    }
}

/// The pattern binding a variant's (struct's) fields and the code serializing them into `__ser`.
fn fields_data(fields: &Fields) -> (TokenStream2, TokenStream2) {
    match fields {
        Fields::Named(named) => {
            let idents: Vec<_> = named
                .named
                .iter()
                .filter_map(|f| f.ident.as_ref())
                .collect();
            let keys: Vec<String> = idents.iter().map(|i| i.unraw().to_string()).collect();
            let len = idents.len();
            (
                quote! { { #(ref #idents),* } },
                quote! {
                    let mut __m = (&mut *__ser).serialize_map(::core::option::Option::Some(#len))?;
                    #( __m.serialize_entry(#keys, #idents)?; )*
                    __m.end()
                },
            )
        }
        Fields::Unnamed(unnamed) => {
            let idents: Vec<_> = (0..unnamed.unnamed.len())
                .map(|i| format_ident!("__f{}", i))
                .collect();
            let body = if idents.len() == 1 {
                let f = &idents[0];
                quote! { ::tabmesh_sdk::__private::serde::Serialize::serialize(#f, &mut *__ser) }
            } else {
                quote! {
                    ::tabmesh_sdk::__private::serde::Serialize::serialize(&(#(#idents,)*), &mut *__ser)
                }
            };
            (quote! { ( #(ref #idents),* ) }, body)
        }
        Fields::Unit => (
            quote! {},
            quote! {
                (&mut *__ser).serialize_map(::core::option::Option::Some(0))?.end()
            },
        ),
    }
}
