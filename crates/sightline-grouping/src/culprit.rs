//! The culprit: the one frame an issue is titled after, as Sentry's `get_culprit` picks it.

use crate::frame::StackFrame;
use crate::names::basename;
use crate::platform::Platform;

/// Names the frame that most likely caused the error: the innermost in-app frame, else the innermost
/// frame (`frames` are outermost first, so the last one is the crash site).
///
/// Shape: `"<module> in <function>"` (Python `shop.cart in add_to_cart`, Java `com.acme.Foo in bar`, Go
/// `github.com/acme/app in (*T).Method`); JavaScript uses the file basename (`cart.js in Cart.total`);
/// a frame without module uses its file basename; a missing function prints `?`. `None` when there are no
/// frames or the chosen frame has neither location nor function (Sentry then shows no culprit either).
pub fn culprit(platform: Platform, frames: &[StackFrame]) -> Option<String> {
    let frame = frames.iter().rev().find(|frame| frame.in_app).or_else(|| frames.last())?;
    let file_basename = frame.filename.as_deref().map(basename).filter(|name| !name.is_empty());
    let location = match platform {
        Platform::JavaScript => file_basename,
        _ => frame.module.as_deref().filter(|module| !module.is_empty()).or(file_basename),
    };
    let function = frame.function.as_deref().map(str::trim).filter(|function| !function.is_empty());
    match (location, function) {
        (None, None) => None,
        (Some(location), function) => Some(format!("{location} in {}", function.unwrap_or("?"))),
        (None, Some(function)) => Some(function.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(module: Option<&str>, filename: Option<&str>, function: Option<&str>, in_app: bool) -> StackFrame {
        StackFrame {
            module: module.map(str::to_owned),
            filename: filename.map(str::to_owned),
            function: function.map(str::to_owned),
            in_app,
            ..StackFrame::default()
        }
    }

    #[test]
    fn picks_the_innermost_in_app_frame() {
        let frames = [
            frame(Some("shop.cart"), Some("/srv/shop/cart.py"), Some("add_to_cart"), true),
            frame(Some("json.decoder"), Some("/usr/lib/python3.11/json/decoder.py"), Some("decode"), false),
        ];
        assert_eq!(culprit(Platform::Python, &frames).as_deref(), Some("shop.cart in add_to_cart"));
    }

    #[test]
    fn javascript_uses_the_file_basename() {
        let frames = [frame(None, Some("https://cdn.acme.com/js/main.3f2a1b.js?v=1"), Some("Cart.total"), true)];
        assert_eq!(culprit(Platform::JavaScript, &frames).as_deref(), Some("main.3f2a1b.js in Cart.total"));
    }

    #[test]
    fn falls_back_to_the_innermost_frame() {
        let frames =
            [frame(None, Some("node:internal/x"), None, false), frame(Some("runtime"), None, Some("panic"), false)];
        assert_eq!(culprit(Platform::Go, &frames).as_deref(), Some("runtime in panic"));
        assert_eq!(culprit(Platform::Go, &[]), None);
    }
}
