//! The [`Runtime`]: a wasmi engine, the compiled-module cache and [`Runtime::execute`].

use std::collections::{BTreeMap, BTreeSet};

use tabmesh_base::Hash;
use wasmi::errors::{ErrorKind, InstantiationError};
use wasmi::{
    CompilationMode, Config, EnforcedLimits, Engine, Extern, ExternType, Instance, Module, Store,
    StoreLimitsBuilder, TrapCode,
};

use crate::abi::{self, ImportSig, ValType, IMPORTS, IMPORT_MODULE, MEMORY_EXPORT};
use crate::imports::{self, HostState};
use crate::{Host, Limit, Limits, Outcome, RuntimeError};

/// Smallest value stack wasmi accepts as a maximum (its initial height is 1000 bytes).
const MIN_STACK_BYTES: usize = 4096;

/// Which module a call runs: one already loaded, named by its SHA-256, or bytes (loaded and
/// cached first if needed).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModuleRef<'a> {
    /// The SHA-256 of a loaded module's bytes.
    Hash(Hash),
    /// A module's bytes.
    Bytes(&'a [u8]),
}

impl From<Hash> for ModuleRef<'_> {
    fn from(h: Hash) -> Self {
        ModuleRef::Hash(h)
    }
}

impl<'a> From<&'a [u8]> for ModuleRef<'a> {
    fn from(b: &'a [u8]) -> Self {
        ModuleRef::Bytes(b)
    }
}

impl<'a> From<&'a Vec<u8>> for ModuleRef<'a> {
    fn from(b: &'a Vec<u8>) -> Self {
        ModuleRef::Bytes(b)
    }
}

/// Counters of the compiled-module cache.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Modules validated and compiled.
    pub compiled: u64,
    /// Loads and calls served from the cache.
    pub hits: u64,
    /// Modules dropped to make room.
    pub evicted: u64,
    /// Modules held now.
    pub cached: usize,
}

/// A validated, compiled module and what the runtime learnt about it.
#[derive(Debug)]
struct Compiled {
    module: Module,
    /// For each of the module's imports in order, the ABI import it names.
    imports: Vec<&'static ImportSig>,
    /// Its methods: exported functions `() -> ()`.
    methods: BTreeSet<Box<str>>,
    /// Its hooks: exported functions `() -> ()` whose names start with the reserved prefix.
    hooks: BTreeSet<Box<str>>,
    /// The runtime's use counter when it was last used (least recently used goes first).
    last_used: u64,
}

/// The app runtime: one wasmi [`Engine`] with fuel metering and a deterministic configuration,
/// and a bounded cache of compiled modules keyed by the SHA-256 of their bytes.
///
/// **Configuration.** Eager compilation (a module is validated and translated completely when
/// loaded, never lazily: `CompilationMode::Lazy` is not deterministic), fuel metering on, NaNs
/// canonicalised (wasmi's `deterministic` feature), no start functions, no multi-memory, custom
/// sections ignored, wasmi's strict structural limits, and the call-depth and value-stack limits
/// of [`Limits`].
///
/// **Cache.** At most [`Limits::max_cached_modules`] compiled modules; loading one more evicts the
/// least recently used (by a use counter, so eviction is deterministic). A call naming an evicted
/// module by hash fails with [`RuntimeError::UnknownModule`]; load it again from its bytes.
///
/// **Calls.** Each [`execute`](Runtime::execute) instantiates the module in a fresh store with the
/// call's fuel budget and memory cap: no state survives from one call to the next except what the
/// [`Host`] stores.
#[derive(Debug)]
pub struct Runtime {
    engine: Engine,
    limits: Limits,
    modules: BTreeMap<Hash, Compiled>,
    uses: u64,
    stats: CacheStats,
}

impl Default for Runtime {
    fn default() -> Self {
        Runtime::new(Limits::default())
    }
}

impl Runtime {
    /// A runtime enforcing `limits`.
    pub fn new(limits: Limits) -> Runtime {
        let mut config = Config::default();
        config
            .consume_fuel(true)
            .compilation_mode(CompilationMode::Eager)
            .allow_start_fn(false)
            .wasm_multi_memory(false)
            .ignore_custom_sections(true)
            .enforced_limits(EnforcedLimits::strict())
            .set_max_recursion_depth(limits.max_recursion_depth.max(1))
            .set_max_stack_height(limits.max_stack_bytes.max(MIN_STACK_BYTES));
        Runtime {
            engine: Engine::new(&config),
            limits,
            modules: BTreeMap::new(),
            uses: 0,
            stats: CacheStats::default(),
        }
    }

    /// The limits it enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The cache's counters.
    pub fn cache_stats(&self) -> CacheStats {
        CacheStats {
            cached: self.modules.len(),
            ..self.stats
        }
    }

    /// Whether the module with this hash is compiled and cached.
    pub fn contains(&self, module: &Hash) -> bool {
        self.modules.contains_key(module)
    }

    /// The methods of a cached module, in name order.
    pub fn methods(&self, module: &Hash) -> Option<impl Iterator<Item = &str> + '_> {
        let compiled = self.modules.get(module)?;
        Some(compiled.methods.iter().map(|m| &**m))
    }

    /// Drops a module from the cache; whether it was there.
    pub fn unload(&mut self, module: &Hash) -> bool {
        self.modules.remove(module).is_some()
    }

    /// Validates and compiles `bytes` unless a module with the same SHA-256 is cached, and returns
    /// that hash. Refuses modules over the size limit (before parsing), invalid modules, imports
    /// outside the ABI, modules without an exported memory, and modules exporting a custom merge
    /// function ([`RuntimeError::Unsupported`]).
    pub fn load(&mut self, bytes: &[u8]) -> Result<Hash, RuntimeError> {
        if bytes.len() > self.limits.max_module_bytes {
            return Err(RuntimeError::ModuleTooLarge {
                len: bytes.len(),
                max: self.limits.max_module_bytes,
            });
        }
        let hash = Hash::of(bytes);
        self.uses += 1;
        if let Some(compiled) = self.modules.get_mut(&hash) {
            compiled.last_used = self.uses;
            self.stats.hits += 1;
            return Ok(hash);
        }
        let module = Module::new(&self.engine, bytes)
            .map_err(|e| RuntimeError::InvalidModule(e.to_string().into()))?;
        let mut compiled = inspect(module)?;
        compiled.last_used = self.uses;
        self.stats.compiled += 1;
        while self.modules.len() >= self.limits.max_cached_modules.max(1) {
            let oldest = self
                .modules
                .iter()
                .min_by_key(|(_, c)| c.last_used)
                .map(|(h, _)| *h);
            let Some(oldest) = oldest else { break };
            self.modules.remove(&oldest);
            self.stats.evicted += 1;
        }
        self.modules.insert(hash, compiled);
        Ok(hash)
    }

    /// Refuses an input over [`Limits::max_input_bytes`](crate::Limits) before anything runs.
    fn check_input(&self, input: &[u8]) -> Result<(), RuntimeError> {
        Limit::Input.check(input.len(), self.limits.max_input_bytes)
    }

    /// Runs `method` of `module` with `input` against `host`, metered by the runtime's limits.
    ///
    /// `Ok` carries the return value, logs, events and fuel used; the caller then commits the
    /// host's transaction. Any `Err` means the call failed as a whole and the caller must discard
    /// everything it wrote (see [`Host`]).
    pub fn execute<'m>(
        &mut self,
        module: impl Into<ModuleRef<'m>>,
        method: &str,
        input: &[u8],
        host: &mut impl Host,
    ) -> Result<Outcome, RuntimeError> {
        Limit::MethodName.check(method.len(), abi::MAX_METHOD_NAME_BYTES)?;
        self.check_input(input)?;
        let hash = match module.into() {
            ModuleRef::Bytes(bytes) => self.load(bytes)?,
            ModuleRef::Hash(hash) => {
                let compiled = self
                    .modules
                    .get_mut(&hash)
                    .ok_or(RuntimeError::UnknownModule(hash))?;
                self.uses += 1;
                compiled.last_used = self.uses;
                self.stats.hits += 1;
                hash
            }
        };
        let compiled = self
            .modules
            .get(&hash)
            .ok_or(RuntimeError::UnknownModule(hash))?;
        if !compiled.methods.contains(method) {
            return Err(RuntimeError::UnknownMethod(method.into()));
        }
        run(&self.engine, &self.limits, compiled, method, input, host)
    }

    /// Whether a cached module exports the reserved hook `hook` (a function `() -> ()` whose name
    /// starts with [`abi::RESERVED_PREFIX`]).
    pub fn has_hook(&self, module: &Hash, hook: &str) -> bool {
        self.modules
            .get(module)
            .is_some_and(|c| c.hooks.contains(hook))
    }

    /// Runs the reserved hook `hook` (e.g. [`abi::INIT_HOOK`]) of `module`, exactly like
    /// [`execute`](Runtime::execute) runs a method (same limits, same transaction contract), or
    /// returns `Ok(None)` when the module does not export it. Hooks are not methods: `execute`
    /// refuses their names, and events cannot name them as handlers.
    pub fn execute_hook<'m>(
        &mut self,
        module: impl Into<ModuleRef<'m>>,
        hook: &str,
        input: &[u8],
        host: &mut impl Host,
    ) -> Result<Option<Outcome>, RuntimeError> {
        if !hook.starts_with(abi::RESERVED_PREFIX) || hook.len() > abi::MAX_METHOD_NAME_BYTES {
            return Err(RuntimeError::UnknownMethod(hook.into()));
        }
        self.check_input(input)?;
        let hash = match module.into() {
            ModuleRef::Bytes(bytes) => self.load(bytes)?,
            ModuleRef::Hash(hash) => hash,
        };
        self.uses += 1;
        let uses = self.uses;
        let compiled = self
            .modules
            .get_mut(&hash)
            .ok_or(RuntimeError::UnknownModule(hash))?;
        compiled.last_used = uses;
        if !compiled.hooks.contains(hook) {
            return Ok(None);
        }
        run(&self.engine, &self.limits, compiled, hook, input, host).map(Some)
    }
}

/// Checks a freshly compiled module against the ABI and lists its methods.
fn inspect(module: Module) -> Result<Compiled, RuntimeError> {
    let mut imports = Vec::new();
    for import in module.imports() {
        let unknown = || RuntimeError::UnknownImport {
            module: import.module().into(),
            name: import.name().into(),
        };
        if import.module() != IMPORT_MODULE {
            return Err(unknown());
        }
        let sig = IMPORTS
            .iter()
            .find(|s| s.name == import.name())
            .ok_or_else(unknown)?;
        let ExternType::Func(ty) = import.ty() else {
            return Err(unknown());
        };
        if !same_types(ty.params(), sig.params) || !same_types(ty.results(), sig.results) {
            return Err(RuntimeError::ImportMismatch(sig.name.into()));
        }
        imports.push(sig);
    }
    let mut has_memory = false;
    let mut methods = BTreeSet::new();
    let mut hooks = BTreeSet::new();
    for export in module.exports() {
        if export.name().starts_with(abi::MERGE_HOOK_PREFIX) {
            return Err(RuntimeError::Unsupported {
                feature: "custom merge functions",
                export: export.name().into(),
            });
        }
        match export.ty() {
            ExternType::Memory(_) if export.name() == MEMORY_EXPORT => has_memory = true,
            ExternType::Func(ty)
                if ty.params().is_empty()
                    && ty.results().is_empty()
                    && abi::is_method_name(export.name()) =>
            {
                methods.insert(export.name().into());
            }
            ExternType::Func(ty)
                if ty.params().is_empty()
                    && ty.results().is_empty()
                    && export.name().starts_with(abi::RESERVED_PREFIX)
                    && export.name().len() <= abi::MAX_METHOD_NAME_BYTES =>
            {
                hooks.insert(export.name().into());
            }
            _ => {}
        }
    }
    if !has_memory {
        return Err(RuntimeError::MissingMemory);
    }
    Ok(Compiled {
        module,
        imports,
        methods,
        hooks,
        last_used: 0,
    })
}

fn same_types(actual: &[wasmi::ValType], expected: &[ValType]) -> bool {
    actual.len() == expected.len()
        && actual.iter().zip(expected).all(|(a, e)| {
            matches!(
                (a, e),
                (wasmi::ValType::I32, ValType::I32) | (wasmi::ValType::I64, ValType::I64)
            )
        })
}

/// One call: a fresh store, the imports bound to `host`, instantiation, the method, the outcome.
fn run(
    engine: &Engine,
    limits: &Limits,
    compiled: &Compiled,
    method: &str,
    input: &[u8],
    host: &mut dyn Host,
) -> Result<Outcome, RuntimeError> {
    let store_limits = StoreLimitsBuilder::new()
        .memory_size(limits.max_memory_bytes)
        .table_elements(limits.max_table_elements)
        .instances(1)
        .memories(1)
        .tables(1)
        .trap_on_grow_failure(true)
        .build();
    let state = HostState::new(host, limits, &compiled.methods, input, store_limits);
    let mut store = Store::new(engine, state);
    store.limiter(|s| &mut s.store_limits);
    store
        .set_fuel(limits.fuel)
        .map_err(|e| RuntimeError::Trap(e.to_string().into()))?;

    let mut externs = Vec::with_capacity(compiled.imports.len());
    for sig in &compiled.imports {
        let func =
            imports::func(&mut store, sig.name).ok_or_else(|| RuntimeError::UnknownImport {
                module: IMPORT_MODULE.into(),
                name: sig.name.into(),
            })?;
        externs.push(Extern::Func(func));
    }
    let instance = Instance::new(&mut store, &compiled.module, &externs)
        .map_err(|e| wasm_error(&e, limits.fuel))?;
    let memory = instance
        .get_memory(&store, MEMORY_EXPORT)
        .ok_or(RuntimeError::MissingMemory)?;
    store.data_mut().memory = Some(memory);
    let func = instance
        .get_typed_func::<(), ()>(&store, method)
        .map_err(|_| RuntimeError::UnknownMethod(method.into()))?;

    let result = func.call(&mut store, ());
    let fuel_left = store.get_fuel().unwrap_or(0);
    let mut state = store.into_data();
    if let Some(abort) = state.abort.take() {
        return Err(abort);
    }
    result.map_err(|e| wasm_error(&e, limits.fuel))?;
    let mut outcome = state.outcome;
    outcome.fuel_used = limits.fuel.saturating_sub(fuel_left);
    Ok(outcome)
}

/// Maps a wasmi error (a trap, a failed instantiation) to a typed error.
fn wasm_error(e: &wasmi::Error, budget: u64) -> RuntimeError {
    match e.as_trap_code() {
        Some(TrapCode::OutOfFuel) => return RuntimeError::OutOfFuel { budget },
        Some(TrapCode::StackOverflow) => return RuntimeError::StackOverflow,
        Some(TrapCode::GrowthOperationLimited | TrapCode::OutOfSystemMemory) => {
            return RuntimeError::MemoryLimit
        }
        _ => {}
    }
    match e.kind() {
        ErrorKind::Memory(_)
        | ErrorKind::Table(_)
        | ErrorKind::Instantiation(
            InstantiationError::FailedToInstantiateMemory(_)
            | InstantiationError::FailedToInstantiateTable(_),
        ) => RuntimeError::MemoryLimit,
        ErrorKind::Instantiation(_) => RuntimeError::InvalidModule(e.to_string().into()),
        ErrorKind::Fuel(_) => RuntimeError::OutOfFuel { budget },
        _ => RuntimeError::Trap(e.to_string().into()),
    }
}
