//! Macros shared by every layer; declared first in the crate, so every module may use them.
//!
//! The log macros (`net_trace!`, `net_debug!`, `net_info!`, `net_warn!`, `net_error!`) are
//! smoltcp's `net_log!` layer: one call site, written once, goes to `log` on a host (feature
//! `log`, a default) and to `defmt` when the crate is built with the `defmt` feature (the
//! firmware); with neither, the lines are compiled out. Format strings use
//! positional `{}` (and `{:?}`) only, no inline `{name}` captures and no width or precision,
//! so that the same string is valid for both; every argument implements `Display` (or
//! `Debug` for `{:?}`) and, under `defmt`, `defmt::Format`.

/// One log line at the given level, through `log`.
#[cfg(all(feature = "log", not(feature = "defmt")))]
macro_rules! net_log {
    ($level:ident, $($arg:tt)+) => { log::$level!($($arg)+) };
}

/// No log back end: the line is compiled out. Its arguments are still type-checked (and
/// count as used), so a build without logging warns about nothing a logging build would
/// not; `format_args!` only borrows them and nothing formats, so no `core::fmt` is linked.
#[cfg(not(any(feature = "log", feature = "defmt")))]
macro_rules! net_log {
    ($level:ident, $($arg:tt)+) => {{
        let _ = format_args!($($arg)+);
    }};
}

/// One log line at the given level, through `defmt`: the format string is interned at build
/// time and only its index and the arguments' bytes reach the wire.
#[cfg(feature = "defmt")]
macro_rules! net_log {
    ($level:ident, $($arg:tt)+) => { defmt::$level!($($arg)+) };
}

/// Per-packet detail (`trace`).
#[allow(unused_macros)]
macro_rules! net_trace {
    ($($arg:tt)+) => { net_log!(trace, $($arg)+) };
}

/// Buffer transitions (`debug`): empty→data, full→space, zero window, block entered or left.
#[allow(unused_macros)]
macro_rules! net_debug {
    ($($arg:tt)+) => { net_log!(debug, $($arg)+) };
}

/// Lifecycle (`info`): listening, connected, closed.
#[allow(unused_macros)]
macro_rules! net_info {
    ($($arg:tt)+) => { net_log!(info, $($arg)+) };
}

/// Loss (`warn`): a drop, a truncation, a reset.
#[allow(unused_macros)]
macro_rules! net_warn {
    ($($arg:tt)+) => { net_log!(warn, $($arg)+) };
}

/// A fault ringnet cannot work around (`error`).
#[allow(unused_macros)]
macro_rules! net_error {
    ($($arg:tt)+) => { net_log!(error, $($arg)+) };
}

/// A fixed text for a log line's argument, as `texts!` gives one: interned under `defmt`
/// (a [`LogText`](crate::observe::LogText) the line writes with `{}`), the literal itself
/// otherwise.
#[cfg(feature = "defmt")]
macro_rules! log_text {
    ($text:literal) => {
        defmt::intern!($text)
    };
}

/// A fixed text for a log line's argument: without `defmt`, the literal itself.
#[cfg(not(feature = "defmt"))]
macro_rules! log_text {
    ($text:literal) => {
        $text
    };
}

/// A function from a value to a fixed text, written once as a `match` whose arms are string
/// literals: `$fn` returns the text (the `Display` words, the trace's); under the `defmt`
/// feature `$log` returns the same text interned (`defmt::Str`), which a log line writes
/// with `{=istr}`: defmt keeps interned text in the ELF, so it takes no flash, where a
/// `&str` argument keeps its bytes in flash and sends them on every line. The decoded log
/// reads the same.
macro_rules! texts {
    (
        $(#[$meta:meta])*
        $vis:vis const fn $fn:ident / $log:ident ($($params:tt)*) { $($body:tt)* }
    ) => {
        texts!(@emit [$(#[$meta])*] [$vis] [$vis const] $fn $log ($($params)*) { $($body)* });
    };
    (
        $(#[$meta:meta])*
        $vis:vis fn $fn:ident / $log:ident ($($params:tt)*) { $($body:tt)* }
    ) => {
        texts!(@emit [$(#[$meta])*] [$vis] [$vis] $fn $log ($($params)*) { $($body)* });
    };
    (
        @emit [$($meta:tt)*] [$($vis:tt)*] [$($qual:tt)*] $fn:ident $log:ident ($($params:tt)*) {
            match $scrut:tt { $( $pat:pat $(if $guard:expr)? => $text:literal, )* }
        }
    ) => {
        $($meta)*
        $($qual)* fn $fn($($params)*) -> &'static str {
            match $scrut { $( $pat $(if $guard)? => $text, )* }
        }

        /// The same text for a log line: interned under `defmt`, else the `&str` itself.
        #[cfg(feature = "defmt")]
        $($vis)* fn $log($($params)*) -> defmt::Str {
            match $scrut { $( $pat $(if $guard)? => defmt::intern!($text), )* }
        }

        /// The same text for a log line: interned under `defmt`, else the `&str` itself.
        #[cfg(not(feature = "defmt"))]
        $($vis)* fn $log($($params)*) -> &'static str {
            match $scrut { $( $pat $(if $guard)? => $text, )* }
        }
    };
}

/// Implements `defmt::Format` (under the `defmt` feature) for a type whose text comes from
/// a `texts!` function: its interned form, so that the words stay out of flash.
macro_rules! format_interned {
    ($name:ty, $log:ident) => {
        #[cfg(feature = "defmt")]
        impl defmt::Format for $name {
            fn format(&self, f: defmt::Formatter<'_>) {
                defmt::write!(f, "{=istr}", self.$log())
            }
        }
    };
}

/// Declares an error enum with a `Display` text per variant, smoltcp-style; under the `defmt`
/// feature it formats as the same text in a defmt log.
macro_rules! error_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident { $( $(#[$vmeta:meta])* $variant:ident => $text:literal, )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $( $(#[$vmeta])* $variant, )* }

        impl $name {
            /// The text `Display` writes for this error.
            pub const fn as_str(&self) -> &'static str {
                match self { $( $name::$variant => $text, )* }
            }
        }

        impl core::fmt::Display for $name {
            fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl core::error::Error for $name {}

        /// The same text as `Display`, interned: defmt keeps it in the ELF, not in flash.
        #[cfg(feature = "defmt")]
        impl defmt::Format for $name {
            fn format(&self, f: defmt::Formatter<'_>) {
                let text = match self { $( $name::$variant => defmt::intern!($text), )* };
                defmt::write!(f, "{=istr}", text)
            }
        }
    };
}
