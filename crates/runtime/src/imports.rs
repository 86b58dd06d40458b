//! The host functions behind the ABI's imports (documented in [`crate::abi`]) and the per-call
//! state they work on.
//!
//! Each import is a thin wrapper: it charges fuel, checks sizes against the call's limits before
//! touching guest memory, bounds-checks every pointer, and turns a refusal into a typed
//! [`RuntimeError`] kept in [`HostState::abort`] (the trap that ends the call only says "aborted";
//! the runtime reports the kept error).

use std::collections::BTreeSet;
use std::ops::Range;

use wasmi::{Caller, Func, Memory, Store, StoreLimits};

use crate::abi::{self, BlobOp, StorageOp};
use crate::limits::{FUEL_PER_BYTE, HOST_CALL_FUEL, STORAGE_OP_FUEL};
use crate::{Event, Host, Limit, Limits, Outcome, RuntimeError};

/// Everything one call's store holds besides the instance.
pub(crate) struct HostState<'h> {
    host: &'h mut dyn Host,
    limits: &'h Limits,
    methods: &'h BTreeSet<Box<str>>,
    input: &'h [u8],
    pub(crate) store_limits: StoreLimits,
    pub(crate) memory: Option<Memory>,
    /// The result buffer (see the ABI).
    result: Vec<u8>,
    pub(crate) outcome: Outcome,
    log_bytes: usize,
    event_bytes: usize,
    /// Why a host function ended the call, if one did.
    pub(crate) abort: Option<RuntimeError>,
}

impl<'h> HostState<'h> {
    pub(crate) fn new(
        host: &'h mut dyn Host,
        limits: &'h Limits,
        methods: &'h BTreeSet<Box<str>>,
        input: &'h [u8],
        store_limits: StoreLimits,
    ) -> Self {
        HostState {
            host,
            limits,
            methods,
            input,
            store_limits,
            memory: None,
            result: Vec::new(),
            outcome: Outcome::default(),
            log_bytes: 0,
            event_bytes: 0,
            abort: None,
        }
    }
}

type Ctx<'c, 'h> = Caller<'c, HostState<'h>>;

/// The host function for the ABI import `name` (`None`: not one of [`abi::IMPORTS`]).
pub(crate) fn func(store: &mut Store<HostState<'_>>, name: &str) -> Option<Func> {
    Some(match name {
        "input" => Func::wrap(store, input),
        "read_result" => Func::wrap(store, read_result),
        "return_value" => Func::wrap(store, return_value),
        "fail" => Func::wrap(store, fail),
        "log" => Func::wrap(store, log),
        "emit" => Func::wrap(store, emit),
        "storage" => Func::wrap(store, storage),
        "blob" => Func::wrap(store, blob),
        "context_id" => Func::wrap(store, context_id),
        "executor_id" => Func::wrap(store, executor_id),
        "time_now" => Func::wrap(store, time_now),
        "random_bytes" => Func::wrap(store, random_bytes),
        _ => return None,
    })
}

/// Keeps `e` as the reason the call ends and returns the trap that ends it.
fn abort(c: &mut Ctx<'_, '_>, e: RuntimeError) -> wasmi::Error {
    c.data_mut().abort = Some(e);
    wasmi::Error::new("call aborted by the host")
}

fn done<T>(c: &mut Ctx<'_, '_>, r: Result<T, RuntimeError>) -> Result<T, wasmi::Error> {
    r.map_err(|e| abort(c, e))
}

/// Burns `extra` plus [`FUEL_PER_BYTE`] per byte moved, or ends the call out of fuel.
fn charge(c: &mut Ctx<'_, '_>, bytes: usize, extra: u64) -> Result<(), RuntimeError> {
    let cost = (bytes as u64)
        .saturating_mul(FUEL_PER_BYTE)
        .saturating_add(HOST_CALL_FUEL)
        .saturating_add(extra);
    let budget = c.data().limits.fuel;
    let left = c.get_fuel().unwrap_or(0);
    let out_of_fuel = left < cost;
    // Setting fuel only fails when metering is off, which this runtime never does.
    let _ = c.set_fuel(left.saturating_sub(cost));
    if out_of_fuel {
        return Err(RuntimeError::OutOfFuel { budget });
    }
    Ok(())
}

/// A guest length, refused over `max`.
fn bounded(len: i32, max: usize, limit: Limit) -> Result<usize, RuntimeError> {
    let len = len as u32 as usize;
    limit.check(len, max)?;
    Ok(len)
}

/// The guest range `[ptr, ptr + len)`, checked against the memory's size.
fn range(memory: &[u8], ptr: i32, len: usize) -> Result<Range<usize>, RuntimeError> {
    let start = ptr as u32 as usize;
    let bad = || RuntimeError::BadPointer {
        ptr: ptr as u32,
        len: u32::try_from(len).unwrap_or(u32::MAX),
    };
    let end = start.checked_add(len).ok_or_else(bad)?;
    if end > memory.len() {
        return Err(bad());
    }
    Ok(start..end)
}

fn memory(c: &Ctx<'_, '_>) -> Result<Memory, RuntimeError> {
    c.data().memory.ok_or(RuntimeError::MissingMemory)
}

/// Copies `len` guest bytes at `ptr`.
fn read(c: &mut Ctx<'_, '_>, ptr: i32, len: usize) -> Result<Vec<u8>, RuntimeError> {
    let mem = memory(c)?;
    let data = mem.data(&*c);
    Ok(data[range(data, ptr, len)?].to_vec())
}

/// Copies `bytes` into guest memory at `ptr`.
fn write(c: &mut Ctx<'_, '_>, ptr: i32, bytes: &[u8]) -> Result<(), RuntimeError> {
    let mem = memory(c)?;
    let data = mem.data_mut(&mut *c);
    let r = range(data, ptr, bytes.len())?;
    data[r].copy_from_slice(bytes);
    Ok(())
}

fn utf8(bytes: Vec<u8>, what: &'static str) -> Result<String, RuntimeError> {
    String::from_utf8(bytes).map_err(|_| RuntimeError::AbiViolation(what))
}

fn len_i32(n: usize) -> i32 {
    // Result lengths are bounded far below `i32::MAX` by the limits.
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn input(mut c: Ctx<'_, '_>) -> Result<i32, wasmi::Error> {
    let r = charge(&mut c, 0, 0).map(|()| {
        let state = c.data_mut();
        state.result.clear();
        state.result.extend_from_slice(state.input);
        len_i32(state.result.len())
    });
    done(&mut c, r)
}

fn read_result(mut c: Ctx<'_, '_>, ptr: i32, len: i32) -> Result<(), wasmi::Error> {
    let r = (|| {
        let len = len as u32 as usize;
        if len > c.data().result.len() {
            return Err(RuntimeError::AbiViolation(
                "read_result past the result buffer",
            ));
        }
        charge(&mut c, len, 0)?;
        let mem = memory(&c)?;
        let (data, state) = mem.data_and_store_mut(&mut c);
        let r = range(data, ptr, len)?;
        data[r].copy_from_slice(&state.result[..len]);
        Ok(())
    })();
    done(&mut c, r)
}

fn return_value(mut c: Ctx<'_, '_>, ptr: i32, len: i32) -> Result<(), wasmi::Error> {
    let r = (|| {
        let len = bounded(len, c.data().limits.max_return_bytes, Limit::ReturnValue)?;
        charge(&mut c, len, 0)?;
        let value = read(&mut c, ptr, len)?;
        c.data_mut().outcome.return_value = Some(value);
        Ok(())
    })();
    done(&mut c, r)
}

fn fail(mut c: Ctx<'_, '_>, ptr: i32, len: i32) -> Result<(), wasmi::Error> {
    let r = (|| {
        let len = bounded(len, c.data().limits.max_arg_bytes, Limit::Argument)?;
        charge(&mut c, len, 0)?;
        let payload = read(&mut c, ptr, len)?;
        Err(RuntimeError::Failed {
            payload: payload.into(),
        })
    })();
    done(&mut c, r)
}

fn log(mut c: Ctx<'_, '_>, ptr: i32, len: i32) -> Result<(), wasmi::Error> {
    let r = (|| {
        let state = c.data();
        let limits = state.limits;
        Limit::LogCount.check(state.outcome.logs.len() + 1, limits.max_logs)?;
        let len = bounded(len, limits.max_log_line_bytes, Limit::LogLine)?;
        let total = state.log_bytes + len;
        Limit::LogBytes.check(total, limits.max_log_bytes)?;
        charge(&mut c, len, 0)?;
        let line = String::from_utf8_lossy(&read(&mut c, ptr, len)?).into_owned();
        let state = c.data_mut();
        state.log_bytes = total;
        state.outcome.logs.push(line);
        Ok(())
    })();
    done(&mut c, r)
}

fn emit(
    mut c: Ctx<'_, '_>,
    kind_ptr: i32,
    kind_len: i32,
    data_ptr: i32,
    data_len: i32,
    handler_ptr: i32,
    handler_len: i32,
) -> Result<(), wasmi::Error> {
    let r = (|| {
        let state = c.data();
        let limits = state.limits;
        Limit::EventCount.check(state.outcome.events.len() + 1, limits.max_events)?;
        let kind_len = bounded(kind_len, limits.max_event_kind_bytes, Limit::EventKind)?;
        let data_len = bounded(data_len, limits.max_event_data_bytes, Limit::EventData)?;
        let handler_len = bounded(handler_len, abi::MAX_METHOD_NAME_BYTES, Limit::MethodName)?;
        let total = state.event_bytes + kind_len + data_len + handler_len;
        Limit::EventBytes.check(total, limits.max_event_bytes)?;
        charge(&mut c, kind_len + data_len + handler_len, 0)?;
        let kind = utf8(read(&mut c, kind_ptr, kind_len)?, "event kind is not UTF-8")?;
        let data = read(&mut c, data_ptr, data_len)?;
        let handler = match handler_len {
            0 => None,
            n => {
                let name = utf8(read(&mut c, handler_ptr, n)?, "handler name is not UTF-8")?;
                if !c.data().methods.contains(name.as_str()) {
                    return Err(RuntimeError::UnknownHandler(name.into()));
                }
                Some(name)
            }
        };
        let state = c.data_mut();
        state.event_bytes = total;
        state.outcome.events.push(Event {
            kind,
            data,
            handler,
        });
        Ok(())
    })();
    done(&mut c, r)
}

/// `storage` and `blob`: decode the operation in place, ask the host, keep the encoded result.
fn operation(c: &mut Ctx<'_, '_>, ptr: i32, len: i32, blob: bool) -> Result<i32, RuntimeError> {
    let len = bounded(len, c.data().limits.max_arg_bytes, Limit::Argument)?;
    charge(c, len, STORAGE_OP_FUEL)?;
    let mem = memory(c)?;
    let (data, state) = mem.data_and_store_mut(&mut *c);
    let bytes = &data[range(data, ptr, len)?];
    let result = if blob {
        state.host.blob(&BlobOp::decode(bytes)?)
    } else {
        state.host.storage(&StorageOp::decode(bytes)?)
    };
    let encoded = abi::encode_result(&result);
    Limit::Result.check(encoded.len(), state.limits.max_result_bytes)?;
    state.result = encoded;
    Ok(len_i32(state.result.len()))
}

fn storage(mut c: Ctx<'_, '_>, ptr: i32, len: i32) -> Result<i32, wasmi::Error> {
    let r = operation(&mut c, ptr, len, false);
    done(&mut c, r)
}

fn blob(mut c: Ctx<'_, '_>, ptr: i32, len: i32) -> Result<i32, wasmi::Error> {
    let r = operation(&mut c, ptr, len, true);
    done(&mut c, r)
}

fn context_id(mut c: Ctx<'_, '_>, ptr: i32) -> Result<(), wasmi::Error> {
    let r = charge(&mut c, 32, 0).and_then(|()| {
        let id = c.data().host.context_id();
        write(&mut c, ptr, id.as_bytes())
    });
    done(&mut c, r)
}

fn executor_id(mut c: Ctx<'_, '_>, ptr: i32) -> Result<(), wasmi::Error> {
    let r = charge(&mut c, 32, 0).and_then(|()| {
        let id = c.data().host.executor_id();
        write(&mut c, ptr, id.as_bytes())
    });
    done(&mut c, r)
}

fn time_now(mut c: Ctx<'_, '_>) -> Result<i64, wasmi::Error> {
    let r = charge(&mut c, 0, 0).map(|()| {
        let now = c.data().host.now_ms();
        i64::try_from(now).unwrap_or(i64::MAX)
    });
    done(&mut c, r)
}

fn random_bytes(mut c: Ctx<'_, '_>, ptr: i32, len: i32) -> Result<(), wasmi::Error> {
    let r = (|| {
        let len = bounded(len, c.data().limits.max_random_bytes, Limit::Random)?;
        charge(&mut c, len, 0)?;
        let mem = memory(&c)?;
        let (data, state) = mem.data_and_store_mut(&mut c);
        let r = range(data, ptr, len)?;
        state.host.random_bytes(&mut data[r]);
        Ok(())
    })();
    done(&mut c, r)
}
