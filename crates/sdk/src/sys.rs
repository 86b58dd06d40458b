//! The host calls, as safe functions. On `wasm32` they are the ABI's imports from the module
//! `"tabmesh"` (see `tabmesh_abi`); on every other target there is no host, and each call answers
//! [`Error::NoHost`] (the SDK compiles natively so that the workspace builds, lints and tests
//! natively; app modules only ever run as wasm32).
//!
//! This is the only module with `unsafe` code.

use crate::Error;

/// Most random bytes asked for in one host call (the runtime's default per-call bound).
const RANDOM_CHUNK: usize = 4 << 10;

#[cfg(target_arch = "wasm32")]
#[allow(unsafe_code)]
mod imp {
    use super::RANDOM_CHUNK;
    use crate::Error;

    // The import names are the ABI's (`tabmesh_abi::IMPORTS`). The example apps' tests check that
    // the linked module imports them from "tabmesh" (e.g. `log`, not a math routine).
    #[link(wasm_import_module = "tabmesh")]
    extern "C" {
        fn input() -> u32;
        fn read_result(ptr: *mut u8, len: usize);
        fn return_value(ptr: *const u8, len: usize);
        fn fail(ptr: *const u8, len: usize);
        fn log(ptr: *const u8, len: usize);
        fn emit(
            kind_ptr: *const u8,
            kind_len: usize,
            data_ptr: *const u8,
            data_len: usize,
            handler_ptr: *const u8,
            handler_len: usize,
        );
        fn storage(ptr: *const u8, len: usize) -> u32;
        fn blob(ptr: *const u8, len: usize) -> u32;
        fn context_id(ptr: *mut u8);
        fn executor_id(ptr: *mut u8);
        fn time_now() -> i64;
        fn random_bytes(ptr: *mut u8, len: usize);
    }

    /// The first `len` bytes of the call's result buffer.
    fn result_buffer(len: u32) -> Vec<u8> {
        let len = len as usize;
        let mut out = vec![0u8; len];
        // SAFETY: `out` is `len` writable bytes; the host writes at most `len`.
        unsafe { read_result(out.as_mut_ptr(), len) };
        out
    }

    pub(crate) fn call_input() -> Result<Vec<u8>, Error> {
        // SAFETY: no arguments; the host fills its result buffer.
        let len = unsafe { input() };
        Ok(result_buffer(len))
    }

    pub(crate) fn call_return_value(bytes: &[u8]) -> Result<(), Error> {
        // SAFETY: a readable range of guest memory.
        unsafe { return_value(bytes.as_ptr(), bytes.len()) };
        Ok(())
    }

    pub(crate) fn call_fail(bytes: &[u8]) -> Result<(), Error> {
        // SAFETY: a readable range of guest memory. The host ends the call: this never returns.
        unsafe { fail(bytes.as_ptr(), bytes.len()) };
        core::arch::wasm32::unreachable()
    }

    pub(crate) fn call_log(line: &str) -> Result<(), Error> {
        // SAFETY: a readable range of guest memory.
        unsafe { log(line.as_ptr(), line.len()) };
        Ok(())
    }

    pub(crate) fn call_emit(kind: &str, data: &[u8], handler: Option<&str>) -> Result<(), Error> {
        let handler = handler.unwrap_or("");
        // SAFETY: three readable ranges of guest memory (`handler_len == 0`: no handler).
        unsafe {
            emit(
                kind.as_ptr(),
                kind.len(),
                data.as_ptr(),
                data.len(),
                handler.as_ptr(),
                handler.len(),
            )
        };
        Ok(())
    }

    pub(crate) fn call_storage(op: &[u8]) -> Result<Vec<u8>, Error> {
        // SAFETY: a readable range of guest memory; the host fills its result buffer.
        let len = unsafe { storage(op.as_ptr(), op.len()) };
        Ok(result_buffer(len))
    }

    pub(crate) fn call_blob(op: &[u8]) -> Result<Vec<u8>, Error> {
        // SAFETY: a readable range of guest memory; the host fills its result buffer.
        let len = unsafe { blob(op.as_ptr(), op.len()) };
        Ok(result_buffer(len))
    }

    pub(crate) fn call_context_id() -> Result<[u8; 32], Error> {
        let mut out = [0u8; 32];
        // SAFETY: 32 writable bytes.
        unsafe { context_id(out.as_mut_ptr()) };
        Ok(out)
    }

    pub(crate) fn call_executor_id() -> Result<[u8; 32], Error> {
        let mut out = [0u8; 32];
        // SAFETY: 32 writable bytes.
        unsafe { executor_id(out.as_mut_ptr()) };
        Ok(out)
    }

    pub(crate) fn call_time_now() -> Result<u64, Error> {
        // SAFETY: no arguments.
        let ms = unsafe { time_now() };
        Ok(u64::try_from(ms).unwrap_or(0))
    }

    pub(crate) fn call_random_bytes(out: &mut [u8]) -> Result<(), Error> {
        for chunk in out.chunks_mut(RANDOM_CHUNK) {
            // SAFETY: a writable range of guest memory.
            unsafe { random_bytes(chunk.as_mut_ptr(), chunk.len()) };
        }
        Ok(())
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use crate::Error;

    pub(crate) fn call_input() -> Result<Vec<u8>, Error> {
        Err(Error::NoHost)
    }

    pub(crate) fn call_return_value(_: &[u8]) -> Result<(), Error> {
        Err(Error::NoHost)
    }

    pub(crate) fn call_fail(_: &[u8]) -> Result<(), Error> {
        Err(Error::NoHost)
    }

    pub(crate) fn call_log(_: &str) -> Result<(), Error> {
        Err(Error::NoHost)
    }

    pub(crate) fn call_emit(_: &str, _: &[u8], _: Option<&str>) -> Result<(), Error> {
        Err(Error::NoHost)
    }

    pub(crate) fn call_storage(_: &[u8]) -> Result<Vec<u8>, Error> {
        Err(Error::NoHost)
    }

    pub(crate) fn call_blob(_: &[u8]) -> Result<Vec<u8>, Error> {
        Err(Error::NoHost)
    }

    pub(crate) fn call_context_id() -> Result<[u8; 32], Error> {
        Err(Error::NoHost)
    }

    pub(crate) fn call_executor_id() -> Result<[u8; 32], Error> {
        Err(Error::NoHost)
    }

    pub(crate) fn call_time_now() -> Result<u64, Error> {
        Err(Error::NoHost)
    }

    pub(crate) fn call_random_bytes(_: &mut [u8]) -> Result<(), Error> {
        let _ = super::RANDOM_CHUNK;
        Err(Error::NoHost)
    }
}

pub(crate) use imp::*;

/// Runs an encoded storage operation and decodes the host's answer.
pub(crate) fn storage(op: &[u8]) -> Result<tabmesh_abi::Value, Error> {
    decode(&call_storage(op)?)?.map_err(Error::from)
}

/// Runs an encoded blob operation and decodes the host's answer.
pub(crate) fn blob(op: &[u8]) -> Result<tabmesh_abi::Value, Error> {
    decode(&call_blob(op)?)?.map_err(Error::blob)
}

fn decode(result: &[u8]) -> Result<tabmesh_abi::OpResult, Error> {
    tabmesh_abi::decode_result(result).map_err(|e| Error::Codec {
        message: e.to_string(),
    })
}
