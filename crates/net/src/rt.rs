//! What the driver needs from its host: the wall clock, OS entropy, and a way to yield to it.

/// Milliseconds since the Unix epoch, by the wall clock (`Date.now()` in a JS host).
pub fn now_ms() -> u64 {
    web_time::SystemTime::now()
        .duration_since(web_time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// 32 bytes of OS entropy (`crypto.getRandomValues` in a JS host).
pub fn entropy() -> [u8; 32] {
    let mut b = [0u8; 32];
    // No entropy source means no safe keys: there is nothing sensible to continue with.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut b).expect("the host has no entropy source");
    b
}

/// Lets the host run its other work (a page's input and rendering, a runtime's other tasks)
/// before going on. In a JS host: a `MessageChannel` message, which a hidden tab does not throttle
/// (a zero-length `setTimeout` there waits up to a second).
#[cfg(js_host)]
pub(crate) async fn yield_to_host() {
    use js_sys::{Array, Function, Promise, Reflect};
    use wasm_bindgen::{closure::Closure, JsCast, JsValue};
    let promise = Promise::new(&mut |resolve: Function, _reject: Function| {
        let channel = Reflect::get(&js_sys::global(), &"MessageChannel".into())
            .ok()
            .and_then(|c| c.dyn_into::<Function>().ok())
            .and_then(|c| Reflect::construct(&c, &Array::new()).ok());
        let ports = channel.and_then(|ch| {
            Some((
                Reflect::get(&ch, &"port1".into()).ok()?,
                Reflect::get(&ch, &"port2".into()).ok()?,
            ))
        });
        let Some((port1, port2)) = ports else {
            // No MessageChannel: a resolved promise (a microtask) is the best there is.
            let _ = resolve.call0(&JsValue::NULL);
            return;
        };
        let receiver = port1.clone();
        let on_message = Closure::once_into_js(move |_: JsValue| {
            // Closed ports do not keep a Node.js process alive.
            if let Some(close) = Reflect::get(&receiver, &"close".into())
                .ok()
                .and_then(|c| c.dyn_into::<Function>().ok())
            {
                let _ = close.call0(&receiver);
            }
            let _ = resolve.call0(&JsValue::NULL);
        });
        let _ = Reflect::set(&port1, &"onmessage".into(), &on_message);
        if let Some(post) = Reflect::get(&port2, &"postMessage".into())
            .ok()
            .and_then(|p| p.dyn_into::<Function>().ok())
        {
            let _ = post.call1(&port2, &JsValue::UNDEFINED);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Lets the runtime run its other tasks before going on.
#[cfg(not(js_host))]
pub(crate) async fn yield_to_host() {
    tokio::task::yield_now().await;
}

/// The body of a native binary's `main`: logs to stderr (`RUST_LOG`, default `info`, no colours),
/// a two-thread tokio runtime running `run`, and the exit code (an error is printed as
/// `<name>: <error and its causes>`).
#[cfg(not(js_host))]
pub fn run_binary<E, F>(name: &str, run: F) -> std::process::ExitCode
where
    E: std::fmt::Debug,
    F: std::future::Future<Output = Result<(), E>>,
{
    use std::process::ExitCode;
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{name}: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:?}");
            ExitCode::FAILURE
        }
    }
}
