//! The one pipeline of this process, fork-aware (field notes, traps 1–4).
//!
//! PHP-FPM loads the extension in the master and forks workers; `pcntl_fork()` forks CLI scripts.
//! A child inherits the parent's memory but not its flush thread, and its locks may be held by a
//! thread that no longer exists. So a `pthread_atfork` child handler bumps a generation counter, and
//! the next call in the child sees a pipeline of another generation: it forgets it (never drops it,
//! never sends the parent's queued events a second time) and starts its own, lazily.

use crate::config::Config;
use crate::pipeline::Pipeline;
use parking_lot::Mutex;
use std::sync::atomic::{AtomicPtr, AtomicU64, Ordering::Acquire, Ordering::Release};
use std::sync::Once;
use std::time::Duration;

struct Current {
    generation: u64,
    pipeline: Pipeline,
}

static CURRENT: AtomicPtr<Current> = AtomicPtr::new(std::ptr::null_mut());
static GENERATION: AtomicU64 = AtomicU64::new(0);
static INIT: Mutex<()> = Mutex::new(());
/// The configuration last applied with `configure()`. Only the request thread touches it, so a
/// forked child can read it safely and start its pipeline with the parent's configuration.
static CONFIGURED: Mutex<Option<Config>> = Mutex::new(None);
static ATFORK: Once = Once::new();

extern "C" fn in_child_after_fork() {
    GENERATION.fetch_add(1, Release);
}

/// Registers the fork handler. Call once at module startup, before any fork.
pub fn install_fork_handler() {
    ATFORK.call_once(|| {
        // SAFETY: registering a handler that only touches an atomic.
        unsafe { libc::pthread_atfork(None, None, Some(in_child_after_fork)) };
    });
}

/// This process's pipeline, if it has started one.
pub fn get() -> Option<&'static Pipeline> {
    let p = CURRENT.load(Acquire);
    // SAFETY: a published `Current` is leaked, never freed, so the reference lives forever.
    let cur = unsafe { p.as_ref() }?;
    (cur.generation == GENERATION.load(Acquire)).then_some(&cur.pipeline)
}

/// This process's pipeline, started with `init()`'s configuration on first use.
pub fn get_or_start<E: From<std::io::Error>>(init: impl FnOnce() -> Result<Config, E>) -> Result<&'static Pipeline, E> {
    if let Some(p) = get() {
        return Ok(p);
    }
    // A lock inherited from a forked parent is released: only threads that no longer exist could hold it
    // and the init path never runs on the flush thread. Plain PHP (NTS) has one request thread.
    let _guard = INIT.lock();
    if let Some(p) = get() {
        return Ok(p);
    }
    let inherited = CONFIGURED.lock().clone();
    let config = match inherited {
        Some(c) => c,
        None => init()?,
    };
    let generation = GENERATION.load(Acquire);
    let cur = Box::new(Current { generation, pipeline: Pipeline::start(config)? });
    // The previous value, if any, belongs to a parent process: forgotten on purpose.
    let leaked: &'static Current = Box::leak(cur);
    CURRENT.store(leaked as *const Current as *mut Current, Release);
    Ok(&leaked.pipeline)
}

/// Applies `config` (starting the pipeline if needed); returns whether the configuration changed.
pub fn configure(config: Config) -> std::io::Result<bool> {
    *CONFIGURED.lock() = Some(config.clone());
    let p = get_or_start(|| Ok::<Config, std::io::Error>(config.clone()))?;
    Ok(p.configure(config))
}

/// Graceful exit: write what is queued, waiting up to `timeout`. Returns what is still pending.
pub fn shutdown(timeout: Duration) -> u64 {
    get().map_or(0, |p| p.shutdown(timeout))
}
