//! `#[traced]`: wraps a sync or async function in a `tracing` span (exported through
//! `tracing-opentelemetry` by the Sightline SDK) that records selected arguments, the
//! duration, and `Err` returns as `exception` events with status ERROR.
//!
//! Use it through `sightline_sdk::traced`; the expansion names `::sightline_sdk`.
//!
//! ```ignore
//! #[sightline_sdk::traced]                                // span "checkout", no arguments
//! async fn checkout(cart: Cart) -> Result<Order, Error> { ... }
//! #[sightline_sdk::traced(name = "inventory.reserve", record(sku, quantity))]
//! fn reserve(sku: &str, quantity: u32, token: &Secret) -> Result<(), Error> { ... }
//! #[sightline_sdk::traced(skip(token))]                   // every argument but `token`
//! fn charge(order_id: u64, amount_cents: u64, token: &Secret) { ... }
//! ```
//!
//! - The span is named `name` or the function's name; it carries `code.function.name` and
//!   `code.namespace` (OpenTelemetry semconv "Code" attributes) and `duration_ms` (f64, ms).
//! - Arguments are not recorded unless asked: `record(a, b)` records those, `skip(c)` records
//!   all but those (with `Debug`); the two cannot be combined.
//! - A function whose return type is spelled `Result<..>` (any path ending in `Result`) has an
//!   `Err` recorded with its `Display` text and type as an exception, status ERROR.

use proc_macro::TokenStream;
use proc_macro2::{Span, TokenStream as TokenStream2};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ItemFn, LitStr, Pat, ReturnType, Token, Type};

/// Parsed `#[traced(...)]` options.
#[derive(Default)]
struct Options {
    name: Option<LitStr>,
    record: Option<Vec<Ident>>,
    skip: Option<Vec<Ident>>,
}

fn ident_list(input: ParseStream) -> syn::Result<Vec<Ident>> {
    let content;
    syn::parenthesized!(content in input);
    let idents = Punctuated::<Ident, Token![,]>::parse_terminated(&content)?;
    Ok(idents.into_iter().collect())
}

impl Parse for Options {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut options = Options::default();
        while !input.is_empty() {
            let key: Ident = input.parse()?;
            match key.to_string().as_str() {
                "name" => {
                    if options.name.is_some() {
                        return Err(syn::Error::new(key.span(), "`name` is given twice"));
                    }
                    input.parse::<Token![=]>()?;
                    let name: LitStr = input.parse().map_err(|error| {
                        syn::Error::new(
                            error.span(),
                            "`name` takes a string literal: #[traced(name = \"orders.create\")]",
                        )
                    })?;
                    if name.value().trim().is_empty() {
                        return Err(syn::Error::new(name.span(), "the span name cannot be empty"));
                    }
                    options.name = Some(name);
                }
                "record" => options.record = Some(ident_list(input)?),
                "skip" => options.skip = Some(ident_list(input)?),
                other => {
                    return Err(syn::Error::new(
                        key.span(),
                        format!(
                            "unknown #[traced] option `{other}`: use name = \"...\", record(args...) or skip(args...)"
                        ),
                    ));
                }
            }
            if options.record.is_some() && options.skip.is_some() {
                return Err(syn::Error::new(
                    key.span(),
                    "use either record(...) (these arguments) or skip(...) (all but these), not both",
                ));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(options)
    }
}

/// Whether the written return type is `...Result<...>`.
fn returns_result(output: &ReturnType) -> bool {
    let ReturnType::Type(_, ty) = output else { return false };
    let Type::Path(path) = ty.as_ref() else { return false };
    path.path.segments.last().is_some_and(|segment| segment.ident == "Result")
}

/// `(name, span)` of every plain identifier argument, and `self`.
fn argument_names(function: &ItemFn) -> Vec<Ident> {
    function
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            FnArg::Receiver(_) => None,
            FnArg::Typed(typed) => match typed.pat.as_ref() {
                Pat::Ident(pat) => Some(pat.ident.clone()),
                _ => None,
            },
        })
        .collect()
}

fn expand(options: Options, function: ItemFn) -> syn::Result<TokenStream2> {
    let arguments = argument_names(&function);
    for named in options.record.iter().chain(options.skip.iter()).flatten() {
        if !arguments.iter().any(|argument| argument == named) {
            return Err(syn::Error::new(
                named.span(),
                format!(
                    "`{named}` is not an argument of `{}` (only plain named arguments can be recorded)",
                    function.sig.ident
                ),
            ));
        }
    }
    let recorded: Vec<&Ident> = match (&options.record, &options.skip) {
        (Some(record), _) => record.iter().collect(),
        (None, Some(skip)) => arguments.iter().filter(|argument| !skip.contains(argument)).collect(),
        (None, None) => Vec::new(),
    };
    let function_name = function.sig.ident.to_string();
    let span_name = options.name.map(|name| name.value()).unwrap_or_else(|| function_name.clone());
    let fields = recorded.iter().map(|argument| {
        let key = argument.to_string();
        quote_spanned!(argument.span()=> #key = ::sightline_sdk::__private::tracing::field::debug(&#argument))
    });
    let ItemFn { attrs, vis, sig, block } = function;
    let output_type = match &sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => quote!(#ty),
    };
    let has_impl_trait = output_type.to_string().contains("impl ");
    let record_error = if returns_result(&sig.output) {
        quote! {
            if let ::core::result::Result::Err(error) = &__traced_result {
                ::sightline_sdk::__private::record_error(&__traced_span, error);
            }
        }
    } else {
        quote!()
    };
    let private = quote!(::sightline_sdk::__private);
    let make_span = quote! {
        let __traced_span = #private::tracing::info_span!(
            target: ::core::module_path!(),
            #span_name,
            otel.name = #span_name,
            "code.function.name" = #function_name,
            "code.namespace" = ::core::module_path!(),
            duration_ms = #private::tracing::field::Empty,
            #(#fields,)*
        );
        let __traced_start = ::std::time::Instant::now();
    };
    let finish = quote! {
        __traced_span.record("duration_ms", __traced_start.elapsed().as_secs_f64() * 1000.0);
        #record_error
        __traced_result
    };
    let body = if sig.asyncness.is_some() {
        quote! {
            #make_span
            let __traced_result: #output_type = #private::tracing::Instrument::instrument(
                async move { let __traced_inner: #output_type = #block; __traced_inner },
                __traced_span.clone(),
            ).await;
            #finish
        }
    } else if has_impl_trait {
        quote! {
            #make_span
            #[allow(clippy::redundant_closure_call)]
            let __traced_result = __traced_span.in_scope(move || #block);
            #finish
        }
    } else {
        quote! {
            #make_span
            #[allow(clippy::redundant_closure_call)]
            let __traced_result: #output_type = __traced_span.in_scope(move || -> #output_type { #block });
            #finish
        }
    };
    Ok(quote! {
        #(#attrs)*
        #vis #sig {
            #body
        }
    })
}

/// Traces a function; see the crate docs for options.
#[proc_macro_attribute]
pub fn traced(attribute: TokenStream, item: TokenStream) -> TokenStream {
    let options = match syn::parse::<Options>(attribute) {
        Ok(options) => options,
        Err(error) => return error.to_compile_error().into(),
    };
    let function = match syn::parse::<ItemFn>(item.clone()) {
        Ok(function) => function,
        Err(_) => {
            let span = TokenStream2::from(item).into_iter().next().map_or_else(Span::call_site, |token| token.span());
            return syn::Error::new(span, "#[traced] applies to functions (fn or async fn)").to_compile_error().into();
        }
    };
    if function.sig.constness.is_some() {
        return syn::Error::new(function.sig.constness.span(), "#[traced] cannot trace a const fn")
            .to_compile_error()
            .into();
    }
    match expand(options, function) {
        Ok(tokens) => tokens.into(),
        Err(error) => error.to_compile_error().into(),
    }
}
